/* tokenizer/tok.h: text before the subword model: UTF-8 validation, Unicode normalisation (utf8proc;
 * NFKC by default) and pre-tokenisation into pieces that BPE never merges across.
 *
 * Pieces (all of this is exact: concatenating the pieces, with every U+2581 of a TEXT piece read as
 * ' ', gives back the normalised text byte for byte):
 *  - Runs of one class: letters (with their combining marks), numbers, punctuation+symbols (emoji
 *    too). A mark continues whatever piece it follows (a mark with nothing to attach to starts a
 *    letter piece); ZWJ/ZWNJ (U+200D/U+200C) continue the piece and glue the next character to it,
 *    so emoji ZWJ sequences and Persian/Indic joiners stay inside one piece. Each CJK ideograph is
 *    its own piece (plus its marks); kana runs are their own class. A run longer than TOK_PIECE_MAX
 *    code points is cut.
 *  - Space: only U+0020. Like SentencePiece, the space right before a piece becomes the marker
 *    U+2581 '▁' prefixed to it ("a b" -> "a", "▁b"). Other spaces (runs, leading spaces before a
 *    non-attachable piece, trailing spaces) become a piece of k markers ("a   b" -> "a", "▁▁",
 *    "▁b"; "a " -> "a", "▁").
 *  - Every other character (controls, tab, newline, CR, other Unicode spaces that survive the
 *    normalisation, format characters, private use, unassigned) is a piece of its own, never
 *    attached to a marker: "a\tb" -> "a", "\t", "b". Its own bytes are its surface, so it round-trips
 *    (as a vocabulary token if it was seen in training, else as byte tokens).
 *  - A literal U+2581 in the input is a piece of kind TOK_PIECE_BYTES: the encoder always writes it
 *    as its three byte tokens <0xE2><0x96><0x81>, and byte tokens decode to raw bytes, so it never
 *    turns into a space.
 * ref: UAX #15 (normalisation forms), UAX #44 (general categories), Kudo & Richardson 2018
 * (SentencePiece, the U+2581 marker). */
#ifndef SL_TOKENIZER_TOK_H
#define SL_TOKENIZER_TOK_H

#include "util/sbuf.h"

#include <stddef.h>
#include <stdint.h>

enum tok_norm {
    TOK_NORM_NFKC = 0, /* stored as "NFKC" */
    TOK_NORM_NFC = 1,  /* "NFC" */
    TOK_NORM_NONE = 2, /* "none": validated, not changed */
};

#define TOK_SPACE_MARK "\xE2\x96\x81" /* U+2581, the surface of a space */
#define TOK_SPACE_MARK_CP 0x2581
#define TOK_PIECE_MAX 128 /* code points per piece, not counting a marker prefix */

enum tok_piece_kind {
    TOK_PIECE_TEXT = 0,  /* BPE input; its U+2581 characters stand for spaces */
    TOK_PIECE_BYTES = 1, /* a literal U+2581: encoded as byte tokens only */
};

/* The pieces of one text. Owns its memory (tok_pieces_free); reused by later calls. */
struct tok_pieces {
    struct sbuf text;    /* surfaces of all pieces, concatenated */
    size_t *off;         /* (n + 1) byte offsets into text.data: piece i is [off[i], off[i+1]) */
    unsigned char *kind; /* (n) enum tok_piece_kind */
    size_t n, cap;
    int32_t *cps; /* (cps_cap) workspace: the normalised code points */
    size_t cps_cap;
};

/* "NFKC" / "NFC" / "none". */
const char *tok_norm_name(enum tok_norm norm);
/* Parses a name of tok_norm_name (case-insensitive); SL_EINVAL for anything else. */
int tok_norm_parse(const char *name, enum tok_norm *out /* OUT */);
/* 0 when s[0..len) is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF; NUL is
 * allowed); otherwise SL_EUTF8 with the message "invalid UTF-8 at byte N" (N 1-based, as every
 * message that names a byte) and *bad_off = N - 1, the 0-based offset (bad_off may be NULL). */
int tok_utf8_check(const char *s, size_t len, size_t *bad_off /* OUT */);
/* Appends s to out with every invalid byte sequence replaced by U+FFFD (for showing decoded ids,
 * which may be any bytes). */
int tok_utf8_repair(const char *s, size_t len, struct sbuf *out);
/* out = normalise(s) (replaces out's content). SL_EUTF8 (with byte offset) on invalid input. */
int tok_normalize(enum tok_norm norm, const char *s, size_t len, struct sbuf *out);

void tok_pieces_init(struct tok_pieces *p);
void tok_pieces_free(struct tok_pieces *p);
/* tok_pretokenize flag: treat a non-empty text as if it began with one more space (SentencePiece's
 * dummy prefix), so its first word gets the same "▁word" piece as a word inside a sentence. */
#define TOK_PRETOK_SPACE_PREFIX 1u
/* Validates, normalises and splits s into out (replacing its content). flags: 0 or
 * TOK_PRETOK_SPACE_PREFIX. SL_EUTF8 on invalid input. */
int tok_pretokenize(enum tok_norm norm, const char *s, size_t len, unsigned flags, struct tok_pieces *out);

#endif

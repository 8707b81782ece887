/* tokenizer/bpe.c: the BPE model (tokens, merges), loading from arrays, encoding and decoding.
 * Encoding: pre-tokenise (tok.c), then per piece: look it up in the caller's cache, else map each
 * code point to its base token (or its UTF-8 byte tokens), then repeatedly merge the adjacent pair
 * of lowest rank (all its occurrences, left to right) until no pair has a merge. This reproduces the
 * segmentation the learner reached for every training piece.
 * ref: Sennrich, Haddow & Birch 2016 (apply_bpe); Kudo & Richardson 2018 (byte fallback). */
#include "tokenizer/bpe.h"

#include "tokenizer/tok_hash.h"
#include "util/err.h"
#include "util/utf8.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX_ENTRIES (1u << 18) /* per tok_ids; cleared whole when full */
#define CACHE_MAX_IDS (1u << 22)

struct bpe_tokrec {
    size_t off; /* bytes at pool.data + off */
    uint32_t len;
    uint8_t kind;
    int64_t count;
};

struct bpe_mrec {
    int32_t left, right, result;
};

struct bpe {
    enum tok_norm norm;
    uint64_t serial; /* unique per model, so a tok_ids cache never serves another model */
    int finalized;
    struct bpe_tokrec *tok; /* (n_tok) */
    size_t n_tok, cap_tok;
    struct sbuf pool; /* token bytes, back to back */
    struct bpe_mrec *merge; /* (n_merge) by rank */
    size_t n_merge, cap_merge;
    struct tok_u64map pairs; /* (left << 32 | right) -> rank */
    struct tok_u64map chars; /* code point -> base token id */
};

struct tok_encws {
    struct tok_pieces pieces;
    struct tok_bmap cache; /* piece surface -> (offset into cids << 16 | number of ids) */
    int32_t *cids;         /* (cids_cap) ids of cached pieces */
    size_t cids_len, cids_cap;
    uint64_t serial; /* model the cache belongs to */
    int32_t *sym;    /* (sym_cap) symbols of the piece being encoded */
    size_t sym_cap;
};

static atomic_uint_fast64_t serial_next = 1;

static const char *const special_names[4] = {"<pad>", "<s>", "</s>", "<unk>"};

const char *bpe_kind_name(enum bpe_kind kind)
{
    switch (kind) {
    case BPE_KIND_NORMAL:
        return "normal";
    case BPE_KIND_SPECIAL:
        return "special";
    case BPE_KIND_BYTE:
        return "byte";
    }
    return "?";
}

int bpe_kind_parse(const char *name, enum bpe_kind *out)
{
    for (int k = 0; k <= 2; k++)
        if (name && strcmp(name, bpe_kind_name((enum bpe_kind)k)) == 0) {
            *out = (enum bpe_kind)k;
            return 0;
        }
    return sl_err(SL_EINVAL, "unknown token kind '%s'", name ? name : "(null)");
}

struct bpe *bpe_create(enum tok_norm norm)
{
    struct bpe *b = calloc(1, sizeof *b);
    if (!b) {
        sl_err(SL_ENOMEM, "out of memory (BPE model)");
        return NULL;
    }
    b->norm = norm;
    b->serial = atomic_fetch_add(&serial_next, 1);
    sbuf_init(&b->pool);
    tok_u64map_init(&b->pairs);
    tok_u64map_init(&b->chars);
    return b;
}

void bpe_free(struct bpe *b)
{
    if (!b)
        return;
    free(b->tok);
    sbuf_free(&b->pool);
    free(b->merge);
    tok_u64map_free(&b->pairs);
    tok_u64map_free(&b->chars);
    free(b);
}

int bpe_add_token(struct bpe *b, int32_t id, const char *bytes, size_t len, enum bpe_kind kind,
                  int64_t count)
{
    if (b->finalized)
        return sl_err(SL_EINVAL, "BPE model is finalized; no more tokens");
    if (id < 0 || (size_t)id != b->n_tok)
        return sl_err(SL_ECORRUPT, "token id %d out of order (expected %zu)", (int)id, b->n_tok);
    if (id >= BPE_SIZE_MAX)
        return sl_err(SL_ECORRUPT, "too many tokens (more than %d)", BPE_SIZE_MAX);
    if (id < BPE_BYTE0) {
        if (kind != BPE_KIND_SPECIAL || len != strlen(special_names[id]) ||
            memcmp(bytes, special_names[id], len) != 0)
            return sl_err(SL_ECORRUPT, "token %d must be the special token %s", (int)id, special_names[id]);
    } else if (id < BPE_FIRST_LEARNED) {
        if (kind != BPE_KIND_BYTE || len != 1 || (unsigned char)bytes[0] != (unsigned)(id - BPE_BYTE0))
            return sl_err(SL_ECORRUPT, "token %d must be the byte token <0x%02X>", (int)id,
                          (unsigned)(id - BPE_BYTE0));
    } else {
        if (kind != BPE_KIND_NORMAL || len == 0 || len > UINT32_MAX)
            return sl_err(SL_ECORRUPT, "token %d must be a non-empty normal token", (int)id);
        size_t off;
        if (!utf8_valid(bytes, len, &off))
            return sl_err(SL_ECORRUPT, "token %d is not valid UTF-8 (byte %zu)", (int)id, off + 1);
    }
    if (b->n_tok == b->cap_tok) {
        size_t cap = b->cap_tok ? b->cap_tok * 2 : 512;
        struct bpe_tokrec *t = realloc(b->tok, cap * sizeof *t);
        if (!t)
            return sl_err(SL_ENOMEM, "out of memory (%zu tokens)", cap);
        b->tok = t;
        b->cap_tok = cap;
    }
    size_t off = b->pool.len;
    int rc = sbuf_append(&b->pool, bytes, len);
    if (rc)
        return rc;
    struct bpe_tokrec *t = &b->tok[b->n_tok++];
    t->off = off;
    t->len = (uint32_t)len;
    t->kind = (uint8_t)kind;
    t->count = count;
    return 0;
}

int bpe_add_merge(struct bpe *b, int32_t rank, int32_t left, int32_t right, int32_t result)
{
    if (b->finalized)
        return sl_err(SL_EINVAL, "BPE model is finalized; no more merges");
    if (rank < 0 || (size_t)rank != b->n_merge)
        return sl_err(SL_ECORRUPT, "merge rank %d out of order (expected %zu)", (int)rank, b->n_merge);
    int32_t ids[3] = {left, right, result};
    for (int k = 0; k < 3; k++)
        if (ids[k] < BPE_FIRST_LEARNED || (size_t)ids[k] >= b->n_tok)
            return sl_err(SL_ECORRUPT, "merge %d: token %d is not a learned token", (int)rank, (int)ids[k]);
    const struct bpe_tokrec *l = &b->tok[left], *r = &b->tok[right], *x = &b->tok[result];
    const char *pool = b->pool.data;
    if ((size_t)x->len != (size_t)l->len + r->len || memcmp(pool + x->off, pool + l->off, l->len) ||
        memcmp(pool + x->off + l->len, pool + r->off, r->len))
        return sl_err(SL_ECORRUPT, "merge %d: token %d is not tokens %d and %d joined", (int)rank,
                      (int)result, (int)left, (int)right);
    int created = 0;
    uint64_t *slot = tok_u64map_slot(&b->pairs, (uint64_t)left << 32 | (uint32_t)right, (uint64_t)rank, &created);
    if (!slot)
        return sl_err(SL_ENOMEM, "out of memory (merge table)");
    if (!created)
        return sl_err(SL_ECORRUPT, "merge %d: pair (%d, %d) is merged twice", (int)rank, (int)left, (int)right);
    if (b->n_merge == b->cap_merge) {
        size_t cap = b->cap_merge ? b->cap_merge * 2 : 512;
        struct bpe_mrec *m = realloc(b->merge, cap * sizeof *m);
        if (!m)
            return sl_err(SL_ENOMEM, "out of memory (%zu merges)", cap);
        b->merge = m;
        b->cap_merge = cap;
    }
    b->merge[b->n_merge++] = (struct bpe_mrec){left, right, result};
    return 0;
}

int bpe_finalize(struct bpe *b)
{
    if (b->finalized)
        return 0;
    if (b->n_tok <= BPE_FIRST_LEARNED)
        return sl_err(SL_ECORRUPT, "vocabulary has %zu tokens; it needs the %d fixed ones and \"▁\"",
                      b->n_tok, BPE_FIRST_LEARNED);
    const struct bpe_tokrec *m = &b->tok[BPE_FIRST_LEARNED];
    if (m->len != 3 || memcmp(b->pool.data + m->off, TOK_SPACE_MARK, 3) != 0)
        return sl_err(SL_ECORRUPT, "token %d must be the space marker \"▁\"", BPE_FIRST_LEARNED);
    /* Base characters: single code point tokens that no merge produces. */
    char *is_result = calloc(b->n_tok, 1);
    if (!is_result)
        return sl_err(SL_ENOMEM, "out of memory");
    for (size_t r = 0; r < b->n_merge; r++)
        is_result[b->merge[r].result] = 1;
    int rc = 0;
    for (size_t id = BPE_FIRST_LEARNED; id < b->n_tok; id++) {
        const struct bpe_tokrec *t = &b->tok[id];
        const unsigned char *s = (const unsigned char *)b->pool.data + t->off;
        int32_t cp;
        if (is_result[id] || utf8_decode(s, t->len, &cp) != t->len)
            continue;
        int created = 0;
        uint64_t *slot = tok_u64map_slot(&b->chars, (uint64_t)cp, id, &created);
        if (!slot) {
            rc = sl_err(SL_ENOMEM, "out of memory (character table)");
            break;
        }
        if (!created) {
            rc = sl_err(SL_ECORRUPT, "tokens %d and %zu are the same character", (int)*slot, id);
            break;
        }
    }
    free(is_result);
    if (rc == 0)
        b->finalized = 1;
    return rc;
}

enum tok_norm bpe_norm(const struct bpe *b) { return b->norm; }
size_t bpe_size(const struct bpe *b) { return b->n_tok; }
size_t bpe_n_merges(const struct bpe *b) { return b->n_merge; }

const char *bpe_token(const struct bpe *b, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= b->n_tok)
        return NULL;
    *len = b->tok[id].len;
    return b->pool.data + b->tok[id].off;
}

enum bpe_kind bpe_token_kind(const struct bpe *b, int32_t id) { return (enum bpe_kind)b->tok[id].kind; }
int64_t bpe_token_count(const struct bpe *b, int32_t id) { return b->tok[id].count; }

int bpe_merge(const struct bpe *b, size_t rank, int32_t *left, int32_t *right, int32_t *result)
{
    if (rank >= b->n_merge)
        return sl_err(SL_EINVAL, "merge rank %zu out of range (%zu merges)", rank, b->n_merge);
    *left = b->merge[rank].left;
    *right = b->merge[rank].right;
    *result = b->merge[rank].result;
    return 0;
}

int bpe_token_surface(const struct bpe *b, int32_t id, struct sbuf *out)
{
    if (id < 0 || (size_t)id >= b->n_tok)
        return sl_err(SL_EINVAL, "token id %d out of range (vocabulary of %zu)", (int)id, b->n_tok);
    const struct bpe_tokrec *t = &b->tok[id];
    const unsigned char *s = (const unsigned char *)b->pool.data + t->off;
    if (t->kind == BPE_KIND_BYTE)
        return sbuf_printf(out, "<0x%02X>", s[0]);
    if (t->kind == BPE_KIND_SPECIAL)
        return sbuf_append(out, s, t->len);
    int rc = 0;
    size_t run = 0;
    for (size_t i = 0; i < t->len; i++) {
        if (s[i] >= 0x20 && s[i] != 0x7F) {
            run++;
            continue;
        }
        if ((rc = sbuf_append(out, s + i - run, run)) || (rc = sbuf_printf(out, "<0x%02X>", s[i])))
            return rc;
        run = 0;
    }
    return sbuf_append(out, s + t->len - run, run);
}

void tok_ids_init(struct tok_ids *t) { memset(t, 0, sizeof *t); }

void tok_ids_free(struct tok_ids *t)
{
    if (t->ws) {
        tok_pieces_free(&t->ws->pieces);
        tok_bmap_free(&t->ws->cache);
        free(t->ws->cids);
        free(t->ws->sym);
        free(t->ws);
    }
    free(t->ids);
    tok_ids_init(t);
}

static int ids_reserve(int32_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    int32_t *q = realloc(*p, c * sizeof *q);
    if (!q)
        return sl_err(SL_ENOMEM, "out of memory (%zu ids)", c);
    *p = q;
    *cap = c;
    return 0;
}

/* The ids of one piece into sym (room for len ids: every symbol covers at least one byte). */
static size_t piece_encode(const struct bpe *b, const unsigned char *s, size_t len, int kind, int32_t *sym)
{
    size_t k = 0;
    if (kind == TOK_PIECE_BYTES) {
        for (size_t i = 0; i < len; i++)
            sym[k++] = BPE_BYTE0 + s[i];
        return k;
    }
    for (size_t i = 0; i < len;) {
        int32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        uint64_t id;
        if (tok_u64map_get(&b->chars, (uint64_t)cp, &id)) {
            sym[k++] = (int32_t)id;
        } else {
            for (size_t j = 0; j < n; j++)
                sym[k++] = BPE_BYTE0 + s[i + j];
        }
        i += n;
    }
    while (k > 1) {
        uint64_t best = UINT64_MAX;
        for (size_t i = 0; i + 1 < k; i++) {
            if (sym[i] < BPE_FIRST_LEARNED || sym[i + 1] < BPE_FIRST_LEARNED)
                continue;
            uint64_t r;
            if (tok_u64map_get(&b->pairs, (uint64_t)sym[i] << 32 | (uint32_t)sym[i + 1], &r) && r < best)
                best = r;
        }
        if (best == UINT64_MAX)
            break;
        const struct bpe_mrec *m = &b->merge[best];
        size_t j = 0;
        for (size_t i = 0; i < k; i++) {
            if (i + 1 < k && sym[i] == m->left && sym[i + 1] == m->right) {
                sym[j++] = m->result;
                i++;
            } else {
                sym[j++] = sym[i];
            }
        }
        k = j;
    }
    return k;
}

int bpe_encode(const struct bpe *b, const char *text, size_t len, struct tok_ids *out)
{
    int rc;
    if (!b->finalized)
        return sl_err(SL_EINVAL, "BPE model is not finalized");
    out->n = 0;
    if (!out->ws) {
        out->ws = calloc(1, sizeof *out->ws);
        if (!out->ws)
            return sl_err(SL_ENOMEM, "out of memory (encoder workspace)");
        tok_pieces_init(&out->ws->pieces);
        tok_bmap_init(&out->ws->cache);
    }
    struct tok_encws *w = out->ws;
    if (w->serial != b->serial) {
        tok_bmap_clear(&w->cache);
        w->cids_len = 0;
        w->serial = b->serial;
    }
    struct tok_pieces *p = &w->pieces;
    if ((rc = tok_pretokenize(b->norm, text, len, TOK_PRETOK_SPACE_PREFIX, p)))
        return rc;
    for (size_t i = 0; i < p->n; i++) {
        const unsigned char *s = (const unsigned char *)p->text.data + p->off[i];
        size_t plen = p->off[i + 1] - p->off[i];
        if (p->kind[i] == TOK_PIECE_BYTES) {
            /* not cached: its surface is the same as that of a space piece */
            if ((rc = ids_reserve(&out->ids, &out->cap, out->n + plen)))
                return rc;
            out->n += piece_encode(b, s, plen, TOK_PIECE_BYTES, out->ids + out->n);
            continue;
        }
        uint64_t h = tok_hash_bytes(s, plen);
        long e = tok_bmap_find(&w->cache, s, plen, h);
        if (e >= 0) {
            uint64_t v = w->cache.ent[e].val;
            size_t off = (size_t)(v >> 16), n = (size_t)(v & 0xFFFF);
            if ((rc = ids_reserve(&out->ids, &out->cap, out->n + n)))
                return rc;
            memcpy(out->ids + out->n, w->cids + off, n * sizeof(int32_t));
            out->n += n;
            continue;
        }
        if ((rc = ids_reserve(&w->sym, &w->sym_cap, plen)))
            return rc;
        size_t n = piece_encode(b, s, plen, TOK_PIECE_TEXT, w->sym);
        if ((rc = ids_reserve(&out->ids, &out->cap, out->n + n)))
            return rc;
        memcpy(out->ids + out->n, w->sym, n * sizeof(int32_t));
        out->n += n;
        /* Cache the piece; when the cache is full start it afresh (pieces follow Zipf's law, so the
         * frequent ones come back at once). */
        if (n > 0xFFFF)
            continue;
        if (w->cache.n >= CACHE_MAX_ENTRIES || w->cids_len + n > CACHE_MAX_IDS) {
            tok_bmap_clear(&w->cache);
            w->cids_len = 0;
        }
        if ((rc = ids_reserve(&w->cids, &w->cids_cap, w->cids_len + n)))
            return rc;
        int created = 0;
        if (tok_bmap_insert(&w->cache, s, plen, h, (uint64_t)w->cids_len << 16 | n, &created) < 0)
            return sl_err(SL_ENOMEM, "out of memory (piece cache)");
        memcpy(w->cids + w->cids_len, w->sym, n * sizeof(int32_t));
        w->cids_len += n;
    }
    return 0;
}

int bpe_decode(const struct bpe *b, const int32_t *ids, size_t n, struct sbuf *out)
{
    int rc = sbuf_reserve(out, 0);
    if (rc)
        return rc;
    sbuf_reset(out);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= b->n_tok)
            return sl_err(SL_EINVAL, "id %d at position %zu is out of range (vocabulary of %zu)", (int)id,
                          i + 1, b->n_tok);
        const struct bpe_tokrec *t = &b->tok[id];
        const char *s = b->pool.data + t->off;
        if (t->kind == BPE_KIND_SPECIAL) {
            if (id == BPE_UNK && (rc = sbuf_append(out, "\xE2\x81\x87", 3)))
                return rc;
            continue;
        }
        if (t->kind == BPE_KIND_BYTE) {
            if ((rc = sbuf_append(out, s, 1)))
                return rc;
            continue;
        }
        if ((rc = sbuf_reserve(out, t->len)))
            return rc;
        /* "▁" -> ' ' (normal tokens never hold a literal U+2581: the pre-tokeniser sends it to bytes) */
        char *o = out->data + out->len;
        for (size_t j = 0; j < t->len;) {
            if (j + 3 <= t->len && memcmp(s + j, TOK_SPACE_MARK, 3) == 0) {
                *o++ = ' ';
                j += 3;
            } else {
                *o++ = s[j++];
            }
        }
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
    }
    /* the space bpe_encode put in front of the text */
    if (out->len && out->data[0] == ' ') {
        memmove(out->data, out->data + 1, out->len);
        out->len--;
    }
    return 0;
}

/* corpus/import.h: importing a parallel corpus (two line-aligned UTF-8 files, each plain or gzip
 * compressed, told apart by content) into the database (lines are validated with util/utf8.h). An
 * import is one transaction: on any error the database is exactly as before. Lines are streamed
 * (constant memory, no line-length limit); a UTF-8 BOM on line 1 and a trailing CR are stripped; a
 * pair with an empty or all-whitespace side is skipped and counted.
 * ref: Unicode 15 section 3.9, table 3-7 (well-formed UTF-8 byte sequences). */
#ifndef SL_CORPUS_IMPORT_H
#define SL_CORPUS_IMPORT_H

#include <stddef.h>
#include <stdint.h>

struct db;

struct import_opts {
    const char *src_path, *tgt_path;  /* required; one of them may be "-": standard input */
    const char *split;                /* train|valid|test; NULL: train */
    const char *name;                 /* NULL: import_default_name() */
    const char *src_lang, *tgt_lang;  /* NULL: import_default_langs() */
    /* called every 100,000 lines with the lines read so far (may be NULL) */
    void (*progress)(void *ctx, int64_t lines);
    void *progress_ctx;
};

struct import_result {
    int64_t corpus_id;
    int64_t n_lines;      /* lines read from each file */
    int64_t n_pairs;      /* pairs stored */
    int64_t n_skip_src;   /* skipped: source empty or all whitespace (target not) */
    int64_t n_skip_tgt;   /* skipped: target empty or all whitespace (source not) */
    int64_t n_skip_both;  /* skipped: both sides empty */
    char name[256], split[8], src_lang[32], tgt_lang[32];
};

/* Imports o->src_path / o->tgt_path as a new corpus of db. Errors (database unchanged): both paths
 * are "-" (SL_EINVAL), a file cannot be read or holds corrupt or truncated gzip data (SL_EIO, naming
 * the file), the files have different line counts, a line holds a NUL byte (SL_EINVAL), invalid
 * UTF-8 (SL_EUTF8, "FILE: line L, byte B: invalid UTF-8", B 1-based), the name exists (SL_EEXIST). */
int import_run(struct db *db, const struct import_opts *o, struct import_result *out /* OUT */);
/* Default corpus name: the base name of src_path (import_run passes the target's when the source is
 * "-") without ".gz" and its last extension, then "-" and the split ("news.en", test -> "news-test"),
 * or only the split when the two are equal ("train.en" or "train.en.gz" -> "train"). */
void import_default_name(const char *src_path, const char *split, char *out, size_t cap);
/* Default languages: the files' extensions (before a ".gz") when both are 2-3 letters and differ
 * ("train.en", "train.de.gz" -> "en", "de"), else "src" and "tgt". */
void import_default_langs(const char *src_path, const char *tgt_path, char *src_out, char *tgt_out,
                          size_t cap);

#endif

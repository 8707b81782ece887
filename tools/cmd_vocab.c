/* tools/cmd_vocab.c: `seqlite vocab DB`: learn a BPE vocabulary from the train split and store it
 * (corpus_vocab_learn), or `--show` the newest one as a table (id, kind, count, surface).
 * ref: corpus/vocab_store.h, tokenizer/bpe.h. */
#include "tools/cli.h"

#include "corpus/db.h"
#include "corpus/vocab_store.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

static int show(struct db *db, const char *side, int64_t limit)
{
    struct bpe *b = NULL;
    int64_t vid = 0;
    int rc = corpus_vocab_load_latest(db, side, &b, &vid);
    if (rc)
        return cli_fail_status(&cmd_vocab, rc);
    struct db_vocab v;
    memset(&v, 0, sizeof v);
    if (db_vocab_get(db, vid, &v) == 0)
        fprintf(stderr, "vocab %lld: %s, side %s, %s, %zu tokens, %zu merges, settings %s\n",
                (long long)vid, v.kind, v.side, v.normalization, bpe_size(b), bpe_n_merges(b),
                v.settings ? v.settings : "{}");
    db_vocab_clear(&v);
    struct sbuf s;
    sbuf_init(&s);
    printf("%7s  %-7s  %10s  %s\n", "id", "kind", "count", "surface");
    size_t n = bpe_size(b);
    if (limit > 0 && (size_t)limit < n)
        n = (size_t)limit;
    for (int32_t id = 0; (size_t)id < n; id++) {
        sbuf_reset(&s);
        if ((rc = bpe_token_surface(b, id, &s)))
            break;
        printf("%7d  %-7s  %10lld  %s\n", (int)id, bpe_kind_name(bpe_token_kind(b, id)),
               (long long)bpe_token_count(b, id), s.data);
    }
    sbuf_free(&s);
    bpe_free(b);
    if (rc)
        return cli_fail_status(&cmd_vocab, rc);
    return fflush(stdout) == 0 ? 0 : cli_fail(&cmd_vocab, "cannot write to standard output");
}

static int run(int argc, char **argv)
{
    int64_t size = 8000, min_count = 2, limit = 0;
    int joint = 0, separate = 0, do_show = 0;
    const char *norm_name = "NFKC", *side = NULL;
    const struct cli_opt opts[] = {
        {"size", CLI_INT, &size, BPE_SIZE_MIN, BPE_SIZE_MAX},
        {"joint", CLI_BOOL, &joint, 0, 0},
        {"separate", CLI_BOOL, &separate, 0, 0},
        {"min-count", CLI_INT, &min_count, 1, 1e12},
        {"normalization", CLI_STR, &norm_name, 0, 0},
        {"show", CLI_BOOL, &do_show, 0, 0},
        {"limit", CLI_INT, &limit, 0, 1e12},
        {"side", CLI_STR, &side, 0, 0},
        {NULL, 0, NULL, 0, 0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&cmd_vocab, argc, argv, opts, pos, 1, &npos);
    if (rc == CLI_HELP_SHOWN)
        return 0;
    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage_error(&cmd_vocab, "expected DB");
    if (joint && separate)
        return cli_usage_error(&cmd_vocab, "--joint and --separate exclude each other");
    enum tok_norm norm;
    if (tok_norm_parse(norm_name, &norm))
        return cli_usage_error(&cmd_vocab, "--normalization: '%s' is not NFKC, NFC or none", norm_name);
    if (side && strcmp(side, "src") && strcmp(side, "tgt"))
        return cli_usage_error(&cmd_vocab, "--side: '%s' is not src or tgt", side);
    if (!do_show && (side || limit))
        return cli_usage_error(&cmd_vocab, "--side and --limit go with --show");

    struct db *db = NULL;
    if ((rc = db_open(pos[0], 0, &db)))
        return cli_fail_status(&cmd_vocab, rc);
    if (do_show) {
        rc = show(db, side ? side : "src", limit);
        db_close(db);
        return rc;
    }
    struct corpus_vocab_opts o = {
        .size = (size_t)size,
        .mode = separate ? CORPUS_VOCAB_SEPARATE : CORPUS_VOCAB_JOINT,
        .min_count = min_count,
        .norm = norm,
    };
    struct corpus_vocab_result r;
    rc = corpus_vocab_learn(db, &o, &r);
    db_close(db);
    if (rc)
        return cli_fail_status(&cmd_vocab, rc);
    if (separate) {
        fprintf(stderr, "vocab %lld (src, %s): %zu tokens (%zu characters, %zu merges)\n", (long long)r.src_id,
                tok_norm_name(norm), r.src_size, r.src_chars, r.src_merges);
        fprintf(stderr, "vocab %lld (tgt, %s): %zu tokens (%zu characters, %zu merges)\n", (long long)r.tgt_id,
                tok_norm_name(norm), r.tgt_size, r.tgt_chars, r.tgt_merges);
    } else {
        fprintf(stderr, "vocab %lld (joint, %s): %zu tokens (%zu characters, %zu merges)\n",
                (long long)r.src_id, tok_norm_name(norm), r.src_size, r.src_chars, r.src_merges);
    }
    fprintf(stderr, "learned from %lld training pairs in %.2f s; token counts of %lld pairs stored; %.2f s in all\n",
            (long long)r.n_pairs, r.learn_seconds, (long long)r.n_encoded, r.total_seconds);
    if ((separate ? r.src_size < o.size || r.tgt_size < o.size : r.src_size < o.size))
        fprintf(stderr, "note: fewer tokens than --size %lld: no pair occurs --min-count %lld times any more\n",
                (long long)size, (long long)min_count);
    return 0;
}

const struct cli_cmd cmd_vocab = {
    .name = "vocab",
    .summary = "learn or show the subword vocabulary",
    .usage = "usage: seqlite vocab DB [--size N] [--joint | --separate] [--min-count C]\n"
             "                     [--normalization NFKC|NFC|none]\n"
             "       seqlite vocab DB --show [--limit N] [--side src|tgt]\n"
             "  Learns a byte-fallback BPE vocabulary from the train split of DB and stores it (with\n"
             "  the token count of every pair) in one transaction; prints a summary to stderr.\n"
             "  Ids: 0 <pad>, 1 <s>, 2 </s>, 3 <unk>, 4-259 bytes, 260 \"\xE2\x96\x81\" (a space), then\n"
             "  characters and merges. Any valid UTF-8 text encodes and decodes back exactly.\n"
             "  --size N           tokens per vocabulary, all ids included (default 8000; 300-1000000)\n"
             "  --joint            one vocabulary for both sides (default)\n"
             "  --separate         one vocabulary per side\n"
             "  --min-count C      characters and merged pairs need C occurrences (default 2)\n"
             "  --normalization F  Unicode normalization: NFKC (default), NFC or none\n"
             "  --show             print the newest vocabulary: id, kind, count, surface\n"
             "  --limit N          --show only the first N tokens (default all)\n"
             "  --side S           --show the vocabulary of src (default) or tgt\n",
    .run = run,
};

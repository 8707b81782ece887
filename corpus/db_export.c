/* corpus/db_export.c: writes one checkpoint as a new, small seqlite database (see db.h,
 * db_export_checkpoint): its vocabularies (vocab, token, merge rows), its run row and the checkpoint
 * with its model tensors, without the Adam moments. Row ids are kept, so checkpoint 12 is checkpoint
 * 12 in both files.
 * Invariants:
 * - Never replaces or deletes a file it did not create: the destination must not exist; the rows go
 *   to a temporary file created with O_EXCL next to it, which is linked to the destination name only
 *   when complete (link fails rather than replace a file that appeared meanwhile), so an export that
 *   fails or is killed leaves no destination. On failure only the temporary file (and the journal
 *   files SQLite made for it) is removed.
 * - --precision bf16 (bf16 != 0) stores the model's matrices in bf16 (seqlite_bf16 of db.c: round to
 *   nearest even, what the bf16 products do to them), half their size; the reader (db_ckpt.c) reads
 *   them back as the floats they stand for.
 * - The copy is one transaction over an ATTACHed database: the source is only read (one snapshot,
 *   so a training run writing meanwhile cannot make the rows disagree), the export file alone is
 *   written. It is left in rollback-journal mode and vacuumed: one self-contained file.
 * ref: sqlite.org/lang_attach.html, sqlite.org/lang_vacuum.html, POSIX link(2). */
#include "corpus/db_internal.h"

#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The tensors of the Adam moments, left out of an export. */
#define EXPORT_OPTIMIZER_GLOB "adam.[mv].*"
/* The tensors --precision bf16 rounds: the f32 matrices (the weights and embeddings, which bf16 products
 * round to bf16 anyway); vectors (biases) stay f32, as bf16 decoding adds them in f32. */
#define EXPORT_ROUNDED "dtype = 'f32' AND json_array_length(shape) = 2"
/* The copy of the model's tensors, each stored as DTYPE with DATA (SQL expressions over a tensor row). */
#define EXPORT_TENSORS(DTYPE, DATA)                                                                          \
    "INSERT INTO export.tensor (checkpoint_id, name, shape, dtype, data) SELECT checkpoint_id, name, shape, " \
    DTYPE ", " DATA " FROM main.tensor WHERE checkpoint_id = ?1 AND name NOT GLOB '" EXPORT_OPTIMIZER_GLOB   \
    "' ORDER BY name"

/* Creates an empty file next to out (O_EXCL: never one that exists); *tmp is its malloc'd name. */
static int tmp_create(const char *out, char **tmp)
{
    size_t cap = strlen(out) + 48;
    if (!(*tmp = malloc(cap)))
        return sl_err(SL_ENOMEM, "out of memory");
    for (int k = 0; k < 100; k++) {
        snprintf(*tmp, cap, "%s.tmp-%ld-%d", out, (long)getpid(), k);
        int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    free(*tmp);
    *tmp = NULL;
    const char *slash = strrchr(out, '/');
    int dlen = slash ? (int)(slash - out) + (slash == out) : 1;
    return sl_err(SL_EIO, "%s: cannot create a file in the directory %.*s: %s", out, dlen, slash ? out : ".",
                  strerror(e));
}

/* Removes the temporary file and any journal SQLite left next to it. */
static void tmp_remove(const char *tmp)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
    size_t cap = strlen(tmp) + 16;
    char *p = malloc(cap);
    for (size_t i = 0; p && i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, cap, "%s%s", tmp, suffix[i]);
        unlink(p);
    }
    free(p);
}

/* Gives the finished temporary file its name out, refusing to replace a file. */
static int tmp_publish(const char *tmp, const char *out)
{
    if (link(tmp, out) == 0) {
        unlink(tmp);
        return 0;
    }
    int e = errno;
    if (e == EEXIST)
        return sl_err(SL_EEXIST, "%s: was created while exporting: left as it is", out);
    /* a file system without hard links: rename, after checking again that out does not exist */
    struct stat sb;
    if ((e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == EMLINK || e == ENOSYS) && lstat(out, &sb) != 0 &&
        errno == ENOENT && rename(tmp, out) == 0)
        return 0;
    return sl_err(SL_EIO, "%s: cannot give the export its name: %s", out, strerror(e));
}

/* The rows, copied inside one transaction (the source is read, the export written); bf16: the
 * matrices rounded to bf16. */
static int copy_rows(struct db *db, int64_t ckpt_id, int bf16)
{
    struct {
        const char *what, *sql;
    } const steps[] = {
        {"copying the vocabularies",
         "INSERT INTO export.vocab (id, kind, side, size, normalization, settings, created_at)"
         " SELECT v.id, v.kind, v.side, v.size, v.normalization, v.settings, v.created_at FROM main.vocab v,"
         " main.checkpoint c WHERE c.id = ?1 AND v.id IN (c.src_vocab_id, c.tgt_vocab_id) ORDER BY v.id"},
        {"copying the tokens",
         "INSERT INTO export.token (vocab_id, id, surface, bytes, count, kind)"
         " SELECT t.vocab_id, t.id, t.surface, t.bytes, t.count, t.kind FROM main.token t"
         " WHERE t.vocab_id IN (SELECT src_vocab_id FROM main.checkpoint WHERE id = ?1 UNION"
         " SELECT tgt_vocab_id FROM main.checkpoint WHERE id = ?1) ORDER BY t.vocab_id, t.id"},
        {"copying the merges",
         "INSERT INTO export.merge (vocab_id, rank, left_id, right_id, result_id)"
         " SELECT m.vocab_id, m.rank, m.left_id, m.right_id, m.result_id FROM main.merge m"
         " WHERE m.vocab_id IN (SELECT src_vocab_id FROM main.checkpoint WHERE id = ?1 UNION"
         " SELECT tgt_vocab_id FROM main.checkpoint WHERE id = ?1) ORDER BY m.vocab_id, m.rank"},
        /* a shipped file has no trainer: no owner, and a run being trained is stored as stopped */
        {"copying the run",
         "INSERT INTO export.run (id, name, status, src_vocab_id, tgt_vocab_id, threads, config, steps_done,"
         " started_at, ended_at, message, train_data)"
         " SELECT r.id, r.name, CASE r.status WHEN 'running' THEN 'stopped' ELSE r.status END, r.src_vocab_id,"
         " r.tgt_vocab_id, r.threads, r.config, r.steps_done, r.started_at, r.ended_at, r.message, r.train_data"
         " FROM main.run r, main.checkpoint c WHERE c.id = ?1 AND r.id = c.run_id"},
        /* the only checkpoint of the file is its run's best (translate uses it by default); no random
         * state: it cannot be resumed without its optimizer state anyway */
        {"copying the checkpoint",
         "INSERT INTO export.checkpoint (id, run_id, step, epoch, src_vocab_id, tgt_vocab_id, valid_ppl,"
         " valid_bleu, is_best, rng_state, data_pos, averaged_from, created_at)"
         " SELECT id, run_id, step, epoch, src_vocab_id, tgt_vocab_id, valid_ppl, valid_bleu, 1, NULL, data_pos,"
         " averaged_from, created_at FROM main.checkpoint WHERE id = ?1"},
        {"copying the tensors",
         bf16 ? EXPORT_TENSORS("CASE WHEN " EXPORT_ROUNDED " THEN 'bf16' ELSE dtype END",
                               "CASE WHEN " EXPORT_ROUNDED " THEN seqlite_bf16(data) ELSE data END")
              : EXPORT_TENSORS("dtype", "data")},
    };
    int rc = db_exec(db, "starting a transaction", 0, "BEGIN", DB_NO_ARGS);
    for (size_t i = 0; !rc && i < sizeof steps / sizeof steps[0]; i++)
        rc = db_exec(db, steps[i].what, 0, steps[i].sql, DB_ARGS(db_int(ckpt_id)));
    int64_t n = 0;
    if (!rc && !(rc = db_query_int(db, &n, "counting the exported tensors",
                                   "SELECT count(*) FROM export.tensor WHERE checkpoint_id = ?1",
                                   DB_ARGS(db_int(ckpt_id)))) &&
        n == 0)
        rc = db_fail(db, SL_ENOTFOUND, "checkpoint %lld: no model tensors (deleted while exporting?)",
                     (long long)ckpt_id);
    if (!rc)
        rc = db_commit(db);
    if (rc)
        db_rollback(db);
    return rc;
}

/* The attached export file: one journal file, no free pages. Outside a transaction. */
static int finish_file(struct db *db)
{
    struct db_stmt *st;
    int rc = db_query_row(db, &st, "setting the export's journal mode", "PRAGMA export.journal_mode = DELETE",
                          DB_NO_ARGS);
    rc = db_stmt_end(st, rc);
    return rc ? rc : db_exec(db, "vacuuming the export", 0, "VACUUM export", DB_NO_ARGS);
}

int db_export_checkpoint(struct db *db, int64_t ckpt_id, const char *out, int bf16, struct db_export_sizes *sizes)
{
    memset(sizes, 0, sizeof *sizes);
    struct stat sb;
    if (lstat(out, &sb) == 0)
        return sl_err(SL_EEXIST, "%s: exists already (export writes a new file and never replaces one: remove it "
                      "or choose another name)", out);
    struct db_checkpoint c;
    int rc = db_ckpt_get(db, ckpt_id, &c);
    if (rc)
        return rc;
    struct db_stmt *st;
    if ((rc = db_query_row(db, &st, "measuring the checkpoint",
                           "SELECT coalesce(sum(length(data)), 0), coalesce(sum(CASE WHEN name GLOB '"
                           EXPORT_OPTIMIZER_GLOB "' THEN 0 ELSE length(data) END), 0)"
                           " FROM tensor WHERE checkpoint_id = ?1",
                           DB_ARGS(db_int(ckpt_id)))) == 0) {
        sizes->checkpoint_bytes = db_col_int(st, 0);
        sizes->model_bytes = db_col_int(st, 1);
    }
    if ((rc = db_stmt_end(st, rc)))
        return rc;

    char *tmp = NULL, *attach = NULL;
    struct db *fresh = NULL;
    int attached = 0;
    if ((rc = tmp_create(out, &tmp)))
        return rc;
    /* the schema, as db_open creates it */
    if ((rc = db_open(tmp, DB_CREATE, &fresh)))
        goto fail;
    db_close(fresh);
    /* ATTACH reads a name starting with "file:" as a URI: a relative path gets "./" */
    if (!(attach = malloc(strlen(tmp) + 3))) {
        rc = sl_err(SL_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(attach, strlen(tmp) + 3, "%s%s", tmp[0] == '/' ? "" : "./", tmp);
    if ((rc = db_exec(db, "attaching the export file", 0, "ATTACH DATABASE ?1 AS export", DB_ARGS(db_text(attach)))))
        goto fail;
    attached = 1;
    if ((rc = copy_rows(db, ckpt_id, bf16)) || (rc = finish_file(db)))
        goto fail;
    attached = 0;
    if ((rc = db_exec(db, "detaching the export file", 0, "DETACH DATABASE export", DB_NO_ARGS)) ||
        (rc = tmp_publish(tmp, out)))
        goto fail;
    if (stat(out, &sb) == 0)
        sizes->file_bytes = (int64_t)sb.st_size;
    free(tmp);
    free(attach);
    return 0;
fail:
    if (attached) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", sl_errmsg());
        db_exec(db, "detaching the export file", 0, "DETACH DATABASE export", DB_NO_ARGS);
        sl_err(rc, "%s", saved);
    }
    tmp_remove(tmp);
    free(tmp);
    free(attach);
    return rc;
}

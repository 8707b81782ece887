/* corpus/db.h: the seqlite database: one SQLite file holding corpora, vocabularies, runs,
 * checkpoints and results. Callers see domain functions and an opaque struct db; every SQL string
 * lives in corpus/db*.c (db.c: opening, migrations, transactions; one file per table group), and only
 * db.c includes <sqlite3.h>. docs/schema.md documents the schema for users. A struct db is one
 * connection: use it from one thread at a time.
 * Strings passed to callbacks are borrowed: valid only during that callback.
 * ref: sqlite.org/pragma.html (application_id, user_version), sqlite.org/wal.html. */
#ifndef SL_CORPUS_DB_H
#define SL_CORPUS_DB_H

#include <stddef.h>
#include <stdint.h>

#define DB_APPLICATION_ID 0x53514C54 /* "SQLT" in PRAGMA application_id */
#define DB_SCHEMA_VERSION 5         /* PRAGMA user_version this build writes and understands */

enum db_open_flags {
    DB_CREATE = 1, /* create the file (and the schema) when it does not exist */
    DB_READ = 2,   /* the caller only reads: where the file cannot be written (a read-only medium, no
                      write permission) it is opened read-only, without migration */
};

struct db;
struct sbuf;

/* The migration script that brings schema version `from` (0..DB_SCHEMA_VERSION-1) to from + 1, or NULL.
 * Static text; for tests that build an old database. */
const char *db_migration_script(int from);
/* Opens (or with DB_CREATE creates) a seqlite database and brings its schema up to date. Refuses,
 * without changing the file: a file that is not SQLite, an SQLite file of another program, a database
 * made by a newer seqlite (SL_EVERSION), a missing file without DB_CREATE (SL_ENOTFOUND). */
int db_open(const char *path, int flags, struct db **out /* OUT */);
/* Closes the connection (finalises cached statements); NULL is a no-op. */
void db_close(struct db *db);
/* The path given to db_open (borrowed, valid until db_close). */
const char *db_path(const struct db *db);
/* Nonzero when the connection cannot write (DB_READ fell back to a read-only or immutable open). */
int db_read_only(const struct db *db);
/* Write transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK. No nesting. */
int db_begin(struct db *db);
int db_commit(struct db *db);
int db_rollback(struct db *db);
/* A read transaction: every read until db_read_end sees one snapshot of the database (WAL: writers go
 * on meanwhile, and nothing they commit or delete, e.g. a pruned checkpoint, shows). No writes inside. */
int db_read_begin(struct db *db);
int db_read_end(struct db *db);

/* Busy waiting: a statement that needs a lock another connection holds waits up to the busy timeout
 * (10 s, or the environment variable SEQLITE_BUSY_TIMEOUT_MS in milliseconds), then fails with SL_EDB
 * "database is locked". db_failed_busy tells that failure apart: 1 when rc is SL_EDB and the last SQLite
 * failure of this connection was SQLITE_BUSY (the write can be retried later). */
int db_failed_busy(const struct db *db, int rc);
/* The busy timeout of new connections in milliseconds (the environment's, else 10000). */
int db_busy_timeout_default(void);
/* Sets this connection's busy timeout (ms < 0: db_busy_timeout_default()). */
void db_set_busy_timeout(struct db *db, int ms);
/* Bulk load mode (call outside a transaction): bigger page cache, and no foreign key checks (only
 * for code that inserts rows whose parents it has just created itself). on = 0 restores. */
int db_bulk_mode(struct db *db, int on);
/* Calls cb for every column of every table of the live schema (sqlite_schema and
 * pragma_table_info; SQLite's own tables left out), by table name, then column order (strings
 * borrowed). A nonzero return from cb stops the loop and is returned. */
int db_schema_columns(struct db *db, int (*cb)(void *ctx, const char *table, const char *column), void *ctx);

/* ---- corpus and pair ---- */

struct db_corpus {
    int64_t id;
    const char *name, *split, *src_lang, *tgt_lang, *src_path, *tgt_path, *created_at;
    int64_t n_pairs, n_skipped;
    int64_t first_pair_id, last_pair_id; /* the pairs are ids first..last (0, 0 when none) */
};

/* Creates a corpus row (n_pairs 0 until db_corpus_finish). split: train|valid|test.
 * SL_EEXIST when the name is taken. */
int db_corpus_create(struct db *db, const char *name, const char *split, const char *src_lang,
                     const char *tgt_lang, const char *src_path, const char *tgt_path,
                     int64_t *id /* OUT */);
/* Records the final counts of an import. The n_pairs pairs must have been inserted by
 * db_pair_insert on this connection since db_corpus_create, one after the other (so they form one
 * id range: the same write transaction guarantees it). */
int db_corpus_finish(struct db *db, int64_t id, int64_t n_pairs, int64_t n_skipped);
/* Looks a corpus up by name (SL_ENOTFOUND if absent). The strings in *out are malloc'd: release them
 * with db_corpus_clear. */
int db_corpus_get(struct db *db, const char *name, struct db_corpus *out /* OUT */);
void db_corpus_clear(struct db_corpus *c);
/* Calls cb for every corpus in id order (strings borrowed). A nonzero return from cb stops the loop
 * and is returned. */
int db_corpus_foreach(struct db *db, int (*cb)(void *ctx, const struct db_corpus *c), void *ctx);
/* Stores one pair (texts need not be NUL-terminated). line is the 1-based line in the input files;
 * call in line order, inside the transaction that created the corpus. */
int db_pair_insert(struct db *db, int64_t corpus_id, int64_t line, const char *src, size_t srclen,
                   const char *tgt, size_t tgtlen);
/* Calls cb for every pair of every corpus of split, in (corpus id, line) order. A nonzero return
 * from cb stops the loop and is returned. cb may call db_pair_set_tokens (it moves no row); no other
 * writes from cb. */
int db_pairs_foreach(struct db *db, const char *split,
                     int (*cb)(void *ctx, int64_t pair_id, const char *src, size_t srclen,
                               const char *tgt, size_t tgtlen),
                     void *ctx);
/* db_pairs_foreach over the corpora of split whose ids are corpus_ids[0..n_ids) only (corpus_ids NULL:
 * every corpus of split, as db_pairs_foreach). */
int db_pairs_foreach_in(struct db *db, const char *split, const int64_t *corpus_ids, size_t n_ids,
                        int (*cb)(void *ctx, int64_t pair_id, const char *src, size_t srclen,
                                  const char *tgt, size_t tgtlen),
                        void *ctx);
/* Where a pair came from: its corpus id and 1-based line (SL_ENOTFOUND if no such pair). */
int db_pair_get(struct db *db, int64_t pair_id, int64_t *corpus_id /* OUT */, int64_t *line /* OUT */);
/* Records the token counts of a pair under the current vocabulary. */
int db_pair_set_tokens(struct db *db, int64_t pair_id, int64_t n_src, int64_t n_tgt);
/* Number of pairs in all corpora of split. */
int db_split_count(struct db *db, const char *split, int64_t *n /* OUT */);

/* ---- vocab, token, merge (tokenizer-agnostic arrays) ---- */

struct db_vocab {
    int64_t id;
    char kind[16];         /* "bpe" */
    char side[8];          /* "joint", "src" or "tgt" */
    char normalization[8]; /* "NFKC", "NFC" or "none" */
    char *settings;        /* JSON text, malloc'd: release with db_vocab_clear */
    int64_t size;          /* number of tokens */
};

/* Creates a vocab row. settings_json NULL means "{}". */
int db_vocab_insert(struct db *db, const char *kind, const char *side, const char *normalization,
                    const char *settings_json, int64_t size, int64_t *id /* OUT */);
/* Stores token token_id of vocab_id: its exact bytes, and a display surface (the bytes themselves when
 * they are valid UTF-8, else <0xHH> escapes). kind: normal|special|byte. */
int db_token_insert(struct db *db, int64_t vocab_id, int64_t token_id, const char *bytes, size_t len,
                    int64_t count, const char *kind);
/* out = the display surface db_token_insert stores for these bytes (replaces out's content). */
int db_token_display(const char *bytes, size_t len, struct sbuf *out);
/* Stores merge number rank (0 first): left + right -> result (token ids). */
int db_merge_insert(struct db *db, int64_t vocab_id, int64_t rank, int64_t left, int64_t right,
                    int64_t result);
/* Reads a vocab row (SL_ENOTFOUND if absent). */
int db_vocab_get(struct db *db, int64_t vocab_id, struct db_vocab *out /* OUT */);
void db_vocab_clear(struct db_vocab *v);
/* The newest vocabulary usable for side: "src" matches src and joint vocabularies, "tgt" tgt and joint,
 * "joint" only joint, NULL any. SL_ENOTFOUND: "no vocabulary: run seqlite vocab DB first". */
int db_vocab_latest(struct db *db, const char *side, int64_t *id /* OUT */);
/* Calls cb for every token of vocab_id in id order (bytes and kind borrowed). Nonzero from cb stops. */
int db_tokens_foreach(struct db *db, int64_t vocab_id,
                      int (*cb)(void *ctx, int64_t token_id, const char *bytes, size_t len,
                                int64_t count, const char *kind),
                      void *ctx);
/* Calls cb for every merge of vocab_id in rank order. Nonzero from cb stops. */
int db_merges_foreach(struct db *db, int64_t vocab_id,
                      int (*cb)(void *ctx, int64_t rank, int64_t left, int64_t right, int64_t result),
                      void *ctx);

/* ---- run, train_log, metric, translation ---- */

/* A run row. Integers that are NULL in the database read as 0 (batch_tokens, steps: no limit). */
struct db_run {
    int64_t id;
    char name[64];
    char status[16];           /* running|done|stopped|failed */
    int64_t src_vocab_id, tgt_vocab_id;
    /* read only: the columns generated from config (schema 2), as db_run_get reads them */
    int64_t seed, layers, emb, hidden;
    double dropout;
    int64_t batch, batch_tokens;
    double lr, clip;
    int64_t epochs, steps, max_len;
    int reverse_source;
    int64_t valid_every, save_every, keep;
    int64_t threads;           /* OpenMP threads of the latest invocation (a stored column) */
    char *config;              /* JSON of every option, the one stored copy (malloc'd when read: release
                                  with db_run_clear) */
    int64_t steps_done;
    char started_at[32], ended_at[32];
};

/* Creates a run (status 'running'; name NULL or "": "run-<id>") from name, the vocabulary ids, threads and
 * config (the options' one stored copy: the option columns are generated from it; the struct's option
 * fields are not written). SL_EEXIST when the name is taken. */
int db_run_create(struct db *db, const struct db_run *r, int64_t *id /* OUT */);
/* Reads run id (SL_ENOTFOUND if absent). */
int db_run_get(struct db *db, int64_t id, struct db_run *out /* OUT */);
void db_run_clear(struct db_run *r);
/* The newest run (SL_ENOTFOUND: "no training run"). */
int db_run_latest(struct db *db, int64_t *id /* OUT */);
/* Sets status, steps_done and message (NULL keeps it); a status other than 'running' also sets
 * ended_at, 'running' clears it. Updates threads when threads > 0. */
int db_run_update(struct db *db, int64_t id, const char *status, int64_t steps_done, int64_t threads,
                  const char *message);

/* ---- run ownership: a lease (run.owner "PID@HOST", run.heartbeat_at) ----
 * One process trains a run at a time. The owner refreshes heartbeat_at at least every
 * DB_RUN_HEARTBEAT_S seconds; an owner is dead when its heartbeat is older than DB_RUN_STALE_S, or,
 * on the same host, when its pid no longer exists. A running run whose owner is dead is interrupted
 * (resumable: the next trainer takes the lease over). */
#define DB_RUN_HEARTBEAT_S 10
#define DB_RUN_STALE_S 60

enum db_run_liveness {
    DB_RUN_ENDED = 0,       /* status is not 'running' */
    DB_RUN_ALIVE = 1,       /* running, and its owner is alive */
    DB_RUN_INTERRUPTED = 2, /* 'running' in the table, but no live owner */
};
/* This process's owner string "PID@HOST" (at most 127 bytes). */
void db_run_owner_self(char *buf, size_t cap);
/* Whether run id is owned by a live process (see above), and who owns it (owner may be NULL). */
int db_run_liveness(struct db *db, int64_t id, enum db_run_liveness *out /* OUT */,
                    char *owner /* OUT, may be NULL */, size_t cap);
/* Takes the lease of run id for this process, in one write transaction: SL_EBUSY ("run R is being
 * trained by PID@HOST (heartbeat T)") when a live process owns it; a dead owner's lease is taken over. */
int db_run_claim(struct db *db, int64_t id);
/* Refreshes the heartbeat of a run this process owns (SL_EBUSY if another process took it). */
int db_run_heartbeat(struct db *db, int64_t id);
/* Gives the lease up (owner NULL) if this process holds it. */
int db_run_release(struct db *db, int64_t id);

/* ---- run.train_data: the corpora a run trains on, as they were when it started ---- */

struct db_train_data {
    int64_t *corpora;       /* (n) corpus ids, ascending (malloc'd: release with db_train_data_clear) */
    size_t n;
    int64_t pairs;          /* their pairs (corpus.n_pairs summed) */
    int64_t last_pair_id;   /* the highest pair id among them (0: none) */
};
/* The current data of corpora ids[0..n) (ids of existing corpora; any order, no repeats): out lists them
 * ascending with their pairs and last pair id. */
int db_train_data_now(struct db *db, const int64_t *ids, size_t n, struct db_train_data *out /* OUT */);
/* Reads run id's train_data; *stored 0 (out empty) when the run has none (older runs). SL_ECORRUPT when
 * it is not {"corpora":[ids],"pairs":N,"last_pair_id":I}. */
int db_run_train_data_get(struct db *db, int64_t id, struct db_train_data *out /* OUT */, int *stored /* OUT */);
/* Stores d as run id's train_data. */
int db_run_train_data_set(struct db *db, int64_t id, const struct db_train_data *d);
/* Records in run id's config that it resumed on changed data: appends {"step":S,"from":OLD,"to":NEW}
 * (train_data JSON of old_d and new_d) to the array member allow_new_data (created when absent). */
int db_run_note_new_data(struct db *db, int64_t id, int64_t step, const struct db_train_data *old_d,
                         const struct db_train_data *new_d);
void db_train_data_clear(struct db_train_data *d);
/* A member of a run's config JSON that holds text: *out = its text (SL_ENOTFOUND: no such member or not
 * text; SL_ECORRUPT: the config is not a JSON object). key as for db_run_config_get. */
int db_run_config_text(struct db *db, int64_t id, const char *key, struct sbuf *out /* OUT */);

/* A member of a run's config JSON (db_run_config_get). */
enum db_json_type {
    DB_JSON_ABSENT = 0,  /* no such member */
    DB_JSON_INTEGER = 1, /* i and d hold it */
    DB_JSON_REAL = 2,    /* d holds it */
    DB_JSON_OTHER = 3,   /* text, true, false, null, an array or an object: not read */
};
struct db_json_field {
    const char *key;        /* a top-level member name: letters, digits and '_' */
    enum db_json_type type; /* OUT */
    int64_t i;              /* OUT: DB_JSON_INTEGER */
    double d;               /* OUT: DB_JSON_INTEGER or DB_JSON_REAL (exact for what %.17g wrote) */
};
/* Reads fields[0..n) of run id's config JSON with json_extract (an empty config has no members).
 * SL_ENOTFOUND: no run id; SL_ECORRUPT: the config is not a JSON object; SL_EINVAL: a key that is not
 * a plain name. */
int db_run_config_get(struct db *db, int64_t id, struct db_json_field *fields, size_t n);

struct db_train_log {
    int64_t step, epoch;
    double loss, ppl, lr, grad_norm, src_tok_s, tgt_tok_s, elapsed_s;
};
/* Stores one log line (replaces a line of the same step: a resumed run logs it again). */
int db_train_log_insert(struct db *db, int64_t run_id, const struct db_train_log *l);
/* Calls cb for the log lines of run_id in step order. Nonzero from cb stops. */
int db_train_log_foreach(struct db *db, int64_t run_id,
                         int (*cb)(void *ctx, const struct db_train_log *l), void *ctx);
/* Stores a metric (checkpoint_id 0: NULL; signature may be NULL). */
int db_metric_insert(struct db *db, int64_t run_id, int64_t checkpoint_id, int64_t step, const char *split,
                     const char *name, double value, const char *signature);
/* The newest value of metric name for (run_id, split) (SL_ENOTFOUND if none). */
int db_metric_latest(struct db *db, int64_t run_id, const char *split, const char *name,
                     double *value /* OUT */, int64_t *step /* OUT, may be NULL */);
/* Calls cb(ctx, step, value) for run_id's training-written validation values of metric name (split
 * 'valid', no checkpoint) with step <= max_step, in step order (then insertion order). Nonzero from cb
 * stops and is returned. */
int db_metric_valid_foreach(struct db *db, int64_t run_id, const char *name, int64_t max_step,
                            int (*cb)(void *ctx, int64_t step, double value), void *ctx);
/* Training's validation metrics at step (split 'valid', written with no checkpoint) are linked to
 * checkpoint_id, the checkpoint saved at that step. */
int db_metric_link_checkpoint(struct db *db, int64_t run_id, int64_t step, int64_t checkpoint_id);

/* ---- evaluation, translation ---- */

/* One stored evaluation: its settings, what it scored and how fast. */
struct db_evaluation {
    int64_t run_id, checkpoint_id, step; /* checkpoint_id: set to 0 by db_evaluation_insert when that
                                            checkpoint no longer exists (deleted meanwhile) */
    const char *split;
    int beam;
    double length_penalty;
    int64_t max_sentences;  /* --limit; 0: all */
    const char *members;    /* JSON array of the ensemble's checkpoint ids; NULL: one model */
    const char *precision;  /* "fp32", "bf16" or "int8": what the products ran in; NULL: not recorded */
    int64_t n_sentences;
    double seconds;         /* decoding time (NAN: not measured) */
    double sentences_per_s; /* (NAN: not measured) */
};
/* Creates an evaluation row (inside the caller's transaction, which then adds its metric and
 * translation rows). The run and the checkpoint are stored as NULL when they no longer exist. */
int db_evaluation_insert(struct db *db, struct db_evaluation *e /* IN, checkpoint_id OUT */,
                         int64_t *id /* OUT */);
/* Stores a score of evaluation evaluation_id (a metric row with its run, checkpoint, step and split;
 * signature may be NULL). SL_ENOTFOUND: no such evaluation. */
int db_evaluation_metric_insert(struct db *db, int64_t evaluation_id, const char *name, double value,
                                const char *signature);
/* Stores one system output (hypothesis NUL-terminated; evaluation_id, checkpoint_id, pair_id 0: NULL). */
int db_translation_insert(struct db *db, int64_t evaluation_id, int64_t checkpoint_id, int64_t corpus_id,
                          int64_t pair_id, int beam, double length_penalty, const char *hypothesis,
                          double score);

/* ---- learning curves ---- */

/* A run as db_curve_runs_foreach lists it (strings borrowed). */
struct db_curve_run {
    int64_t id;
    const char *name, *status;
    int64_t n_loss;  /* train_log rows with a loss */
    int64_t n_valid; /* metric rows of split 'valid' with a value */
};
/* One point of a learning curve: the value at a step and the run's wall time then (elapsed_s: the
 * train_log.elapsed_s of that step, or of the last logged step before it; NaN when none). */
struct db_curve_point {
    int64_t step;
    double elapsed_s;
    double value;
};
/* Calls cb for every run in id order. A nonzero return from cb stops the loop and is returned. */
int db_curve_runs_foreach(struct db *db, int (*cb)(void *ctx, const struct db_curve_run *r), void *ctx);
/* Calls cb for the training loss of every train_log row of run_id that has one, in step order.
 * Nonzero from cb stops. No rows (or no such run) is not an error. */
int db_curve_loss_foreach(struct db *db, int64_t run_id, int (*cb)(void *ctx, const struct db_curve_point *p),
                          void *ctx);
/* Calls cb for metric name of split measured on run_id, one point per step in step order: the first
 * value stored for that step (training's own validation comes before a later seqlite eval of the
 * same step). NULL values are left out. Nonzero from cb stops. */
int db_curve_metric_foreach(struct db *db, int64_t run_id, const char *split, const char *name,
                            int (*cb)(void *ctx, const struct db_curve_point *p), void *ctx);

/* ---- checkpoint, tensor ---- */

struct db_checkpoint {
    int64_t id, run_id, step, epoch;
    int64_t src_vocab_id, tgt_vocab_id;
    double valid_ppl;          /* NAN: NULL */
    double valid_bleu;         /* NAN: NULL */
    int is_best;
    int has_rng;
    unsigned char rng_state[32];
    int64_t pos_epoch, pos_batch; /* data_pos {"epoch":E,"batch":I}: the next batch to train */
    int averaged;                 /* read only: averaged_from is set (db_ckpt_set_averaged_from) */
};

/* Creates a checkpoint row from c (all but id). */
int db_ckpt_insert(struct db *db, const struct db_checkpoint *c, int64_t *id /* OUT */);
int db_ckpt_get(struct db *db, int64_t id, struct db_checkpoint *out /* OUT */);
/* which: "last" (the highest id among the trained checkpoints, i.e. not averaged; an averaged one only
 * when there is no trained one) or "best" (highest id with is_best); SL_ENOTFOUND when there is none;
 * run_id 0: any run. Training resumes from "last", and `--checkpoint last` means the last trained
 * checkpoint: use an averaged one by its id. */
int db_ckpt_find(struct db *db, int64_t run_id, const char *which, int64_t *id /* OUT */);
/* Whether the database holds any checkpoint (keeps the thread's error message as it was). */
int db_has_checkpoint(struct db *db);
/* Makes id the only best checkpoint of its run. */
int db_ckpt_set_best(struct db *db, int64_t id);
/* The best validation score among the run's trained checkpoints other than except_id: the lowest
 * valid_ppl, or with by_bleu the highest valid_bleu (NAN when none measured). */
int db_ckpt_best_score(struct db *db, int64_t run_id, int64_t except_id, int by_bleu, double *out /* OUT */);
/* Deletes the run's trained checkpoints that are neither among its newest keep trained ones nor the
 * best. Averaged checkpoints are never deleted by it, nor counted among the keep. */
int db_ckpt_prune(struct db *db, int64_t run_id, int64_t keep);
/* How db_ckpt_select ranks a run's trained checkpoints. */
enum db_ckpt_rank {
    DB_CKPT_NEWEST = 0,       /* highest step first (then highest id) */
    DB_CKPT_LOWEST_PPL = 1,   /* measured valid_ppl, lowest first (ties: the newer) */
    DB_CKPT_HIGHEST_BLEU = 2, /* measured valid_bleu, highest first (ties: the newer) */
};
/* Number of trained checkpoints of run_id that rank can choose (with DB_CKPT_LOWEST_PPL /
 * DB_CKPT_HIGHEST_BLEU: those with that score measured). */
int db_ckpt_count_trained(struct db *db, int64_t run_id, enum db_ckpt_rank rank, int64_t *n /* OUT */);
/* The first n trained checkpoints of run_id by rank, returned in ids[0..*n_out) in ascending id order
 * (*n_out < n when the run has fewer). */
int db_ckpt_select(struct db *db, int64_t run_id, enum db_ckpt_rank rank, int64_t n, int64_t *ids /* OUT */,
                   int64_t *n_out /* OUT */);
/* Marks checkpoint id as the element-wise mean of ids[0..n) (checkpoint.averaged_from, a JSON array).
 * SL_ENOTFOUND: no checkpoint id. */
int db_ckpt_set_averaged_from(struct db *db, int64_t id, const int64_t *ids, size_t n);
/* The members of averaged checkpoint id in stored order: the first cap go to ids, *n counts them all
 * (0 for a trained checkpoint or no such id). */
int db_ckpt_averaged_from(struct db *db, int64_t id, int64_t *ids /* OUT */, size_t cap, size_t *n /* OUT */);
/* A resumed run rewrites its future: deletes run_id's checkpoints, train_log rows and training-written
 * validation metric rows (split 'valid', no checkpoint) with step > step, in one transaction. */
int db_run_rewind(struct db *db, int64_t run_id, int64_t step);
/* Stores tensor name of checkpoint ckpt_id: n floats (written little-endian) of shape
 * (shape[0], ..., shape[ndim-1]). */
int db_tensor_insert(struct db *db, int64_t ckpt_id, const char *name, int ndim, const size_t *shape,
                     const float *data, size_t n);
/* Reads tensor name of ckpt_id into dst after checking dtype, shape == (shape[0..ndim)) and byte size.
 * SL_ENOTFOUND when absent, SL_ECORRUPT naming checkpoint and tensor when it does not match. */
int db_tensor_read(struct db *db, int64_t ckpt_id, const char *name, int ndim, const size_t *shape,
                   float *dst, size_t n);
/* Number of tensors of ckpt_id. */
int db_tensor_count(struct db *db, int64_t ckpt_id, int64_t *n /* OUT */);
/* Number of tensors of ckpt_id stored with dtype ("f32", "bf16"). */
int db_tensor_count_dtype(struct db *db, int64_t ckpt_id, const char *dtype, int64_t *n /* OUT */);

/* ---- export ---- */

struct db_export_sizes {
    int64_t checkpoint_bytes; /* the tensors of the checkpoint in the source, optimizer state included */
    int64_t model_bytes;      /* of those, the model's (what the export holds) */
    int64_t file_bytes;       /* the size of the exported file */
};
/* Writes checkpoint ckpt_id of db as a new seqlite database at path out: the checkpoint's vocabularies
 * (vocab, token, merge rows), its run row (without owner; a running run is stored as stopped) and the
 * checkpoint (is_best 1: the file's only one; no rng_state) with its tensors except the Adam moments
 * (adam.m.*, adam.v.*). Ids are kept. The copy reads one snapshot of db. out is written under a
 * temporary name in its directory and renamed when complete; a failed export leaves no out and
 * removes only its temporary file. SL_EEXIST: out exists (it is not touched); SL_EIO: out's directory
 * is not writable (the message names it); SL_ENOTFOUND: no checkpoint ckpt_id. bf16: the model's
 * matrices (2-D tensors: weights, embeddings) are stored in bf16 (dtype 'bf16', rounded to nearest
 * even), half their size; db_tensor_read reads them back as floats. Call outside a transaction.
 * OUT: sizes. */
int db_export_checkpoint(struct db *db, int64_t ckpt_id, const char *out, int bf16,
                         struct db_export_sizes *sizes /* OUT */);

/* ---- project summary (seqlite info): read-only queries over every table ----
 * Callbacks get borrowed strings (valid during the callback; "" for NULL); a nonzero return from cb
 * stops the loop and is returned. Measured numbers that are NULL read as NaN, missing ids as 0. */

/* A read snapshot: every query until db_info_end sees one committed state of the file (BEGIN
 * DEFERRED ... COMMIT). Takes no write lock: a training run writing meanwhile is not held up. */
int db_info_begin(struct db *db);
int db_info_end(struct db *db);

struct db_info_vocab {
    int64_t id, size;
    const char *kind, *side, *normalization, *created_at;
};
/* Calls cb for every vocabulary in id order. */
int db_info_vocabs(struct db *db, int (*cb)(void *ctx, const struct db_info_vocab *v), void *ctx);

struct db_info_run {
    int64_t id;
    const char *name;
    const char *status;              /* as stored: running|done|stopped|failed */
    enum db_run_liveness liveness;   /* db_run_liveness: a 'running' run may be DB_RUN_INTERRUPTED */
    const char *owner;               /* PID@HOST of the lease ("" when none) */
    int64_t layers, hidden;
    int64_t attention, encoder;      /* config members (CHOICE indices, train/options.c); -1: absent */
    int64_t steps_done, steps;       /* steps: the --steps target, 0: none */
    const char *started_at, *ended_at;
    double seconds;                  /* wall time from started_at to ended_at; while running to now; an
                                        interrupted run to its last heartbeat (now when it has none) */
    int64_t best_checkpoint_id;      /* its best checkpoint (0: none) */
    double best_valid_ppl, best_valid_bleu;
};
/* Calls cb for every run in id order. */
int db_info_runs(struct db *db, int (*cb)(void *ctx, const struct db_info_run *r), void *ctx);
/* The run whose id (all digits) or else name is key. SL_ENOTFOUND "no run 'KEY'". */
int db_info_run_find(struct db *db, const char *key, int64_t *id /* OUT */);

struct db_info_checkpoint {
    int64_t id, run_id, step;
    double valid_ppl, valid_bleu;
    int is_best;
    const char *averaged_from; /* JSON array of checkpoint ids ("" for a trained checkpoint) */
    int64_t n_tensors;
    int64_t bytes, adam_bytes; /* sum of length(data) of its tensors; of those named adam.* */
    const char *created_at;
};
/* Calls cb for every checkpoint of run_id in step order. */
int db_info_checkpoints(struct db *db, int64_t run_id, int (*cb)(void *ctx, const struct db_info_checkpoint *c),
                        void *ctx);

struct db_info_evaluation {
    int64_t id, run_id, checkpoint_id, step; /* run_id, checkpoint_id 0: deleted */
    const char *split;
    int64_t beam;                 /* 0: not recorded (stored before schema 3) */
    double length_penalty;        /* NaN: not recorded */
    int64_t max_sentences;        /* --limit; 0: all */
    const char *members;          /* JSON array of an ensemble's checkpoint ids ("": one model) */
    const char *precision;        /* fp32, bf16 or int8 ("": not recorded, stored before schema 4) */
    int64_t n_sentences;          /* 0: not recorded */
    double seconds, sentences_per_s;
    double bleu, chrf;            /* its metric rows (NaN: none) */
    const char *created_at;
};
/* Calls cb for the newest limit evaluations (of run_id; 0: of every run), oldest of them first. */
int db_info_evaluations(struct db *db, int64_t run_id, int64_t limit,
                        int (*cb)(void *ctx, const struct db_info_evaluation *e), void *ctx);

#endif

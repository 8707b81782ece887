/* corpus/db_translation.c: the translation table (see db.h): system outputs, one row per translated
 * sentence, tied to the checkpoint that produced them and the pair they translate. */
#include "corpus/db_internal.h"

#include "util/err.h"

int db_translation_insert(struct db *db, int64_t checkpoint_id, int64_t corpus_id, int64_t pair_id, int beam,
                          double length_penalty, const char *hypothesis, double score)
{
    int rc = db_exec(db, "storing a translation", DB_FOREIGNKEY,
                     "INSERT INTO translation (checkpoint_id, corpus_id, pair_id, beam, length_penalty,"
                     " hypothesis, score) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                     DB_ARGS(db_id(checkpoint_id), db_id(corpus_id), db_id(pair_id), db_int(beam),
                             db_real(length_penalty), db_text(hypothesis), db_real_or_null(score)));
    return rc == SL_ENOTFOUND ? db_fail(db, rc, "translation: no such checkpoint, corpus or pair") : rc;
}

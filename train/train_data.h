/* train/train_data.h: the data a run trains on. A run trains on a set of train corpora: the ones named
 * by --corpus, or every train corpus of the database when it starts. It records them (run.train_data:
 * their ids, pairs and last pair id, corpus/db.h) and a resume compares that record with the corpora as
 * they are now, so a corpus imported or removed meanwhile is seen, never trained on silently.
 * Nothing here writes to the database. */
#ifndef SL_TRAIN_TRAIN_DATA_H
#define SL_TRAIN_TRAIN_DATA_H

#include <stddef.h>

struct db;
struct db_train_data;

/* The train corpora of names ("NAME[,NAME...]"; NULL: every train corpus, in id order) and their current
 * data into *out (db_train_data_clear releases it). SL_EINVAL naming the problem: an empty name, a name
 * that is no corpus, a corpus of another split. */
int train_data_resolve(struct db *db, const char *names, struct db_train_data *out /* OUT */);
/* 1 when a and b list the same corpora with the same pairs and last pair id. */
int train_data_same(const struct db_train_data *a, const struct db_train_data *b);
/* What changed from was to now, for a message: "3000 -> 3500 pairs (corpus 'more' added)" (corpora
 * that still exist by name, removed ones by id) into buf (cap bytes). */
void train_data_describe_change(struct db *db, const struct db_train_data *was, const struct db_train_data *now,
                                char *buf, size_t cap);

#endif

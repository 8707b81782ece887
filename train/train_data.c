/* train/train_data.c: resolving a run's train corpora and describing how they changed (see
 * train_data.h). */
#include "train/train_data.h"

#include "corpus/db.h"
#include "util/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct corpus_list {
    int64_t *ids;
    size_t n, cap;
    const char *want;   /* NULL: collect every train corpus */
    int64_t found_id;   /* the corpus named want (0: none) */
    char found_split[16];
};

static int list_train(void *ctx, const struct db_corpus *c)
{
    struct corpus_list *l = ctx;
    if (l->want) {
        if (strcmp(c->name, l->want) == 0) {
            l->found_id = c->id;
            snprintf(l->found_split, sizeof l->found_split, "%s", c->split);
        }
        return 0;
    }
    if (strcmp(c->split, "train") != 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        int64_t *p = realloc(l->ids, cap * sizeof *p);
        if (!p)
            return sl_err(SL_ENOMEM, "out of memory");
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = c->id;
    return 0;
}

/* Adds the train corpus called name (len bytes) to l, once. */
static int add_named(struct db *db, struct corpus_list *l, const char *name, size_t len)
{
    char buf[256];
    if (len == 0)
        return sl_err(SL_EINVAL, "--corpus: an empty corpus name (give NAME[,NAME...])");
    if (len >= sizeof buf)
        return sl_err(SL_EINVAL, "--corpus: a corpus name of %zu bytes (no corpus has one)", len);
    memcpy(buf, name, len);
    buf[len] = '\0';
    struct corpus_list one = {.want = buf};
    int rc = db_corpus_foreach(db, list_train, &one);
    if (rc)
        return rc;
    if (!one.found_id)
        return sl_err(SL_EINVAL, "--corpus: no corpus named '%s' (seqlite info %s lists them)", buf, db_path(db));
    if (strcmp(one.found_split, "train") != 0)
        return sl_err(SL_EINVAL, "--corpus: '%s' is a %s corpus, not a train corpus", buf, one.found_split);
    for (size_t i = 0; i < l->n; i++)
        if (l->ids[i] == one.found_id)
            return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        int64_t *p = realloc(l->ids, cap * sizeof *p);
        if (!p)
            return sl_err(SL_ENOMEM, "out of memory");
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = one.found_id;
    return 0;
}

int train_data_resolve(struct db *db, const char *names, struct db_train_data *out)
{
    memset(out, 0, sizeof *out);
    struct corpus_list l = {0};
    int rc = 0;
    if (!names)
        rc = db_corpus_foreach(db, list_train, &l);
    for (const char *p = names; p && !rc;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        rc = add_named(db, &l, p, len);
        p = comma ? comma + 1 : NULL;
    }
    if (!rc)
        rc = db_train_data_now(db, l.ids, l.n, out);
    free(l.ids);
    return rc;
}

int train_data_same(const struct db_train_data *a, const struct db_train_data *b)
{
    if (a->n != b->n || a->pairs != b->pairs || a->last_pair_id != b->last_pair_id)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->corpora[i] != b->corpora[i])
            return 0;
    return 1;
}

static int has_id(const struct db_train_data *d, int64_t id)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->corpora[i] == id)
            return 1;
    return 0;
}

struct describe {
    const struct db_train_data *was, *now;
    char *buf;
    size_t cap, len;
    int n; /* corpora described */
};

/* Appends one item ("corpus 'more' added"), comma-separated. */
static void put(struct describe *d, const char *item)
{
    if (d->len < d->cap) {
        int k = snprintf(d->buf + d->len, d->cap - d->len, "%s%s", d->n ? ", " : "", item);
        d->len += k > 0 ? (size_t)k : 0;
    }
    d->n++;
}

static int describe_added(void *ctx, const struct db_corpus *c)
{
    struct describe *d = ctx;
    char item[320];
    if (has_id(d->now, c->id) && !has_id(d->was, c->id)) {
        snprintf(item, sizeof item, "corpus '%s' added", c->name);
        put(d, item);
    }
    return 0;
}

struct exists {
    int64_t id;
    int found;
};

static int find_id(void *ctx, const struct db_corpus *c)
{
    struct exists *e = ctx;
    e->found |= c->id == e->id;
    return 0;
}

void train_data_describe_change(struct db *db, const struct db_train_data *was, const struct db_train_data *now,
                                char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%lld -> %lld pairs (", (long long)was->pairs, (long long)now->pairs);
    struct describe d = {.was = was, .now = now, .buf = buf, .cap = cap, .len = k > 0 ? (size_t)k : 0};
    db_corpus_foreach(db, describe_added, &d);
    for (size_t i = 0; i < was->n; i++) {
        if (has_id(now, was->corpora[i]))
            continue;
        struct exists e = {.id = was->corpora[i]};
        db_corpus_foreach(db, find_id, &e);
        char item[64];
        snprintf(item, sizeof item, "corpus %lld %s", (long long)was->corpora[i], e.found ? "left out" : "removed");
        put(&d, item);
    }
    if (!d.n)
        put(&d, "the corpora's pairs changed");
    if (d.len < cap)
        snprintf(buf + d.len, cap - d.len, ")");
}

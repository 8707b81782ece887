/* eval/ngram.c: hash tables for n-gram counting and string interning (see ngram.h).
 * Open addressing with linear probing; a slot is live when its epoch equals the table's epoch, so
 * a reset is O(1). Keys are compared exactly (ids or bytes), hashes only pick the slot.
 * Invariant: load factor <= 1/2 (tables double before inserting past it). */
#include "eval/ngram.h"

#include "util/err.h"
#include "util/sbuf.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 31);
}

struct ngram_slot {
    uint64_t hash;
    uint32_t epoch;    /* live iff == counter epoch */
    uint32_t start;    /* first id in c->hyp */
    uint32_t order;    /* n-gram length */
    uint32_t hyp_count;
    uint32_t ref_stamp; /* cur_count belongs to reference number ref_stamp */
    uint32_t cur_count;
    uint32_t ref_max;
};

struct ngram_counter {
    size_t max_order;
    uint32_t *hyp; /* (hyp_len) */
    size_t hyp_len, hyp_cap;
    struct ngram_slot *slots; /* (cap), cap a power of two */
    size_t cap, used;
    uint32_t epoch, ref_stamp;
    uint64_t hyp_total[NGRAM_MAX_ORDER];
    uint64_t clipped[NGRAM_MAX_ORDER];
};

struct ngram_counter *ngram_counter_create(size_t max_order)
{
    if (max_order < 1 || max_order > NGRAM_MAX_ORDER) {
        sl_err(SL_EINVAL, "n-gram order %zu is out of range (1 to %d)", max_order, NGRAM_MAX_ORDER);
        return NULL;
    }
    struct ngram_counter *c = calloc(1, sizeof *c);
    if (!c) {
        sl_err(SL_ENOMEM, "out of memory");
        return NULL;
    }
    c->max_order = max_order;
    c->epoch = 1;
    return c;
}

void ngram_counter_free(struct ngram_counter *c)
{
    if (!c)
        return;
    free(c->hyp);
    free(c->slots);
    free(c);
}

static int ensure_table(struct ngram_counter *c, size_t entries)
{
    size_t need = 16;
    while (need < 2 * entries)
        need *= 2;
    if (need <= c->cap)
        return 0;
    struct ngram_slot *s = calloc(need, sizeof *s);
    if (!s)
        return sl_err(SL_ENOMEM, "out of memory (n-gram table of %zu slots)", need);
    free(c->slots);
    c->slots = s;
    c->cap = need;
    c->epoch = 1; /* fresh zeroed table: epoch 0 marks every slot empty */
    return 0;
}

static int same(const uint32_t *a, const uint32_t *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

int ngram_set_hyp(struct ngram_counter *c, const uint32_t *hyp, size_t n)
{
    if (n > UINT32_MAX / 2)
        return sl_err(SL_EINVAL, "segment too long (%zu tokens)", n);
    if (n > c->hyp_cap) {
        uint32_t *h = realloc(c->hyp, n * sizeof *h);
        if (!h)
            return sl_err(SL_ENOMEM, "out of memory");
        c->hyp = h;
        c->hyp_cap = n;
    }
    if (n)
        memcpy(c->hyp, hyp, n * sizeof *hyp);
    c->hyp_len = n;
    int rc = ensure_table(c, n * c->max_order);
    if (rc)
        return rc;
    if (++c->epoch == 0) { /* wrapped: clear for real */
        memset(c->slots, 0, c->cap * sizeof *c->slots);
        c->epoch = 1;
    }
    c->used = 0;
    c->ref_stamp = 0;
    memset(c->hyp_total, 0, sizeof c->hyp_total);
    memset(c->clipped, 0, sizeof c->clipped);
    size_t mask = c->cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = 0;
        for (size_t k = 0; k < c->max_order && i + k < n; k++) {
            h = mix(h, c->hyp[i + k]);
            size_t len = k + 1;
            size_t p = (size_t)h & mask;
            for (;;) {
                struct ngram_slot *s = &c->slots[p];
                if (s->epoch != c->epoch) {
                    s->epoch = c->epoch;
                    s->hash = h;
                    s->start = (uint32_t)i;
                    s->order = (uint32_t)len;
                    s->hyp_count = 1;
                    s->ref_stamp = 0;
                    s->cur_count = 0;
                    s->ref_max = 0;
                    c->used++;
                    break;
                }
                if (s->hash == h && s->order == len && same(c->hyp + s->start, c->hyp + i, len)) {
                    s->hyp_count++;
                    break;
                }
                p = (p + 1) & mask;
            }
            c->hyp_total[k]++;
        }
    }
    return 0;
}

void ngram_match_ref(struct ngram_counter *c, const uint32_t *ref, size_t n, uint64_t *match,
                     uint64_t *ref_total)
{
    size_t mask = c->cap - 1;
    uint32_t stamp = ++c->ref_stamp;
    for (size_t k = 0; k < c->max_order; k++) {
        match[k] = 0;
        ref_total[k] = n > k ? n - k : 0;
    }
    if (c->cap == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = 0;
        for (size_t k = 0; k < c->max_order && i + k < n; k++) {
            h = mix(h, ref[i + k]);
            size_t len = k + 1;
            size_t p = (size_t)h & mask;
            struct ngram_slot *hit = NULL;
            for (;;) {
                struct ngram_slot *s = &c->slots[p];
                if (s->epoch != c->epoch)
                    break;
                if (s->hash == h && s->order == len && same(c->hyp + s->start, ref + i, len)) {
                    hit = s;
                    break;
                }
                p = (p + 1) & mask;
            }
            if (!hit) /* no longer n-gram starting at i can be in the hypothesis either */
                break;
            if (hit->ref_stamp != stamp) {
                hit->ref_stamp = stamp;
                hit->cur_count = 0;
            }
            hit->cur_count++;
            if (hit->cur_count <= hit->hyp_count)
                match[k]++;
            if (hit->cur_count > hit->ref_max) {
                hit->ref_max = hit->cur_count;
                if (hit->ref_max <= hit->hyp_count)
                    c->clipped[k]++;
            }
        }
    }
}

const uint64_t *ngram_hyp_total(const struct ngram_counter *c) { return c->hyp_total; }
const uint64_t *ngram_clipped(const struct ngram_counter *c) { return c->clipped; }

/* ---- interning ---- */

struct vocab_slot {
    uint64_t hash;
    uint32_t epoch;
    uint32_t id;
    size_t off, len; /* bytes in v->arena */
};

struct ngram_vocab {
    struct vocab_slot *slots; /* (cap) */
    size_t cap, used;
    uint32_t epoch;
    struct sbuf arena;
};

struct ngram_vocab *ngram_vocab_create(void)
{
    struct ngram_vocab *v = calloc(1, sizeof *v);
    if (!v) {
        sl_err(SL_ENOMEM, "out of memory");
        return NULL;
    }
    v->epoch = 1;
    sbuf_init(&v->arena);
    return v;
}

void ngram_vocab_free(struct ngram_vocab *v)
{
    if (!v)
        return;
    free(v->slots);
    sbuf_free(&v->arena);
    free(v);
}

void ngram_vocab_reset(struct ngram_vocab *v)
{
    sbuf_reset(&v->arena);
    v->used = 0;
    if (++v->epoch == 0) {
        if (v->slots)
            memset(v->slots, 0, v->cap * sizeof *v->slots);
        v->epoch = 1;
    }
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return mix(h, n);
}

static int vocab_grow(struct ngram_vocab *v)
{
    size_t cap = v->cap ? 2 * v->cap : 64;
    struct vocab_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return sl_err(SL_ENOMEM, "out of memory (vocabulary of %zu slots)", cap);
    for (size_t i = 0; i < v->cap; i++) {
        struct vocab_slot *o = &v->slots[i];
        if (o->epoch != v->epoch)
            continue;
        size_t p = (size_t)o->hash & (cap - 1);
        while (s[p].epoch == 1)
            p = (p + 1) & (cap - 1);
        s[p] = *o;
        s[p].epoch = 1;
    }
    free(v->slots);
    v->slots = s;
    v->cap = cap;
    v->epoch = 1;
    return 0;
}

int ngram_vocab_id(struct ngram_vocab *v, const char *s, size_t n, uint32_t *id)
{
    if (2 * (v->used + 1) > v->cap) {
        int rc = vocab_grow(v);
        if (rc)
            return rc;
    }
    uint64_t h = hash_bytes(s, n);
    size_t mask = v->cap - 1, p = (size_t)h & mask;
    for (;;) {
        struct vocab_slot *sl = &v->slots[p];
        if (sl->epoch != v->epoch)
            break;
        if (sl->hash == h && sl->len == n && memcmp(v->arena.data + sl->off, s, n) == 0) {
            *id = sl->id;
            return 0;
        }
        p = (p + 1) & mask;
    }
    struct vocab_slot *sl = &v->slots[p];
    size_t off = v->arena.len;
    int rc = sbuf_append(&v->arena, s, n);
    if (rc)
        return rc;
    if (v->used >= UINT32_MAX)
        return sl_err(SL_EINVAL, "too many distinct words in one segment");
    sl->epoch = v->epoch;
    sl->hash = h;
    sl->off = off;
    sl->len = n;
    sl->id = (uint32_t)v->used++;
    *id = sl->id;
    return 0;
}

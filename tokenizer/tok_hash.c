/* tokenizer/tok_hash.c: the open-addressing hash maps of tok_hash.h (linear probing, load <= 1/2).
 * ref: Knuth TAOCP vol. 3, 6.4 (linear probing); splitmix64 finaliser; FNV-1a. */
#include "tokenizer/tok_hash.h"

#include "util/err.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>

void tok_u64map_init(struct tok_u64map *m) { memset(m, 0, sizeof *m); }

void tok_u64map_free(struct tok_u64map *m)
{
    free(m->keys);
    free(m->vals);
    tok_u64map_init(m);
}

void tok_u64map_clear(struct tok_u64map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        m->keys[i] = TOK_U64MAP_EMPTY;
    m->n = 0;
}

int tok_u64map_get(const struct tok_u64map *m, uint64_t key, uint64_t *val)
{
    if (m->cap == 0)
        return 0;
    size_t mask = m->cap - 1;
    for (size_t i = rng_mix64(key) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return 1;
        }
        if (m->keys[i] == TOK_U64MAP_EMPTY)
            return 0;
    }
}

static int u64map_grow(struct tok_u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *keys = malloc(cap * sizeof *keys);
    uint64_t *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < cap; i++)
        keys[i] = TOK_U64MAP_EMPTY;
    size_t mask = cap - 1;
    for (size_t j = 0; j < m->cap; j++) {
        if (m->keys[j] == TOK_U64MAP_EMPTY)
            continue;
        size_t i = rng_mix64(m->keys[j]) & mask;
        while (keys[i] != TOK_U64MAP_EMPTY)
            i = (i + 1) & mask;
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

uint64_t *tok_u64map_slot(struct tok_u64map *m, uint64_t key, uint64_t init, int *created)
{
    if (created)
        *created = 0;
    if ((m->n + 1) * 2 > m->cap && u64map_grow(m))
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = rng_mix64(key) & mask;
    for (;; i = (i + 1) & mask) {
        if (m->keys[i] == key)
            return &m->vals[i];
        if (m->keys[i] == TOK_U64MAP_EMPTY)
            break;
    }
    m->keys[i] = key;
    m->vals[i] = init;
    m->n++;
    if (created)
        *created = 1;
    return &m->vals[i];
}

uint64_t tok_hash_bytes(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return rng_mix64(h ^ len);
}

void tok_bmap_init(struct tok_bmap *m)
{
    memset(m, 0, sizeof *m);
    sbuf_init(&m->pool);
}

void tok_bmap_free(struct tok_bmap *m)
{
    free(m->ent);
    free(m->index);
    sbuf_free(&m->pool);
    tok_bmap_init(m);
}

void tok_bmap_clear(struct tok_bmap *m)
{
    if (m->index)
        memset(m->index, 0, m->cap * sizeof *m->index);
    m->n = 0;
    sbuf_reset(&m->pool);
}

long tok_bmap_find(const struct tok_bmap *m, const void *key, size_t len, uint64_t hash)
{
    if (m->cap == 0)
        return -1;
    size_t mask = m->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        uint32_t e = m->index[i];
        if (e == 0)
            return -1;
        const struct tok_bmap_entry *x = &m->ent[e - 1];
        if (x->hash == hash && x->len == len && memcmp(m->pool.data + x->off, key, len) == 0)
            return (long)(e - 1);
    }
}

static int bmap_grow_index(struct tok_bmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    uint32_t *index = calloc(cap, sizeof *index);
    if (!index)
        return SL_ENOMEM;
    size_t mask = cap - 1;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = m->ent[e].hash & mask;
        while (index[i])
            i = (i + 1) & mask;
        index[i] = (uint32_t)(e + 1);
    }
    free(m->index);
    m->index = index;
    m->cap = cap;
    return 0;
}

long tok_bmap_insert(struct tok_bmap *m, const void *key, size_t len, uint64_t hash, uint64_t val,
                     int *created)
{
    if (created)
        *created = 0;
    long f = tok_bmap_find(m, key, len, hash);
    if (f >= 0)
        return f;
    if (len > UINT32_MAX || m->n >= UINT32_MAX - 1)
        return -1;
    if ((m->n + 1) * 2 > m->cap && bmap_grow_index(m))
        return -1;
    if (m->n == m->ent_cap) {
        size_t c = m->ent_cap ? m->ent_cap * 2 : 256;
        struct tok_bmap_entry *p = realloc(m->ent, c * sizeof *p);
        if (!p)
            return -1;
        m->ent = p;
        m->ent_cap = c;
    }
    size_t off = m->pool.len;
    if (sbuf_append(&m->pool, key, len))
        return -1;
    struct tok_bmap_entry *x = &m->ent[m->n];
    x->hash = hash;
    x->val = val;
    x->off = off;
    x->len = (uint32_t)len;
    size_t mask = m->cap - 1;
    size_t i = hash & mask;
    while (m->index[i])
        i = (i + 1) & mask;
    m->index[i] = (uint32_t)(m->n + 1);
    m->n++;
    if (created)
        *created = 1;
    return (long)(m->n - 1);
}

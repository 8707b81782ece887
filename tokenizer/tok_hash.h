/* tokenizer/tok_hash.h: two small open-addressing hash maps private to tokenizer/ (not a public API).
 * tok_u64map: uint64 key -> uint64 value (code point -> token id, (left,right) pair -> rank or index).
 * tok_bmap: byte-string key -> uint64 value, entries kept in insertion order (so iterating it is
 * deterministic: the learner's word table and the encoder's piece cache).
 * Both own their memory; _free releases it; _clear empties without shrinking. Not thread-safe.
 * ref: linear probing with power-of-two tables (Knuth TAOCP vol. 3, 6.4), splitmix64 finaliser,
 * FNV-1a for byte strings. */
#ifndef SL_TOKENIZER_TOK_HASH_H
#define SL_TOKENIZER_TOK_HASH_H

#include "util/sbuf.h"

#include <stddef.h>
#include <stdint.h>

#define TOK_U64MAP_EMPTY UINT64_MAX /* a key that can never be stored */

struct tok_u64map {
    uint64_t *keys; /* (cap) */
    uint64_t *vals; /* (cap) */
    size_t cap, n;  /* cap is 0 or a power of two, n <= cap / 2 */
};

void tok_u64map_init(struct tok_u64map *m);
void tok_u64map_free(struct tok_u64map *m);
void tok_u64map_clear(struct tok_u64map *m);
/* 1 and *val when key is present, 0 when not. */
int tok_u64map_get(const struct tok_u64map *m, uint64_t key, uint64_t *val /* OUT */);
/* Pointer to key's value, inserted as init when absent (*created = 1 then). NULL on ENOMEM. The
 * pointer stays valid until the next insertion. */
uint64_t *tok_u64map_slot(struct tok_u64map *m, uint64_t key, uint64_t init, int *created /* OUT */);

struct tok_bmap_entry {
    uint64_t hash;
    uint64_t val;
    size_t off; /* key bytes at pool.data + off */
    uint32_t len;
};

struct tok_bmap {
    struct tok_bmap_entry *ent; /* (n) in insertion order */
    size_t n, ent_cap;
    uint32_t *index; /* (cap) entry index + 1, 0 = empty */
    size_t cap;      /* power of two, n <= cap / 2 */
    struct sbuf pool; /* key bytes */
};

uint64_t tok_hash_bytes(const void *p, size_t len);
void tok_bmap_init(struct tok_bmap *m);
void tok_bmap_free(struct tok_bmap *m);
void tok_bmap_clear(struct tok_bmap *m);
/* Entry index of key, or -1. hash must be tok_hash_bytes(key, len). */
long tok_bmap_find(const struct tok_bmap *m, const void *key, size_t len, uint64_t hash);
/* Entry index of key, inserted with val when absent (*created = 1). -1 on ENOMEM or a key longer
 * than 4 GiB. */
long tok_bmap_insert(struct tok_bmap *m, const void *key, size_t len, uint64_t hash, uint64_t val,
                     int *created /* OUT */);

#endif

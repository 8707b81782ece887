/* tokenizer/bpe_learn.c: learning BPE merges from counted pieces.
 * bpe_learner_add() pre-tokenises a text and counts its pieces (the word table). bpe_learner_learn()
 * maps each piece to base-character ids (characters below min_count are barriers that no pair
 * crosses; they fall back to bytes when encoding), counts adjacent pairs weighted by piece count,
 * and keeps for each pair the list of pieces that contain it. Each merge then touches only the
 * pieces on the chosen pair's list: their old pairs are subtracted, the symbols merged left to
 * right, their new pairs added. A lazy max-heap holds (count, pair): a pair whose count grew is
 * pushed again; an entry whose count is stale when popped is pushed back with the current count.
 * Heap order: count descending, then left id, then right id ascending (deterministic).
 * ref: Sennrich, Haddow & Birch 2016; subword-nmt learn_bpe.py (incremental update with an index of
 * pairs to words); Knuth TAOCP vol. 3, 5.2.3 (heaps). */
#include "tokenizer/bpe.h"

#include "tokenizer/tok_hash.h"
#include "util/err.h"
#include "util/utf8.h"
#include "util/vec.h"

#include <stdlib.h>
#include <string.h>

struct bpe_learner {
    enum tok_norm norm;
    struct tok_pieces pieces;
    struct tok_bmap words; /* piece surface -> count, in first-seen order */
};

struct lpair {
    int32_t a, b;
    int64_t count;
    uint32_t *w; /* (nw) indexes of words that contained this pair when it was added (may be stale) */
    uint32_t nw, cw;
    int32_t touched; /* last merge rank that increased count */
};

struct lword {
    size_t off; /* symbols at sym + off */
    uint32_t len;
    int32_t stamp; /* last merge rank that visited this word */
    int64_t count;
};

struct hent {
    int64_t count;
    uint32_t pair;
};

struct learn_state {
    struct lpair *pairs;
    size_t n_pairs, cap_pairs;
    struct tok_u64map pair_of; /* (a << 32 | b) -> index into pairs */
    struct hent *heap;
    size_t n_heap, cap_heap;
    uint32_t *touched; /* (n_touched) pairs that gained words in the current merge */
    size_t n_touched, cap_touched;
    struct lword *words; /* (number of pieces) */
    int32_t *sym;        /* (total symbols) the pieces' symbol ids, word w at sym + words[w].off */
};

struct bpe_learner *bpe_learner_create(enum tok_norm norm)
{
    struct bpe_learner *l = calloc(1, sizeof *l);
    if (!l) {
        sl_err(SL_ENOMEM, "out of memory (BPE learner)");
        return NULL;
    }
    l->norm = norm;
    tok_pieces_init(&l->pieces);
    tok_bmap_init(&l->words);
    return l;
}

void bpe_learner_free(struct bpe_learner *l)
{
    if (!l)
        return;
    tok_pieces_free(&l->pieces);
    tok_bmap_free(&l->words);
    free(l);
}

size_t bpe_learner_n_words(const struct bpe_learner *l) { return l->words.n; }

int bpe_learner_add(struct bpe_learner *l, const char *text, size_t len)
{
    struct tok_pieces *p = &l->pieces;
    int rc = tok_pretokenize(l->norm, text, len, TOK_PRETOK_SPACE_PREFIX, p);
    if (rc)
        return rc;
    for (size_t i = 0; i < p->n; i++) {
        if (p->kind[i] != TOK_PIECE_TEXT)
            continue;
        const char *s = p->text.data + p->off[i];
        size_t n = p->off[i + 1] - p->off[i];
        long e = tok_bmap_insert(&l->words, s, n, tok_hash_bytes(s, n), 0, NULL);
        if (e < 0)
            return sl_err(SL_ENOMEM, "out of memory (word table of %zu pieces)", l->words.n);
        l->words.ent[e].val++;
    }
    return 0;
}

static inline int hent_above(const struct learn_state *st, struct hent x, struct hent y)
{
    if (x.count != y.count)
        return x.count > y.count;
    const struct lpair *p = &st->pairs[x.pair], *q = &st->pairs[y.pair];
    if (p->a != q->a)
        return p->a < q->a;
    return p->b < q->b;
}

static void heap_down(struct learn_state *st, size_t i)
{
    struct hent *h = st->heap;
    size_t n = st->n_heap;
    struct hent x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hent_above(st, h[c + 1], h[c]))
            c++;
        if (!hent_above(st, h[c], x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static int heap_push(struct learn_state *st, int64_t count, uint32_t pair)
{
    int rc = vec_reserve(&st->heap, &st->cap_heap, st->n_heap + 1, sizeof *st->heap);
    if (rc)
        return sl_err_prefix(rc, "pair heap");
    struct hent x = {count, pair};
    size_t i = st->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!hent_above(st, x, st->heap[up]))
            break;
        st->heap[i] = st->heap[up];
        i = up;
    }
    st->heap[i] = x;
    return 0;
}

static struct hent heap_pop(struct learn_state *st)
{
    struct hent top = st->heap[0];
    st->heap[0] = st->heap[--st->n_heap];
    if (st->n_heap)
        heap_down(st, 0);
    return top;
}

/* Index of pair (a, b), created with count 0 when new; -1 on ENOMEM. */
static long pair_get(struct learn_state *st, int32_t a, int32_t b)
{
    int created = 0;
    uint64_t *slot = tok_u64map_slot(&st->pair_of, (uint64_t)a << 32 | (uint32_t)b, st->n_pairs, &created);
    if (!slot)
        return -1;
    if (!created)
        return (long)*slot;
    if (vec_reserve(&st->pairs, &st->cap_pairs, st->n_pairs + 1, sizeof *st->pairs))
        return -1;
    struct lpair *p = &st->pairs[st->n_pairs];
    memset(p, 0, sizeof *p);
    p->a = a;
    p->b = b;
    p->touched = -1;
    return (long)st->n_pairs++;
}

static int pair_add_word(struct lpair *p, uint32_t w)
{
    if (p->nw && p->w[p->nw - 1] == w)
        return 0;
    if (p->nw == p->cw) {
        uint32_t cap = p->cw ? p->cw * 2 : 4;
        uint32_t *q = realloc(p->w, (size_t)cap * sizeof *q);
        if (!q)
            return SL_ENOMEM;
        p->w = q;
        p->cw = cap;
    }
    p->w[p->nw++] = w;
    return 0;
}

struct cpcount {
    int32_t cp;
    int64_t count;
};

static int cpcount_cmp(const void *x, const void *y)
{
    const struct cpcount *a = x, *b = y;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return (a->cp > b->cp) - (a->cp < b->cp);
}

/* Adds the fixed tokens: specials and the 256 byte tokens. */
static int add_fixed(struct bpe *b)
{
    static const char *const names[4] = {"<pad>", "<s>", "</s>", "<unk>"};
    int rc;
    for (int32_t i = 0; i < BPE_BYTE0; i++)
        if ((rc = bpe_add_token(b, i, names[i], strlen(names[i]), BPE_KIND_SPECIAL, 0)))
            return rc;
    for (int v = 0; v < 256; v++) {
        char c = (char)v;
        if ((rc = bpe_add_token(b, BPE_BYTE0 + v, &c, 1, BPE_KIND_BYTE, 0)))
            return rc;
    }
    return 0;
}

/* 1. character counts (weighted by piece count) into cpmap; *total_sym: the number of symbols */
static int learn_count_chars(const struct tok_bmap *wt, struct tok_u64map *cpmap, size_t *total_sym)
{
    size_t n = 0;
    for (size_t w = 0; w < wt->n; w++) {
        const unsigned char *s = (const unsigned char *)wt->pool.data + wt->ent[w].off;
        for (size_t i = 0; i < wt->ent[w].len;) {
            int32_t cp;
            i += utf8_decode(s + i, wt->ent[w].len - i, &cp);
            uint64_t *c = tok_u64map_slot(cpmap, (uint64_t)cp, 0, NULL);
            if (!c)
                return sl_err(SL_ENOMEM, "out of memory (character counts)");
            *c += wt->ent[w].val;
            n++;
        }
    }
    *total_sym = n;
    return 0;
}

/* 2. base vocabulary: the fixed tokens, "▁", then the characters with count >= min_count by count
 * (as many as the size allows). Afterwards cpmap maps code point -> token id + 1 (0: no token). */
static int learn_base_vocab(struct bpe *b, struct tok_u64map *cpmap, const struct bpe_learn_opts *o)
{
    size_t ncp = 0;
    int64_t mark_count = 0;
    int rc = 0;
    struct cpcount *cps = malloc((cpmap->n + 1) * sizeof *cps);
    if (!cps)
        return sl_err(SL_ENOMEM, "out of memory");
    for (size_t i = 0; i < cpmap->cap; i++) {
        if (cpmap->keys[i] == TOK_U64MAP_EMPTY)
            continue;
        int32_t cp = (int32_t)cpmap->keys[i];
        int64_t c = (int64_t)cpmap->vals[i];
        if (cp == TOK_SPACE_MARK_CP)
            mark_count = c;
        else if (c >= o->min_count)
            cps[ncp++] = (struct cpcount){cp, c};
    }
    qsort(cps, ncp, sizeof *cps, cpcount_cmp);
    if (ncp > o->size - BPE_FIRST_LEARNED - 1)
        ncp = o->size - BPE_FIRST_LEARNED - 1;
    if ((rc = add_fixed(b)) ||
        (rc = bpe_add_token(b, BPE_FIRST_LEARNED, TOK_SPACE_MARK, 3, BPE_KIND_NORMAL, mark_count)))
        goto done;
    for (size_t i = 0; i < cpmap->cap; i++)
        cpmap->vals[i] = 0;
    uint64_t *slot = tok_u64map_slot(cpmap, TOK_SPACE_MARK_CP, 0, NULL);
    if (!slot) {
        rc = sl_err(SL_ENOMEM, "out of memory (character table)");
        goto done;
    }
    *slot = BPE_FIRST_LEARNED + 1;
    for (size_t i = 0; i < ncp; i++) {
        char u[4];
        int32_t c = cps[i].cp;
        size_t n = utf8_encode(c, u);
        int32_t id = (int32_t)bpe_size(b);
        if ((rc = bpe_add_token(b, id, u, n, BPE_KIND_NORMAL, cps[i].count)))
            goto done;
        /* c is a key already (it was counted): no insertion, no allocation */
        *tok_u64map_slot(cpmap, (uint64_t)c, 0, NULL) = (uint64_t)id + 1;
    }
done:
    free(cps);
    return rc;
}

/* 3. words as symbol ids in st->words / st->sym (-1: a character without a token, which no pair
 * crosses) */
static int learn_words(struct learn_state *st, const struct tok_bmap *wt, const struct tok_u64map *cpmap,
                       size_t total_sym)
{
    st->words = malloc(wt->n * sizeof *st->words);
    st->sym = malloc((total_sym + 1) * sizeof *st->sym);
    if (!st->words || !st->sym)
        return sl_err(SL_ENOMEM, "out of memory (%zu symbols)", total_sym);
    size_t pos = 0;
    for (size_t w = 0; w < wt->n; w++) {
        const unsigned char *s = (const unsigned char *)wt->pool.data + wt->ent[w].off;
        struct lword *W = &st->words[w];
        W->off = pos;
        W->count = (int64_t)wt->ent[w].val;
        W->stamp = -1;
        for (size_t i = 0; i < wt->ent[w].len;) {
            int32_t cp;
            i += utf8_decode(s + i, wt->ent[w].len - i, &cp);
            uint64_t id = 0;
            tok_u64map_get(cpmap, (uint64_t)cp, &id);
            st->sym[pos++] = (int32_t)id - 1;
        }
        W->len = (uint32_t)(pos - W->off);
    }
    return 0;
}

/* 4. pair counts and the pair -> words index over the nw words; every pair goes on the heap */
static int learn_pairs(struct learn_state *st, size_t nw)
{
    for (size_t w = 0; w < nw; w++) {
        const int32_t *s = st->sym + st->words[w].off;
        for (uint32_t i = 0; i + 1 < st->words[w].len; i++) {
            if (s[i] < 0 || s[i + 1] < 0)
                continue;
            long p = pair_get(st, s[i], s[i + 1]);
            if (p < 0 || pair_add_word(&st->pairs[p], (uint32_t)w))
                return sl_err(SL_ENOMEM, "out of memory (pair table)");
            st->pairs[p].count += st->words[w].count;
        }
    }
    int rc;
    for (size_t p = 0; p < st->n_pairs; p++)
        if ((rc = heap_push(st, st->pairs[p].count, (uint32_t)p)))
            return rc;
    return 0;
}

/* 5b. Merge number `rank` (A B -> N) in word w: its old pairs are subtracted, the symbols merged left
 * to right, its new pairs added; pairs containing N get w on their word list and go to st->touched
 * (once per merge). A word visited already in this merge, or no longer containing A B, is left alone. */
static int merge_word(struct learn_state *st, uint32_t w, int32_t A, int32_t B, int32_t N, int32_t rank)
{
    struct lword *W = &st->words[w];
    if (W->stamp == rank)
        return 0;
    W->stamp = rank;
    int32_t *s = st->sym + W->off;
    uint32_t n = W->len, i;
    for (i = 0; i + 1 < n; i++)
        if (s[i] == A && s[i + 1] == B)
            break;
    if (i + 1 >= n)
        return 0; /* stale entry: merged away by an earlier merge */
    for (i = 0; i + 1 < n; i++) {
        if (s[i] < 0 || s[i + 1] < 0)
            continue;
        uint64_t p;
        tok_u64map_get(&st->pair_of, (uint64_t)s[i] << 32 | (uint32_t)s[i + 1], &p);
        st->pairs[p].count -= W->count;
    }
    uint32_t j = 0;
    for (i = 0; i < n; i++) {
        if (i + 1 < n && s[i] == A && s[i + 1] == B) {
            s[j++] = N;
            i++;
        } else {
            s[j++] = s[i];
        }
    }
    W->len = n = j;
    for (i = 0; i + 1 < n; i++) {
        if (s[i] < 0 || s[i + 1] < 0)
            continue;
        long p = pair_get(st, s[i], s[i + 1]);
        if (p < 0)
            return sl_err(SL_ENOMEM, "out of memory (pair table)");
        struct lpair *q = &st->pairs[p];
        q->count += W->count;
        if (s[i] != N && s[i + 1] != N)
            continue; /* an old pair: its count is back where it was or lower */
        if (pair_add_word(q, w))
            return sl_err(SL_ENOMEM, "out of memory (pair index)");
        if (q->touched != rank) {
            q->touched = rank;
            int rc = vec_reserve(&st->touched, &st->cap_touched, st->n_touched + 1, sizeof *st->touched);
            if (rc)
                return rc;
            st->touched[st->n_touched++] = (uint32_t)p;
        }
    }
    return 0;
}

/* 5. merges: pop the most frequent pair (re-pushing stale entries with their current count), add its
 * token and merge, update the words on its list, push the pairs whose count grew; until the size is
 * reached, no pair is left or the best pair is below min_count. */
static int learn_merges(struct learn_state *st, struct bpe *b, const struct bpe_learn_opts *o)
{
    int rc = 0;
    struct sbuf tmp;
    sbuf_init(&tmp);
    for (int32_t rank = 0; bpe_size(b) < o->size && st->n_heap > 0;) {
        struct hent top = heap_pop(st);
        struct lpair *P = &st->pairs[top.pair];
        if (P->count != top.count) {
            if (P->count > 0 && (rc = heap_push(st, P->count, top.pair)))
                goto done;
            continue;
        }
        if (P->count < o->min_count)
            break;
        int32_t A = P->a, B = P->b, N = (int32_t)bpe_size(b);
        size_t la, lb;
        const char *sa = bpe_token(b, A, &la), *sb = bpe_token(b, B, &lb);
        sbuf_reset(&tmp);
        if ((rc = sbuf_append(&tmp, sa, la)) || (rc = sbuf_append(&tmp, sb, lb)) ||
            (rc = bpe_add_token(b, N, tmp.data, tmp.len, BPE_KIND_NORMAL, P->count)) ||
            (rc = bpe_add_merge(b, rank, A, B, N)))
            goto done;
        /* the pair's word list is taken over (the words re-add themselves to their new pairs); P may
         * move when merge_word adds pairs, so it is not used below */
        uint32_t *wl = P->w, nwl = P->nw;
        P->w = NULL;
        P->nw = P->cw = 0;
        st->n_touched = 0;
        for (uint32_t k = 0; k < nwl && !rc; k++)
            rc = merge_word(st, wl[k], A, B, N, rank);
        free(wl);
        if (rc)
            goto done;
        for (size_t t = 0; t < st->n_touched; t++)
            if ((rc = heap_push(st, st->pairs[st->touched[t]].count, st->touched[t])))
                goto done;
        rank++;
    }
done:
    sbuf_free(&tmp);
    return rc;
}

int bpe_learner_learn(struct bpe_learner *l, const struct bpe_learn_opts *o, struct bpe **out)
{
    *out = NULL;
    if (o->size < BPE_SIZE_MIN || o->size > BPE_SIZE_MAX)
        return sl_err(SL_EINVAL, "vocabulary size %zu out of range (%d to %d)", o->size, BPE_SIZE_MIN,
                      BPE_SIZE_MAX);
    if (o->min_count < 1)
        return sl_err(SL_EINVAL, "min count %lld must be at least 1", (long long)o->min_count);
    if (l->words.n == 0)
        return sl_err(SL_EINVAL, "no text to learn a vocabulary from");

    struct learn_state st;
    memset(&st, 0, sizeof st);
    tok_u64map_init(&st.pair_of);
    struct tok_u64map cpmap; /* code point -> count, then -> token id + 1 */
    tok_u64map_init(&cpmap);
    struct bpe *b = bpe_create(l->norm);
    if (!b)
        return SL_ENOMEM;
    size_t total_sym = 0;
    int rc;
    if ((rc = learn_count_chars(&l->words, &cpmap, &total_sym)) || (rc = learn_base_vocab(b, &cpmap, o)) ||
        (rc = learn_words(&st, &l->words, &cpmap, total_sym)) || (rc = learn_pairs(&st, l->words.n)) ||
        (rc = learn_merges(&st, b, o)) || (rc = bpe_finalize(b)))
        goto done;
    *out = b;
    b = NULL;
done:
    for (size_t p = 0; p < st.n_pairs; p++)
        free(st.pairs[p].w);
    free(st.pairs);
    free(st.heap);
    free(st.touched);
    free(st.words);
    free(st.sym);
    tok_u64map_free(&st.pair_of);
    tok_u64map_free(&cpmap);
    bpe_free(b);
    return rc;
}

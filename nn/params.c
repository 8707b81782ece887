/* nn/params.c: the parameter table and aligned float buffers (see params.h). */
#include "nn/params.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/bigmem.h"
#include "util/err.h"

void param_table_init(struct param_table *t) { memset(t, 0, sizeof *t); }

void param_table_free(struct param_table *t)
{
    free(t->views);
    memset(t, 0, sizeof *t);
}

int param_table_add(struct param_table *t, const char *name, int ndim, const size_t *shape)
{
    if (!name || !name[0] || strlen(name) >= PARAM_NAME_MAX)
        return sl_err(SL_EINVAL, "parameter name '%s' is empty or longer than %d bytes",
                      name ? name : "(null)", PARAM_NAME_MAX - 1);
    if (ndim < 1 || ndim > PARAM_MAX_DIMS)
        return sl_err(SL_EINVAL, "parameter %s: %d dimensions (1..%d allowed)", name, ndim, PARAM_MAX_DIMS);
    if (param_table_find(t, name))
        return sl_err(SL_EEXIST, "parameter %s is defined twice", name);
    struct param_view v;
    memset(&v, 0, sizeof v);
    strcpy(v.name, name);
    v.ndim = ndim;
    v.size = 1;
    for (int d = 0; d < PARAM_MAX_DIMS; d++) {
        v.shape[d] = d < ndim ? shape[d] : 1;
        if (v.shape[d] == 0)
            return sl_err(SL_EINVAL, "parameter %s: dimension %d is 0", name, d);
        if (v.size > SIZE_MAX / 4 / v.shape[d])
            return sl_err(SL_EINVAL, "parameter %s is too large", name);
        v.size *= v.shape[d];
    }
    v.offset = (t->total + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
    if (v.offset > SIZE_MAX / 4 - v.size)
        return sl_err(SL_EINVAL, "parameter %s: the buffer would be too large", name);
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        struct param_view *nv = realloc(t->views, cap * sizeof *nv);
        if (!nv)
            return sl_err(SL_ENOMEM, "out of memory for the parameter table");
        t->views = nv;
        t->cap = cap;
    }
    t->views[t->n++] = v;
    t->total = v.offset + v.size;
    return 0;
}

const struct param_view *param_table_find(const struct param_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->views[i].name, name) == 0)
            return &t->views[i];
    return NULL;
}

size_t param_table_count(const struct param_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->views[i].size;
    return n;
}

float *param_buf_create(size_t n)
{
    if (n > SIZE_MAX / sizeof(float) - 64)
        return NULL;
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = big_alloc(bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes ? bytes : 64);
    return p;
}

void param_buf_free(float *p) { big_free(p); }

void param_init_uniform(float *w, size_t n, float a, struct rng *r)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (2.0f * rng_uniform(r) - 1.0f) * a;
}

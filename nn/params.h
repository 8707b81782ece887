/* nn/params.h: the flat parameter buffer and its table of named views.
 * Every parameter of a model lives in ONE float buffer; a view (name, offset, shape) names a slice.
 * Gradients and Adam moments are buffers of the same size and layout, so clipping and Adam are
 * single loops over table.total floats. Each view starts on a PARAM_ALIGN-float boundary; the gaps
 * between views are zero in every buffer and stay zero (zero gradient, zero Adam update).
 * The view names ("enc.emb", "dec.lstm1.W", "out.b", ...) are the names used in checkpoints.
 * ref: karpathy/llm.c train_gpt2.c (malloc_and_point_parameters). */
#ifndef SL_NN_PARAMS_H
#define SL_NN_PARAMS_H

#include <stddef.h>

#include "util/rng.h"

#define PARAM_NAME_MAX 40  /* bytes including the NUL */
#define PARAM_MAX_DIMS 3
#define PARAM_ALIGN 16     /* floats (64 bytes) */

struct param_view {
    char name[PARAM_NAME_MAX];
    size_t offset;                /* in floats from the start of the buffer, multiple of PARAM_ALIGN */
    size_t size;                  /* floats: the product of the shape */
    int ndim;                     /* 1..PARAM_MAX_DIMS */
    size_t shape[PARAM_MAX_DIMS]; /* row-major; unused dims are 1 */
};

struct param_table {
    struct param_view *views; /* (n) in buffer order */
    size_t n;
    size_t cap;
    size_t total;             /* floats a buffer needs, alignment gaps included */
};

void param_table_init(struct param_table *t);
void param_table_free(struct param_table *t);
/* Appends a view of shape (shape[0], ..., shape[ndim-1]); SL_EINVAL for a bad name or shape,
 * SL_EEXIST for a duplicate name, SL_ENOMEM. */
int param_table_add(struct param_table *t, const char *name, int ndim, const size_t *shape);
/* The view with this name, or NULL. Borrowed: valid until the table is changed or freed. */
const struct param_view *param_table_find(const struct param_table *t, const char *name);
/* Number of parameters (sum of view sizes, gaps excluded). */
size_t param_table_count(const struct param_table *t);

/* A zeroed, 64-byte aligned buffer of n floats (NULL on failure); param_buf_free(NULL) is a no-op. */
float *param_buf_create(size_t n);
void param_buf_free(float *p);
/* w[i] = uniform in [-a, a) for i < n. */
void param_init_uniform(float *w, size_t n, float a, struct rng *r);

#endif

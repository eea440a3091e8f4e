/*
 * A naive reference interpreter for checked graphs, in double precision.
 *
 * The execution tests compare compiled models against it. It is written
 * from the ops' definitions (SPEC 1.5, PyTorch's documented formulas) as
 * plain loops over multi-indices and shares no code with codegen/: slow
 * and obvious on purpose. It reads only what pass_shape leaves in the
 * graph (node shapes and canonical attributes).
 *
 * Every tensor is held as doubles, whatever its element type; i32 values
 * are exact integers. Dimensions that carry the batch symbol take the
 * batch size given to ref_eval.
 */
#ifndef DLC_TESTS_REF_H
#define DLC_TESTS_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir.h"

typedef struct {
    DType dtype;
    int rank;
    int64_t dim[IR_MAX_RANK];
    int64_t count; /* product of dim; 1 for a scalar */
    double *v;     /* row-major, malloc'd; NULL when not computed */
} RefTensor;

/* The extents of s at the given batch size. */
void ref_dims(const Shape *s, int64_t batch, int64_t dims[IR_MAX_RANK]);

/* Allocates t zero-filled with n's type and shape at the batch size. */
void ref_tensor_alloc(RefTensor *t, const Node *n, int64_t batch);
void ref_tensor_free(RefTensor *t);

/* Computes values[i] for every node i of g (indexed by Node.id) that the
 * model's outputs need, or for every non-source node when all is set.
 * Source nodes (input, param, state) must already hold their values
 * (ref_tensor_alloc, then fill). Returns false with a message in err for
 * ops the reference does not implement or sources left empty. */
bool ref_eval(const Graph *g, int64_t batch, RefTensor *values, bool all, char *err,
              size_t errsize);

/* Whether ref_eval evaluates nodes of op (sources aside, which hold given
 * values). */
bool ref_supports(Op op);

/* Frees every tensor of values (g->nodes.n entries), not the array. */
void ref_values_free(const Graph *g, RefTensor *values);

#endif

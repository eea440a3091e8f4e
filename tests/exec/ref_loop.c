/*
 * The reference of structured loops (ir/ops.def, docs/IR.md, Loops): the
 * body graph is interpreted with ref_eval once per trip, so loops nest.
 *
 * A loop's own value is a token; the reference keeps its results there,
 * flattened and concatenated in result order (the final carried values,
 * the stacked results, then the saved ones) as one rank-1 tensor, and
 * loop_result copies its part out.
 */
#include "ref_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The extents of loop result k at the batch size, and their product. */
static int64_t result_dims(const Node *loop, int k, int64_t batch, int *rank,
                           int64_t dims[IR_MAX_RANK])
{
    DType t;
    Shape s;
    ir_loop_result_type(loop, k, &t, &s);
    ref_dims(&s, batch, dims);
    *rank = s.rank;
    int64_t c = 1;
    for (int i = 0; i < s.rank; i++)
        c *= dims[i];
    return c;
}

/* Copies the slice at index i of axis between x (dims, rank) and slice
 * (x's shape without the axis): into the slice, or out of it when write. */
static void slice_copy(double *x, const int64_t *dims, int rank, int axis, int64_t i, double *slice,
                       bool write)
{
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= dims[k];
    for (int k = axis + 1; k < rank; k++)
        inner *= dims[k];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double *e = &x[(o * dims[axis] + i) * inner + j];
            double *s = &slice[o * inner + j];
            if (write)
                *e = *s;
            else
                *s = *e;
        }
}

/* Sets body input x to a copy of v (count doubles). */
static void set_input(RefTensor *t, const Node *x, int64_t batch, const double *v)
{
    ref_tensor_free(t);
    ref_tensor_alloc(t, x, batch);
    memcpy(t->v, v, (size_t)t->count * sizeof(double));
}

bool ref_loop_result(const Node *n, const RefTensor *token, int64_t batch, RefTensor *out)
{
    const Node *l = n->in[0];
    int64_t k = attr_index(n), off = 0, dims[IR_MAX_RANK];
    int rank;
    for (int i = 0; i < k; i++)
        off += result_dims(l, i, batch, &rank, dims);
    if (off + out->count > token->count)
        return false;
    memcpy(out->v, token->v + off, (size_t)out->count * sizeof(double));
    return true;
}

bool ref_loop(const Node *n, RefTensor *const *in, int64_t batch, RefTensor *out, char *err,
              size_t errsize)
{
    LoopParts p = ir_loop_parts(n);
    const Graph *b = n->body;
    int nres = p.carried + p.stacked + p.saved, nbin;
    Node **bin = ir_body_inputs(b, &nbin);
    /* the results, laid out as in the token: the carried and stacked ones
     * start as their inputs, the saved ones as zeros */
    int64_t total = 0, *off = malloc((size_t)(nres + 1) * sizeof *off);
    int64_t(*dims)[IR_MAX_RANK] = malloc((size_t)(nres + 1) * sizeof *dims);
    int *rank = malloc((size_t)(nres + 1) * sizeof *rank);
    if (!off || !dims || !rank)
        abort();
    for (int k = 0; k < nres; k++) {
        off[k] = total;
        total += result_dims(n, k, batch, &rank[k], dims[k]);
    }
    off[nres] = total;
    ref_tensor_free(out);
    out->dtype = n->dtype;
    out->rank = 1;
    out->dim[0] = total;
    out->count = total;
    out->v = ref_calloc(total);
    for (int k = 0; k < p.carried + p.stacked; k++)
        memcpy(out->v + off[k], in[k]->v, (size_t)in[k]->count * sizeof(double));

    RefTensor *bv = calloc((size_t)b->nodes.n + 1, sizeof *bv);
    if (!bv)
        abort();
    bool ok = true;
    for (int64_t t = 0; ok && t < p.trips; t++) {
        int k = 0;
        for (int i = 0; i < p.carried; i++, k++)
            set_input(&bv[bin[k]->id], bin[k], batch, out->v + off[i]);
        for (int i = 0; i < p.scanned; i++, k++) {
            const RefTensor *x = in[p.carried + p.stacked + i];
            int s = p.stacked + i;
            int64_t idx = attr_scan_start(n).v[s].n + attr_scan_step(n).v[s].n * t;
            RefTensor *bt = &bv[bin[k]->id];
            ref_tensor_free(bt);
            ref_tensor_alloc(bt, bin[k], batch);
            slice_copy(x->v, x->dim, x->rank, (int)attr_scan_axis(n).v[s].n, idx, bt->v, false);
        }
        for (int i = p.carried + p.stacked + p.scanned; i < n->nin; i++, k++)
            set_input(&bv[bin[k]->id], bin[k], batch, in[i]->v);
        if (!ref_eval(b, batch, bv, false, err, errsize)) {
            ok = false;
            break;
        }
        /* the body's values are its own copies: writing the results here
         * cannot change an output still to be read (one may be an input) */
        for (int i = 0; i < nres; i++) {
            const RefTensor *y = &bv[b->outputs.v[i].node->id];
            if (i < p.carried) {
                memcpy(out->v + off[i], y->v, (size_t)y->count * sizeof(double));
                continue;
            }
            /* a stacked result at its scan index; a saved one at t on a
             * leading axis of its own */
            bool saved = i >= p.carried + p.stacked;
            int s = i - p.carried;
            int64_t idx = saved ? t : attr_scan_start(n).v[s].n + attr_scan_step(n).v[s].n * t;
            int axis = saved ? 0 : (int)attr_scan_axis(n).v[s].n;
            slice_copy(out->v + off[i], dims[i], rank[i], axis, idx, y->v, true);
        }
    }
    ref_values_free(b, bv);
    free(bv);
    free(off);
    free(dims);
    free(rank);
    return ok;
}

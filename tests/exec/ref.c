/*
 * The reference interpreter (see ref.h). Each op is evaluated straight
 * from its definition: walk every multi-index of the result, compute the
 * element from the inputs. NumPy broadcasting aligns shapes on the right
 * and reads index 0 of a size-1 dimension. No vectorization, no clever
 * numerics beyond what the definition needs to be finite in double
 * (softmax subtracts the row maximum; BCE with logits uses the
 * log-sigmoid identities).
 */
#include "ref.h"
#include "../common/half_ref.h"
#include "ref_ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ref_dims(const Shape *s, int64_t batch, int64_t dims[IR_MAX_RANK])
{
    for (int i = 0; i < s->rank; i++)
        dims[i] = s->d[i].batch ? s->d[i].n * batch : s->d[i].n;
}

static void tensor_init(RefTensor *t, DType dt, int rank, const int64_t *dims)
{
    t->dtype = dt;
    t->rank = rank;
    t->count = 1;
    for (int i = 0; i < rank; i++) {
        t->dim[i] = dims[i];
        t->count *= dims[i];
    }
    t->v = calloc((size_t)(t->count > 0 ? t->count : 1), sizeof(double));
    if (!t->v) {
        fprintf(stderr, "ref: out of memory\n");
        abort();
    }
}

void ref_tensor_alloc(RefTensor *t, const Node *n, int64_t batch)
{
    int64_t dims[IR_MAX_RANK];
    ref_dims(&n->shape, batch, dims);
    tensor_init(t, n->dtype, n->shape.rank, dims);
}

void ref_tensor_free(RefTensor *t)
{
    free(t->v);
    t->v = NULL;
}

void ref_values_free(const Graph *g, RefTensor *values)
{
    for (int i = 0; i < g->nodes.n; i++)
        ref_tensor_free(&values[i]);
}

/* Multi-indices */

/* Advances idx to the next row-major index; false after the last. */
static bool next_index(int rank, const int64_t *dims, int64_t *idx)
{
    for (int i = rank - 1; i >= 0; i--) {
        if (++idx[i] < dims[i])
            return true;
        idx[i] = 0;
    }
    return false;
}

static int64_t offset_of(const RefTensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->rank; i++)
        off = off * t->dim[i] + idx[i];
    return off;
}

/* t read at the index idx of a result of rank r that t broadcasts to. */
static double bcast_at(const RefTensor *t, int r, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->rank; i++) {
        int64_t k = t->dim[i] == 1 ? 0 : idx[r - t->rank + i];
        off = off * t->dim[i] + k;
    }
    return t->v[off];
}

/* Scalar functions, from their definitions */

static double sigmoid(double x)
{
    return ref_sigmoid(x);
}

/* log(sigmoid(x)) without overflow of exp for either sign of x. */
static double log_sigmoid(double x)
{
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

static double unary(const Node *n, double x)
{
    switch (n->op) {
    case OP_NEG: return -x;
    case OP_SQRT: return sqrt(x);
    case OP_RSQRT: return 1 / sqrt(x);
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SIN: return sin(x);
    case OP_COS: return cos(x);
    case OP_ABS: return fabs(x);
    case OP_SQUARE: return x * x;
    case OP_CLAMP: {
        double lo = attr_lo(n), hi = attr_hi(n);
        return x < lo ? lo : x > hi ? hi : x;
    }
    case OP_RELU: return x > 0 || isnan(x) ? x : 0; /* NaN propagates, as in PyTorch */
    case OP_LEAKY_RELU: return x > 0 ? x : attr_alpha(n) * x;
    case OP_ELU: return x > 0 ? x : attr_alpha(n) * (exp(x) - 1);
    case OP_SIGMOID: return sigmoid(x);
    case OP_TANH: return tanh(x);
    case OP_GELU:
        if (strcmp(attr_approximate(n), "tanh") == 0)
            return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case OP_SILU: return x * sigmoid(x);
    /* PyTorch: log(1 + exp(x)), and x itself above the threshold 20 */
    case OP_SOFTPLUS: return x > 20 ? x : log(1 + exp(x));
    case OP_DROPOUT:
    case OP_DROPOUT2D: return x; /* inference: identity */
    default: return NAN;
    }
}

/* Python's a // b and a % b; integers (i32) divided by 0 give 0 */
static double floor_div(double a, double b, bool integer)
{
    if (integer)
        return b == 0 ? 0 : floor(a / b);
    return floor(a / b);
}

static double remainder_of(double a, double b, bool integer)
{
    if (integer && b == 0)
        return 0;
    double m = fmod(a, b);
    return m != 0 && (m < 0) != (b < 0) ? m + b : m;
}

static double binary(Op op, double a, double b, bool integer)
{
    switch (op) {
    case OP_FLOOR_DIVIDE: return floor_div(a, b, integer);
    case OP_REMAINDER: return remainder_of(a, b, integer);
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_POW: return pow(a, b);
    case OP_MAXIMUM: return a > b ? a : b;
    case OP_MINIMUM: return a < b ? a : b;
    default: return NAN;
    }
}

/* Per-element losses of the pair losses: prediction x, target t. */
static double pair_loss(const Node *n, double x, double t)
{
    double d = x - t, ad = fabs(d);
    switch (n->op) {
    case OP_MSE: return d * d;
    case OP_L1_LOSS: return ad;
    case OP_BINARY_CROSS_ENTROPY:
        /* -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], 1 - sigmoid(x) = sigmoid(-x) */
        return -(t * log_sigmoid(x) + (1 - t) * log_sigmoid(-x));
    case OP_SMOOTH_L1_LOSS: {
        double beta = attr_beta(n);
        if (beta == 0)
            return ad;
        return ad < beta ? 0.5 * d * d / beta : ad - 0.5 * beta;
    }
    case OP_HUBER_LOSS: {
        double delta = attr_delta(n);
        return ad <= delta ? 0.5 * d * d : delta * (ad - 0.5 * delta);
    }
    case OP_KL_DIV:
        /* x holds log-probabilities; t probabilities, or log-probabilities */
        if (attr_log_target(n))
            return exp(t) * (t - x);
        return (t == 0 ? 0 : t * log(t)) - t * x;
    default: return NAN;
    }
}

/* Op families. Each fills out, already allocated with n's shape. */

static void eval_eltwise(const Node *n, RefTensor *const *in, RefTensor *out)
{
    int64_t idx[IR_MAX_RANK] = {0};
    for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx)) {
        double a = bcast_at(in[0], out->rank, idx);
        if (n->nin == 2)
            out->v[k] = binary(n->op, a, bcast_at(in[1], out->rank, idx), n->dtype == DT_I32);
        else
            out->v[k] = unary(n, a);
    }
}

/* softmax / log_softmax along axis: for each position of the other
 * dimensions, exp(x - max) / sum exp(x - max) over the axis. */
static void eval_rowwise(const Node *n, const RefTensor *x, RefTensor *out)
{
    int axis = (int)attr_axis(n);
    int64_t len = x->dim[axis];
    int64_t outer[IR_MAX_RANK];
    memcpy(outer, x->dim, sizeof outer);
    outer[axis] = 1;
    int64_t idx[IR_MAX_RANK] = {0};
    do {
        int64_t j[IR_MAX_RANK];
        memcpy(j, idx, sizeof j);
        double m = -INFINITY;
        for (j[axis] = 0; j[axis] < len; j[axis]++)
            m = fmax(m, x->v[offset_of(x, j)]);
        double s = 0;
        for (j[axis] = 0; j[axis] < len; j[axis]++)
            s += exp(x->v[offset_of(x, j)] - m);
        for (j[axis] = 0; j[axis] < len; j[axis]++) {
            double xi = x->v[offset_of(x, j)] - m;
            out->v[offset_of(out, j)] = n->op == OP_SOFTMAX ? exp(xi) / s : xi - log(s);
        }
    } while (next_index(x->rank, outer, idx));
}

/* NumPy matmul: a 1-D left operand is a row [1, K], a 1-D right operand a
 * column [K, 1] (the added dimension is not in the result); leading
 * dimensions broadcast. ta (tb): a (b) is stored with its last two
 * dimensions swapped, so element (i, p) of the product's a is at (p, i). */
static void eval_matmul(const Node *n, const RefTensor *a, const RefTensor *b, RefTensor *out)
{
    bool ta = ir_matmul_trans(n, 0), tb = ir_matmul_trans(n, 1);
    bool row = a->rank == 1, col = b->rank == 1;
    int64_t K = a->dim[a->rank - 1 - ta];
    int abatch = row ? 0 : a->rank - 2, bbatch = col ? 0 : b->rank - 2;
    int obatch = out->rank - !row - !col;
    int64_t idx[IR_MAX_RANK] = {0};
    for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx)) {
        int64_t i = row ? 0 : idx[obatch], j = col ? 0 : idx[out->rank - 1];
        /* the operands' batch offsets, broadcasting size-1 dimensions */
        int64_t ia[IR_MAX_RANK], ib[IR_MAX_RANK];
        for (int d = 0; d < abatch; d++)
            ia[d] = a->dim[d] == 1 ? 0 : idx[obatch - abatch + d];
        for (int d = 0; d < bbatch; d++)
            ib[d] = b->dim[d] == 1 ? 0 : idx[obatch - bbatch + d];
        double s = 0;
        for (int64_t p = 0; p < K; p++) {
            if (row) {
                ia[0] = p;
            } else {
                ia[abatch + ta] = i;
                ia[abatch + !ta] = p;
            }
            if (col) {
                ib[0] = p;
            } else {
                ib[bbatch + tb] = p;
                ib[bbatch + !tb] = j;
            }
            s += a->v[offset_of(a, ia)] * b->v[offset_of(b, ib)];
        }
        out->v[k] = s;
    }
}

/* sum, mean, max, min, var over the listed axes (canonical: sorted,
 * non-negative), keepdims or not. */
static void eval_reduce(const Node *n, const RefTensor *x, RefTensor *out)
{
    AttrInts ax = attr_axes(n);
    bool red[IR_MAX_RANK] = {0};
    for (int i = 0; i < ax.n; i++)
        red[ax.v[i].n] = true;
    /* the reduced sub-box and the kept positions */
    int64_t inner[IR_MAX_RANK], outer[IR_MAX_RANK];
    int64_t count = 1;
    for (int i = 0; i < x->rank; i++) {
        inner[i] = red[i] ? x->dim[i] : 1;
        outer[i] = red[i] ? 1 : x->dim[i];
        count *= inner[i];
    }
    int64_t o[IR_MAX_RANK] = {0};
    int64_t k = 0;
    do {
        double acc = n->op == OP_MAX ? -INFINITY : n->op == OP_MIN ? INFINITY : 0;
        double mean = 0;
        if (n->op == OP_VAR) {
            int64_t r[IR_MAX_RANK] = {0}, j[IR_MAX_RANK];
            do {
                for (int i = 0; i < x->rank; i++)
                    j[i] = o[i] + r[i];
                mean += x->v[offset_of(x, j)];
            } while (next_index(x->rank, inner, r));
            mean /= (double)count;
        }
        int64_t r[IR_MAX_RANK] = {0}, j[IR_MAX_RANK];
        do {
            for (int i = 0; i < x->rank; i++)
                j[i] = o[i] + r[i];
            double v = x->v[offset_of(x, j)];
            switch (n->op) {
            case OP_MAX: acc = v > acc ? v : acc; break;
            case OP_MIN: acc = v < acc ? v : acc; break;
            case OP_VAR: acc += (v - mean) * (v - mean); break;
            default: acc += v; break;
            }
        } while (next_index(x->rank, inner, r));
        if (n->op == OP_MEAN)
            acc /= (double)count;
        else if (n->op == OP_VAR)
            acc /= (double)(count - attr_correction(n));
        /* kept positions come in row-major order, with or without keepdims */
        out->v[k++] = acc;
    } while (next_index(x->rank, outer, o));
}

/* argmax: the first index of the largest element along axis, or of the
 * flattened tensor without an axis. */
static void eval_argmax(const Node *n, const RefTensor *x, RefTensor *out)
{
    if (!attr_has_axis(n)) {
        int64_t best = 0;
        for (int64_t i = 1; i < x->count; i++)
            if (x->v[i] > x->v[best])
                best = i;
        out->v[0] = (double)best;
        return;
    }
    int axis = (int)attr_axis(n);
    int64_t outer[IR_MAX_RANK];
    memcpy(outer, x->dim, sizeof outer);
    outer[axis] = 1;
    int64_t o[IR_MAX_RANK] = {0};
    int64_t k = 0;
    do {
        int64_t j[IR_MAX_RANK];
        memcpy(j, o, sizeof j);
        int64_t best = 0;
        double bv = -INFINITY;
        for (j[axis] = 0; j[axis] < x->dim[axis]; j[axis]++) {
            double v = x->v[offset_of(x, j)];
            if (j[axis] == 0 || v > bv) {
                bv = v;
                best = j[axis];
            }
        }
        out->v[k++] = (double)best;
    } while (next_index(x->rank, outer, o));
}

static void eval_transpose(const Node *n, const RefTensor *x, RefTensor *out)
{
    AttrInts p = attr_perm(n);
    int64_t idx[IR_MAX_RANK] = {0}, j[IR_MAX_RANK];
    for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx)) {
        /* result dimension i is input dimension perm[i] */
        for (int i = 0; i < out->rank; i++)
            j[p.v[i].n] = idx[i];
        out->v[k] = x->v[offset_of(x, j)];
    }
}

static void eval_concat(const Node *n, RefTensor *const *in, RefTensor *out)
{
    int axis = (int)attr_axis(n);
    int64_t idx[IR_MAX_RANK] = {0}, j[IR_MAX_RANK];
    for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx)) {
        memcpy(j, idx, sizeof j);
        int t = 0;
        while (j[axis] >= in[t]->dim[axis]) {
            j[axis] -= in[t]->dim[axis];
            t++;
        }
        out->v[k] = in[t]->v[offset_of(in[t], j)];
    }
}

static void eval_stack(const Node *n, RefTensor *const *in, RefTensor *out)
{
    int axis = (int)attr_axis(n);
    int64_t idx[IR_MAX_RANK] = {0}, j[IR_MAX_RANK];
    for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx)) {
        /* drop the new axis from the index; its value picks the input */
        for (int i = 0, d = 0; i < out->rank; i++)
            if (i != axis)
                j[d++] = idx[i];
        const RefTensor *x = in[idx[axis]];
        out->v[k] = x->v[offset_of(x, j)];
    }
}

static void eval_one_hot(const RefTensor *y, RefTensor *out)
{
    int64_t idx[IR_MAX_RANK] = {0};
    for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx)) {
        double label = y->v[offset_of(y, idx)]; /* y's index: all but the last */
        out->v[k] = label == (double)idx[out->rank - 1] ? 1 : 0;
    }
}

/* Canonical slice attributes (passes/shape_layout.c): begin, end, step per
 * input dimension, end the tight bound past the last element (none when a
 * negative step ends at element 0); squeeze lists the dimensions picked by
 * one index. The selected part has, per non-squeezed dimension, the
 * elements begin + i*step. Fills begin/step/len per input dimension. */
static bool slice_ranges(const Node *n, const RefTensor *x, int64_t batch, int64_t *begin,
                         int64_t *step, int64_t *len, bool *squeezed, char *err, size_t errsize)
{
    AttrInts ab = attr_begin(n), ae = attr_end(n), as = attr_step(n), aq = attr_squeeze(n);
    if (ab.n != x->rank || ae.n != x->rank || as.n != x->rank) {
        snprintf(err, errsize,
                 "%%%d %s: slice attributes are not canonical (%d bounds for "
                 "rank %d)",
                 n->id, op_info[n->op].text, ab.n, x->rank);
        return false;
    }
    for (int i = 0; i < x->rank; i++)
        squeezed[i] = false;
    for (int i = 0; i < aq.n; i++)
        squeezed[aq.v[i].n] = true;
    for (int i = 0; i < x->rank; i++) {
        Dim b = ab.v[i], e = ae.v[i], s = as.v[i];
        begin[i] = b.batch ? b.n * batch : b.n;
        step[i] = s.batch ? s.n * batch : s.n;
        int64_t last; /* index of the last element taken */
        if (e.n == IR_NONE)
            last = 0;
        else if (step[i] > 0)
            last = (e.batch ? e.n * batch : e.n) - 1;
        else
            last = (e.batch ? e.n * batch : e.n) + 1;
        len[i] = step[i] == 0 ? 0 : (last - begin[i]) / step[i] + 1;
        if (step[i] == 0 || len[i] < 1 || begin[i] < 0 || begin[i] >= x->dim[i] || last < 0 ||
            last >= x->dim[i] || (squeezed[i] && len[i] != 1)) {
            snprintf(err, errsize, "%%%d %s: bad canonical bounds in dimension %d", n->id,
                     op_info[n->op].text, i);
            return false;
        }
    }
    return true;
}

/* Maps an index of the selected part (squeezed dimensions absent) to the
 * input index it reads or writes. */
static void slice_index(int rank, const int64_t *begin, const int64_t *step, const bool *squeezed,
                        const int64_t *part, int64_t *j)
{
    for (int i = 0, d = 0; i < rank; i++)
        j[i] = squeezed[i] ? begin[i] : begin[i] + step[i] * part[d++];
}

static bool eval_slice(const Node *n, RefTensor *const *in, int64_t batch, RefTensor *out,
                       char *err, size_t errsize)
{
    const RefTensor *x = in[0];
    int64_t begin[IR_MAX_RANK], step[IR_MAX_RANK], len[IR_MAX_RANK];
    bool sq[IR_MAX_RANK];
    if (!slice_ranges(n, x, batch, begin, step, len, sq, err, errsize))
        return false;
    int64_t part[IR_MAX_RANK];
    int prank = 0;
    for (int i = 0; i < x->rank; i++)
        if (!sq[i])
            part[prank++] = len[i];
    bool same = n->op == OP_SLICE ? prank == out->rank : true;
    for (int i = 0; same && n->op == OP_SLICE && i < prank; i++)
        same = part[i] == out->dim[i];
    if (!same) {
        snprintf(err, errsize, "%%%d slice: bounds disagree with the result's shape", n->id);
        return false;
    }
    int64_t idx[IR_MAX_RANK] = {0}, j[IR_MAX_RANK];
    if (n->op == OP_SLICE) {
        for (int64_t k = 0; k < out->count; k++, next_index(prank, part, idx)) {
            slice_index(x->rank, begin, step, sq, idx, j);
            out->v[k] = x->v[offset_of(x, j)];
        }
        return true;
    }
    /* slice_update: a copy of x with the part replaced by the value,
     * broadcast to the part's shape */
    memcpy(out->v, x->v, (size_t)x->count * sizeof(double));
    int64_t pcount = 1;
    for (int i = 0; i < prank; i++)
        pcount *= part[i];
    for (int64_t k = 0; k < pcount; k++, next_index(prank, part, idx)) {
        slice_index(x->rank, begin, step, sq, idx, j);
        out->v[offset_of(out, j)] = bcast_at(in[1], prank, idx);
    }
    return true;
}

/* Reduces per-element losses l (count m) as the reduction attribute says
 * (batchmean: the sum over the batch, the inputs' dimension 0);
 * "none" keeps them (out has their shape). */
static void reduce_loss(const Node *n, const double *l, int64_t m, int64_t batch, RefTensor *out)
{
    const char *r = attr_reduction(n);
    if (strcmp(r, "none") == 0) {
        memcpy(out->v, l, (size_t)m * sizeof(double));
        return;
    }
    double s = 0;
    for (int64_t i = 0; i < m; i++)
        s += l[i];
    if (strcmp(r, "batchmean") == 0)
        s /= (double)batch;
    out->v[0] = strcmp(r, "mean") == 0 ? s / (double)m : s;
}

/* cross_entropy / nll_loss / multi_margin_loss: scores [N, C, d...] (or
 * [C]) and labels [N, d...] (or a scalar); the loss of one element is
 * -log_softmax(x)[y] along the class dimension (-x[y] for nll_loss, the
 * mean over j != y of max(0, margin - x[y] + x[j])^p for the margin loss).
 * cross_entropy's soft targets q, of the scores' shape, give
 * -sum_j q[j] log_softmax(x)[j]. */
static bool eval_class_loss(const Node *n, const RefTensor *x, const RefTensor *y, RefTensor *out,
                            char *err, size_t errsize)
{
    int cdim = x->rank == 1 ? 0 : 1;
    int64_t C = x->dim[cdim];
    bool soft = y->dtype != DT_I32;
    /* labels equal to ignore_index: loss 0, and not counted in the mean */
    bool ignoring = !soft && attr_has_ignore_index(n);
    int64_t kept = 0;
    /* the per-element index space: the scores' without the class dimension */
    int prank = 0;
    int64_t pdim[IR_MAX_RANK], count = x->count / C;
    for (int i = 0; i < x->rank; i++)
        if (i != cdim)
            pdim[prank++] = x->dim[i];
    double *l = calloc((size_t)count, sizeof(double));
    if (!l)
        abort();
    int64_t idx[IR_MAX_RANK] = {0};
    for (int64_t k = 0; k < count; k++, next_index(prank, pdim, idx)) {
        /* the scores' index: the element's index with the class dim inserted */
        int64_t j[IR_MAX_RANK];
        for (int i = 0, d = 0; i < x->rank; i++)
            j[i] = i == cdim ? 0 : idx[d++];
        double m = -INFINITY;
        for (j[cdim] = 0; j[cdim] < C; j[cdim]++)
            m = fmax(m, x->v[offset_of(x, j)]);
        double s = 0;
        for (j[cdim] = 0; j[cdim] < C; j[cdim]++)
            s += exp(x->v[offset_of(x, j)] - m);
        double lse = m + log(s);
        if (soft) {
            l[k] = 0;
            for (j[cdim] = 0; j[cdim] < C; j[cdim]++)
                l[k] -= y->v[offset_of(y, j)] * (x->v[offset_of(x, j)] - lse);
            continue;
        }
        double label = y->v[k];
        if (ignoring && label == (double)attr_ignore_index(n)) {
            l[k] = 0;
            continue;
        }
        kept++;
        if (!(label >= 0 && label < (double)C)) {
            snprintf(err, errsize, "%%%d %s: label %g out of range 0..%lld", n->id,
                     op_info[n->op].text, label, (long long)C - 1);
            free(l);
            return false;
        }
        j[cdim] = (int64_t)label;
        double xy = x->v[offset_of(x, j)];
        if (n->op == OP_MULTI_MARGIN_LOSS) {
            double sum = 0;
            for (j[cdim] = 0; j[cdim] < C; j[cdim]++) {
                double h = fmax(0, attr_margin(n) - xy + x->v[offset_of(x, j)]);
                if (j[cdim] != (int64_t)label)
                    sum += attr_p(n) == 2 ? h * h : h;
            }
            l[k] = sum / (double)C;
        } else {
            l[k] = n->op == OP_NLL_LOSS ? -xy : lse - xy;
        }
    }
    if (ignoring && strcmp(attr_reduction(n), "mean") == 0) {
        double sum = 0;
        for (int64_t k = 0; k < count; k++)
            sum += l[k];
        out->v[0] = sum / (double)kept; /* every label ignored: 0/0, NaN */
    } else {
        reduce_loss(n, l, count, x->rank ? x->dim[0] : 1, out);
    }
    free(l);
    return true;
}

static void eval_pair_loss(const Node *n, const RefTensor *x, const RefTensor *t, RefTensor *out)
{
    double *l = calloc((size_t)x->count, sizeof(double));
    if (!l)
        abort();
    for (int64_t k = 0; k < x->count; k++)
        l[k] = pair_loss(n, x->v[k], t->v[k]);
    reduce_loss(n, l, x->count, x->rank ? x->dim[0] : 1, out);
    free(l);
}

/* Sequence ops */

/* embedding: out[..., :] = table[id, :]; an id outside 0..V-1 gives a zero
 * row (dlc's documented choice). */
static void eval_embedding(const RefTensor *ids, const RefTensor *table, RefTensor *out)
{
    int64_t V = table->dim[0], D = table->dim[1];
    for (int64_t k = 0; k < ids->count; k++) {
        double id = ids->v[k];
        if (!(id >= 0 && id < (double)V))
            continue; /* out is zero-filled */
        for (int64_t j = 0; j < D; j++)
            out->v[k * D + j] = table->v[(int64_t)id * D + j];
    }
}

double *ref_calloc(int64_t n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p)
        abort();
    return p;
}

/* attention: softmax(q k^T / sqrt(d)) v per batch and head; with causal,
 * key j > query i is left out (weight 0), and so is every key where the
 * mask (broadcast to [B, heads, T, S]) is 0; a query with no key left
 * gives 0. */
static void eval_attention(const Node *n, const RefTensor *q, const RefTensor *k,
                           const RefTensor *v, const RefTensor *mask, RefTensor *out)
{
    bool causal = attr_causal(n);
    int64_t BH = q->dim[0] * q->dim[1], T = q->dim[2], S = k->dim[2], D = q->dim[3];
    int64_t DV = v ? v->dim[3] : 0;
    double *s = ref_calloc(S);
    for (int64_t bh = 0; bh < BH; bh++) {
        for (int64_t i = 0; i < T; i++) {
            double m = -INFINITY;
            for (int64_t j = 0; j < S; j++) {
                double dot = 0;
                for (int64_t e = 0; e < D; e++)
                    dot += q->v[(bh * T + i) * D + e] * k->v[(bh * S + j) * D + e];
                int64_t at[4] = {bh / q->dim[1], bh % q->dim[1], i, j};
                bool off = (causal && j > i) || (mask && bcast_at(mask, 4, at) == 0);
                s[j] = off ? -INFINITY : dot / sqrt((double)D);
                m = fmax(m, s[j]);
            }
            double z = 0;
            for (int64_t j = 0; j < S; j++) {
                s[j] = m == -INFINITY ? 0 : exp(s[j] - m);
                z += s[j];
            }
            /* attention_probs (v NULL): the weights themselves */
            for (int64_t j = 0; j < S && !v; j++)
                out->v[(bh * T + i) * S + j] = z > 0 ? s[j] / z : 0;
            for (int64_t e = 0; e < DV; e++) {
                double acc = 0;
                for (int64_t j = 0; j < S; j++)
                    acc += z > 0 ? s[j] / z * v->v[(bh * S + j) * DV + e] : 0;
                out->v[(bh * T + i) * DV + e] = acc;
            }
        }
    }
    free(s);
}

/* gather: out[i] = x[i with i[axis] = idx[i]], 0 for an index outside
 * 0..n-1; gather_grad(x, idx, dy): dy[i] added at that position of zeros
 * of x's shape. Both broadcast idx and x (size-1 dimensions) to the
 * result of the gather. */
static void eval_gather(const Node *n, RefTensor *const *in, RefTensor *out)
{
    const RefTensor *x = in[0], *idx = in[1];
    bool scatter = n->op == OP_GATHER_GRAD;
    const RefTensor *r = scatter ? in[2] : out;
    int axis = (int)attr_axis(n);
    int64_t i[IR_MAX_RANK] = {0}, xi[IR_MAX_RANK];
    for (int64_t k = 0; k < r->count; k++, next_index(r->rank, r->dim, i)) {
        int64_t j = (int64_t)bcast_at(idx, r->rank, i);
        for (int d = 0; d < r->rank; d++)
            xi[d] = x->dim[d] == 1 && d != axis ? 0 : i[d];
        bool ok = j >= 0 && j < x->dim[axis];
        xi[axis] = ok ? j : 0;
        if (scatter) {
            if (ok)
                out->v[offset_of(x, xi)] += r->v[k];
        } else {
            out->v[k] = ok ? x->v[offset_of(x, xi)] : 0;
        }
    }
}

/* take: out[a, i, b] = x[a, ids[i], b] for the multi-indices a before the
 * axis, i of ids and b after it, 0 for an id outside 0..n-1; take_grad(x,
 * ids, dy): dy[a, i, b] added at x[a, ids[i], b] of zeros of x's shape. */
static void eval_take(const Node *n, RefTensor *const *in, RefTensor *out)
{
    const RefTensor *x = in[0], *ids = in[1];
    bool scatter = n->op == OP_TAKE_GRAD;
    const RefTensor *r = scatter ? in[2] : out;
    int axis = (int)attr_axis(n), ri = ids->rank;
    int64_t i[IR_MAX_RANK] = {0}, xi[IR_MAX_RANK];
    for (int64_t k = 0; k < r->count; k++, next_index(r->rank, r->dim, i)) {
        int64_t id = 0;
        for (int d = 0; d < ri; d++)
            id = id * ids->dim[d] + i[axis + d];
        double j = ids->v[id];
        for (int d = 0; d < x->rank; d++)
            xi[d] = d < axis ? i[d] : d > axis ? i[d + ri - 1] : 0;
        bool ok = j >= 0 && j < (double)x->dim[axis];
        xi[axis] = ok ? (int64_t)j : 0;
        if (scatter) {
            if (ok)
                out->v[offset_of(x, xi)] += r->v[k];
        } else {
            out->v[k] = ok ? x->v[offset_of(x, xi)] : 0;
        }
    }
}

/* Backward primitives (the internal ops autodiff builds, ops.def) */

/* Elementwise, with broadcasting: comparisons give 1 where true, else 0
 * (false for NaN); sign is (x > 0) - (x < 0); cast to i32 truncates toward
 * zero, saturating at the i32 range, NaN giving 0; cast to a float type
 * is the identity (the reference holds every value in double).
 * gelu_grad(x, dy) = dy * gelu'(x): Phi(x) + x phi(x), or with tanh,
 * 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2) for t = tanh(k (x + c x^3));
 * elu_grad(x, dy) = dy for x > 0, else dy * alpha * exp(x). */
static double backward_scalar(const Node *n, double x, double dy)
{
    switch (n->op) {
    case OP_GT: return x > dy;
    case OP_GE: return x >= dy;
    case OP_LT: return x < dy;
    case OP_LE: return x <= dy;
    case OP_EQ: return x == dy;
    case OP_NE: return x != dy;
    case OP_SIGN: return (x > 0) - (x < 0);
    case OP_STEP: return x > 0;
    case OP_STOP_GRADIENT: return x;
    case OP_CAST: {
        const char *to = attr_to(n);
        if (strcmp(to, "f16") == 0 || strcmp(to, "bf16") == 0)
            return half_ref_quantize(to[0] == 'b', x);
        if (strcmp(to, "i32") == 0)
            return isnan(x)         ? 0
                   : x <= INT32_MIN ? INT32_MIN
                   : x >= INT32_MAX ? INT32_MAX
                                    : trunc(x);
        return x; /* like every f32 value here, not rounded to f32 */
    }
    case OP_GELU_GRAD: {
        if (strcmp(attr_approximate(n), "tanh") == 0) {
            double k = sqrt(2 / M_PI), c = 0.044715, t = tanh(k * (x + c * x * x * x));
            return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x));
        }
        double cdf = 0.5 * (1 + erf(x / sqrt(2.0))), pdf = exp(-x * x / 2) / sqrt(2 * M_PI);
        return dy * (cdf + x * pdf);
    }
    case OP_ELU_GRAD: return x > 0 ? dy : dy * attr_alpha(n) * exp(x);
    default: return NAN;
    }
}

static void eval_backward_eltwise(const Node *n, RefTensor *const *in, RefTensor *out)
{
    int64_t idx[IR_MAX_RANK] = {0};
    for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx))
        out->v[k] = backward_scalar(n, bcast_at(in[0], out->rank, idx),
                                    n->nin == 2 ? bcast_at(in[1], out->rank, idx) : 0);
}

/* The evaluator of each op: the one table to extend with a new op (and, for
 * an elementwise one, unary(), binary() or pair_loss()). R_NONE: the
 * reference does not evaluate the op (the sources, which hold given
 * values, and the OPF_REPLAY ops, which need the training step's draws). */
typedef enum {
    R_NONE,
    R_CONST,
    R_ELTWISE,
    R_ROWWISE,
    R_MATMUL,
    R_REDUCE,
    R_ARGMAX,
    R_COPY,
    R_TRANSPOSE,
    R_CONCAT,
    R_STACK,
    R_BROADCAST,
    R_ZEROS,
    R_ONES,
    R_ONE_HOT,
    R_SLICE,
    R_CLASS_LOSS,
    R_PAIR_LOSS,
    R_CONV,
    R_CONV_TRANSPOSE,
    R_POOL,
    R_GLOBAL_POOL,
    R_BATCH_NORM,
    R_BATCH_NORM_GRAD,
    R_LAYER_NORM,
    R_LAYER_NORM_GRAD,
    R_EMBEDDING,
    R_RECURRENT,
    R_ATTENTION,
    R_ATTENTION_PROBS,
    R_BACKWARD_ELTWISE,
    R_CONV_GRAD,
    R_POOL_GRAD,
    R_ADAPTIVE_POOL,
    R_UPSAMPLE,
    R_RECURRENT_GRAD,
    R_WHERE,
    R_GATHER,
    R_TAKE,
    R_REVERSE_SEQUENCE,
    R_TRIL,
    R_ARANGE,
    R_EYE,
    R_LOOP,
    R_LOOP_RESULT,
} Rule;

static const Rule rules[OP_COUNT] = {
    [OP_CONST] = R_CONST,
    [OP_ADD] = R_ELTWISE,
    [OP_SUB] = R_ELTWISE,
    [OP_MUL] = R_ELTWISE,
    [OP_DIV] = R_ELTWISE,
    [OP_POW] = R_ELTWISE,
    [OP_FLOOR_DIVIDE] = R_ELTWISE,
    [OP_REMAINDER] = R_ELTWISE,
    [OP_MAXIMUM] = R_ELTWISE,
    [OP_MINIMUM] = R_ELTWISE,
    [OP_NEG] = R_ELTWISE,
    [OP_SQRT] = R_ELTWISE,
    [OP_RSQRT] = R_ELTWISE,
    [OP_EXP] = R_ELTWISE,
    [OP_LOG] = R_ELTWISE,
    [OP_ABS] = R_ELTWISE,
    [OP_SQUARE] = R_ELTWISE,
    [OP_CLAMP] = R_ELTWISE,
    [OP_RELU] = R_ELTWISE,
    [OP_LEAKY_RELU] = R_ELTWISE,
    [OP_ELU] = R_ELTWISE,
    [OP_SIGMOID] = R_ELTWISE,
    [OP_TANH] = R_ELTWISE,
    [OP_GELU] = R_ELTWISE,
    [OP_SILU] = R_ELTWISE,
    [OP_SOFTPLUS] = R_ELTWISE,
    [OP_DROPOUT] = R_ELTWISE,
    [OP_DROPOUT2D] = R_ELTWISE,
    [OP_SOFTMAX] = R_ROWWISE,
    [OP_LOG_SOFTMAX] = R_ROWWISE,
    [OP_MATMUL] = R_MATMUL,
    [OP_SUM] = R_REDUCE,
    [OP_MEAN] = R_REDUCE,
    [OP_MAX] = R_REDUCE,
    [OP_MIN] = R_REDUCE,
    [OP_VAR] = R_REDUCE,
    [OP_ARGMAX] = R_ARGMAX,
    [OP_RESHAPE] = R_COPY,
    [OP_FLATTEN] = R_COPY,
    [OP_TRANSPOSE] = R_TRANSPOSE,
    [OP_CONCAT] = R_CONCAT,
    [OP_STACK] = R_STACK,
    [OP_BROADCAST_TO] = R_BROADCAST,
    [OP_ZEROS] = R_ZEROS,
    [OP_ONES] = R_ONES,
    [OP_ONE_HOT] = R_ONE_HOT,
    [OP_SLICE] = R_SLICE,
    [OP_SLICE_UPDATE] = R_SLICE,
    [OP_CROSS_ENTROPY] = R_CLASS_LOSS,
    [OP_NLL_LOSS] = R_CLASS_LOSS,
    [OP_MULTI_MARGIN_LOSS] = R_CLASS_LOSS,
    [OP_KL_DIV] = R_PAIR_LOSS,
    [OP_BINARY_CROSS_ENTROPY] = R_PAIR_LOSS,
    [OP_MSE] = R_PAIR_LOSS,
    [OP_L1_LOSS] = R_PAIR_LOSS,
    [OP_SMOOTH_L1_LOSS] = R_PAIR_LOSS,
    [OP_HUBER_LOSS] = R_PAIR_LOSS,
    [OP_CONV2D] = R_CONV,
    [OP_CONV1D] = R_CONV,
    [OP_CONV3D] = R_CONV,
    [OP_CONV_TRANSPOSE2D] = R_CONV_TRANSPOSE,
    [OP_CONV_TRANSPOSE1D] = R_CONV_TRANSPOSE,
    [OP_MAX_POOL2D] = R_POOL,
    [OP_AVG_POOL2D] = R_POOL,
    [OP_MAX_POOL1D] = R_POOL,
    [OP_AVG_POOL1D] = R_POOL,
    [OP_MAX_POOL3D] = R_POOL,
    [OP_AVG_POOL3D] = R_POOL,
    [OP_LP_POOL2D] = R_POOL,
    [OP_STOCHASTIC_POOL2D] = R_POOL,
    [OP_GLOBAL_AVG_POOL] = R_GLOBAL_POOL,
    [OP_GLOBAL_MAX_POOL] = R_GLOBAL_POOL,
    [OP_ADAPTIVE_AVG_POOL2D] = R_ADAPTIVE_POOL,
    [OP_ADAPTIVE_MAX_POOL2D] = R_ADAPTIVE_POOL,
    [OP_ADAPTIVE_AVG_POOL2D_GRAD] = R_ADAPTIVE_POOL,
    [OP_ADAPTIVE_MAX_POOL2D_GRAD] = R_ADAPTIVE_POOL,
    [OP_UPSAMPLE] = R_UPSAMPLE,
    [OP_UPSAMPLE_GRAD] = R_UPSAMPLE,
    [OP_BATCH_NORM] = R_BATCH_NORM,
    [OP_BATCH_NORM_GRAD_STATS] = R_BATCH_NORM_GRAD,
    [OP_BATCH_NORM_GRAD] = R_BATCH_NORM_GRAD,
    [OP_LAYER_NORM_STATS] = R_LAYER_NORM_GRAD,
    [OP_LAYER_NORM_GRAD] = R_LAYER_NORM_GRAD,
    [OP_LAYER_NORM] = R_LAYER_NORM,
    [OP_EMBEDDING] = R_EMBEDDING,
    [OP_RNN] = R_RECURRENT,
    [OP_LSTM] = R_RECURRENT,
    [OP_GRU] = R_RECURRENT,
    [OP_RNN_PACKED] = R_RECURRENT,
    [OP_LSTM_PACKED] = R_RECURRENT,
    [OP_GRU_PACKED] = R_RECURRENT,
    [OP_ATTENTION] = R_ATTENTION,
    [OP_SIN] = R_ELTWISE,
    [OP_COS] = R_ELTWISE,
    [OP_GT] = R_BACKWARD_ELTWISE,
    [OP_GE] = R_BACKWARD_ELTWISE,
    [OP_LT] = R_BACKWARD_ELTWISE,
    [OP_LE] = R_BACKWARD_ELTWISE,
    [OP_EQ] = R_BACKWARD_ELTWISE,
    [OP_NE] = R_BACKWARD_ELTWISE,
    [OP_SIGN] = R_BACKWARD_ELTWISE,
    [OP_STEP] = R_BACKWARD_ELTWISE,
    [OP_STOP_GRADIENT] = R_BACKWARD_ELTWISE,
    [OP_WHERE] = R_WHERE,
    [OP_GATHER] = R_GATHER,
    [OP_GATHER_GRAD] = R_GATHER,
    [OP_TAKE] = R_TAKE,
    [OP_TAKE_GRAD] = R_TAKE,
    [OP_REVERSE_SEQUENCE] = R_REVERSE_SEQUENCE,
    [OP_TRIL] = R_TRIL,
    [OP_TRIU] = R_TRIL,
    [OP_ARANGE] = R_ARANGE,
    [OP_EYE] = R_EYE,
    [OP_ATTENTION_MASKED] = R_ATTENTION,
    [OP_ATTENTION_PROBS] = R_ATTENTION_PROBS,
    [OP_ATTENTION_PROBS_MASKED] = R_ATTENTION_PROBS,
    [OP_CAST] = R_BACKWARD_ELTWISE,
    [OP_GELU_GRAD] = R_BACKWARD_ELTWISE,
    [OP_ELU_GRAD] = R_BACKWARD_ELTWISE,
    [OP_CONV_GRAD_INPUT] = R_CONV_GRAD,
    [OP_CONV_GRAD_WEIGHT] = R_CONV_GRAD,
    [OP_MAX_POOL2D_GRAD] = R_POOL_GRAD,
    [OP_AVG_POOL2D_GRAD] = R_POOL_GRAD,
    [OP_RNN_GRAD] = R_RECURRENT_GRAD,
    [OP_LSTM_GRAD] = R_RECURRENT_GRAD,
    [OP_GRU_GRAD] = R_RECURRENT_GRAD,
    [OP_RNN_PACKED_GRAD] = R_RECURRENT_GRAD,
    [OP_LSTM_PACKED_GRAD] = R_RECURRENT_GRAD,
    [OP_GRU_PACKED_GRAD] = R_RECURRENT_GRAD,
    [OP_LOOP] = R_LOOP,
    [OP_LOOP_RESULT] = R_LOOP_RESULT,
};

bool ref_supports(Op op)
{
    return op >= 0 && op < OP_COUNT && rules[op] != R_NONE;
}

/* One node; out allocated with its shape. */
static bool eval_node(const Node *n, RefTensor *values, int64_t batch, char *err, size_t errsize)
{
    RefTensor *in[64];
    if (n->nin > (int)(sizeof in / sizeof in[0])) {
        snprintf(err, errsize, "%%%d %s: too many inputs for the reference", n->id,
                 op_info[n->op].text);
        return false;
    }
    for (int i = 0; i < n->nin; i++) {
        in[i] = &values[n->in[i]->id];
        if (!in[i]->v) {
            snprintf(err, errsize, "%%%d %s: input %%%d has no value", n->id, op_info[n->op].text,
                     n->in[i]->id);
            return false;
        }
    }
    RefTensor *out = &values[n->id];
    ref_tensor_alloc(out, n, batch);
    switch (rules[n->op]) {
    case R_CONST: out->v[0] = attr_value(n); return true;
    case R_ELTWISE: eval_eltwise(n, in, out); return true;
    case R_ROWWISE: eval_rowwise(n, in[0], out); return true;
    case R_MATMUL: eval_matmul(n, in[0], in[1], out); return true;
    case R_REDUCE: eval_reduce(n, in[0], out); return true;
    case R_ARGMAX: eval_argmax(n, in[0], out); return true;
    case R_COPY:
        /* row-major order is unchanged */
        memcpy(out->v, in[0]->v, (size_t)out->count * sizeof(double));
        return true;
    case R_TRANSPOSE: eval_transpose(n, in[0], out); return true;
    case R_CONCAT: eval_concat(n, in, out); return true;
    case R_STACK: eval_stack(n, in, out); return true;
    case R_BROADCAST: {
        int64_t idx[IR_MAX_RANK] = {0};
        for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx))
            out->v[k] = bcast_at(in[0], out->rank, idx);
        return true;
    }
    case R_ZEROS: return true;
    case R_ONES:
        for (int64_t k = 0; k < out->count; k++)
            out->v[k] = 1;
        return true;
    case R_ONE_HOT: eval_one_hot(in[0], out); return true;
    case R_SLICE: return eval_slice(n, in, batch, out, err, errsize);
    case R_CLASS_LOSS: return eval_class_loss(n, in[0], in[1], out, err, errsize);
    case R_PAIR_LOSS: eval_pair_loss(n, in[0], in[1], out); return true;
    case R_CONV: ref_conv(n, in[0], in[1], out); return true;
    case R_CONV_TRANSPOSE: ref_conv_transpose(n, in[0], in[1], out); return true;
    case R_POOL: ref_pool(n, in[0], out); return true;
    case R_GLOBAL_POOL: ref_global_pool(n, in[0], out); return true;
    case R_BATCH_NORM: ref_batch_norm(n, in, out); return true;
    case R_BATCH_NORM_GRAD: ref_batch_norm_grad(n, in, out); return true;
    case R_LAYER_NORM: ref_layer_norm(n, in, out); return true;
    case R_LAYER_NORM_GRAD: ref_layer_norm_grad(n, in, out); return true;
    case R_EMBEDDING: eval_embedding(in[0], in[1], out); return true;
    case R_RECURRENT: ref_recurrent(n, in, out); return true;
    case R_RECURRENT_GRAD: ref_recurrent_grad(n, in, out); return true;
    case R_ATTENTION:
        eval_attention(n, in[0], in[1], in[2], n->nin > 3 ? in[3] : NULL, out);
        return true;
    case R_ATTENTION_PROBS:
        eval_attention(n, in[0], in[1], NULL, n->nin > 2 ? in[2] : NULL, out);
        return true;
    case R_WHERE: {
        int64_t idx[IR_MAX_RANK] = {0};
        for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx))
            out->v[k] = bcast_at(in[0], out->rank, idx) != 0 ? bcast_at(in[1], out->rank, idx)
                                                             : bcast_at(in[2], out->rank, idx);
        return true;
    }
    case R_GATHER: eval_gather(n, in, out); return true;
    case R_TAKE: eval_take(n, in, out); return true;
    case R_REVERSE_SEQUENCE: ref_reverse_sequence(in, out); return true;
    case R_TRIL: {
        int64_t idx[IR_MAX_RANK] = {0}, r = out->rank;
        int64_t diag = attr_diagonal(n);
        for (int64_t k = 0; k < out->count; k++, next_index(out->rank, out->dim, idx)) {
            int64_t off = idx[r - 1] - idx[r - 2];
            bool keep = n->op == OP_TRIL ? off <= diag : off >= diag;
            out->v[k] = keep ? in[0]->v[k] : 0;
        }
        return true;
    }
    case R_ARANGE: {
        double start = attr_has_end_f(n) ? attr_start(n) : 0;
        for (int64_t k = 0; k < out->count; k++)
            out->v[k] = start + (double)k * attr_step_f(n);
        return true;
    }
    case R_EYE:
        for (int64_t k = 0; k < out->count; k++)
            out->v[k] = k / out->dim[1] == k % out->dim[1];
        return true;
    case R_BACKWARD_ELTWISE: eval_backward_eltwise(n, in, out); return true;
    case R_CONV_GRAD: ref_conv_grad(n, in, out); return true;
    case R_POOL_GRAD: ref_pool_grad(n, in, out); return true;
    case R_ADAPTIVE_POOL: ref_adaptive_pool(n, in, out); return true;
    case R_UPSAMPLE: ref_upsample(n, in, out); return true;
    case R_LOOP: return ref_loop(n, in, batch, out, err, errsize);
    case R_LOOP_RESULT:
        if (ref_loop_result(n, in[0], batch, out))
            return true;
        snprintf(err, errsize, "%%%d loop_result: the loop holds too few results", n->id);
        return false;
    case R_NONE: break;
    }
    snprintf(err, errsize, "%%%d %s: not implemented by the reference", n->id, op_info[n->op].text);
    return false;
}

bool ref_eval(const Graph *g, int64_t batch, RefTensor *values, bool all, char *err, size_t errsize)
{
    int nn = g->nodes.n;
    bool *need = calloc((size_t)(nn > 0 ? nn : 1), sizeof(bool));
    if (!need)
        abort();
    if (all) {
        for (int i = 0; i < nn; i++)
            need[i] = true;
    } else {
        for (int i = 0; i < g->outputs.n; i++)
            need[g->outputs.v[i].node->id] = true;
        /* nodes are in topological order: users come after their inputs */
        for (int i = nn - 1; i >= 0; i--)
            if (need[i])
                for (int k = 0; k < g->nodes.v[i]->nin; k++)
                    need[g->nodes.v[i]->in[k]->id] = true;
    }
    bool ok = true;
    for (int i = 0; ok && i < nn; i++) {
        const Node *n = g->nodes.v[i];
        if (!need[i])
            continue;
        if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE) {
            if (!values[i].v) {
                snprintf(err, errsize, "%%%d %s \"%s\": no value given", i, op_info[n->op].text,
                         n->name);
                ok = false;
            }
            continue;
        }
        if (n->dtype == DT_UNKNOWN) {
            snprintf(err, errsize, "%%%d %s: the graph is not shape-checked", i,
                     op_info[n->op].text);
            ok = false;
            continue;
        }
        ref_tensor_free(&values[i]);
        ok = eval_node(n, values, batch, err, errsize);
    }
    free(need);
    return ok;
}

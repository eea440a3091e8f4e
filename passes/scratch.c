/*
 * Scratch memory of kernels: the temporary buffers a kernel needs during
 * its own step only (an im2col matrix, recurrent gates, attention scores).
 * The memory planner gives each a slot of the arena, so generated code
 * never allocates. Sizes are at the maximum batch.
 *
 * Elementwise, GEMM, reduction, layout and loss kernels work in their
 * output buffers and need none.
 *
 * Convolutions (codegen/kernels_nn.c) work one image and one group at a
 * time: conv2d/conv1d build the im2col matrix [C/groups * kernel, output
 * positions] of it, except for a 1x1, stride-1, unpadded kernel, whose
 * input already is that matrix; conv_transpose2d computes the column
 * matrix [O/groups * kernel, input positions] before col2im. The code
 * generator takes the presence of scratch as the choice of path.
 */
#include "passes.h"

static int64_t elem_bytes(DType t)
{
    return t == DT_F64 ? 8 : 4;
}

static int64_t ints_at(const Node *n, const char *name, int i)
{
    const Attr *a = ir_attr(n, name);
    check(a && a->kind == AK_INTS && i < a->ints.n);
    return a->ints.v[i].n;
}

/* Product of the static dimensions from..rank-1 of s. */
static int64_t tail_numel(const Shape *s, int from)
{
    int64_t n = 1;
    for (int i = from; i < s->rank; i++)
        n *= s->d[i].n;
    return n;
}

static int64_t conv_scratch(const Node *n)
{
    const Node *x = n->in[0], *w = n->in[1];
    int nsp = x->shape.rank - 2;
    int64_t groups = ir_attr_int(n, "groups");
    if (n->op == OP_CONV_TRANSPOSE2D) {
        int64_t og = w->shape.d[1].n;
        return og * tail_numel(&w->shape, 2) * tail_numel(&x->shape, 2) * elem_bytes(n->dtype);
    }
    bool pointwise = true;
    for (int i = 0; i < nsp; i++)
        pointwise &= w->shape.d[2 + i].n == 1 && ints_at(n, "stride", i) == 1 &&
                     ints_at(n, "padding", i) == 0;
    if (pointwise)
        return 0;
    int64_t cg = x->shape.d[1].n / groups;
    return cg * tail_numel(&w->shape, 2) * tail_numel(&n->shape, 2) * elem_bytes(n->dtype);
}

/* Extent of d at the maximum batch. */
static int64_t seq_extent(const Graph *g, Dim d)
{
    return d.batch ? d.n * (g->batch && g->max_batch > 0 ? g->max_batch : 1) : d.n;
}

/* Recurrent layers (codegen/kernels_seq.c): the input projection of all
 * steps [B*T, G*H], one step's recurrent projection [B, G*H], and the LSTM
 * cell state [B, H]. Attention: one [T, S] score block, reused for every
 * batch*head. */
static int64_t seq_scratch(const Graph *g, const Node *n)
{
    int64_t es = elem_bytes(n->dtype);
    if (n->op == OP_ATTENTION)
        return es * seq_extent(g, n->in[0]->shape.d[2]) * seq_extent(g, n->in[1]->shape.d[2]);
    int64_t G = n->op == OP_LSTM ? 4 : n->op == OP_GRU ? 3 : 1;
    int64_t B = seq_extent(g, n->shape.d[0]), T = seq_extent(g, n->shape.d[1]);
    int64_t H = n->shape.d[2].n;
    return es * (B * T * G * H + B * G * H + (n->op == OP_LSTM ? B * H : 0));
}

int64_t pass_scratch_bytes(const Graph *g, const Node *n)
{
    switch (n->op) {
    case OP_RNN:
    case OP_LSTM:
    case OP_GRU:
    case OP_ATTENTION: return seq_scratch(g, n);
    case OP_CONV2D:
    case OP_CONV1D:
    case OP_CONV_TRANSPOSE2D: return conv_scratch(n);
    default: return 0;
    }
}

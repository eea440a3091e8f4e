/*
 * The work of the generated kernels (dlc --stats; docs/BENCHMARKS.md, "Roofline"):
 * per plan step the floating-point operations it performs and the bytes
 * it must move, at a given batch size, from the shapes alone. All cost
 * formulas live here, one function per op family (the family names of
 * codegen/cg_kernels.h); a new op gets its formula in its family's
 * function, or the die() at the end of node_flops reminds whoever adds it.
 *
 * Conventions (those of roofline analyses):
 *  - A multiply-add is 2 flops (a product [M, K] @ [K, N] is 2*M*K*N). An
 *    elementwise op is 1 flop per element whatever its instructions (exp
 *    and tanh count 1, as a max or a compare does); rowwise and loss
 *    kernels count their few passes over the row (softmax: max, subtract,
 *    exp, sum, scale = 5 per element).
 *  - Bytes are the compulsory traffic: every distinct operand the step's
 *    kernel reads from outside its fusion group once, plus its result once.
 *    Scratch (im2col matrices, gates) and re-reads are not counted, so
 *    flops / bytes is the best arithmetic intensity the step can reach.
 *  - A view (a reshape that shares its input's bytes) costs nothing; a
 *    loop costs its body's steps times its trips.
 * Counts are exact integers at the batch given; every formula is affine
 * in the batch (stats prints them at the maximum batch and at batch 1).
 */
#include "codegen.h"

static int64_t dim_at(Dim d, int64_t batch)
{
    return d.n * (d.batch ? batch : 1);
}

static int64_t numel_at(const Shape *s, int64_t batch)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= dim_at(s->d[i], batch);
    return n;
}

static int64_t bytes_at(const Node *n, int64_t batch)
{
    return numel_at(&n->shape, batch) * (n->dtype == DT_F64           ? 8
                                         : ir_dtype_is_half(n->dtype) ? 2
                                                                      : 4);
}

/* Product of the static dimensions from..rank-1 of s (kernels, windows). */
static int64_t tail(const Shape *s, int from)
{
    int64_t n = 1;
    for (int i = from; i < s->rank; i++)
        n *= s->d[i].n;
    return n;
}

static int64_t ints_prod(AttrInts a)
{
    int64_t n = 1;
    for (int i = 0; i < a.n; i++)
        n *= a.v[i].n;
    return n;
}

/* matmul: every result element is a dot product over the inner dimension
 * (a's last, its second last when a is read transposed). */
static int64_t gemm_flops(const Node *n, int64_t batch)
{
    return 2 * numel_at(&n->shape, batch) * dim_at(ir_matmul_inner(n), batch);
}

/* conv2d/conv1d: per output element, C/groups * kernel multiply-adds; the
 * transposed convolution and the two gradients do the same products
 * (conv_transpose2d's weight is [in, out/groups, ...], per input element). */
static int64_t conv_flops(const Node *n, int64_t batch)
{
    switch (n->op) {
    case OP_CONV2D:
    case OP_CONV1D:
    case OP_CONV3D: {
        const Shape *w = &n->in[1]->shape;
        return 2 * numel_at(&n->shape, batch) * tail(w, 1);
    }
    case OP_CONV_TRANSPOSE2D:
    case OP_CONV_TRANSPOSE1D: {
        const Shape *w = &n->in[1]->shape;
        return 2 * numel_at(&n->in[0]->shape, batch) * tail(w, 1);
    }
    case OP_CONV_GRAD_INPUT: /* (dy, w) */
        return 2 * numel_at(&n->in[0]->shape, batch) * tail(&n->in[1]->shape, 1);
    case OP_CONV_GRAD_WEIGHT: /* (x, dy) -> w */
        return 2 * numel_at(&n->in[1]->shape, batch) * tail(&n->shape, 1);
    default: die("cost: %s is not a convolution", op_info[n->op].text);
    }
}

/* Windowed pools touch kernel elements per output element (their
 * gradients per dy element); the global and adaptive ones every input
 * element about once. */
static int64_t pool_flops(const Node *n, int64_t batch)
{
    switch (n->op) {
    case OP_MAX_POOL1D:
    case OP_AVG_POOL1D:
    case OP_MAX_POOL3D:
    case OP_AVG_POOL3D:
    case OP_MAX_POOL2D:
    case OP_AVG_POOL2D:
    case OP_STOCHASTIC_POOL2D: return numel_at(&n->shape, batch) * ints_prod(attr_kernel(n));
    case OP_LP_POOL2D: return 2 * numel_at(&n->shape, batch) * ints_prod(attr_kernel(n));
    case OP_MAX_POOL2D_GRAD:
    case OP_AVG_POOL2D_GRAD: return numel_at(&n->in[1]->shape, batch) * ints_prod(attr_kernel(n));
    case OP_STOCHASTIC_POOL2D_GRAD:
        return 3 * numel_at(&n->in[2]->shape, batch) * ints_prod(attr_kernel(n->in[0]));
    default: return numel_at(&n->in[0]->shape, batch);
    }
}

/* batch_norm and layer_norm: mean, variance (2), normalize (2), scale and
 * shift (2) per element; about as many for their gradients (the
 * statistics again, then the sums of dy and dy (x - mean), or dx). */
static int64_t norm_flops(const Node *n, int64_t batch)
{
    return 7 * numel_at(&n->in[0]->shape, batch);
}

/* Recurrent layers (codegen/seq.c): the input projections of all steps
 * and the recurrent ones, 2*BT*(F+H)*GH, and about 4 flops per gate
 * element for biases and nonlinearities. Their backward runs the
 * recurrent product with dgates once more per step, 2*BT*GH*H; lstm and
 * gru also rebuild the forward's projections when the layer kept no
 * reserve (ir_recurrent_reserve; rnn's y holds its activations).
 * Attention, per batch*head: scores 2*T*S*d, the row softmax 5*T*S, the
 * output 2*T*S*dv. */
static int64_t seq_flops(const Node *n, int64_t batch)
{
    switch (n->op) {
    case OP_EMBEDDING: return 0;
    case OP_RNN:
    case OP_LSTM:
    case OP_GRU:
    case OP_RNN_PACKED:
    case OP_LSTM_PACKED:
    case OP_GRU_PACKED: {
        const Shape *wih = &n->in[ir_recurrent_cell(n->op) == OP_LSTM ? 3 : 2]->shape;
        int64_t F = wih->d[0].n, GH = wih->d[1].n, H = n->shape.d[2].n;
        int64_t BT = numel_at(&n->shape, batch) / H;
        return 2 * BT * (F + H) * GH + 4 * BT * GH;
    }
    case OP_RNN_GRAD:
    case OP_LSTM_GRAD:
    case OP_GRU_GRAD:
    case OP_RNN_PACKED_GRAD:
    case OP_LSTM_PACKED_GRAD:
    case OP_GRU_PACKED_GRAD: {
        const Node *x = n->in[2];
        Op cell = ir_recurrent_cell(n->op);
        const Shape *wih = &n->in[cell == OP_LSTM ? 5 : 4]->shape;
        int64_t F = wih->d[0].n, GH = wih->d[1].n, H = n->in[0]->shape.d[2].n;
        int64_t BT = numel_at(&x->shape, batch) / F;
        int64_t back = 2 * BT * GH * H + 6 * BT * GH;
        /* the gates are rebuilt unless the layer's reserve kept them */
        return cell == OP_RNN || ir_recurrent_grad_reserved(n) ? back
                                                               : back + 2 * BT * (F + H) * GH;
    }
    case OP_ATTENTION:
    case OP_ATTENTION_MASKED: {
        const Shape *q = &n->in[0]->shape, *k = &n->in[1]->shape, *v = &n->in[2]->shape;
        int64_t d = dim_at(q->d[q->rank - 1], batch), dv = dim_at(v->d[v->rank - 1], batch);
        int64_t S = dim_at(k->d[k->rank - 2], batch);
        int64_t rows = numel_at(q, batch) / d; /* batch * heads * T */
        return rows * S * (2 * d + 2 * dv + 5);
    }
    case OP_ATTENTION_PROBS:
    case OP_ATTENTION_PROBS_MASKED: {
        const Shape *q = &n->in[0]->shape, *k = &n->in[1]->shape;
        int64_t d = dim_at(q->d[q->rank - 1], batch), S = dim_at(k->d[k->rank - 2], batch);
        return numel_at(q, batch) / d * S * (2 * d + 5);
    }
    default: die("cost: %s is not a sequence op", op_info[n->op].text);
    }
}

/* cross_entropy: max, exp, sum, log and the label's term, 5 per logit;
 * nll_loss reads one element per row; the pair losses about 3 per
 * element (difference, its function, the sum). */
static int64_t loss_flops(const Node *n, int64_t batch)
{
    int64_t in = numel_at(&n->in[0]->shape, batch);
    switch (n->op) {
    case OP_CROSS_ENTROPY: return 5 * in;
    case OP_NLL_LOSS: return numel_at(&n->in[1]->shape, batch);
    default: return 3 * in;
    }
}

static CgCost body_cost(const Graph *body, int64_t batch);

/* The flops of one node on its own (a member of a fusion group counts as
 * computed once per element of the group's result, which is its own). */
static int64_t node_flops(const Node *n, int64_t batch)
{
    switch (op_info[n->op].kind) {
    case K_SOURCE:
    case K_SHAPE: return 0;
    case K_SELECT:
        return n->op == OP_GATHER_GRAD || n->op == OP_TAKE_GRAD ? numel_at(&n->in[2]->shape, batch)
                                                                : 0;
    case K_ELTWISE: return numel_at(&n->shape, batch);
    case K_ROWWISE: return 5 * numel_at(&n->shape, batch);
    case K_GEMM: return gemm_flops(n, batch);
    case K_REDUCE: return (n->op == OP_VAR ? 3 : 1) * numel_at(&n->in[0]->shape, batch);
    case K_CONV: return conv_flops(n, batch);
    case K_POOL: return pool_flops(n, batch);
    case K_NORM: return norm_flops(n, batch);
    case K_SEQ: return seq_flops(n, batch);
    case K_LOSS: return loss_flops(n, batch);
    case K_LOOP: return 0; /* group_cost counts a loop's body */
    case K_COUNT: break;
    }
    die("cost: no formula for %s", op_info[n->op].text);
}

/* A step's group: the step and the nodes fused into it. mark[id] is set
 * to the step's id + 1 for its members by the caller (group_marks). */
static CgCost group_cost(const Graph *g, const Node *step, const int *mark, bool view,
                         int64_t batch, char *seen)
{
    CgCost c = {0, 0};
    if (view)
        return c;
    if (step->op == OP_LOOP) {
        c = body_cost(step->body, batch);
        c.flops *= attr_trips(step);
        c.bytes *= attr_trips(step);
        return c;
    }
    int tag = step->id + 1;
    c.bytes = bytes_at(step, batch);
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *x = g->nodes.v[i];
        if (x != step && mark[x->id] != tag)
            continue;
        c.flops += node_flops(x, batch);
        for (int k = 0; k < x->nin; k++) {
            const Node *in = x->in[k];
            if (in->op == OP_CONST || mark[in->id] == tag || seen[in->id])
                continue;
            seen[in->id] = 1;
            c.bytes += in->op == OP_LOOP ? 0 : bytes_at(in, batch);
        }
    }
    for (int i = 0; i < g->nodes.n; i++)
        seen[i] = 0;
    return c;
}

/* mark[id]: the id + 1 of the root of the group that node id is a member
 * of, 0 for roots and sources. */
static int *group_marks(const Graph *g)
{
    int *mark = arena_alloc(g->arena, sizeof *mark * (size_t)(g->nodes.n + 1));
    for (int i = 0; i < g->nodes.n; i++)
        mark[i] = g->nodes.v[i]->fused ? g->nodes.v[i]->fused->id + 1 : 0;
    return mark;
}

static bool is_step(const Node *n)
{
    return !n->fused && op_info[n->op].kind != K_SOURCE;
}

/* One trip of a loop body: its steps are its group roots; its reshapes
 * count as views (the body's own plan makes nearly all of them views). */
static CgCost body_cost(const Graph *body, int64_t batch)
{
    int *mark = group_marks(body);
    char *seen = arena_alloc(body->arena, (size_t)body->nodes.n + 1);
    for (int i = 0; i < body->nodes.n; i++)
        seen[i] = 0;
    CgCost c = {0, 0};
    for (int i = 0; i < body->nodes.n; i++) {
        const Node *n = body->nodes.v[i];
        if (!is_step(n))
            continue;
        bool view = n->op == OP_RESHAPE || n->op == OP_FLATTEN || n->op == OP_LOOP_RESULT;
        CgCost s = group_cost(body, n, mark, view, batch, seen);
        c.flops += s.flops;
        c.bytes += s.bytes;
    }
    return c;
}

void cg_plan_cost(const Graph *g, const MemPlan *p, int64_t batch, CgCost *out)
{
    int *mark = group_marks(g);
    char *seen = arena_alloc(g->arena, (size_t)g->nodes.n + 1);
    for (int i = 0; i < g->nodes.n; i++)
        seen[i] = 0;
    for (int s = 0; s < p->nsteps; s++) {
        const Node *n = p->steps[s];
        bool view = pass_memplan_is_view(p, n) || n->op == OP_LOOP_RESULT;
        out[s] = group_cost(g, n, mark, view, batch, seen);
    }
}

/* Per trainable scalar: the update's flops (docs/TRAINING.md's formulas:
 * sgd p -= lr*g; adagrad and rmsprop a running square, its root and a
 * division; adam two moments, their corrections, the root and the
 * division), 2 more for weight decay or momentum, 2 for clipping (the
 * norm's square-add, the scale). Bytes: the parameter read and written,
 * the gradient read and zeroed, each optimizer slot read and written. */
CgCost cg_apply_cost(const Graph *g, const OptPlan *o)
{
    CgCost c = {0, 0};
    if (!g->train || !o)
        return c;
    int64_t per = 2;
    switch (o->optim) {
    case OPTIM_SGD: per = 2 + (o->momentum != 0 ? 3 : 0); break;
    case OPTIM_ADAGRAD: per = 6; break;
    case OPTIM_RMSPROP: per = 7 + (o->momentum != 0 ? 2 : 0); break;
    case OPTIM_ADAM:
    case OPTIM_ADAMW: per = 11; break;
    default: per = 6; break;
    }
    per += (o->weight_decay != 0 ? 2 : 0) + (o->has_clip ? 2 : 0);
    for (int i = 0; i < g->train->params.n; i++) {
        const Node *prm = g->train->params.v[i];
        int64_t n = numel_at(&prm->shape, 1);
        c.flops += per * n;
        c.bytes += (4 + 2 * o->nslots) * bytes_at(prm, 1);
    }
    return c;
}

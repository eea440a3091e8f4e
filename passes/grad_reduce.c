/*
 * Gradient rules of the ops that work along axes: softmax, log_softmax,
 * the matrix product and the reductions (see grad.h for the contract).
 *
 * Reductions spread the output's adjoint back over the reduced axes:
 * reshape to the keepdims shape, broadcast to the input's. mean divides by
 * the number of reduced elements and var by (count - correction); both
 * counts are computed at run time when a reduced axis is the batch. max
 * and min share the gradient equally among the elements that reach the
 * extreme value (PyTorch's amax/amin).
 *
 * matmul follows NumPy's rules backwards: 1-D operands are promoted (a row
 * on the left, a column on the right), dA = dY @ B^T and dB = A^T @ dY on
 * the promoted shapes, summed over broadcast batch dimensions and
 * reshaped back to the operand's shape. The transposes are GEMM flags,
 * and with a flagged operand the product is built transposed instead:
 * for y = a^T b, da = (dy b^T)^T = b dy^T; for y = a b^T, db = dy^T a.
 */
#include "grad.h"

static Node *sum_axis(Grad *c, Node *x, int axis)
{
    bool axes[IR_MAX_RANK] = {0};
    axes[axis] = true;
    return ad_sum(c, x, axes, true);
}

/* dx = y * (dy - sum(dy * y)) along the axis */
bool grad_softmax(Grad *c, Node *n, Node *dy)
{
    int axis = (int)attr_axis(n);
    Node *s = sum_axis(c, ad_bin(c, OP_MUL, dy, n), axis);
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, n, ad_bin(c, OP_SUB, dy, s)));
    return true;
}

/* dx = dy - exp(y) * sum(dy) along the axis */
bool grad_log_softmax(Grad *c, Node *n, Node *dy)
{
    int axis = (int)attr_axis(n);
    Node *s = sum_axis(c, dy, axis);
    ad_acc(c, n->in[0], ad_bin(c, OP_SUB, dy, ad_bin(c, OP_MUL, ad_un(c, OP_EXP, n), s)));
    return true;
}

/* x @ y with x (and y) read transposed when tx (ty) */
static Node *matmul_t(Grad *c, Node *x, bool tx, Node *y, bool ty)
{
    Node *m = ad_node(c, OP_MATMUL, (Node *[]){x, y}, 2);
    if (tx)
        attr_set_transpose_a(c->g, m, true);
    if (ty)
        attr_set_transpose_b(c->g, m, true);
    return ad_finish(c, m);
}

/* The gradient of a 2-D b shared by every matrix of a [..., M, K] (a
 * dense layer over a sequence's positions), not a product per matrix
 * summed over them: one product over all L*M rows, a^T dy (tb: dy^T a).
 * The per-matrix products wrote L times b's size (the GPT's [B, 512, 128]
 * per layer, 8 MB at batch 32) and then summed it. NULL when a is
 * transposed (its rows are not a's memory) or the rows do not fold. */
static Node *shared_b_grad(Grad *c, Node *a, Node *b, Node *dy, bool ta, bool tb)
{
    if (ta || b->shape.rank != 2 || a->shape.rank < 3)
        return NULL;
    Node *ar = ad_rows(c, a);
    if (!ar)
        return NULL;
    Node *dr = ad_rows(c, dy); /* dy's leading dimensions are a's */
    check(dr);
    return tb ? matmul_t(c, dr, true, ar, false) : matmul_t(c, ar, true, dr, false);
}

bool grad_matmul(Grad *c, Node *n, Node *dy)
{
    Node *a = n->in[0], *b = n->in[1];
    bool row = a->shape.rank == 1, col = b->shape.rank == 1;
    Shape sa = a->shape, sb = b->shape, sy = n->shape;
    if (row) {
        sa = (Shape){.rank = 2, .d = {{1, false}, a->shape.d[0]}};
        /* y lost the row dimension just before its last (or only) one */
        int at = col ? sy.rank : sy.rank - 1;
        for (int i = sy.rank; i > at; i--)
            sy.d[i] = sy.d[i - 1];
        sy.d[at] = (Dim){1, false};
        sy.rank++;
    }
    if (col) {
        sb = (Shape){.rank = 2, .d = {b->shape.d[0], {1, false}}};
        sy.d[sy.rank++] = (Dim){1, false};
    }
    Node *a2 = ad_reshape(c, a, &sa), *b2 = ad_reshape(c, b, &sb), *dy2 = ad_reshape(c, dy, &sy);
    /* flags only on operands of rank >= 2, never promoted */
    bool ta = ir_matmul_trans(n, 0), tb = ir_matmul_trans(n, 1);
    if (ad_needs(c, a)) {
        Node *da = ta ? matmul_t(c, b2, tb, dy2, true) : matmul_t(c, dy2, false, b2, !tb);
        ad_acc(c, a, ad_reshape(c, ad_unbroadcast(c, da, &sa), &a->shape));
    }
    if (ad_needs(c, b) && !row && !col) {
        Node *db = shared_b_grad(c, a, b, dy, ta, tb);
        if (db) {
            ad_acc(c, b, db);
            return true;
        }
    }
    if (ad_needs(c, b)) {
        Node *db = tb ? matmul_t(c, dy2, true, a2, ta) : matmul_t(c, a2, !ta, dy2, false);
        ad_acc(c, b, ad_reshape(c, ad_unbroadcast(c, db, &sb), &b->shape));
    }
    return true;
}

bool grad_sum(Grad *c, Node *n, Node *dy)
{
    bool axes[IR_MAX_RANK];
    ad_axes(n, axes);
    Node *x = n->in[0];
    ad_acc(c, x, ad_expand(c, dy, &x->shape, axes));
    return true;
}

bool grad_mean(Grad *c, Node *n, Node *dy)
{
    bool axes[IR_MAX_RANK];
    ad_axes(n, axes);
    Node *x = n->in[0];
    Node *count = ad_count(c, &x->shape, axes, x->dtype);
    ad_acc(c, x, ad_expand(c, ad_bin(c, OP_DIV, dy, count), &x->shape, axes));
    return true;
}

/* dy / (number of extremes) to each element equal to the extreme */
bool grad_max_min(Grad *c, Node *n, Node *dy)
{
    bool axes[IR_MAX_RANK];
    ad_axes(n, axes);
    Node *x = n->in[0];
    Node *hit = ad_bin(c, OP_EQ, x, ad_expand(c, n, &x->shape, axes));
    Node *count = ad_reshape(c, ad_sum(c, hit, axes, false), &n->shape);
    Node *share = ad_bin(c, OP_DIV, dy, count);
    ad_acc(c, x, ad_bin(c, OP_MUL, hit, ad_expand(c, share, &x->shape, axes)));
    return true;
}

/* dx = dy * 2 (x - mean) / (count - correction) */
bool grad_var(Grad *c, Node *n, Node *dy)
{
    bool axes[IR_MAX_RANK];
    ad_axes(n, axes);
    Node *x = n->in[0];
    Node *mean = ad_node(c, OP_MEAN, &x, 1);
    AttrInts axis = attr_axes(n);
    attr_set_axes(c->g, mean, axis.v, axis.n);
    attr_set_keepdims(c->g, mean, true);
    mean = ad_finish(c, mean);
    Node *count = ad_count(c, &x->shape, axes, x->dtype);
    Node *denom = ad_binc(c, OP_SUB, count, (double)attr_correction(n));
    Node *scale = ad_bin(c, OP_DIV, ad_binc(c, OP_MUL, dy, 2), denom);
    ad_acc(c, x,
           ad_bin(c, OP_MUL, ad_bin(c, OP_SUB, x, mean), ad_expand(c, scale, &x->shape, axes)));
    return true;
}

/*
 * Gradient rules of the elementwise ops (see grad.h for the contract).
 *
 * Contributions are built at the output's shape and ad_acc sums them back
 * over whatever the input was broadcast along. Rules reuse the forward
 * result where the derivative is a function of it (exp, sigmoid, tanh,
 * sqrt, rsqrt, div, pow; relu, whose y > 0 where x > 0, so that x need not
 * outlive the forward and fuses with the relu: a convolution, its bias
 * and its relu in one kernel). Where the op has a kink the gradient follows
 * PyTorch's choice at the kink: relu' (0) = 0, abs' (0) = 0, clamp passes
 * the gradient on its closed interval [lo, hi]; at ties maximum and minimum
 * give the whole gradient to the first operand (PyTorch splits it).
 * softplus uses sigmoid(x) everywhere, so above PyTorch's threshold of 20
 * (where softplus is x) the gradient is 1 - 2e-9 rather than 1.
 * pow's gradient with respect to the exponent, y * log(a), is NaN for a
 * negative base, like the forward value for a non-integer exponent.
 */
#include "grad.h"

bool grad_add(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], dy);
    ad_acc(c, n->in[1], dy);
    return true;
}

bool grad_sub(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], dy);
    if (ad_needs(c, n->in[1]))
        ad_acc(c, n->in[1], ad_un(c, OP_NEG, dy));
    return true;
}

bool grad_mul(Grad *c, Node *n, Node *dy)
{
    Node *a = n->in[0], *b = n->in[1];
    if (ad_needs(c, a))
        ad_acc(c, a, ad_bin(c, OP_MUL, dy, b));
    if (ad_needs(c, b))
        ad_acc(c, b, ad_bin(c, OP_MUL, dy, a));
    return true;
}

/* y = a / b: da = dy / b, db = -dy * y / b */
bool grad_div(Grad *c, Node *n, Node *dy)
{
    Node *a = n->in[0], *b = n->in[1];
    if (ad_needs(c, a))
        ad_acc(c, a, ad_bin(c, OP_DIV, dy, b));
    if (ad_needs(c, b))
        ad_acc(c, b, ad_un(c, OP_NEG, ad_bin(c, OP_DIV, ad_bin(c, OP_MUL, dy, n), b)));
    return true;
}

/* y = a^b: da = dy * b * a^(b-1), db = dy * y * log(a) */
bool grad_pow(Grad *c, Node *n, Node *dy)
{
    Node *a = n->in[0], *b = n->in[1];
    if (ad_needs(c, a)) {
        Node *p = ad_bin(c, OP_POW, a, ad_binc(c, OP_SUB, b, 1));
        ad_acc(c, a, ad_bin(c, OP_MUL, dy, ad_bin(c, OP_MUL, b, p)));
    }
    if (ad_needs(c, b))
        ad_acc(c, b, ad_bin(c, OP_MUL, dy, ad_bin(c, OP_MUL, n, ad_un(c, OP_LOG, a))));
    return true;
}

/* dy masked: to a where ma is 1, to b where mb is 1 (the masks are
 * complementary; NULL for an input that needs no adjoint) */
static void select_grad(Grad *c, Node *n, Node *dy, Node *ma, Node *mb)
{
    if (ma)
        ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, ma));
    if (mb)
        ad_acc(c, n->in[1], ad_bin(c, OP_MUL, dy, mb));
}

/* y = a - b floor(a / b): da = dy, db = -dy floor(a / b) (PyTorch's) */
bool grad_remainder(Grad *c, Node *n, Node *dy)
{
    Node *a = n->in[0], *b = n->in[1];
    if (ad_needs(c, a))
        ad_acc(c, a, dy);
    if (ad_needs(c, b))
        ad_acc(c, b, ad_un(c, OP_NEG, ad_bin(c, OP_MUL, dy, ad_bin(c, OP_FLOOR_DIVIDE, a, b))));
    return true;
}

bool grad_maximum(Grad *c, Node *n, Node *dy)
{
    Node *a = n->in[0], *b = n->in[1];
    select_grad(c, n, dy, ad_needs(c, a) ? ad_bin(c, OP_GE, a, b) : NULL,
                ad_needs(c, b) ? ad_bin(c, OP_GT, b, a) : NULL);
    return true;
}

bool grad_minimum(Grad *c, Node *n, Node *dy)
{
    Node *a = n->in[0], *b = n->in[1];
    select_grad(c, n, dy, ad_needs(c, a) ? ad_bin(c, OP_GE, b, a) : NULL,
                ad_needs(c, b) ? ad_bin(c, OP_GT, a, b) : NULL);
    return true;
}

bool grad_neg(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_un(c, OP_NEG, dy));
    return true;
}

/* dx = dy / (2 y) */
bool grad_sqrt(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_DIV, dy, ad_binc(c, OP_MUL, n, 2)));
    return true;
}

/* y = x^(-1/2): dx = -0.5 * dy * y^3 */
bool grad_rsqrt(Grad *c, Node *n, Node *dy)
{
    Node *y3 = ad_bin(c, OP_MUL, n, ad_un(c, OP_SQUARE, n));
    ad_acc(c, n->in[0], ad_binc(c, OP_MUL, ad_bin(c, OP_MUL, dy, y3), -0.5));
    return true;
}

bool grad_exp(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, n));
    return true;
}

bool grad_log(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_DIV, dy, n->in[0]));
    return true;
}

bool grad_sin(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, ad_un(c, OP_COS, n->in[0])));
    return true;
}

bool grad_cos(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_un(c, OP_NEG, ad_bin(c, OP_MUL, dy, ad_un(c, OP_SIN, n->in[0]))));
    return true;
}

bool grad_abs(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, ad_un(c, OP_SIGN, n->in[0])));
    return true;
}

bool grad_square(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, ad_binc(c, OP_MUL, n->in[0], 2)));
    return true;
}

/* dy where lo <= x <= hi */
bool grad_clamp(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    Node *in =
        ad_bin(c, OP_MUL, ad_binc(c, OP_GE, x, attr_lo(n)), ad_cbin(c, OP_GE, attr_hi(n), x));
    ad_acc(c, x, ad_bin(c, OP_MUL, dy, in));
    return true;
}

bool grad_relu(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, ad_binc(c, OP_GT, n, 0)));
    return true;
}

/* slope 1 where x > 0, alpha elsewhere: alpha + (1 - alpha) * (x > 0) */
bool grad_leaky_relu(Grad *c, Node *n, Node *dy)
{
    double alpha = attr_alpha(n);
    Node *pos = ad_binc(c, OP_GT, n->in[0], 0);
    Node *slope = ad_binc(c, OP_ADD, ad_binc(c, OP_MUL, pos, 1 - alpha), alpha);
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, slope));
    return true;
}

bool grad_elu(Grad *c, Node *n, Node *dy)
{
    Node *g = ad_node(c, OP_ELU_GRAD, (Node *[]){n->in[0], dy}, 2);
    attr_set_alpha(c->g, g, attr_alpha(n));
    ad_acc(c, n->in[0], ad_finish(c, g));
    return true;
}

/* dx = dy * y * (1 - y) */
bool grad_sigmoid(Grad *c, Node *n, Node *dy)
{
    Node *d = ad_bin(c, OP_MUL, n, ad_cbin(c, OP_SUB, 1, n));
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, d));
    return true;
}

/* dx = dy * (1 - y^2) */
bool grad_tanh(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, ad_cbin(c, OP_SUB, 1, ad_un(c, OP_SQUARE, n))));
    return true;
}

bool grad_gelu(Grad *c, Node *n, Node *dy)
{
    Node *g = ad_node(c, OP_GELU_GRAD, (Node *[]){n->in[0], dy}, 2);
    attr_set_approximate(c->g, g, attr_approximate(n));
    ad_acc(c, n->in[0], ad_finish(c, g));
    return true;
}

/* y = x * s, s = sigmoid(x): dx = dy * s * (1 + x * (1 - s)) */
bool grad_silu(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    Node *s = ad_un(c, OP_SIGMOID, x);
    Node *t = ad_cbin(c, OP_ADD, 1, ad_bin(c, OP_MUL, x, ad_cbin(c, OP_SUB, 1, s)));
    ad_acc(c, x, ad_bin(c, OP_MUL, dy, ad_bin(c, OP_MUL, s, t)));
    return true;
}

bool grad_softplus(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_MUL, dy, ad_un(c, OP_SIGMOID, n->in[0])));
    return true;
}

/* Only float-to-float casts carry a gradient (i32 values have none). */
bool grad_cast(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    Node *g = ad_node(c, OP_CAST, &dy, 1);
    attr_set_to(c->g, g, ir_dtype_name(x->dtype));
    ad_acc(c, x, ad_finish(c, g));
    return true;
}

/* Training-mode dropout: the mask is the forward kernel's (dropout_grad). */
bool grad_dropout(Grad *c, Node *n, Node *dy)
{
    Node *g = ad_node(c, OP_DROPOUT_GRAD, (Node *[]){n, dy}, 2);
    attr_set_p(c->g, g, attr_p(n));
    ad_acc(c, n->in[0], ad_finish(c, g));
    return true;
}

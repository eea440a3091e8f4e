/*
 * Private to the shape pass: the rule of every op (one per name in the
 * last column of ir/ops.def) and the helpers the rule files share.
 *
 * A rule reads its inputs' element types and shapes (already inferred),
 * checks the op's constraints, canonicalizes shape-dependent attributes
 * in place, and sets n->dtype and n->shape. On a mistake it reports one
 * diag_error at n->loc naming the op and the offending shapes or values,
 * and returns false.
 */
#ifndef DLC_PASSES_SHAPE_H
#define DLC_PASSES_SHAPE_H

#include "ir.h"

#define OP(name, text, arity, kind, flags, attrs, shape, grad) bool shape(Graph *g, Node *n);
#include "ops.def"
#undef OP

/* Largest tensor accepted, in elements (batch dimensions at max_batch). */
#define SHAPE_MAX_ELEMS ((int64_t)1 << 40)

/* The op's source name, for messages. */
const char *shape_op(const Node *n);
/* "[B, 784]" and "B*3" with the model's batch name, in the graph's arena. */
const char *shape_fmt(Graph *g, const Shape *s);
const char *shape_fmt_dim(Graph *g, Dim d);

/* Errors unless x is f32/f64: "exp: expects a floating-point tensor, got i32".
 * what names the operand ("" for the only one). */
bool shape_want_float(Node *n, const Node *x, const char *what);
/* Errors unless a and b have one element type; an open zeros, ones or
 * one_hot (no dtype, not yet used) takes the other's (ops.def). */
bool shape_want_same_dtype(Graph *g, Node *n, const Node *a, const Node *b);
/* The element type of zeros, ones and one_hot n: its dtype, else f32 */
DType shape_fill_dtype(const Node *n);
/* Errors unless x has rank lo..hi; what describes the expected layout. */
bool shape_want_rank(Graph *g, Node *n, const Node *x, int lo, int hi, const char *what);
/* Errors if dimension i of x is a batch dimension (parameters, channels). */
bool shape_want_static(Graph *g, Node *n, const Node *x, int i, const char *what);

/* Normalizes a possibly negative axis into 0..rank-1, or errors. */
bool shape_axis(Graph *g, Node *n, int64_t axis, const Shape *s, int rank, int64_t *out);

/* Reads the ints attribute k into plain integers; errors (naming it) on a
 * batch or none element, or more than max elements. Absent: *count = -1. */
bool shape_ints(Node *n, const AttrKey *k, int64_t *out, int max, int *count);
/* Stores plain integers into the ints attribute k. */
void shape_set_ints(Graph *g, Node *n, const AttrKey *k, const int64_t *v, int nv);

/* NumPy broadcasting of two shapes, or an error naming both (or, when
 * given, the whole operands shown_a and shown_b the shapes come from). */
bool shape_broadcast(Graph *g, Node *n, const Shape *a, const Shape *b, Shape *out);
bool shape_broadcast_in(Graph *g, Node *n, const Shape *a, const Shape *b, Shape *out,
                        const Shape *shown_a, const Shape *shown_b);

/* A literal (OP_CONST) c used with tensor x takes x's element type: any
 * float type, or i32 when its value is an integer (else an error). */
bool shape_adopt_const(Node *n, Node *c, const Node *x);
/* Whether src broadcasts to exactly dst (NumPy rules towards a target). */
bool shape_fits(const Shape *src, const Shape *dst);

/* Elements of s as n * B^k; false when the count of n overflows. */
bool shape_count(const Shape *s, int64_t *count, int *k);
/* "B*784", "784", "B^2*3". */
const char *shape_fmt_count(Graph *g, int64_t count, int k);

/* Types one node whose inputs are typed: its rule, then the size check
 * pass_shape applies. For passes that append nodes (autodiff). */
bool shape_node(Graph *g, Node *n);

#endif

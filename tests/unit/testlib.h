/*
 * Helpers for the compiler's unit tests (the runtime's use checklib.h
 * alone, which this includes).
 *
 * Graphs are built from type strings: tl_input(g, "f32[B, 784]") makes an
 * input of that type ("i32[]" a scalar, "f32[B*3, 4]" a batch multiple),
 * tl_param a parameter, tl_node a node with its schema's default
 * attributes filled as the lowering fills them. Diagnostics are captured
 * in a memory stream between tl_diag_capture() and tl_diag_release(), and
 * read back with tl_diags().
 */
#ifndef DLC_TESTS_TESTLIB_H
#define DLC_TESTS_TESTLIB_H

#include "checklib.h"
#include "ir.h"

/* A graph named "m" with batch symbol B up to max_batch. */
Graph *tl_graph_new(Arena *a, int64_t max_batch);

/* "f32[B, 784]" -> its shape, and its dtype in *t. */
Shape tl_type(const char *spec, DType *t);
/* Gives n the type spec (for passes that read types without pass_shape). */
Node *tl_typed(Node *n, const char *spec);
/* An input or a zero-initialized parameter of type spec, named after its id. */
Node *tl_input(Graph *g, const char *spec);
Node *tl_param(Graph *g, const char *spec);
/* Fills n's missing attributes with its op's schema defaults. */
Node *tl_defaults(Graph *g, Node *n);
/* A node of op on in[0..nin) with its default attributes. */
Node *tl_node(Graph *g, Op op, Node *const *in, int nin);

/* An ints attribute; values within 1000 above TL_BD(0) are batch multiples. */
#define TL_BD(k) (INT64_MIN + 1 + (k))
void tl_set_ints(Graph *g, Node *n, const char *name, const int64_t *v, int nv);

/* Diagnostics into memory (diag_reset() on both sides), and the text so far. */
void tl_diag_capture(void);
void tl_diag_release(void);
const char *tl_diags(void);

/* What a printer (ir_print, ir_print_dot) writes for g, malloc'd. */
char *tl_print(void (*print)(FILE *, const Graph *), const Graph *g);

#endif

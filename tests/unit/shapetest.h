/*
 * Helpers for the shape pass's tests (test_shape.c, test_shape_FAMILY.c):
 * for every op of ir/ops.def, graphs built with the ir.h builder (defaults
 * filled as the lowering does), checking the exact inferred type, the
 * canonicalized attributes, and the text of the diagnostics for each
 * family of mistakes.
 *
 * Each case builds a fresh graph: X("f32[B, 784]") makes an input,
 * N(OP_ADD, a, b) a node, INTS(n, "axis", 1, -1) an ints attribute (BD(k)
 * is k*B, NONE an omitted bound). ok(n, "f32[B, 10]") runs the pass and
 * compares n's type (pass_ok() only runs it); err("text") runs it and
 * expects exactly one error containing the text. test_shape_loop.c reads
 * its graphs from the textual IR instead (then sets G itself). A test
 * file's group takes teardown(), which frees the last graph:
 * GROUP(rules, NULL, teardown).
 */
#ifndef DLC_TESTS_SHAPETEST_H
#define DLC_TESTS_SHAPETEST_H

#include <stdio.h>
#include <string.h>

#include "ir.h"
#include "passes.h"
#include "testlib.h"

/* The current graph and its arena, made by fresh(). */
extern Arena *A;
extern Graph *G;

/* Frees the graph and releases the diagnostics. */
void teardown(void);
/* A new empty graph (max batch 256), diagnostics captured. */
void fresh(void);

#define X(spec) tl_input(G, spec)
#define P(spec) tl_param(G, spec)
/* A scalar literal. */
Node *C(double v);

/* A node of op with its inputs (NULL-terminated) and default attributes. */
Node *node(Op op, ...);
#define N(...) node(__VA_ARGS__, (Node *)NULL)

#define NONE IR_NONE
#define BD(k) TL_BD(k)
#define INTS(n, name, ...)                                                                         \
    tl_set_ints(G, n, name, (int64_t[]){__VA_ARGS__},                                              \
                (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define EMPTY_INTS(n, name) ir_set_ints(G, n, name, NULL, 0)

/* n's type as "f32[B, 10]", in a static buffer. */
const char *ty(const Node *n);
/* An ints attribute as "[0, B, none]" ("absent" without it), in a static buffer. */
const char *ints(const Node *n, const char *name);
/* The errors among the captured diagnostics. */
int count_errors(void);

/* Runs the pass and expects no diagnostics. */
#define pass_ok()                                                                                  \
    do {                                                                                           \
        bool r_ = pass_shape(G);                                                                   \
        ck_assert_msg(r_, "unexpected errors: %s", tl_diags());                                    \
        ck_assert_str_eq(tl_diags(), "");                                                          \
    } while (0)

/* The same, and n's type is want. */
#define ok(n, want)                                                                                \
    do {                                                                                           \
        pass_ok();                                                                                 \
        ck_assert_str_eq(ty(n), want);                                                             \
    } while (0)

/* Runs the pass and expects exactly one error, containing text. */
#define err(text)                                                                                  \
    do {                                                                                           \
        bool r_ = pass_shape(G);                                                                   \
        ck_assert_msg(!r_, "expected an error containing \"%s\"", text);                           \
        ck_assert_msg(strstr(tl_diags(), text), "expected \"%s\" in:\n%s", text, tl_diags());      \
        ck_assert_int_eq(count_errors(), 1);                                                       \
        ck_assert_int_eq(diag_errors(), 1);                                                        \
    } while (0)

#endif

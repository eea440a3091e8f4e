/*
 * The shape rules of the losses: class losses (scores and labels) and pair
 * losses (passes/shape_loss.c): exact inferred types, canonicalized
 * attributes and the text of each diagnostic. The helpers are
 * shapetest.h's.
 */
#include "shapetest.h"

SUITE("shape_loss");
GROUP(rules, NULL, teardown);

TEST(rules, class_loss)
{
    static const Op ops[] = {OP_CROSS_ENTROPY, OP_NLL_LOSS, OP_MULTI_MARGIN_LOSS};
    for (int i = 0; i < 3; i++) {
        const char *name = op_info[ops[i]].text;
        char want[256];
        fresh();
        Node *n = N(ops[i], X("f32[B, 10]"), X("i32[B]"));
        ok(n, "f32[]");
        fresh();
        n = N(ops[i], X("f64[B, 10]"), X("i32[B]"));
        ir_set_str(G, n, "reduction", "sum");
        ok(n, "f64[]");
        fresh();
        n = N(ops[i], X("f32[B, 10]"), X("i32[B]"));
        ir_set_str(G, n, "reduction", "none");
        ok(n, "f32[B]");
        fresh();
        n = N(ops[i], X("f32[B, 10, 4, 4]"), X("i32[B, 4, 4]"));
        ir_set_str(G, n, "reduction", "none");
        ok(n, "f32[B, 4, 4]");
        fresh();
        n = N(ops[i], X("f32[10]"), X("i32[]"));
        ok(n, "f32[]");

        fresh();
        N(ops[i], X("f32[B, 10]"), X("i32[B, 10]"));
        snprintf(want, sizeof want, "%s: labels must have shape [B] for scores [B, 10], got "
                 "[B, 10]", name);
        err(want);
        fresh();
        N(ops[i], X("f32[B, 10]"), X("f32[B]"));
        if (ops[i] == OP_CROSS_ENTROPY)
            snprintf(want, sizeof want, "%s: probabilities must have the scores' shape [B, 10], "
                     "got [B]", name);
        else
            snprintf(want, sizeof want, "%s: expects i32 class labels, got f32", name);
        err(want);
        fresh();
        N(ops[i], X("i32[B, 10]"), X("i32[B]"));
        snprintf(want, sizeof want, "%s: expects a floating-point tensor, got i32", name);
        err(want);
        fresh();
        N(ops[i], X("f32[]"), X("i32[]"));
        snprintf(want, sizeof want, "%s: expects scores of shape [N, C] or [N, C, d...], got []",
                 name);
        err(want);
    }
    /* soft targets: probabilities of the scores' shape and type */
    fresh();
    Node *n = N(OP_CROSS_ENTROPY, X("f32[B, 10, 3]"), X("f32[B, 10, 3]"));
    ir_set_str(G, n, "reduction", "none");
    ok(n, "f32[B, 3]");
    fresh();
    n = N(OP_CROSS_ENTROPY, X("f64[10]"), X("f64[10]"));
    ok(n, "f64[]");
    fresh();
    N(OP_CROSS_ENTROPY, X("f32[B, 10]"), X("f64[B, 10]"));
    err("cross_entropy: element types differ (f32 vs f64)");
    fresh();
    n = N(OP_MULTI_MARGIN_LOSS, X("f32[B, 10]"), X("i32[B]"));
    ir_set_float(G, n, "p", 3);
    err("multi_margin_loss: p must be 1 or 2, got 3");
    /* ignore_index: any value with labels (inside 0..C-1 it ignores that
     * class), none with probabilities, as PyTorch's */
    for (int i = 0; i < 2; i++) {
        fresh();
        n = N(i ? OP_NLL_LOSS : OP_CROSS_ENTROPY, X("f32[B, 10, 3]"), X("i32[B, 3]"));
        ir_set_int(G, n, "ignore_index", i ? 4 : -100);
        ir_set_str(G, n, "reduction", "none");
        ok(n, "f32[B, 3]");
    }
    fresh();
    n = N(OP_CROSS_ENTROPY, X("f32[B, 10]"), X("f32[B, 10]"));
    ir_set_int(G, n, "ignore_index", -100);
    err("cross_entropy: ignore_index needs i32 class labels, not probabilities (as in PyTorch)");
}
END_TEST

TEST(rules, pair_loss)
{
    static const Op ops[] = {OP_BINARY_CROSS_ENTROPY, OP_MSE, OP_L1_LOSS, OP_SMOOTH_L1_LOSS,
                             OP_HUBER_LOSS, OP_KL_DIV};
    for (int i = 0; i < countof(ops); i++) {
        const char *name = op_info[ops[i]].text;
        char want[256];
        fresh();
        Node *n = N(ops[i], X("f32[B, 1]"), X("f32[B, 1]"));
        ok(n, "f32[]");
        fresh();
        n = N(ops[i], X("f64[B, 3]"), X("f64[B, 3]"));
        ir_set_str(G, n, "reduction", "none");
        ok(n, "f64[B, 3]");
        fresh();
        N(ops[i], X("f32[B, 1]"), X("f32[B]"));
        snprintf(want, sizeof want, "%s: prediction and target shapes differ ([B, 1] vs [B])",
                 name);
        err(want);
        fresh();
        N(ops[i], X("f32[B]"), X("f64[B]"));
        snprintf(want, sizeof want, "%s: element types differ (f32 vs f64)", name);
        err(want);
        fresh();
        N(ops[i], X("i32[B]"), X("i32[B]"));
        snprintf(want, sizeof want, "%s: expects a floating-point tensor, got i32", name);
        err(want);
    }
    fresh();
    Node *n = N(OP_SMOOTH_L1_LOSS, X("f32[B]"), X("f32[B]"));
    ir_set_float(G, n, "beta", 0);
    ok(n, "f32[]");
    fresh();
    n = N(OP_SMOOTH_L1_LOSS, X("f32[B]"), X("f32[B]"));
    ir_set_float(G, n, "beta", -1);
    err("smooth_l1_loss: beta must be >= 0, got -1");
    fresh();
    n = N(OP_HUBER_LOSS, X("f32[B]"), X("f32[B]"));
    ir_set_float(G, n, "delta", 0);
    err("huber_loss: delta must be positive, got 0");
}
END_TEST

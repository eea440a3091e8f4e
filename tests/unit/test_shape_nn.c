/*
 * The shape rules of convolutions, pooling and normalization
 * (passes/shape_nn.c): exact inferred types, canonicalized attributes and
 * the text of each diagnostic. The helpers are shapetest.h's.
 */
#include "shapetest.h"

SUITE("shape_nn");
GROUP(rules, NULL, teardown);

TEST(rules, conv2d)
{
    fresh();
    Node *n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    ok(n, "f32[B, 16, 24, 24]");
    ck_assert_str_eq(ints(n, "stride"), "[1, 1]");
    ck_assert_str_eq(ints(n, "padding"), "[0, 0]");
    ck_assert_str_eq(ints(n, "dilation"), "[1, 1]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 4, 4]"));
    INTS(n, "stride", 2);
    INTS(n, "padding", 2);
    ok(n, "f32[B, 16, 15, 15]");
    ck_assert_str_eq(ints(n, "stride"), "[2, 2]");
    ck_assert_str_eq(ints(n, "padding"), "[2, 2]");
    fresh();
    n = N(OP_CONV2D, X("f64[2, 4, 8, 9]"), P("f64[8, 2, 3, 3]"));
    ir_set_int(G, n, "groups", 2);
    INTS(n, "stride", 1, 2);
    ok(n, "f64[2, 8, 6, 4]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 1, 7, 7]"), P("f32[1, 1, 3, 3]"));
    INTS(n, "dilation", 2);
    ok(n, "f32[B, 1, 3, 3]");
    /* "same": ceil(in / stride) positions, the odd unit of padding at the end */
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 4, 5]"));
    ir_set_str(G, n, "padding", "same");
    ok(n, "f32[B, 16, 28, 28]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 2, 2, 2]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 27]"), P("f32[16, 3, 5, 5]"));
    ir_set_str(G, n, "padding", "same");
    INTS(n, "stride", 2);
    ok(n, "f32[B, 16, 14, 14]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 2, 2, 2]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 3, 3]"));
    ir_set_str(G, n, "padding", "same");
    INTS(n, "dilation", 3);
    ok(n, "f32[B, 16, 28, 28]");
    ck_assert_str_eq(ints(n, "padding"), "[3, 3]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    ir_set_str(G, n, "padding", "valid");
    ok(n, "f32[B, 16, 24, 24]");
    ck_assert_str_eq(ints(n, "padding"), "[0, 0]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "padding", 0, 2, 1, 0);
    ok(n, "f32[B, 16, 26, 25]");
    ck_assert_str_eq(ints(n, "padding"), "[0, 2, 1, 0]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "padding", 1, 1, 2, 2);
    ok(n, "f32[B, 16, 26, 28]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 2]");

    fresh();
    N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 4, 5, 5]"));
    err("conv2d: weight [16, 4, 5, 5] expects 4 input channels per group, but x [B, 3, 28, 28] "
        "has 3 (groups = 1)");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 6, 8, 8]"), P("f32[8, 3, 3, 3]"));
    ir_set_int(G, n, "groups", 4);
    err("conv2d: input channels (6) are not divisible by groups (4) in [B, 6, 8, 8]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 6, 8, 8]"), P("f32[9, 3, 3, 3]"));
    ir_set_int(G, n, "groups", 2);
    err("conv2d: output channels (9) are not divisible by groups (2) in [9, 3, 3, 3]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 6, 8, 8]"), P("f32[8, 3, 3, 3]"));
    ir_set_int(G, n, "groups", 0);
    err("conv2d: groups must be at least 1, got 0");
    fresh();
    N(OP_CONV2D, X("f32[B, 3, 3, 3]"), P("f32[16, 3, 5, 5]"));
    err("conv2d: output height would be empty: input height 3, kernel 5, padding 0, dilation 1 "
        "(x [B, 3, 3, 3], weight [16, 3, 5, 5])");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "stride", 1, 2, 3);
    err("conv2d: 'stride' must have 1 or 2 elements, got 3");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "stride", 0);
    err("conv2d: 'stride' must be at least 1, got 0");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "padding", -1);
    err("conv2d: 'padding' must be at least 0, got -1");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "dilation", 1LL << 40);
    err("conv2d: 'dilation' value 1099511627776 is too large");
    fresh();
    N(OP_CONV2D, X("f32[B, 28, 28]"), P("f32[16, 3, 5, 5]"));
    err("conv2d: expects x of shape [N, C, H, W], got [B, 28, 28]");
    fresh();
    N(OP_CONV2D, X("f32[3, B, 28, 28]"), P("f32[16, 3, 5, 5]"));
    err("conv2d: the channel dimension cannot be the batch dimension, got [3, B, 28, 28]");
    fresh();
    N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5]"));
    err("conv2d: expects a weight of shape [O, C/groups, kh, kw], got [16, 3, 5]");
    fresh();
    N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f64[16, 3, 5, 5]"));
    err("conv2d: element types differ (f32 vs f64)");
    fresh();
    N(OP_CONV2D, X("i32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    err("conv2d: expects a floating-point tensor, got i32");
}
END_TEST

TEST(rules, conv1d)
{
    fresh();
    Node *n = N(OP_CONV1D, X("f32[B, 4, 100]"), P("f32[8, 4, 3]"));
    INTS(n, "stride", 2);
    ok(n, "f32[B, 8, 49]");
    ck_assert_str_eq(ints(n, "stride"), "[2]");
    ck_assert_str_eq(ints(n, "padding"), "[0]");
    fresh();
    n = N(OP_CONV1D, X("f32[B, 4, 100]"), P("f32[8, 4, 4]"));
    ir_set_str(G, n, "padding", "same");
    INTS(n, "stride", 3);
    ok(n, "f32[B, 8, 34]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 2]");
    fresh();
    n = N(OP_CONV1D, X("f32[B, 4, 100]"), P("f32[8, 4, 4]"));
    INTS(n, "padding", 3, 0);
    ok(n, "f32[B, 8, 100]");
    ck_assert_str_eq(ints(n, "padding"), "[3, 0]");
    fresh();
    n = N(OP_CONV1D, X("f32[B, 4, 100]"), P("f32[8, 4, 3]"));
    INTS(n, "stride", 1, 2);
    err("conv1d: 'stride' must be one integer, got 2");
    fresh();
    N(OP_CONV1D, X("f32[B, 4, 2]"), P("f32[8, 4, 3]"));
    err("conv1d: output length would be empty: input length 2, kernel 3");
    fresh();
    N(OP_CONV1D, X("f32[B, 4, 10, 10]"), P("f32[8, 4, 3]"));
    err("conv1d: expects x of shape [N, C, L], got [B, 4, 10, 10]");
}
END_TEST

TEST(rules, conv3d)
{
    fresh();
    Node *n = N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    INTS(n, "stride", 2, 1, 3);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 6, 4, 10, 4]");
    ck_assert_str_eq(ints(n, "stride"), "[2, 1, 3]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 1, 1]");
    ck_assert_str_eq(ints(n, "dilation"), "[1, 1, 1]");
    fresh();
    n = N(OP_CONV3D, X("f64[2, 4, 8, 10, 12]"), P("f64[6, 2, 2, 2, 2]"));
    ir_set_int(G, n, "groups", 2);
    ir_set_str(G, n, "padding", "same");
    ok(n, "f64[2, 6, 8, 10, 12]");
    ck_assert_str_eq(ints(n, "padding"), "[0, 1, 0, 1, 0, 1]");
    fresh();
    n = N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    INTS(n, "dilation", 2, 1);
    err("conv3d: 'dilation' must have 1 or 3 elements, got 2");
    fresh();
    n = N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    INTS(n, "padding", 1, 1, 1, 1);
    err("conv3d: 'padding' must have 1, 3 or 6 elements (one, one per dimension, or [begin, "
        "end] for each), got 4");
    fresh();
    N(OP_CONV3D, X("f32[B, 4, 2, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    err("conv3d: output depth would be empty: input depth 2, kernel 3");
    fresh();
    N(OP_CONV3D, X("f32[B, 4, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    err("conv3d: expects x of shape [N, C, D, H, W], got [B, 4, 10, 12]");
    fresh();
    N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 4, 3, 3]"));
    err("conv3d: expects a weight of shape [O, C/groups, kd, kh, kw], got [6, 4, 3, 3]");
    fresh();
    N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 3, 3, 3, 3]"));
    err("conv3d: weight [6, 3, 3, 3, 3] expects 3 input channels per group, but x "
        "[B, 4, 8, 10, 12] has 4 (groups = 1)");
    /* the gradients of rank 5 */
    fresh();
    n = N(OP_CONV_GRAD_INPUT, X("f32[B, 6, 4, 10, 4]"), P("f32[6, 4, 3, 3, 3]"));
    INTS(n, "size", 8, 10, 12);
    INTS(n, "stride", 2, 1, 3);
    INTS(n, "padding", 1);
    INTS(n, "dilation", 1);
    ir_set_int(G, n, "groups", 1);
    ok(n, "f32[B, 4, 8, 10, 12]");
    fresh();
    n = N(OP_CONV_GRAD_WEIGHT, X("f32[B, 4, 8, 10, 12]"), X("f32[B, 6, 4, 10, 4]"));
    INTS(n, "kernel", 3);
    INTS(n, "stride", 2, 1, 3);
    INTS(n, "padding", 1);
    INTS(n, "dilation", 1);
    ir_set_int(G, n, "groups", 1);
    ok(n, "f32[6, 4, 3, 3, 3]");
    fresh();
    n = N(OP_CONV_GRAD_WEIGHT, X("f32[B, 4, 8, 10, 12]"), X("f32[B, 6, 5, 10, 4]"));
    INTS(n, "kernel", 3);
    INTS(n, "stride", 2, 1, 3);
    INTS(n, "padding", 1);
    INTS(n, "dilation", 1);
    ir_set_int(G, n, "groups", 1);
    err("conv_grad_weight: dy [B, 6, 5, 10, 4] does not match the forward sizes");
}
END_TEST

TEST(rules, conv_transpose2d)
{
    fresh();
    Node *n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 7, 7]"), P("f32[8, 4, 4, 4]"));
    INTS(n, "stride", 2);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 4, 14, 14]");
    ck_assert_str_eq(ints(n, "output_padding"), "[0, 0]");
    ck_assert_str_eq(ints(n, "stride"), "[2, 2]");
    fresh();
    n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 7, 7]"), P("f32[8, 3, 3, 3]"));
    ir_set_int(G, n, "groups", 2);
    INTS(n, "stride", 2);
    INTS(n, "output_padding", 1, 0);
    ok(n, "f32[B, 6, 16, 15]");
    fresh();
    n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 7, 7]"), P("f32[8, 4, 4, 4]"));
    INTS(n, "stride", 2);
    INTS(n, "output_padding", 2);
    err("conv_transpose2d: output_padding (2) must be smaller than either stride (2) or "
        "dilation (1)");
    fresh();
    N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 7, 7]"), P("f32[4, 8, 4, 4]"));
    err("conv_transpose2d: weight [4, 8, 4, 4] expects 4 input channels, but x [B, 8, 7, 7] "
        "has 8");
    fresh();
    n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 2, 2]"), P("f32[8, 4, 1, 1]"));
    INTS(n, "padding", 1);
    err("conv_transpose2d: output height would be 0: input height 2, kernel 1, padding 1, "
        "stride 1");
    fresh();
    n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 9, 7, 7]"), P("f32[9, 4, 4, 4]"));
    ir_set_int(G, n, "groups", 2);
    err("conv_transpose2d: input channels (9) are not divisible by groups (2) in [B, 9, 7, 7]");
}
END_TEST

TEST(rules, conv_transpose1d)
{
    fresh();
    Node *n = N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[8, 4, 4]"));
    INTS(n, "stride", 2);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 4, 14]");
    ck_assert_str_eq(ints(n, "output_padding"), "[0]");
    ck_assert_str_eq(ints(n, "stride"), "[2]");
    ck_assert_str_eq(ints(n, "dilation"), "[1]");
    fresh();
    n = N(OP_CONV_TRANSPOSE1D, X("f64[3, 8, 7]"), P("f64[8, 3, 3]"));
    ir_set_int(G, n, "groups", 2);
    INTS(n, "stride", 2);
    INTS(n, "output_padding", 1);
    INTS(n, "dilation", 2);
    ok(n, "f64[3, 6, 18]");
    fresh();
    n = N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[8, 4, 4]"));
    INTS(n, "stride", 2, 2);
    err("conv_transpose1d: 'stride' must be one integer, got 2");
    fresh();
    n = N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[8, 4, 4]"));
    INTS(n, "output_padding", 1);
    err("conv_transpose1d: output_padding (1) must be smaller than either stride (1) or "
        "dilation (1)");
    fresh();
    N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7, 7]"), P("f32[8, 4, 4]"));
    err("conv_transpose1d: expects x of shape [N, C, L], got [B, 8, 7, 7]");
    fresh();
    N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[8, 4, 4, 4]"));
    err("conv_transpose1d: expects a weight of shape [C, O/groups, k], got [8, 4, 4, 4]");
    fresh();
    N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[4, 8, 4]"));
    err("conv_transpose1d: weight [4, 8, 4] expects 4 input channels, but x [B, 8, 7] has 8");
    fresh();
    n = N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 2]"), P("f32[8, 4, 1]"));
    INTS(n, "padding", 1);
    err("conv_transpose1d: output length would be 0: input length 2, kernel 1, padding 1, "
        "stride 1");
}
END_TEST

TEST(rules, upsample)
{
    fresh();
    Node *n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "scale", 2);
    ok(n, "f32[B, 3, 14, 18]");
    fresh();
    n = N(OP_UPSAMPLE, X("f64[2, 3, 7, 9]"));
    INTS(n, "scale", 1, 3);
    ok(n, "f64[2, 3, 7, 27]");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "size", 5, 20);
    ir_set_str(G, n, "mode", "bilinear");
    ok(n, "f32[B, 3, 5, 20]");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    err("upsample: give either 'scale' or 'size'");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "scale", 2);
    INTS(n, "size", 14);
    err("upsample: give either 'scale' or 'size', not both");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "scale", 0);
    err("upsample: 'scale' must be at least 1, got 0");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "scale", 2);
    ir_set_bool(G, n, "align_corners", true);
    err("upsample: align_corners needs mode = \"bilinear\"");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "size", 20, 65536);
    ok(n, "f32[B, 3, 20, 65536]");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "size", 3, 65537);
    err("upsample: output width 65537 is more than the 65536 supported");
    fresh();
    n = N(OP_UPSAMPLE_GRAD, X("f32[1, 1, 7, 9]"), X("f32[1, 1, 70000, 18]"));
    err("upsample_grad: output height 70000 is more than the 65536 supported");
    fresh();
    n = N(OP_UPSAMPLE_GRAD, X("f32[B, 3, 7, 9]"), X("f32[B, 3, 14, 18]"));
    ok(n, "f32[B, 3, 7, 9]");
    fresh();
    N(OP_UPSAMPLE_GRAD, X("f32[B, 3, 7, 9]"), X("f64[B, 3, 14, 18]"));
    err("upsample_grad: element types differ (f32 vs f64)");
}
END_TEST

TEST(rules, adaptive_pool)
{
    static const Op ops[] = {OP_ADAPTIVE_AVG_POOL2D, OP_ADAPTIVE_MAX_POOL2D};
    for (int i = 0; i < 2; i++) {
        char want[256];
        fresh();
        Node *n = N(ops[i], X("f32[B, 3, 7, 9]"));
        INTS(n, "output_size", 3);
        ok(n, "f32[B, 3, 3, 3]");
        ck_assert_str_eq(ints(n, "output_size"), "[3, 3]");
        fresh();
        n = N(ops[i], X("f64[2, 3, 7, 9]"));
        INTS(n, "output_size", 1, 12);
        ok(n, "f64[2, 3, 1, 12]");
        fresh();
        n = N(ops[i], X("f32[B, 3, 7, 9]"));
        INTS(n, "output_size", 0, 2);
        snprintf(want, sizeof want, "%s: 'output_size' must be at least 1, got 0",
                 op_info[ops[i]].text);
        err(want);
        fresh();
        n = N(ops[i], X("f32[B, 3, 7]"));
        INTS(n, "output_size", 2);
        snprintf(want, sizeof want, "%s: expects x of shape [N, C, H, W], got [B, 3, 7]",
                 op_info[ops[i]].text);
        err(want);
    }
    static const Op grads[] = {OP_ADAPTIVE_AVG_POOL2D_GRAD, OP_ADAPTIVE_MAX_POOL2D_GRAD};
    for (int i = 0; i < 2; i++) {
        char want[256];
        fresh();
        Node *n = N(grads[i], X("f32[B, 3, 7, 9]"), X("f32[B, 3, 2, 12]"));
        ok(n, "f32[B, 3, 7, 9]");
        fresh();
        N(grads[i], X("f32[B, 3, 7, 9]"), X("f32[B, 4, 2, 12]"));
        snprintf(want, sizeof want, "%s: dimension 1 differs between [B, 3, 7, 9] and "
                 "[B, 4, 2, 12]", op_info[grads[i]].text);
        err(want);
    }
}
END_TEST

TEST(rules, pool)
{
    static const Op ops[] = {OP_MAX_POOL2D, OP_AVG_POOL2D, OP_LP_POOL2D, OP_STOCHASTIC_POOL2D};
    for (int i = 0; i < countof(ops); i++) {
        const char *name = op_info[ops[i]].text;
        char want[256];
        fresh();
        Node *n = N(ops[i], X("f32[B, 3, 28, 28]"));
        INTS(n, "kernel", 2);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 2);
        ok(n, "f32[B, 3, 14, 14]");
        ck_assert_str_eq(ints(n, "kernel"), "[2, 2]");
        ck_assert_str_eq(ints(n, "stride"), "[2, 2]");

        fresh();
        n = N(ops[i], X("f64[B, 3, 28, 20]"));
        INTS(n, "kernel", 3, 2);
        INTS(n, "stride", 1);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 1);
        ok(n, "f64[B, 3, 26, 19]");
        ck_assert_str_eq(ints(n, "stride"), "[1, 1]");

        fresh();
        n = N(ops[i], X("f32[B, 3, 2, 28]"));
        INTS(n, "kernel", 3);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 2);
        snprintf(want, sizeof want, "%s: kernel height 3 is larger than the input height 2 of "
                 "[B, 3, 2, 28]", name);
        err(want);

        fresh();
        n = N(ops[i], X("i32[B, 3, 4, 4]"));
        INTS(n, "kernel", 2);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 2);
        snprintf(want, sizeof want, "%s: expects a floating-point tensor, got i32", name);
        err(want);

        fresh();
        n = N(ops[i], X("f32[B, 3, 4, 4]"));
        INTS(n, "kernel", 0);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 2);
        snprintf(want, sizeof want, "%s: 'kernel' must be at least 1, got 0", name);
        err(want);
    }
    /* padding (max and avg): at most half the kernel */
    fresh();
    Node *n = N(OP_MAX_POOL2D, X("f32[B, 3, 28, 28]"));
    INTS(n, "kernel", 3);
    INTS(n, "stride", 2);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 3, 14, 14]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 1]");
    fresh();
    n = N(OP_AVG_POOL2D, X("f32[B, 3, 28, 28]"));
    INTS(n, "kernel", 3);
    INTS(n, "padding", 2);
    err("avg_pool2d: padding (2) must be at most half the kernel size (3)");
    fresh();
    n = N(OP_MAX_POOL2D, X("f32[B, 3, 1, 1]"));
    INTS(n, "kernel", 2);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 3, 1, 1]");
    fresh();
    n = N(OP_LP_POOL2D, X("f32[B, 3, 4, 4]"));
    INTS(n, "kernel", 2);
    ir_set_float(G, n, "p", 0);
    err("lp_pool2d: p must be positive, got 0");
    fresh();
    n = N(OP_MAX_POOL2D, X("f32[B, 3, 4]"));
    INTS(n, "kernel", 2);
    err("max_pool2d: expects x of shape [N, C, H, W], got [B, 3, 4]");

    /* the 1-d pools: one value per attribute, [N, C, L] */
    static const Op ops1[] = {OP_MAX_POOL1D, OP_AVG_POOL1D};
    for (int i = 0; i < countof(ops1); i++) {
        const char *name = op_info[ops1[i]].text;
        char want[256];
        fresh();
        n = N(ops1[i], X("f32[B, 3, 11]"));
        INTS(n, "kernel", 2);
        ok(n, "f32[B, 3, 5]");
        ck_assert_str_eq(ints(n, "stride"), "[2]");
        ck_assert_str_eq(ints(n, "padding"), "[0]");
        fresh();
        n = N(ops1[i], X("f64[2, 3, 11]"));
        INTS(n, "kernel", 4);
        INTS(n, "stride", 3);
        INTS(n, "padding", 2);
        ir_set_bool(G, n, "ceil_mode", true);
        ok(n, "f64[2, 3, 5]");
        fresh();
        n = N(ops1[i], X("f32[B, 3, 11]"));
        INTS(n, "kernel", 2, 2);
        snprintf(want, sizeof want, "%s: 'kernel' must be one integer, got 2", name);
        err(want);
        fresh();
        n = N(ops1[i], X("f32[B, 3, 2]"));
        INTS(n, "kernel", 3);
        snprintf(want, sizeof want, "%s: kernel length 3 is larger than the input length 2 of "
                 "[B, 3, 2]", name);
        err(want);
        fresh();
        n = N(ops1[i], X("f32[B, 3, 8]"));
        INTS(n, "kernel", 3);
        INTS(n, "padding", 2);
        snprintf(want, sizeof want, "%s: padding (2) must be at most half the kernel size (3)",
                 name);
        err(want);
        fresh();
        n = N(ops1[i], X("f32[B, 3, 8, 8]"));
        INTS(n, "kernel", 2);
        snprintf(want, sizeof want, "%s: expects x of shape [N, C, L], got [B, 3, 8, 8]", name);
        err(want);
    }
    /* the 3-d pools: one value or three per attribute, [N, C, D, H, W] */
    static const Op ops3[] = {OP_MAX_POOL3D, OP_AVG_POOL3D};
    for (int i = 0; i < countof(ops3); i++) {
        const char *name = op_info[ops3[i]].text;
        char want[256];
        fresh();
        n = N(ops3[i], X("f32[B, 3, 5, 6, 7]"));
        INTS(n, "kernel", 2);
        ok(n, "f32[B, 3, 2, 3, 3]");
        ck_assert_str_eq(ints(n, "stride"), "[2, 2, 2]");
        ck_assert_str_eq(ints(n, "padding"), "[0, 0, 0]");
        fresh();
        n = N(ops3[i], X("f64[2, 3, 5, 6, 7]"));
        INTS(n, "kernel", 3, 2, 4);
        INTS(n, "stride", 2, 2, 3);
        INTS(n, "padding", 1, 0, 2);
        ir_set_bool(G, n, "ceil_mode", true);
        ok(n, "f64[2, 3, 3, 3, 3]");
        fresh();
        n = N(ops3[i], X("f32[B, 3, 5, 6, 7]"));
        INTS(n, "kernel", 2, 2);
        snprintf(want, sizeof want, "%s: 'kernel' must have 1 or 3 elements, got 2", name);
        err(want);
        fresh();
        n = N(ops3[i], X("f32[B, 3, 2, 6, 7]"));
        INTS(n, "kernel", 3);
        snprintf(want, sizeof want, "%s: kernel depth 3 is larger than the input depth 2 of "
                 "[B, 3, 2, 6, 7]", name);
        err(want);
        fresh();
        n = N(ops3[i], X("f32[B, 3, 6, 7]"));
        INTS(n, "kernel", 2);
        snprintf(want, sizeof want, "%s: expects x of shape [N, C, D, H, W], got [B, 3, 6, 7]",
                 name);
        err(want);
    }
    fresh();
    n = N(OP_AVG_POOL2D_GRAD, X("f32[B, 3, 5, 6, 7]"), X("f32[B, 3, 2, 3, 3]"));
    INTS(n, "kernel", 2);
    INTS(n, "stride", 2);
    INTS(n, "padding", 0);
    ok(n, "f32[B, 3, 5, 6, 7]");
    /* their gradients: the 2-d primitives of rank 3 */
    fresh();
    n = N(OP_MAX_POOL2D_GRAD, X("f32[B, 3, 11]"), X("f32[B, 3, 5]"));
    INTS(n, "kernel", 4);
    INTS(n, "stride", 3);
    INTS(n, "padding", 2);
    ir_set_bool(G, n, "ceil_mode", true);
    ok(n, "f32[B, 3, 11]");
    fresh();
    n = N(OP_AVG_POOL2D_GRAD, X("f32[B, 3, 11]"), X("f32[B, 3, 5]"));
    INTS(n, "kernel", 4);
    INTS(n, "stride", 3);
    INTS(n, "padding", 2);
    err("avg_pool2d_grad: dy [B, 3, 5] does not match the forward sizes");
    fresh();
    n = N(OP_MAX_POOL2D_GRAD, X("f32[B, 11]"), X("f32[B, 5]"));
    INTS(n, "kernel", 2);
    INTS(n, "stride", 2);
    INTS(n, "padding", 0);
    err("max_pool2d_grad: expects x of rank 3 to 5, got [B, 11]");

    static const Op gops[] = {OP_GLOBAL_AVG_POOL, OP_GLOBAL_MAX_POOL};
    for (int i = 0; i < 2; i++) {
        fresh();
        n = N(gops[i], X("f32[B, 3, 7, 7]"));
        ok(n, "f32[B, 3]");
        fresh();
        n = N(gops[i], X("f64[B, 5, 9]"));
        ok(n, "f64[B, 5]");
        fresh();
        N(gops[i], X("f32[B, 3]"));
        char want[128];
        snprintf(want, sizeof want, "%s: expects x of shape [N, C, H, W] or [N, C, L], got [B, 3]",
                 op_info[gops[i]].text);
        err(want);
    }
}
END_TEST

/* Normalization */

static Node *bn(const char *x, const char *gamma, const char *beta, Node **m, Node **v)
{
    Node *xs = X(x), *gs = P(gamma), *bs = P(beta);
    *m = ir_state(G, arena_printf(A, "s%d", G->nodes.n), DT_UNKNOWN, (Shape){0}, INIT_ZEROS,
                  (Loc){0});
    *v = ir_state(G, arena_printf(A, "s%d", G->nodes.n), DT_UNKNOWN, (Shape){0}, INIT_ONES,
                  (Loc){0});
    return N(OP_BATCH_NORM, xs, gs, bs, *m, *v);
}

TEST(rules, batch_norm)
{
    Node *m, *v;
    fresh();
    Node *n = bn("f32[B, 16, 8, 8]", "f32[16]", "f32[16]", &m, &v);
    ok(n, "f32[B, 16, 8, 8]");
    ck_assert_str_eq(ty(m), "f32[16]");
    ck_assert_str_eq(ty(v), "f32[16]");
    /* the second run checks the now typed statistics instead */
    ck_assert(pass_shape(G));
    fresh();
    n = bn("f64[B, 5]", "f64[5]", "f64[5]", &m, &v);
    ok(n, "f64[B, 5]");
    ck_assert_str_eq(ty(v), "f64[5]");
    fresh();
    n = bn("f32[B, 4, 10]", "f32[4]", "f32[4]", &m, &v);
    ok(n, "f32[B, 4, 10]");

    fresh();
    bn("f32[B, 16, 8, 8]", "f32[8]", "f32[16]", &m, &v);
    err("batch_norm: gamma must have shape [16] for x [B, 16, 8, 8], got [8]");
    fresh();
    bn("f32[B, 16]", "f32[16]", "f32[16, 1]", &m, &v);
    err("batch_norm: beta must have shape [16] for x [B, 16], got [16, 1]");
    fresh();
    bn("f32[B, 16]", "f64[16]", "f64[16]", &m, &v);
    err("batch_norm: element types differ (f32 vs f64)");
    fresh();
    bn("f32[B]", "f32[1]", "f32[1]", &m, &v);
    err("batch_norm: expects x of shape [N, C], [N, C, L] or [N, C, H, W], got [B]");
    fresh();
    n = bn("f32[B, 16]", "f32[16]", "f32[16]", &m, &v);
    ir_set_float(G, n, "momentum", 1.5);
    err("batch_norm: momentum must be in [0, 1], got 1.5");
    fresh();
    n = bn("f32[B, 16]", "f32[16]", "f32[16]", &m, &v);
    ir_set_float(G, n, "eps", 0);
    err("batch_norm: eps must be positive, got 0");
    /* a failed batch_norm leaves its statistics untyped: readers are skipped */
    fresh();
    bn("f32[B, 16]", "f32[8]", "f32[8]", &m, &v);
    Node *r = N(OP_ADD, m, v);
    err("batch_norm: gamma must have shape [16] for x [B, 16], got [8]");
    ck_assert_int_eq(r->dtype, DT_UNKNOWN);
    fresh();
    bn("f32[B, 16]", "f32[16]", "f32[16]", &m, &v);
    Node *after = N(OP_ADD, m, v);
    ok(after, "f32[16]");
    /* running statistics typed otherwise (a textual IR, say) */
    fresh();
    n = bn("f32[B, 16]", "f32[16]", "f32[16]", &m, &v);
    v->dtype = DT_F32;
    v->shape = (Shape){.rank = 1, .d = {{8, false}}};
    err("batch_norm: running statistics 's4' are f32[8], expected f32[16]");
}
END_TEST

/* batch norm's gradients (grad_nn.c builds them) */
TEST(rules, batch_norm_grad)
{
    fresh();
    Node *x = X("f32[B, 16, 8, 8]"), *dy = X("f32[B, 16, 8, 8]");
    Node *s = N(OP_BATCH_NORM_GRAD_STATS, x, dy);
    ok(s, "f32[4, 16]");
    Node *n = N(OP_BATCH_NORM_GRAD, x, P("f32[16]"), dy, s);
    ok(n, "f32[B, 16, 8, 8]");
    fresh();
    x = X("f64[B, 5]");
    s = N(OP_BATCH_NORM_GRAD_STATS, x, x);
    ok(s, "f64[4, 5]");
    n = N(OP_BATCH_NORM_GRAD, x, P("f64[5]"), x, s);
    ok(n, "f64[B, 5]");

    fresh();
    N(OP_BATCH_NORM_GRAD_STATS, X("f32[B, 16, 8]"), X("f32[B, 16, 4]"));
    err("batch_norm_grad_stats: dy [B, 16, 4] must have the shape of x [B, 16, 8]");
    fresh();
    N(OP_BATCH_NORM_GRAD_STATS, X("f32[B, 16]"), X("f64[B, 16]"));
    err("batch_norm_grad_stats: element types differ (f32 vs f64)");
    fresh();
    N(OP_BATCH_NORM_GRAD_STATS, X("f32[B]"), X("f32[B]"));
    err("batch_norm_grad_stats: expects x of shape [N, C], [N, C, L] or [N, C, H, W], got [B]");
    fresh();
    n = N(OP_BATCH_NORM_GRAD_STATS, X("f32[B, 3]"), X("f32[B, 3]"));
    ir_set_float(G, n, "eps", -1);
    err("batch_norm_grad_stats: eps must be positive, got -1");
    fresh();
    x = X("f32[B, 16, 8]");
    N(OP_BATCH_NORM_GRAD, x, P("f32[8]"), x, X("f32[4, 16]"));
    err("batch_norm_grad: gamma must have shape [16] for x [B, 16, 8], got [8]");
    fresh();
    x = X("f32[B, 16, 8]");
    N(OP_BATCH_NORM_GRAD, x, P("f32[16]"), x, X("f32[2, 16]"));
    err("batch_norm_grad: the statistics must have shape [4, 16] for x [B, 16, 8], got [2, 16]");
}
END_TEST

TEST(rules, layer_norm)
{
    fresh();
    Node *n = N(OP_LAYER_NORM, X("f32[B, 5, 16]"), P("f32[16]"), P("f32[16]"));
    ok(n, "f32[B, 5, 16]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 2);
    fresh();
    n = N(OP_LAYER_NORM, X("f64[B, 5, 16]"), P("f64[5, 16]"), P("f64[5, 16]"));
    ir_set_int(G, n, "axis", 1);
    ok(n, "f64[B, 5, 16]");
    fresh();
    N(OP_LAYER_NORM, X("f32[B, 5, 16]"), P("f32[5]"), P("f32[16]"));
    err("layer_norm: gamma must have shape [16] for x [B, 5, 16], got [5]");
    fresh();
    n = N(OP_LAYER_NORM, X("f32[B, 5, 16]"), P("f32[16]"), P("f32[16]"));
    ir_set_int(G, n, "axis", 3);
    err("layer_norm: axis 3 is out of range for [B, 5, 16] (rank 3)");
    fresh();
    n = N(OP_LAYER_NORM, X("f32[B, 16]"), P("f32[16]"), P("f32[16]"));
    ir_set_float(G, n, "eps", -1);
    err("layer_norm: eps must be positive, got -1");
    fresh();
    N(OP_LAYER_NORM, X("f32[]"), P("f32[]"), P("f32[]"));
    err("layer_norm: expects a tensor of rank >= 1, got []");
    /* without axis, gamma's dimensions are the normalized ones */
    fresh();
    n = N(OP_LAYER_NORM, X("f32[B, 4, 5, 16]"), P("f32[5, 16]"), P("f32[5, 16]"));
    ok(n, "f32[B, 4, 5, 16]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 2);
    fresh();
    N(OP_LAYER_NORM, X("f32[B, 16]"), X("f32[2, 3, 16]"), P("f32[16]"));
    err("layer_norm: gamma [2, 3, 16] must have 1 to 2 dimensions, the trailing ones of x "
        "[B, 16]");
    fresh();
    N(OP_LAYER_NORM, X("f32[B, 16]"), P("f32[]"), P("f32[]"));
    err("layer_norm: gamma [] must have 1 to 2 dimensions, the trailing ones of x [B, 16]");
}
END_TEST

/* layer norm's gradients (grad_nn.c builds them) */
TEST(rules, layer_norm_grad)
{
    fresh();
    Node *x = X("f32[B, 5, 16]"), *dy = X("f32[B, 5, 16]");
    Node *s = N(OP_LAYER_NORM_STATS, x);
    ir_set_int(G, s, "axis", -1);
    ok(s, "f32[B, 5, 2]");
    ck_assert_int_eq(ir_attr_int(s, "axis"), 2);
    Node *n = N(OP_LAYER_NORM_GRAD, x, P("f32[16]"), dy, s);
    ir_set_int(G, n, "axis", 2);
    ok(n, "f32[B, 5, 16]");
    fresh();
    x = X("f64[B, 5, 16]");
    s = N(OP_LAYER_NORM_STATS, x);
    ir_set_int(G, s, "axis", 1);
    ok(s, "f64[B, 2]");
    n = N(OP_LAYER_NORM_GRAD, x, P("f64[5, 16]"), x, s);
    ir_set_int(G, n, "axis", 1);
    ok(n, "f64[B, 5, 16]");

    fresh();
    s = N(OP_LAYER_NORM_STATS, X("f32[B, 16]"));
    ir_set_int(G, s, "axis", 2);
    err("layer_norm_stats: axis 2 is out of range for [B, 16] (rank 2)");
    fresh();
    s = N(OP_LAYER_NORM_STATS, X("f32[B, 16]"));
    ir_set_int(G, s, "axis", 1);
    ir_set_float(G, s, "eps", 0);
    err("layer_norm_stats: eps must be positive, got 0");
    fresh();
    x = X("f32[B, 16]");
    n = N(OP_LAYER_NORM_GRAD, x, P("f32[8]"), x, X("f32[B, 2]"));
    ir_set_int(G, n, "axis", 1);
    err("layer_norm_grad: gamma must have shape [16] for x [B, 16], got [8]");
    fresh();
    x = X("f32[B, 16]");
    n = N(OP_LAYER_NORM_GRAD, x, P("f32[16]"), X("f32[B, 8]"), X("f32[B, 2]"));
    ir_set_int(G, n, "axis", 1);
    err("layer_norm_grad: dy must have shape [B, 16] for x [B, 16], got [B, 8]");
    fresh();
    x = X("f32[B, 16]");
    n = N(OP_LAYER_NORM_GRAD, x, P("f32[16]"), x, X("f32[B, 1]"));
    ir_set_int(G, n, "axis", 1);
    err("layer_norm_grad: the statistics must have shape [B, 2] for x [B, 16], got [B, 1]");
}
END_TEST

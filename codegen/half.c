/*
 * Half-precision storage in generated code: f16 and bf16 values are i16
 * bit patterns in memory, widened to f32 where a cast reads them and
 * narrowed from f32 where a cast writes them. The same bit algorithms as
 * runtime/half.c (round to nearest even; overflow to infinity; subnormals;
 * NaN kept, made quiet), built from selects rather than branches so that
 * the elementwise loops around them still vectorize; the arms that a
 * select drops may compute nonsense but never poison.
 */
#include "cg_build.h"

static LLVMValueRef k32(Cg *c, uint32_t v)
{
    return LLVMConstInt(c->i32, v, 0);
}

static LLVMValueRef and32(Cg *c, LLVMValueRef x, uint32_t m)
{
    return LLVMBuildAnd(c->b, x, k32(c, m), "");
}

static LLVMValueRef shr32(Cg *c, LLVMValueRef x, uint32_t s)
{
    return LLVMBuildLShr(c->b, x, k32(c, s), "");
}

static LLVMValueRef uge(Cg *c, LLVMValueRef x, uint32_t v)
{
    return LLVMBuildICmp(c->b, LLVMIntUGE, x, k32(c, v), "");
}

/* m >> r rounded to nearest even, for r in 1..31 */
static LLVMValueRef shift_rne(Cg *c, LLVMValueRef m, LLVMValueRef r)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef q = LLVMBuildLShr(b, m, r, "");
    LLVMValueRef half = LLVMBuildShl(b, k32(c, 1), LLVMBuildSub(b, r, k32(c, 1), ""), "");
    LLVMValueRef rem = LLVMBuildAnd(
        b, m, LLVMBuildSub(b, LLVMBuildShl(b, half, k32(c, 1), ""), k32(c, 1), ""), "");
    LLVMValueRef up = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntUGT, rem, half, ""),
                                  LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, rem, half, ""),
                                               LLVMBuildTrunc(b, q, c->i1, ""), ""),
                                  "");
    return LLVMBuildAdd(b, q, LLVMBuildZExt(b, up, c->i32, ""), "");
}

static LLVMValueRef umin(Cg *c, LLVMValueRef x, uint32_t v)
{
    LLVMValueRef a[] = {x, k32(c, v)};
    return cg_intrinsic(c, "llvm.umin", c->i32, a, 2);
}

static LLVMValueRef f16_from_f32(Cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef xb = LLVMBuildBitCast(b, x, c->i32, "");
    LLVMValueRef a = and32(c, xb, 0x7fffffff), sign = and32(c, shr32(c, xb, 16), 0x8000);
    LLVMValueRef nan = LLVMBuildOr(b, and32(c, shr32(c, a, 13), 0x3ff), k32(c, 0x7e00), "");
    LLVMValueRef normal = shift_rne(c, LLVMBuildSub(b, a, k32(c, 0x38000000), ""), k32(c, 13));
    /* subnormal: units of 2^-24, shifting out 126 - e bits (25 and more
     * leave 0: below 2^-25) */
    LLVMValueRef e = shr32(c, a, 23);
    LLVMValueRef r = umin(c, LLVMBuildSub(b, k32(c, 126), umin(c, e, 112), ""), 25);
    LLVMValueRef sub = shift_rne(c, LLVMBuildOr(b, and32(c, a, 0x7fffff), k32(c, 0x800000), ""), r);
    LLVMValueRef v = LLVMBuildSelect(b, uge(c, a, 0x38800000), normal, sub, "");
    v = LLVMBuildSelect(b, uge(c, a, 0x477ff000), k32(c, 0x7c00), v, "");
    v = LLVMBuildSelect(b, uge(c, a, 0x7f800001), nan, v, "");
    return LLVMBuildTrunc(b, LLVMBuildOr(b, v, sign, ""), c->i16, "");
}

static LLVMValueRef f32_from_f16(Cg *c, LLVMValueRef h)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef x = LLVMBuildZExt(b, h, c->i32, "");
    LLVMValueRef sign = LLVMBuildShl(b, and32(c, x, 0x8000), k32(c, 16), "");
    LLVMValueRef e = and32(c, shr32(c, x, 10), 0x1f), m = and32(c, x, 0x3ff);
    LLVMValueRef m13 = LLVMBuildShl(b, m, k32(c, 13), "");
    LLVMValueRef quiet = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntNE, m, k32(c, 0), ""),
                                         k32(c, 0x400000), k32(c, 0), "");
    LLVMValueRef special = LLVMBuildOr(b, LLVMBuildOr(b, m13, quiet, ""), k32(c, 0x7f800000), "");
    LLVMValueRef normal = LLVMBuildOr(
        b, LLVMBuildShl(b, LLVMBuildAdd(b, e, k32(c, 112), ""), k32(c, 23), ""), m13, "");
    /* m * 2^-24, exact */
    LLVMValueRef sub = LLVMBuildBitCast(
        b, LLVMBuildFMul(b, LLVMBuildUIToFP(b, m, c->f32, ""), LLVMConstReal(c->f32, 0x1p-24), ""),
        c->i32, "");
    LLVMValueRef v =
        LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, e, k32(c, 0), ""), sub, normal, "");
    v = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, e, k32(c, 0x1f), ""), special, v, "");
    return LLVMBuildBitCast(b, LLVMBuildOr(b, v, sign, ""), c->f32, "");
}

static LLVMValueRef bf16_from_f32(Cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef xb = LLVMBuildBitCast(b, x, c->i32, "");
    LLVMValueRef nan = LLVMBuildOr(b, shr32(c, xb, 16), k32(c, 0x40), "");
    LLVMValueRef odd = and32(c, shr32(c, xb, 16), 1);
    LLVMValueRef v =
        shr32(c, LLVMBuildAdd(b, LLVMBuildAdd(b, xb, k32(c, 0x7fff), ""), odd, ""), 16);
    v = LLVMBuildSelect(b, uge(c, and32(c, xb, 0x7fffffff), 0x7f800001), nan, v, "");
    return LLVMBuildTrunc(b, v, c->i16, "");
}

static LLVMValueRef f32_from_bf16(Cg *c, LLVMValueRef h)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef x = LLVMBuildShl(b, LLVMBuildZExt(b, h, c->i32, ""), k32(c, 16), "");
    LLVMValueRef nan = uge(c, and32(c, x, 0x7fffffff), 0x7f800001);
    x = LLVMBuildSelect(b, nan, LLVMBuildOr(b, x, k32(c, 0x400000), ""), x, "");
    return LLVMBuildBitCast(b, x, c->f32, "");
}

LLVMValueRef cg_half_widen(Cg *c, DType from, LLVMValueRef h)
{
    check(ir_dtype_is_half(from));
    return from == DT_F16 ? f32_from_f16(c, h) : f32_from_bf16(c, h);
}

LLVMValueRef cg_half_narrow(Cg *c, DType to, LLVMValueRef x)
{
    check(ir_dtype_is_half(to));
    return to == DT_F16 ? f16_from_f32(c, x) : bf16_from_f32(c, x);
}

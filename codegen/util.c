/*
 * Calls into the runtime that several kernel files emit: GEMM
 * (dlrt_gemm_f32/f64) and the im2col/col2im pair with its constant
 * geometry. Kept in one place so the argument lists match dlrt's
 * prototypes everywhere; each builder emits exactly one call (plus the
 * geometry global), so callers decide where globals are created.
 * Also cg_tanh, the one math function kernels expand inline.
 */
#include <stdio.h>

#include "cg.h"

void cg_gemm(Cg *c, DType t, bool ta, bool tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
             LLVMValueRef alpha, LLVMValueRef a, LLVMValueRef lda, LLVMValueRef b, LLVMValueRef ldb,
             double beta, LLVMValueRef cc, LLVMValueRef ldc)
{
    LLVMTypeRef ft = cg_type(c, t);
    LLVMTypeRef pt[] = {c->i32, c->i32, c->i64, c->i64, c->i64, ft,    c->ptr,
                        c->i64, c->ptr, c->i64, ft,     c->ptr, c->i64};
    LLVMValueRef args[] = {LLVMConstInt(c->i32, ta, 0),
                           LLVMConstInt(c->i32, tb, 0),
                           m,
                           n,
                           k,
                           alpha,
                           a,
                           lda,
                           b,
                           ldb,
                           cg_fconst(c, t, beta),
                           cc,
                           ldc};
    cg_call(c, t == DT_F32 ? "dlrt_gemm_f32" : "dlrt_gemm_f64", c->voidt, pt, countof(pt), args);
}

void cg_gemm_c(Cg *c, DType t, bool ta, bool tb, int64_t m, int64_t n, int64_t k, LLVMValueRef a,
               int64_t lda, LLVMValueRef b, int64_t ldb, double beta, LLVMValueRef out)
{
    cg_gemm(c, t, ta, tb, cg_i64(c, m), cg_i64(c, n), cg_i64(c, k), cg_fconst(c, t, 1), a,
            cg_i64(c, lda), b, cg_i64(c, ldb), beta, out, cg_i64(c, n));
}

LLVMValueRef cg_conv_geom(Cg *c, const int64_t *v)
{
    LLVMValueRef e[13];
    for (int i = 0; i < 13; i++)
        e[i] = cg_i64(c, v[i]);
    LLVMValueRef init = LLVMConstArray2(c->i64, e, 13);
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), "conv.geom");
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    return gv;
}

void cg_im2col(Cg *c, const char *what, DType t, LLVMValueRef geom, LLVMValueRef src,
               LLVMValueRef dst)
{
    char name[32];
    snprintf(name, sizeof name, "dlrt_%s_%s", what, t == DT_F32 ? "f32" : "f64");
    LLVMTypeRef pt[] = {c->ptr, c->ptr, c->ptr};
    LLVMValueRef args[] = {geom, src, dst};
    cg_call(c, name, c->voidt, pt, 3, args);
}

/* tanh without a libm call, so that loops using it (the LSTM and GRU
 * cells, gelu and its gradient) stay free of calls and can be vectorized:
 * glibc's tanhf (through expm1f) took a quarter of the text models'
 * training time. f32 only. Below |x| = 0.625, Eigen's rational
 * approximation (odd degree 13 over even degree 6; tanh(x) = x below
 * 4e-4); above it, 1 - 2 / (e^(2|x|) + 1) with the sign of x, e^y by
 * y = n ln2 + r (n rounded by adding and subtracting 1.5 * 2^23, ln2 in
 * two parts so n ln2 is exact), a degree-7 Taylor polynomial in r and
 * 2^n built in the exponent bits; |x| is capped at 9.5, where tanh is 1
 * in f32. Near +-1 the error must be absolute: gelu's 1 + tanh(u) cancels
 * it. Against tanh in f64, over every positive float (the function is
 * odd) with or without fused multiply-adds, the error is below 1.1e-7
 * absolute and 2.9e-7 relative, under 2% of the tests' f32 tolerance
 * (atol 1e-6 + rtol 1e-5 |ref|). NaN passes through (the compares are
 * unordered), +-inf give +-1. f64 keeps libm's tanh. */
LLVMValueRef cg_tanh(Cg *c, DType t, LLVMValueRef x)
{
    LLVMTypeRef ty = cg_type(c, t);
    if (t != DT_F32)
        return cg_call(c, "tanh", ty, &ty, 1, &x);
    static const double num[] = {-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                 5.12229709037114e-08,  1.48572235717979e-05, 6.37261928875436e-04,
                                 4.89352455891786e-03};
    static const double den[] = {1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                 4.89352518554385e-03};
    static const double taylor[] = {1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1, 1};
    LLVMBuilderRef b = c->b;
    LLVMValueRef ax = cg_intrinsic(c, "llvm.fabs", ty, &x, 1);
    LLVMValueRef x2 = LLVMBuildFMul(b, x, x, "");
    LLVMValueRef p = cg_fconst(c, t, num[0]), q = cg_fconst(c, t, den[0]);
    for (int i = 1; i < countof(num); i++) {
        LLVMValueRef f[3] = {p, x2, cg_fconst(c, t, num[i])};
        p = cg_intrinsic(c, "llvm.fmuladd", ty, f, 3);
    }
    for (int i = 1; i < countof(den); i++) {
        LLVMValueRef f[3] = {q, x2, cg_fconst(c, t, den[i])};
        q = cg_intrinsic(c, "llvm.fmuladd", ty, f, 3);
    }
    LLVMValueRef small = LLVMBuildFDiv(b, LLVMBuildFMul(b, p, x, ""), q, "");

    LLVMValueRef cap[2] = {ax, cg_fconst(c, t, 9.5)};
    LLVMValueRef y =
        LLVMBuildFMul(b, cg_fconst(c, t, 2), cg_intrinsic(c, "llvm.minnum", ty, cap, 2), "");
    LLVMValueRef shift = cg_fconst(c, t, 12582912.0);
    LLVMValueRef n = LLVMBuildFSub(
        b,
        LLVMBuildFAdd(b, LLVMBuildFMul(b, y, cg_fconst(c, t, 1.44269504088896341), ""), shift, ""),
        shift, "");
    LLVMValueRef f[3] = {n, cg_fconst(c, t, -0.693145751953125), y};
    LLVMValueRef r = cg_intrinsic(c, "llvm.fmuladd", ty, f, 3);
    f[1] = cg_fconst(c, t, -1.42860682030941723e-06), f[2] = r;
    r = cg_intrinsic(c, "llvm.fmuladd", ty, f, 3);
    LLVMValueRef e = cg_fconst(c, t, taylor[0]);
    for (int i = 1; i < countof(taylor); i++) {
        LLVMValueRef g[3] = {e, r, cg_fconst(c, t, taylor[i])};
        e = cg_intrinsic(c, "llvm.fmuladd", ty, g, 3);
    }
    LLVMValueRef ni = LLVMBuildFPToSI(b, n, c->i32, "");
    LLVMValueRef bits = LLVMBuildShl(b, LLVMBuildAdd(b, ni, LLVMConstInt(c->i32, 127, 0), ""),
                                     LLVMConstInt(c->i32, 23, 0), "");
    e = LLVMBuildFMul(b, e, LLVMBuildBitCast(b, bits, ty, ""), "");
    LLVMValueRef one = cg_fconst(c, t, 1);
    LLVMValueRef big = LLVMBuildFSub(
        b, one, LLVMBuildFDiv(b, cg_fconst(c, t, 2), LLVMBuildFAdd(b, e, one, ""), ""), "");
    LLVMValueRef sign[2] = {big, x};
    big = cg_intrinsic(c, "llvm.copysign", ty, sign, 2);

    LLVMValueRef res = LLVMBuildSelect(
        b, LLVMBuildFCmp(b, LLVMRealULT, ax, cg_fconst(c, t, 0.625), ""), small, big, "");
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealULT, ax, cg_fconst(c, t, 4e-4), ""), x, res,
                           "");
}

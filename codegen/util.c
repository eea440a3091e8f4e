/*
 * Calls into the runtime that several kernel files emit: GEMM
 * (dlrt_gemm_f32/f64) and the im2col/col2im pair with its constant
 * geometry. Kept in one place so the argument lists match dlrt's
 * prototypes everywhere; each builder emits exactly one call (plus the
 * geometry global), so callers decide where globals are created.
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

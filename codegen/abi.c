/*
 * The runtime's ABI in LLVM terms (cg_abi.h). The struct types are
 * rebuilt field by field; with the target's data layout, LLVM's natural
 * struct layout is the C ABI's for these fields (pointers, int, int64_t,
 * size_t, double), so constants and loads match the runtime's view.
 *
 * The runtime calls are kept in one place so the argument lists match
 * dlrt's prototypes everywhere; each builder emits exactly one call (plus
 * the geometry global), so callers decide where globals are created.
 */
#include <stdio.h>

#include "cg_abi.h"

/* ---- struct types --------------------------------------------------------- */

CgAbiTypes cg_abi_types(Cg *c)
{
    CgAbiTypes t;
    LLVMTypeRef shape = LLVMArrayType2(c->i64, 8);
    LLVMTypeRef desc[] = {c->ptr, c->i32, c->i32, shape};
    t.desc = LLVMStructTypeInContext(c->ctx, desc, countof(desc), false);
    LLVMTypeRef ti[] = {t.desc, c->i32, c->size_t_, c->i32, c->i32, LLVMArrayType2(c->f64, 4),
                        c->i32};
    t.tinfo = LLVMStructTypeInContext(c->ctx, ti, countof(ti), false);
    LLVMTypeRef mi[] = {c->ptr,     c->i32,     c->i32,     c->i64,     c->size_t_, c->i32,
                        c->i32,     c->i32,     c->i32,     c->ptr,     c->ptr,     c->ptr,
                        c->ptr,     c->i32,     c->ptr,     c->size_t_, c->size_t_, c->size_t_,
                        c->size_t_, c->size_t_, c->size_t_, c->size_t_, c->size_t_, c->size_t_,
                        c->size_t_, c->ptr,     c->ptr,     c->ptr,     c->ptr,     c->f64,
                        c->i32,     c->ptr};
    t.info = LLVMStructTypeInContext(c->ctx, mi, countof(mi), false);
    LLVMTypeRef in[] = {c->ptr, c->i64, c->i64, c->f64, c->ptr};
    t.inst = LLVMStructTypeInContext(c->ctx, in, countof(in), false);
    return t;
}

LLVMValueRef cg_instance_field(Cg *c, LLVMValueRef m, int f)
{
    return LLVMBuildStructGEP2(c->b, cg_abi_types(c).inst, m, (unsigned)f, "");
}

/* ---- kernels' calls ------------------------------------------------------- */

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

/* ---- the model functions of the entry points ------------------------------ */

LLVMValueRef cg_rt_model_create(Cg *c, LLVMValueRef info, LLVMValueRef seed)
{
    LLVMTypeRef ct[] = {c->ptr, c->i64};
    LLVMValueRef args[] = {info, seed};
    return cg_call(c, "dlrt_model_create", c->ptr, ct, 2, args);
}

void cg_rt_model_destroy(Cg *c, LLVMValueRef m)
{
    LLVMTypeRef pt[] = {c->ptr};
    cg_call(c, "dlrt_model_destroy", c->voidt, pt, 1, &m);
}

LLVMValueRef cg_rt_model_init(Cg *c, LLVMValueRef info, LLVMValueRef mem, LLVMValueRef size,
                              LLVMValueRef seed)
{
    LLVMTypeRef ct[] = {c->ptr, c->ptr, c->size_t_, c->i64};
    LLVMValueRef args[] = {info, mem, size, seed};
    return cg_call(c, "dlrt_model_init", c->i32, ct, 4, args);
}

static LLVMValueRef model_io(Cg *c, const char *name, LLVMValueRef m, LLVMValueRef path)
{
    LLVMTypeRef pt[] = {c->ptr, c->ptr};
    LLVMValueRef args[] = {m, path};
    return cg_call(c, name, c->i32, pt, 2, args);
}

LLVMValueRef cg_rt_model_save(Cg *c, LLVMValueRef m, LLVMValueRef path)
{
    return model_io(c, "dlrt_model_save", m, path);
}

LLVMValueRef cg_rt_model_load(Cg *c, LLVMValueRef m, LLVMValueRef path)
{
    return model_io(c, "dlrt_model_load", m, path);
}

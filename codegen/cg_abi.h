/*
 * Internal to codegen/: the runtime's ABI as generated code sees it
 * (abi.c) -- the LLVM types of the runtime's structs (runtime/dlrt_model.h)
 * and the calls of the runtime functions that kernels and entry points
 * make. Above the builder (cg_build.h) only.
 */
#ifndef DLC_CG_ABI_H
#define DLC_CG_ABI_H

#include "cg_build.h"

/* The LLVM struct types of dlrt_tensor_desc, dlrt_tensor_info,
 * dlrt_model_info and dlrt_instance for c's target. */
typedef struct {
    LLVMTypeRef desc, tinfo, info, inst;
} CgAbiTypes;
CgAbiTypes cg_abi_types(Cg *c);

/* The instance header (dlrt_instance): a pointer to field f of the
 * instance at m. */
enum { CG_INST_SEED = 1, CG_INST_STEP = 2, CG_INST_LR = 3 };
LLVMValueRef cg_instance_field(Cg *c, LLVMValueRef m, int f);

/* cg_gemm: cc[m, n] = alpha * op(a) @ op(b) + beta * cc through
 * dlrt_gemm_f32/f64, row-major with row strides lda, ldb, ldc (i64
 * values). cg_gemm_c: the same with constant extents, alpha 1 and
 * ldc = n. */
void cg_gemm(Cg *c, DType t, bool ta, bool tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
             LLVMValueRef alpha, LLVMValueRef a, LLVMValueRef lda, LLVMValueRef b, LLVMValueRef ldb,
             double beta, LLVMValueRef cc, LLVMValueRef ldc);
void cg_gemm_c(Cg *c, DType t, bool ta, bool tb, int64_t m, int64_t n, int64_t k, LLVMValueRef a,
               int64_t lda, LLVMValueRef b, int64_t ldb, double beta, LLVMValueRef out);
/* A private constant dlrt_conv_geom (13 int64_t, in its field order). */
LLVMValueRef cg_conv_geom(Cg *c, const int64_t *v);
/* dlrt_im2col_fXX / dlrt_col2im_fXX(geom, src, dst), what "im2col" or
 * "col2im", geom from cg_conv_geom. */
void cg_im2col(Cg *c, const char *what, DType t, LLVMValueRef geom, LLVMValueRef src,
               LLVMValueRef dst);

/* The dlrt_model_* calls of the entry points: create(info, seed),
 * destroy(m), init(info, mem, size, seed), save(m, path) and
 * load(m, path). */
LLVMValueRef cg_rt_model_create(Cg *c, LLVMValueRef info, LLVMValueRef seed);
void cg_rt_model_destroy(Cg *c, LLVMValueRef m);
LLVMValueRef cg_rt_model_init(Cg *c, LLVMValueRef info, LLVMValueRef mem, LLVMValueRef size,
                              LLVMValueRef seed);
LLVMValueRef cg_rt_model_save(Cg *c, LLVMValueRef m, LLVMValueRef path);
LLVMValueRef cg_rt_model_load(Cg *c, LLVMValueRef m, LLVMValueRef path);

/* DLRT_EINVAL, what entry points return for a bad argument. */
enum { CG_DLRT_EINVAL = -1 };

#endif

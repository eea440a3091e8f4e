/*
 * Internal to codegen/: the runtime's ABI as generated code sees it
 * (abi.c) -- the LLVM types of the runtime's structs and the field
 * indices in them, both expanded from runtime/dlrt_abi.def like the C
 * declarations of runtime/dlrt.h, and the calls of the runtime functions
 * that kernels and entry points make. Above the builder (cg_build.h)
 * only.
 */
#ifndef DLC_CG_ABI_H
#define DLC_CG_ABI_H

#include "cg_build.h"
#include "dlrt.h"

/* Field indices: CG_DESC_name of dlrt_tensor_desc's field name, CG_TINFO_
 * of dlrt_tensor_info's, CG_INFO_ of dlrt_model_info's, CG_INST_ of
 * dlrt_instance's, CG_GEOM_ of dlrt_conv_geom's; *_COUNT fields each. */
enum {
#define DLRT_TENSOR_DESC(kind, type, name, dims) CG_DESC_##name,
#include "dlrt_abi.def"
    CG_DESC_COUNT
};
enum {
#define DLRT_TENSOR_INFO(kind, type, name, dims) CG_TINFO_##name,
#include "dlrt_abi.def"
    CG_TINFO_COUNT
};
enum {
#define DLRT_MODEL_INFO(kind, type, name, dims) CG_INFO_##name,
#include "dlrt_abi.def"
    CG_INFO_COUNT
};
enum {
#define DLRT_INSTANCE(kind, type, name, dims) CG_INST_##name,
#include "dlrt_abi.def"
    CG_INST_COUNT
};
enum {
#define DLRT_CONV_GEOM(kind, type, name, dims) CG_GEOM_##name,
#include "dlrt_abi.def"
    CG_GEOM_COUNT
};
enum {
#define DLRT_PLATEAU(kind, type, name, dims) CG_PLATEAU_##name,
#include "dlrt_abi.def"
    CG_PLATEAU_COUNT
};
enum {
#define DLRT_OBJECTIVE(kind, type, name, dims) CG_OBJ_##name,
#include "dlrt_abi.def"
    CG_OBJ_COUNT
};

/* The LLVM struct types of dlrt_tensor_desc, dlrt_tensor_info,
 * dlrt_model_info and dlrt_instance. With the target's data layout,
 * LLVM's natural struct layout is the C ABI's for these fields. */
typedef struct {
    LLVMTypeRef desc, tinfo, info, inst, obj;
} CgAbiTypes;
CgAbiTypes cg_abi_types(Cg *c);

/* n, after checking that each of the n field values v[] of a struct
 * constant is set (a field of dlrt_abi.def that codegen does not fill is
 * a bug). */
unsigned cg_abi_fields(LLVMValueRef *v, int n);

/* Checks the struct types against the C compiler's layout of the same
 * structs (offset of every field, size); only meaningful when c's target
 * is the host. Dies on a mismatch: a kind in dlrt_abi.def that does not
 * fit its C type. */
void cg_abi_check_host(Cg *c);

/* The dlrt_dtype of t. */
int cg_dlrt_dtype(DType t);

/* The instance header (dlrt_instance): a pointer to field f (CG_INST_*)
 * of the instance at m. */
LLVMValueRef cg_instance_field(Cg *c, LLVMValueRef m, int f);
/* The same for the step counter, base rate and plateau fields of the
 * objective being compiled (c->obj): the header's for the first, its own
 * record's (Layout.obj[k].counters) for the others. */
LLVMValueRef cg_objective_field(Cg *c, LLVMValueRef m, int f);

/* cg_gemm: cc[m, n] = alpha * op(a) @ op(b) + beta * cc through
 * dlrt_gemm_f32/f64, row-major with row strides lda, ldb, ldc (i64
 * values). cg_gemm_c: the same with constant extents, alpha 1 and
 * ldc = n. */
void cg_gemm(Cg *c, DType t, bool ta, bool tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
             LLVMValueRef alpha, LLVMValueRef a, LLVMValueRef lda, LLVMValueRef b, LLVMValueRef ldb,
             double beta, LLVMValueRef cc, LLVMValueRef ldc);
void cg_gemm_c(Cg *c, DType t, bool ta, bool tb, int64_t m, int64_t n, int64_t k, LLVMValueRef a,
               int64_t lda, LLVMValueRef b, int64_t ldb, double beta, LLVMValueRef out);
/* A private constant dlrt_conv_geom, v[CG_GEOM_*] its fields (an array of
 * int64_t, which it is). */
LLVMValueRef cg_conv_geom(Cg *c, const int64_t *v);
/* dlrt_im2col_fXX / dlrt_col2im_fXX(geom, src, dst), what "im2col" or
 * "col2im", geom from cg_conv_geom. */
void cg_im2col(Cg *c, const char *what, DType t, LLVMValueRef geom, LLVMValueRef src,
               LLVMValueRef dst);

/* The dlrt_model_* calls of the entry points: create(info, seed),
 * destroy(m), init(info, mem, size, seed), save(m, path) and
 * load(m, path). */
/* The thread pool. cg_task_begin starts an internal function `void
 * name(ptr ctx, i64 task, ptr scratch)` (a dlrt_task_fn), the builder in
 * its entry block, c->fn set; cg_task_pack stores vals into a context
 * struct (type *sty) on the current function's stack, cg_task_get loads
 * field i back inside a task. cg_parallel_for calls dlrt_parallel_for;
 * cg_ntasks is ceil(n / k); cg_smin the smaller of two i64.
 * cg_parallel_chunks: body on [lo, hi) of consecutive chunks of chunk
 * items of [0, n), each a task on the pool, in a function named name;
 * body sees vals, values of the current function, as its vals. Inline
 * (body on [0, n) here) without threads or when n is a constant <= chunk. */
LLVMValueRef cg_task_begin(Cg *c, const char *name);
LLVMValueRef cg_task_pack(Cg *c, LLVMTypeRef *sty, LLVMValueRef *vals, int n);
LLVMValueRef cg_task_get(Cg *c, LLVMTypeRef sty, LLVMValueRef ctx, int i);
void cg_parallel_for(Cg *c, LLVMValueRef ntasks, LLVMValueRef task, LLVMValueRef ctx,
                     int64_t scratch);
LLVMValueRef cg_ntasks(Cg *c, LLVMValueRef n, int64_t k);
LLVMValueRef cg_smin(Cg *c, LLVMValueRef a, LLVMValueRef b);
typedef void (*CgChunkBody)(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals,
                            void *ctx);
void cg_parallel_chunks(Cg *c, const char *name, LLVMValueRef n, int64_t chunk,
                        LLVMValueRef *vals, int nvals, CgChunkBody body, void *ctx);

LLVMValueRef cg_rt_model_create(Cg *c, LLVMValueRef info, LLVMValueRef seed);
void cg_rt_model_destroy(Cg *c, LLVMValueRef m);
LLVMValueRef cg_rt_model_init(Cg *c, LLVMValueRef info, LLVMValueRef mem, LLVMValueRef size,
                              LLVMValueRef seed);
LLVMValueRef cg_rt_model_save(Cg *c, LLVMValueRef m, LLVMValueRef path);
LLVMValueRef cg_rt_model_load(Cg *c, LLVMValueRef m, LLVMValueRef path);
/* dlrt_model_grad_ready(m, first, count, grad) */
void cg_rt_model_grad_ready(Cg *c, LLVMValueRef m, int64_t first, int64_t count,
                            LLVMValueRef grad);
/* dlrt_model_report_metric(m, metric), or of objective k > 0
 * dlrt_model_report_metric_objective(m, k, metric) */
LLVMValueRef cg_rt_model_report_metric(Cg *c, LLVMValueRef m, LLVMValueRef metric);
LLVMValueRef cg_rt_model_report_metric_objective(Cg *c, LLVMValueRef m, int k,
                                                 LLVMValueRef metric);

#endif

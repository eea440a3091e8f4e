/*
 * The runtime's ABI in LLVM terms (cg_abi.h). The struct types are
 * expanded from runtime/dlrt_abi.def, the rows the runtime's headers
 * expand into the C structs: each field's kind gives its LLVM type, an
 * array when its dims are [N]. With the target's data layout, LLVM's
 * natural struct layout is the C ABI's for these kinds (pointers, int,
 * int64_t, size_t, double), so constants and loads match the runtime's
 * view; cg_abi_check_host verifies it against this compiler's own C
 * layout when the target is the host.
 *
 * The runtime calls are kept in one place so the argument lists match
 * dlrt's prototypes everywhere; each builder emits exactly one call (plus
 * the geometry global), so callers decide where globals are created.
 */
#include <stddef.h>
#include <stdio.h>

#include "cg_abi.h"

/* ---- struct types --------------------------------------------------------- */

enum { KIND_I32, KIND_I64, KIND_SIZE, KIND_F64, KIND_PTR, KIND_DESC };

static LLVMTypeRef field_type(Cg *c, int kind, LLVMTypeRef desc, bool array, unsigned n)
{
    LLVMTypeRef t[] = {[KIND_I32] = c->i32, [KIND_I64] = c->i64, [KIND_SIZE] = c->size_t_,
                       [KIND_F64] = c->f64, [KIND_PTR] = c->ptr, [KIND_DESC] = desc};
    return array ? LLVMArrayType2(t[kind], n) : t[kind];
}

/* The LLVM type of a row of dlrt_abi.def: dims is empty or [N], so
 * #dims is "" or "[N]" and sizeof(char dims) is 1 or N. */
#define FIELD(kind, type, name, dims)                                                              \
    field_type(c, KIND_##kind, t.desc, sizeof #dims > 1, (unsigned)sizeof(char dims)),

CgAbiTypes cg_abi_types(Cg *c)
{
    CgAbiTypes t = {0};
    LLVMTypeRef desc[] = {
#define DLRT_TENSOR_DESC FIELD
#include "dlrt_abi.def"
    };
    t.desc = LLVMStructTypeInContext(c->ctx, desc, countof(desc), false);
    LLVMTypeRef tinfo[] = {
#define DLRT_TENSOR_INFO FIELD
#include "dlrt_abi.def"
    };
    t.tinfo = LLVMStructTypeInContext(c->ctx, tinfo, countof(tinfo), false);
    LLVMTypeRef info[] = {
#define DLRT_MODEL_INFO FIELD
#include "dlrt_abi.def"
    };
    t.info = LLVMStructTypeInContext(c->ctx, info, countof(info), false);
    LLVMTypeRef inst[] = {
#define DLRT_INSTANCE FIELD
#include "dlrt_abi.def"
    };
    t.inst = LLVMStructTypeInContext(c->ctx, inst, countof(inst), false);
    LLVMTypeRef obj[] = {
#define DLRT_OBJECTIVE FIELD
#include "dlrt_abi.def"
    };
    t.obj = LLVMStructTypeInContext(c->ctx, obj, countof(obj), false);
    return t;
}

#undef FIELD

/* cg_conv_geom builds an array of int64_t: every field must be one. */
_Static_assert(sizeof(dlrt_conv_geom) == CG_GEOM_COUNT * sizeof(int64_t),
               "dlrt_conv_geom is not an array of int64_t");
/* and info.c a dlrt_plateau as an array of double */
_Static_assert(sizeof(dlrt_plateau) == CG_PLATEAU_COUNT * sizeof(double),
               "dlrt_plateau is not an array of double");

unsigned cg_abi_fields(LLVMValueRef *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!v[i])
            die("codegen: field %d of a runtime struct constant is not set", i);
    return (unsigned)n;
}

/* Where C puts a field: offsetof and sizeof. */
typedef struct {
    size_t offset, size;
} CField;

#define CFIELD(s, name) {offsetof(s, name), sizeof(((s *)0)->name)},

static void check_struct(Cg *c, const char *name, LLVMTypeRef t, const CField *f, int n,
                         size_t size)
{
    check(LLVMCountStructElementTypes(t) == (unsigned)n);
    for (int i = 0; i < n; i++) {
        unsigned long long off = LLVMOffsetOfElement(c->td, t, (unsigned)i);
        unsigned long long bytes =
            LLVMABISizeOfType(c->td, LLVMStructGetTypeAtIndex(t, (unsigned)i));
        if (off != f[i].offset || bytes != f[i].size)
            die("codegen: field %d of %s is %llu bytes at %llu in LLVM, %zu at %zu in C", i, name,
                bytes, off, f[i].size, f[i].offset);
    }
    if (LLVMABISizeOfType(c->td, t) != size)
        die("codegen: %s is %llu bytes in LLVM, %zu in C", name, LLVMABISizeOfType(c->td, t), size);
}

void cg_abi_check_host(Cg *c)
{
    CgAbiTypes t = cg_abi_types(c);
    static const CField desc[] = {
#define DLRT_TENSOR_DESC(kind, type, name, dims) CFIELD(dlrt_tensor_desc, name)
#include "dlrt_abi.def"
    };
    static const CField tinfo[] = {
#define DLRT_TENSOR_INFO(kind, type, name, dims) CFIELD(dlrt_tensor_info, name)
#include "dlrt_abi.def"
    };
    static const CField info[] = {
#define DLRT_MODEL_INFO(kind, type, name, dims) CFIELD(dlrt_model_info, name)
#include "dlrt_abi.def"
    };
    static const CField inst[] = {
#define DLRT_INSTANCE(kind, type, name, dims) CFIELD(dlrt_instance, name)
#include "dlrt_abi.def"
    };
    check_struct(c, "dlrt_tensor_desc", t.desc, desc, countof(desc), sizeof(dlrt_tensor_desc));
    check_struct(c, "dlrt_tensor_info", t.tinfo, tinfo, countof(tinfo), sizeof(dlrt_tensor_info));
    check_struct(c, "dlrt_model_info", t.info, info, countof(info), sizeof(dlrt_model_info));
    static const CField obj[] = {
#define DLRT_OBJECTIVE(kind, type, name, dims) CFIELD(dlrt_objective_info, name)
#include "dlrt_abi.def"
    };
    check_struct(c, "dlrt_instance", t.inst, inst, countof(inst), sizeof(dlrt_instance));
    check_struct(c, "dlrt_objective_info", t.obj, obj, countof(obj), sizeof(dlrt_objective_info));
}

#undef CFIELD

int cg_dlrt_dtype(DType t)
{
    switch (t) {
    case DT_F32: return DLRT_F32;
    case DT_F64: return DLRT_F64;
    case DT_I32: return DLRT_I32;
    case DT_F16: return DLRT_F16;
    case DT_BF16: return DLRT_BF16;
    default: die("no dlrt_dtype for %s", ir_dtype_name(t));
    }
}

LLVMValueRef cg_instance_field(Cg *c, LLVMValueRef m, int f)
{
    return LLVMBuildStructGEP2(c->b, cg_abi_types(c).inst, m, (unsigned)f, "");
}

LLVMValueRef cg_objective_field(Cg *c, LLVMValueRef m, int f)
{
    int64_t at = c->layout->obj[c->obj].counters;
    if (at) {
        LLVMValueRef idx = cg_i64(c, at);
        m = LLVMBuildInBoundsGEP2(c->b, c->i8, m, &idx, 1, "counters");
    }
    return cg_instance_field(c, m, f);
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
    LLVMValueRef e[CG_GEOM_COUNT];
    for (int i = 0; i < CG_GEOM_COUNT; i++)
        e[i] = cg_i64(c, v[i]);
    return cg_private_const(c, LLVMConstArray2(c->i64, e, CG_GEOM_COUNT), "conv.geom", true);
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

/* ---- the thread pool (dlrt_parallel_for) ---------------------------------- */

static LLVMValueRef declare_parallel_for(Cg *c, LLVMTypeRef *fty)
{
    LLVMTypeRef pt[] = {c->i64, c->ptr, c->ptr, c->size_t_};
    *fty = LLVMFunctionType(c->voidt, pt, 4, false);
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, "dlrt_parallel_for");
    if (!f) {
        f = LLVMAddFunction(c->mod, "dlrt_parallel_for", *fty);
        LLVMAddAttributeAtIndex(
            f, LLVMAttributeFunctionIndex,
            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    }
    return f;
}

LLVMValueRef cg_task_begin(Cg *c, const char *name)
{
    LLVMTypeRef pt[] = {c->ptr, c->i64, c->ptr};
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->voidt, pt, 3, false));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    /* its address only goes to the pool, so identical tasks may merge, and
     * with them the identical kernels that start them */
    LLVMSetUnnamedAddress(fn, LLVMGlobalUnnamedAddr);
    LLVMAddAttributeAtIndex(
        fn, LLVMAttributeFunctionIndex,
        LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    c->fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    return fn;
}

LLVMValueRef cg_task_pack(Cg *c, LLVMTypeRef *sty, LLVMValueRef *vals, int n)
{
    LLVMTypeRef *ty = arena_alloc(c->g->arena, sizeof *ty * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        ty[i] = LLVMTypeOf(vals[i]);
    *sty = LLVMStructTypeInContext(c->ctx, ty, (unsigned)n, false);
    LLVMValueRef ctx = cg_alloca(c, *sty, "task.ctx");
    for (int i = 0; i < n; i++)
        LLVMBuildStore(c->b, vals[i], LLVMBuildStructGEP2(c->b, *sty, ctx, (unsigned)i, ""));
    return ctx;
}

LLVMValueRef cg_task_get(Cg *c, LLVMTypeRef sty, LLVMValueRef ctx, int i)
{
    LLVMTypeRef t = LLVMStructGetTypeAtIndex(sty, (unsigned)i);
    return LLVMBuildLoad2(c->b, t, LLVMBuildStructGEP2(c->b, sty, ctx, (unsigned)i, ""), "");
}

LLVMValueRef cg_smin(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMValueRef cg_ntasks(Cg *c, LLVMValueRef n, int64_t k)
{
    return LLVMBuildSDiv(c->b, cg_add(c, n, cg_i64(c, k - 1)), cg_i64(c, k), "ntasks");
}

void cg_parallel_for(Cg *c, LLVMValueRef ntasks, LLVMValueRef task, LLVMValueRef ctx,
                      int64_t scratch)
{
    LLVMTypeRef fty;
    LLVMValueRef pf = declare_parallel_for(c, &fty);
    LLVMValueRef args[] = {ntasks, task, ctx, LLVMConstInt(c->size_t_, (unsigned long long)scratch, 0)};
    LLVMBuildCall2(c->b, fty, pf, args, 4, "");
}

void cg_parallel_chunks(Cg *c, const char *name, LLVMValueRef n, int64_t chunk,
                        LLVMValueRef *vals, int nvals, CgChunkBody body, void *bctx)
{
    if (!c->threads || (LLVMIsAConstantInt(n) && LLVMConstIntGetSExtValue(n) <= chunk)) {
        body(c, cg_i64(c, 0), n, vals, bctx);
        return;
    }
    LLVMValueRef run = c->fn, batch = c->batch;
    LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
    LLVMValueRef *all = arena_alloc(c->g->arena, sizeof *all * (size_t)(nvals + 1));
    all[0] = n;
    for (int i = 0; i < nvals; i++)
        all[i + 1] = vals[i];
    LLVMTypeRef sty;
    LLVMValueRef ctx = cg_task_pack(c, &sty, all, nvals + 1);
    LLVMValueRef ntasks = cg_ntasks(c, n, chunk);

    LLVMValueRef task = cg_task_begin(c, name);
    LLVMValueRef tctx = LLVMGetParam(task, 0), t = LLVMGetParam(task, 1);
    LLVMValueRef total = cg_task_get(c, sty, tctx, 0);
    LLVMValueRef *tv = arena_alloc(c->g->arena, sizeof *tv * (size_t)(nvals + 1));
    for (int i = 0; i < nvals; i++)
        tv[i] = cg_task_get(c, sty, tctx, i + 1);
    LLVMValueRef lo = cg_mul(c, t, cg_i64(c, chunk));
    LLVMValueRef hi = cg_smin(c, cg_add(c, lo, cg_i64(c, chunk)), total);
    body(c, lo, hi, tv, bctx);
    LLVMBuildRetVoid(c->b);

    c->fn = run;
    c->batch = batch;
    LLVMPositionBuilderAtEnd(c->b, here);
    cg_parallel_for(c, ntasks, task, ctx, 0);
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

LLVMValueRef cg_rt_model_report_metric(Cg *c, LLVMValueRef m, LLVMValueRef metric)
{
    LLVMTypeRef pt[] = {c->ptr, c->f64};
    LLVMValueRef args[] = {m, metric};
    return cg_call(c, "dlrt_model_report_metric", c->i32, pt, 2, args);
}

LLVMValueRef cg_rt_model_report_metric_objective(Cg *c, LLVMValueRef m, int k,
                                                 LLVMValueRef metric)
{
    LLVMTypeRef pt[] = {c->ptr, c->i32, c->f64};
    LLVMValueRef args[] = {m, LLVMConstInt(c->i32, (unsigned)k, 0), metric};
    return cg_call(c, "dlrt_model_report_metric_objective", c->i32, pt, 3, args);
}

void cg_rt_model_grad_ready(Cg *c, LLVMValueRef m, int64_t first, int64_t count,
                            LLVMValueRef grad)
{
    LLVMTypeRef pt[] = {c->ptr, c->i64, c->i64, c->ptr};
    LLVMValueRef args[] = {m, cg_i64(c, first), cg_i64(c, count), grad};
    cg_call(c, "dlrt_model_grad_ready", c->voidt, pt, 4, args);
}

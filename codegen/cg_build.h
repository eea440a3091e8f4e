/*
 * Internal to codegen/, its lowest layer: the state of one module being
 * built (Cg) and the LLVM shorthands every other codegen file uses --
 * types, constants, loops and loop nests, loads and stores, calls,
 * intrinsics and the scalar math that several kernels share (build.c).
 * Nothing here knows the runtime, the kernel frame or any op; cg.h
 * describes the layers above.
 */
#ifndef DLC_CG_BUILD_H
#define DLC_CG_BUILD_H

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "codegen.h"

/* One module being built. The builder layer uses the LLVM handles, the
 * types, fn and batch; the fields above ctx belong to the layers that
 * know the graph and the plan. */
typedef struct {
    const Graph *g;
    const MemPlan *plan;       /* the plan of the function being built */
    const OptPlan *opt;        /* the optimizer's recipe; NULL without training */
    const Train *train;        /* the objective whose functions are being built */
    int obj;                   /* its index (CgPlans.obj, Layout.obj) */
    bool training;             /* the function being built runs in training mode */
    bool checks;               /* check inputs, loss and gradients (not --no-checks) */
    bool report;               /* failed checks call the runtime for a message (an OS target) */
    LLVMValueRef undo_states;  /* a copy of the instance's states that a failed check
                                  puts back before it returns (check.c), or NULL */
    bool threads;              /* large steps run on libdlrt's thread pool (an OS target) */
    const MemPlan *ready_plan; /* the training plan whose run function reports gradients */
    int *ready_step;           /* as final (grads.c): by parameter of train, the step of
                                  ready_plan after which, -1: none */
    int64_t *ready_numel;      /* by parameter of train, its scalars */
    int part_size;             /* kernel calls in one part of a run function (run.c); 0: no parts */
    const char *tag;           /* kernel name prefix of that function: "", "train.", "eval." */
    const Layout *layout;
    Node **root;          /* by node id: the group root that computes it (itself when unfused) */
    Node **first_member;  /* by root id: the nodes it computes, root included, in graph */
    Node **next_member;   /* order, linked by next_member (cg_group_members) */
    int *leaf_of;         /* by node id: -1 between kernels (a kernel's scratch index) */
    bool *used;           /* by node id: false between kernels (scratch marks) */
    LLVMValueRef rng_key; /* i64 in a kernel that draws (cg_step_draws), else NULL */
    int *draw_site;       /* by node id: its ordinal among the graph's draws (rng.c) */
    Node **kin;           /* the current kernel's buffer operands after its output */
    int nkin;             /* (cg_kernel_begin) */
    bool *kin_same;       /* by operand: overwritten in place, read through the output */
    LLVMValueRef kin_fn;  /* the kernel they are the operands of */
    Vec(const char *) kernels; /* the names of the kernel functions built */
    int nlevels;       /* an object for a --mcpu list: its x86-64 levels (docs/CODEGEN.md, */
    const int *levels; /* CPU lists), ascending; levels[0] is this module's. 0: one CPU */
    Vec(const char *) variants; /* the internal functions the entry points pick a variant of */
    int vector_bytes;           /* the widest vectors of the target's CPU (cg_vector_bytes) */
    int64_t gemm_rows;          /* products of at most this many rows are generated (gemm.c) */
    bool gemm_any;              /* and of any number for some shapes (gemm.c, any_rows) */
    int64_t l2_bytes;           /* a core's L2 cache (cg_l2_bytes) */
    int inline_math;            /* inline exps and tanhs built so far (cg_nest_run) */
    Vec(const char *) gemms;    /* the products generated in code (gemm.c), "KxN" */
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTargetDataRef td;
    LLVMTypeRef i1, i8, i16, i32, i64, f32, f64, ptr, voidt, size_t_;
    LLVMValueRef fn;    /* the function being built */
    LLVMValueRef batch; /* i64 batch inside fn */
} Cg;

/* Runs the statement that follows for each node x of root r's group. */
#define CG_FOR_MEMBERS(c, r, x)                                                                    \
    for (Node *x = (c)->first_member[(r)->id]; x; x = (c)->next_member[x->id])

/* Sets the LLVM types of c (c->ctx and c->td given). */
void cg_init_types(Cg *c);

/* A helper function of the module: cg_helper_begin returns the function
 * named name if it exists (*made false), else adds it (internal, nounwind,
 * noinline; pointer parameters in noalias_mask, bit i for parameter i,
 * noalias), saves where the builder was and leaves it in the new entry
 * block (*made true); cg_helper_end goes back. One definition, called
 * from every place that needs it, keeps run functions small. */
typedef struct {
    LLVMValueRef fn, batch;
    LLVMBasicBlockRef at;
} CgSaved;
LLVMValueRef cg_helper_begin(Cg *c, const char *name, LLVMTypeRef fty, unsigned noalias_mask,
                             CgSaved *saved, bool *made);
void cg_helper_end(Cg *c, const CgSaved *saved);
/* Lets LLVM's vectorizer use fn's widest registers (AVX-512's zmm; it
 * keeps to ymm on Intel's server cores otherwise): for loops whose work
 * per element is arithmetic, not memory (exp, tanh, divisions). */
void cg_prefer_widest(Cg *c, LLVMValueRef fn);

/* Types and constants. */
LLVMTypeRef cg_type(Cg *c, DType t);
int64_t cg_dtype_size(DType t);
LLVMValueRef cg_i64(Cg *c, int64_t v);
LLVMValueRef cg_fconst(Cg *c, DType t, double v);
/* A private constant global named name holding init; unnamed_addr too
 * when its address does not matter (it may then be merged). */
LLVMValueRef cg_private_const(Cg *c, LLVMValueRef init, const char *name, bool unnamed);

/* Loops: cg_loop_begin leaves the builder in the body with the induction
 * variable returned; cg_loop_end closes the innermost open loop. */
typedef struct {
    LLVMBasicBlockRef header, latch, exit;
    LLVMValueRef iv;
} CgLoop;
LLVMValueRef cg_loop_begin(Cg *c, LLVMValueRef n, CgLoop *l);
void cg_loop_end(Cg *c, CgLoop *l);
/* cg_loop_end with a request that the vectorizer interleave count
 * vectors an iteration (llvm.loop.interleave.count) */
void cg_loop_end_interleaved(Cg *c, CgLoop *l, int count);
/* What loops of inline exps and tanhs ask for (cg_nest_run's elementwise
 * nests, softmax's and the class losses' exps): a vector's exp or tanh
 * is a chain of some 40 dependent operations, and with one or two
 * vectors an iteration the core's reorder window waited on their
 * latency. */
enum { CG_MATH_INTERLEAVE = 4 };

/* if (cond) { ...: cg_if_begin leaves the builder in the then-block and
 * returns the join block that cg_if_end closes with. */
LLVMBasicBlockRef cg_if_begin(Cg *c, LLVMValueRef cond);
void cg_if_end(Cg *c, LLVMBasicBlockRef join);

/* A nest of rank loops over the extents ext[] with nops running offsets
 * (i64): offset k advances by st[k * IR_MAX_RANK + level] per iteration
 * of loop level. body runs in the innermost loop with the offsets. */
typedef struct CgNest CgNest;
struct CgNest {
    int rank, nops;
    LLVMValueRef ext[IR_MAX_RANK];
    LLVMValueRef *st; /* [op * IR_MAX_RANK + dim]: element stride */
    void (*body)(Cg *c, CgNest *n, LLVMValueRef *offs);
    void *ctx;
};
CgNest *cg_nest_new(Cg *c, int rank, int nops);
/* Runs the loops from level on, the offsets starting at offs. */
void cg_nest_run(Cg *c, CgNest *n, int level, LLVMValueRef *offs);
/* The whole nest, offsets starting at base[] (NULL: zeros). */
void cg_nest_start(Cg *c, CgNest *n, LLVMValueRef *base);

/* An alloca in the entry block of the current function. */
LLVMValueRef cg_alloca(Cg *c, LLVMTypeRef t, const char *name);
LLVMValueRef cg_gep(Cg *c, DType t, LLVMValueRef base, LLVMValueRef idx);
/* Adds the function attributes names[0..n) (enum attributes) to fn. */
void cg_fn_attrs(Cg *c, LLVMValueRef fn, const char *const *names, int n);
/* A call of the external function name (declared nounwind on first use). */
LLVMValueRef cg_call(Cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int nparams,
                     LLVMValueRef *args);
LLVMValueRef cg_intrinsic(Cg *c, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n);
/* The first n lanes of a vector of type vt at p (4-byte aligned, so any
 * float), the others 0; and a store of v's first n lanes: plain when n
 * covers them all, else llvm.masked.load/store, which touch no memory
 * past lane n. */
LLVMValueRef cg_load_lanes(Cg *c, LLVMTypeRef vt, LLVMValueRef p, int n);
void cg_store_lanes(Cg *c, LLVMValueRef v, LLVMValueRef p, int n);
/* A store of v's lanes lo <= i < hi (i64 values) at p + i, by
 * llvm.masked.store: p itself may lie outside the object. */
void cg_store_between(Cg *c, LLVMValueRef v, LLVMValueRef p, LLVMValueRef lo, LLVMValueRef hi);
/* `void NAME.add.T(ptr noalias dst, ptr noalias src, i64 n)`: dst[i] +=
 * src[i], one function per type: the gradients added to the instance's
 * (grads.c) and the partial sums of a sum in chunks (reduce.c). Inline,
 * each such loop would be vectorized behind a check that its buffers do
 * not overlap: thousands of checks for a large model's gradients, and
 * for partials in one buffer a check over every pair at once, which
 * failed and left the loop scalar. */
LLVMValueRef cg_add_fn(Cg *c, DType t);
/* Sums in a fixed order, whatever the target: element i of a run goes to
 * lane i % L of a vector of L partial sums, added lane by lane, and the
 * lanes are added at the end by cg_lanes_sum. A scalar float sum stays a
 * chain of dependent additions (LLVM may not reorder it), 3-4 cycles an
 * element: the per-channel sums of ResNet's batch norm gradients took 15%
 * of its training step so. */
enum { CG_SUM_LANES = 16 };
/* A running sum: one scalar of type ty, or (run > 0) CG_SUM_LANES of
 * them that runs of `run` elements are added into (cg_sum_add_run) and
 * cg_sum_total adds up at the end */
typedef struct {
    LLVMValueRef at; /* the alloca */
    int64_t run;
} CgSum;
CgSum cg_sum_new(Cg *c, LLVMTypeRef ty, int64_t run);
/* s += the run elements of type t at p, widened to s's type, in its
 * lanes; with center, (x - center)^2 instead of x */
void cg_sum_add_run(Cg *c, const CgSum *s, DType t, LLVMValueRef p, LLVMValueRef center);
/* One term of cg_sums_add: s += p[i]; with center (p[i] - center)^2,
 * or with q too (p[i] - center) * q[i]; without center, p[i] * q[i];
 * then, with q2, times q2[i] */
typedef struct {
    const CgSum *s;
    LLVMValueRef p, center, q, q2;
} CgSumTerm;
/* The terms' elements i in one loop: over their sums' run (the same for
 * all), each into its sum's lanes as cg_sum_add_run would; or, the sums
 * scalar (run 0), i < len one after another. */
void cg_sums_add(Cg *c, DType t, const CgSumTerm *terms, int nterms, LLVMValueRef len);
/* init (the lanes: all zero) */
void cg_sum_start(Cg *c, const CgSum *s, LLVMValueRef init);
LLVMValueRef cg_sum_total(Cg *c, const CgSum *s);
/* The sum of the len elements of type t (s's) at p, from 0: in s's
 * lanes or in order (cg_sums_add) */
LLVMValueRef cg_sum_row(Cg *c, DType t, const CgSum *s, LLVMValueRef p, LLVMValueRef len);
/* A vector of type vt whose lanes are all s. */
LLVMValueRef cg_splat(Cg *c, LLVMTypeRef vt, LLVMValueRef s);
/* The sum of v's lanes: halves added until one is left. */
LLVMValueRef cg_lanes_sum(Cg *c, LLVMValueRef v);
/* The largest of p[0..n) by maxnum (-inf for none; NaN only when all are),
 * in vectors of 16 lanes (8 for f64), then the rest: maxnum's result does
 * not depend on the order, and LLVM keeps its scalar reduction scalar. */
LLVMValueRef cg_row_max(Cg *c, DType t, LLVMValueRef p, LLVMValueRef n);

/* Scalar math on values of type t: the llvm.NAME intrinsic of one or two
 * operands, libm's NAME (NAMEf for f32), max/min (smax/smin for i32,
 * maxnum/minnum otherwise), and exp and tanh, inline and call-free for
 * f32 (build.c says how), libm's for f64. */
LLVMValueRef cg_intr1(Cg *c, const char *name, DType t, LLVMValueRef x);
LLVMValueRef cg_intr2(Cg *c, const char *name, DType t, LLVMValueRef x, LLVMValueRef y);
LLVMValueRef cg_libm(Cg *c, const char *name, DType t, LLVMValueRef x);
LLVMValueRef cg_max(Cg *c, DType t, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_min(Cg *c, DType t, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_exp(Cg *c, DType t, LLVMValueRef x);
LLVMValueRef cg_tanh(Cg *c, DType t, LLVMValueRef x);
/* f16/bf16 bits (i16) to f32 and back, rounding to nearest even (half.c) */
LLVMValueRef cg_half_widen(Cg *c, DType from, LLVMValueRef h);
LLVMValueRef cg_half_narrow(Cg *c, DType to, LLVMValueRef x);

/* Small builders every kernel file uses (pure shorthand: each is exactly
 * the one LLVM call it wraps). */
static inline LLVMValueRef cg_add(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildNSWAdd(c->b, a, b, "");
}

static inline LLVMValueRef cg_mul(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildNSWMul(c->b, a, b, "");
}

/* Element i (i64) of type t at base. */
LLVMValueRef cg_load(Cg *c, DType t, LLVMValueRef base, LLVMValueRef i);

void cg_store(Cg *c, DType t, LLVMValueRef v, LLVMValueRef base, LLVMValueRef i);

/* count (i64) elements of type t at p set to zero */
void cg_zero(Cg *c, DType t, LLVMValueRef p, LLVMValueRef count);

/* count (i64) elements of type t copied from src to dst (apart) */
void cg_memcpy(Cg *c, DType t, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef count);

/* A hint to read the cache line at p into every level (no fault if p is
 * not mapped). */
void cg_prefetch(Cg *c, LLVMValueRef p);

/* Every cache line of the n rows at rows[] of len (i64, <= 0: none)
 * elements of type t asked for (cg_prefetch), the rows side by side. */
void cg_prefetch_rows(Cg *c, DType t, const LLVMValueRef *rows, int n, LLVMValueRef len);

/* dst[i] (+)= src[i] for i < count (i64), elements of type t. */
void cg_copy(Cg *c, DType t, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef count, bool add);

/* The value of a scalar variable (an alloca of type t). */
static inline LLVMValueRef cg_get(Cg *c, LLVMTypeRef t, LLVMValueRef var)
{
    return LLVMBuildLoad2(c->b, t, var, "");
}

static inline LLVMValueRef cg_to_f64(Cg *c, DType t, LLVMValueRef v)
{
    return t == DT_F64 ? v : LLVMBuildFPExt(c->b, v, c->f64, "");
}

LLVMValueRef cg_from_f64(Cg *c, DType t, LLVMValueRef v);

#endif

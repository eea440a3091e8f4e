/*
 * Internal to codegen/: the layers of the code generator, bottom up. Each
 * file calls only into the layers below it (and its own), so the files
 * form a DAG; each layer's header includes the one below it.
 *
 *   cg_build.h   build.c      the module state (Cg) and LLVM shorthands:
 *                             types, constants, loops, nests, calls, math
 *   cg_abi.h     abi.c        the runtime ABI: LLVM types of the runtime's
 *                             structs, calls of its functions
 *   cg_rng.h     rng.c        training-mode random numbers
 *   cg_frame.h   frame.c      the kernel frame: signature, buffers, extents
 *   cg_kernels.h eltwise.c reduce.c loss.c layout.c select.c conv.c
 *                pool.c norm.c seq.c
 *                             the kernels, one file per op family
 *                             (eltwise calls reduce's matmul and conv's
 *                             convolution; no other family calls another)
 *                dispatch.c   picks a family's kernel for each plan step
 *   cg.h         train.c      the optimizer step (apply) and its schedule
 *                info.c       the constant dlrt_model_info
 *                check.c      the input, loss and gradient checks
 *                instance.c   the instance block layout (no LLVM)
 *                scratch.c    kernels' scratch sizes for pass_memplan (no LLVM)
 *                header.c     the C header (no LLVM)
 *                emit.c       the driver: module set-up, run functions,
 *                             entry points, optimization and output
 *                target.c     LLVM version, host triple, known CPUs
 *
 * Every value of the graph lives in one buffer: user inputs, the flat
 * parameter array and the state area of the instance, or the arena at the
 * offset the memory plan gives. Each materialized node (a plan step) gets
 * one internal kernel function `NAME.kID(out, in..., batch)`; the run
 * function calls them in plan order with the addresses of their buffers.
 * Extents are computed at run time from the batch (Dim.batch dims are
 * n * batch), so one object serves every batch size up to the maximum.
 * docs/CODEGEN.md says more.
 */
#ifndef DLC_CG_H
#define DLC_CG_H

#include "cg_kernels.h"

/* run.c: the steps of a run function. A frame is where the values of
 * one plan live: the instance m (params, states), the plan's arena, the
 * inputs array (by node id, input_slot: its index there, -1: none) and
 * the step's random key (computed at its first use); the kernels of the
 * plan's steps when they were built before the run function. */
typedef struct {
    LLVMValueRef m, arena, inputs;
    const int *input_slot;
    LLVMValueRef *key;
    const CgKernel *kernels; /* by step index: built before (emit.c), or NULL */
} CgFrame;
/* The address of n's buffer; base + off as an i8 GEP. */
LLVMValueRef cg_addr(Cg *c, const CgFrame *f, Node *n);
/* The offset of n's buffer in the plan's arena, -1 when it is elsewhere
 * (an input, parameter, state or constant). */
int64_t cg_arena_offset(Cg *c, Node *n);
LLVMValueRef cg_byte_gep(Cg *c, LLVMValueRef base, int64_t off);
/* Calls the kernels of c->plan's steps in order, loops run inline; a
 * long plan from parts (below). */
void cg_run_steps(Cg *c, CgFrame *f);

/* Long straight-line code in parts (docs/CODEGEN.md, Parts): a run of
 * units (kernel calls, gradient sums, checks) emitted in the current
 * function, the host, goes into internal noinline functions of at most
 * limit units each, `HOST.part...` (i32 (ptr m, i64 batch, ptr inputs,
 * ptr arena, ptr undo)), which the host calls in order. A part sees the
 * host frame's values as its parameters; when fails, a part may return a
 * check's code (check.c), which the host then returns. cg_part_next is
 * called before each unit of weight w (> limit: a part of its own) and
 * returns the frame to emit it with, c->fn and c->batch set to the part;
 * cg_parts_end returns to the host. limit 0: no parts, everything in the
 * host. */
typedef struct {
    LLVMValueRef host, batch, undo; /* the host, its batch and c->undo_states */
    CgFrame *hf;                    /* the host's frame */
    LLVMBasicBlockRef at;           /* where the host's next call goes */
    LLVMValueRef cur;               /* the current part, NULL: none yet */
    CgFrame pf;                     /* its frame */
    LLVMValueRef key;               /* its random key */
    int units, limit;
    bool fails;
    bool loops; /* the current part runs a loop: optimize it */
} CgParts;
void cg_parts_begin(Cg *c, CgParts *p, CgFrame *f, int limit, bool fails);
CgFrame *cg_part_next(Cg *c, CgParts *p, int w);
void cg_parts_end(Cg *c, CgParts *p);

/* grads.c: in a training function (frame f), cg_grads_check returns
 * DLRT_ENONFINITE from it unless every gradient sum is finite (the
 * instance's + the batch's, or with batch false the instance's alone);
 * cg_grads_add adds the batch's gradients to the instance's;
 * cg_grads_in_arena: whether every batch gradient of c->train lives in
 * its plan's arena (c->plan), as a pass with them needs.
 * cg_param_pass: one pass over the parameters of type ps->t as tasks on
 * the pool, in the partition every such pass shares: ps->body emits the
 * code of one segment (addresses from the instance ps->m, and from this
 * batch's gradients in ps->arena unless it is NULL; ps->vals are values
 * of the caller's function, seen in the task as vals) and returns an i1
 * "bad", or NULL. *bad: their or. False, with nothing emitted, when the
 * batch's gradients are not all in the arena. */
void cg_grads_check(Cg *c, CgFrame *f, bool batch);
/* The gradient reports of c->train's run function (c->plan): sets
 * c->ready_plan, c->ready_step and c->ready_numel (docs/CODEGEN.md,
 * Gradient reports), which cg_run_steps (run.c) reads to report each
 * gradient after the step that makes it final. cg_grads_ready_end clears
 * them. */
void cg_grads_ready_begin(Cg *c);
void cg_grads_ready_end(Cg *c);
void cg_grads_add(Cg *c, CgFrame *f);
bool cg_grads_in_arena(Cg *c);
/* The one floating type of every parameter of a model (the front end's
 * rule); the loss's when there are none. */
DType cg_param_type(const Cg *c);
typedef struct {
    LLVMValueRef grad, batch, param, slot; /* slot: the optimizer's slot 0 */
    LLVMValueRef count;                    /* scalars, i64 */
} CgSeg;
typedef LLVMValueRef (*CgSegBody)(Cg *c, const CgSeg *s, LLVMValueRef *vals, void *ctx);
typedef struct {
    const char *name; /* of its task function: NAME.name.T */
    DType t;
    LLVMValueRef m, arena;
    LLVMValueRef *vals;
    int nvals;
    CgSegBody body;
    void *ctx;
} CgPass;
bool cg_param_pass(Cg *c, const CgPass *ps, LLVMValueRef *bad);

/* train.c: `void NAME.apply(ptr m)`, the optimizer step of
 * NAME_apply_gradients (clipping, schedule, update, zeroed gradients, the
 * step counter); with sum, `NAME.apply.sum(ptr m)`, the same step of
 * NAME_train_step on the sums plus the batch's gradients still in the
 * arena of c->plan, or NULL when it cannot be made (clipping by norm, a
 * gradient outside the arena); and, inside the current function, the
 * learning rate (f64) of the next step of the instance at m. */
LLVMValueRef cg_build_apply(Cg *c, bool sum);
LLVMValueRef cg_schedule_lr(Cg *c, LLVMValueRef m);

/* parallel.c: the thread pool (docs/CODEGEN.md, "Threads").
 * cg_step_rows: the batch rows of one task of step (its kernel's operands
 * ins), or 0 when the step runs as one call. cg_call_step: in the run
 * function, calls step's kernel kfn with args, as tasks on the pool when
 * cg_step_rows says so. cg_parallel_chunks: runs body on [lo, hi) for
 * consecutive chunks of chunk items of [0, n), as tasks on the pool, in
 * functions of their own named name.N: body sees vals (values of the
 * current function, copied) as its vals. */
int64_t cg_step_rows(Cg *c, Node *step, Node **ins, int nin);
void cg_call_step(Cg *c, Node *step, LLVMValueRef kfn, Node **ins, int nin, LLVMValueRef *args,
                  int nargs);
/* check.c (unless --no-checks): scans inside the current function,
 * which returns i32, and returns the runtime's DLRT_ERANGE or
 * DLRT_ENONFINITE from it when the scan fails. cg_check_inputs checks
 * every input that is an argument (input_slot, by node id: its index in
 * the inputs array, -1 for none); cg_check_finite x[i] (+ y[i]) for i < n
 * (row: elements per sample, for the message; what: the tensor). */
void cg_check_inputs(Cg *c, LLVMValueRef inputs, const int *input_slot);
/* The instance m's states region (running statistics) into copy, or
 * (back) copy into it; copy is states_bytes long, aligned to 8. */
void cg_copy_states(Cg *c, LLVMValueRef m, LLVMValueRef copy, bool back);
void cg_check_finite(Cg *c, DType t, LLVMValueRef x, LLVMValueRef y, LLVMValueRef n,
                     LLVMValueRef row, const char *what);
/* Whether some x[i] (+ y[i], y not NULL) for i < n is not finite (i1),
 * by a call of the scan function of type t; no check, no return. */
LLVMValueRef cg_nonfinite(Cg *c, DType t, LLVMValueRef x, LLVMValueRef y, LLVMValueRef n);
/* ignore: an id that every use ignores (ignore_index), or NULL */
void cg_check_index(Cg *c, LLVMValueRef x, LLVMValueRef n, LLVMValueRef row, int64_t hi,
                    const int64_t *ignore, const char *what);
/* By node id: the ids or labels a node's values are used as (through ops
 * that only move values): hi 0 for none, else values must be in 0..hi-1,
 * the smallest bound of the uses; use names the op of that bound. A value
 * outside may still be `ignore` when has_ignore: every use so far is a
 * class loss with that ignore_index. */
typedef struct {
    int64_t hi;
    const char *use;
    bool has_ignore;
    int64_t ignore;
} CgIndexBound;
CgIndexBound *cg_index_bounds(const Graph *g);

/* info.c: the initializer of gv, the model's constant dlrt_model_info,
 * with the generic entry points it points to (NULL: none): e[k] of
 * objective k (plans->obj), e[0].forward the forward one. */
typedef struct {
    LLVMValueRef forward, compute_gradients, evaluate, apply_gradients;
} CgEntries;
void cg_build_info(Cg *c, LLVMValueRef gv, const CgPlans *plans, const CgEntries *e);

/* target.c: whether LLVM knows cpu (--mcpu) for target t and triple. */
bool cg_cpu_known(LLVMTargetRef t, const char *triple, const char *cpu);
/* target.c: a --mcpu list (cpu has a comma) as x86-64 levels 1..4
 * (x86-64 ... x86-64-v4), ascending, into levels[0..*n); false with a
 * malloc'd *err for another target, a CPU that is not a level, an unknown
 * or empty name, or one listed twice. cg_level_cpu: a level's CPU name. */
bool cg_cpu_list(LLVMTargetRef t, const char *triple, const char *cpu, int *levels, int *n,
                 char **err);
const char *cg_level_cpu(int level);
/* target.c: the widest vector registers, in bytes, of tm's CPU: 64 with
 * AVX-512, 32 with AVX2, else 16 (SSE2, NEON); a CPU named with --mcpu,
 * whose features LLVM-C does not tell, is asked of its backend. */
int cg_vector_bytes(LLVMTargetMachineRef tm);
/* Whether o asks for the host's CPU (--mcpu=native). */
bool cg_native(const CgOptions *o);
/* Bytes of L2 cache a core has on the CPU o is for (the host's for
 * --mcpu=native, else a lower bound from its vectors): what gemm.c keeps
 * a panel of b within. */
int64_t cg_l2_bytes(const CgOptions *o, int vector_bytes);

/* instance.c: by input index (node order of OP_INPUT), whether the
 * outputs need it. */
bool *cg_needed_inputs(const Graph *g, int *ninputs);
/* What the internal functions of the objective being compiled add to
 * their names: "" for a single unnamed one, else "." and its name. */
static inline const char *cg_obj_tag(const Cg *c)
{
    return c->train && c->train->name ? arena_printf(c->g->arena, ".%s", c->train->name) : "";
}
/* The same for objective t's training functions: the inputs its loss
 * needs; every input for a single unnamed objective (as before there
 * were several). */
bool *cg_objective_inputs(const Graph *g, const Train *t, int *ninputs);

#endif

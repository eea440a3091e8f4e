/*
 * The driver of code generation: the module for one model -- target
 * machine, the run functions that call each plan step's kernel
 * (dispatch.c) in plan order, the SPEC 3 entry points and the constant
 * dlrt_model_info (info.c) -- then optimization with the new pass manager
 * and output as an object, assembly or LLVM IR.
 *
 * Kernels are built one per plan step, then identical ones merged before
 * optimization (merge_kernels; docs/CODEGEN.md says why this way).
 *
 * Entry points check every pointer and the batch before touching anything
 * and return DLRT_EINVAL. NAME_forward stores its pointers into small
 * arrays and calls the same run function as NAME_forward_generic (inlined
 * at -O1 and above).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/ErrorHandling.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "cg.h"

static LLVMValueRef i32_c(Cg *c, int64_t v)
{
    return LLVMConstInt(c->i32, (unsigned long long)v, 1);
}

static char *dup_msg(const char *prefix, const char *msg)
{
    size_t n = strlen(prefix) + strlen(msg) + 1;
    char *s = malloc(n);
    check(s);
    snprintf(s, n, "%s%s", prefix, msg);
    return s;
}

/* o's target machine. With levels, o->cpu may be a --mcpu list: its
 * x86-64 levels go to levels[0..*nlevels) (none for one CPU) and the
 * machine is the lowest level's. */
static LLVMTargetMachineRef make_machine(const CgOptions *o, int *levels, int *nlevels, char **err)
{
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    char *host = LLVMGetDefaultTargetTriple();
    const char *triple = o->triple ? o->triple : host;
    LLVMTargetRef t;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
        *err = malloc(strlen(triple) + strlen(msg) + 64);
        check(*err);
        sprintf(*err, "unknown target '%s': %s", triple, msg);
        LLVMDisposeMessage(msg);
        LLVMDisposeMessage(host);
        return NULL;
    }
    CgOptions level0;
    if (levels && (*nlevels = 0, o->cpu && strchr(o->cpu, ','))) {
        if (!cg_cpu_list(t, triple, o->cpu, levels, nlevels, err)) {
            LLVMDisposeMessage(host);
            return NULL;
        }
        level0 = *o;
        level0.cpu = cg_level_cpu(levels[0]);
        o = &level0;
    }
    /* A generic CPU of the target by default, as C compilers do, so an
     * object runs on any machine of its architecture; the host's CPU only
     * when asked for by name (docs/TARGETS.md). */
    bool native = cg_native(o);
    if (o->cpu && !native && strcmp(o->cpu, "generic") != 0 && !cg_cpu_known(t, triple, o->cpu)) {
        *err = malloc(strlen(o->cpu) + strlen(triple) + 64);
        check(*err);
        sprintf(*err, "unknown CPU '%s' for target '%s' (--mcpu)", o->cpu, triple);
        LLVMDisposeMessage(host);
        return NULL;
    }
    char *cpu = native ? LLVMGetHostCPUName() : NULL;
    char *features = native ? LLVMGetHostCPUFeatures() : NULL;
    LLVMCodeGenOptLevel lvl = o->opt_level <= 0   ? LLVMCodeGenLevelNone
                              : o->opt_level == 1 ? LLVMCodeGenLevelLess
                              : o->opt_level == 2 ? LLVMCodeGenLevelDefault
                                                  : LLVMCodeGenLevelAggressive;
    /* LLVM reads a triple's parts by position: "thumbv7em-none-eabihf"
     * must become "thumbv7em-unknown-none-eabihf" for eabihf to be the
     * environment, which selects the hard-float calling convention. */
    char *norm = LLVMNormalizeTargetTriple(triple);
    LLVMTargetMachineRef tm =
        LLVMCreateTargetMachine(t, norm, native ? cpu : (o->cpu ? o->cpu : "generic"),
                                native ? features : "", lvl, LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMDisposeMessage(norm);
    if (cpu)
        LLVMDisposeMessage(cpu);
    if (features)
        LLVMDisposeMessage(features);
    if (!tm) {
        *err = dup_msg("cannot create a target machine for ", triple);
    }
    LLVMDisposeMessage(host); /* triple may be host */
    return tm;
}

/* ---- the run function ---------------------------------------------------- */

/* What one run function computes (docs/TRAINING.md). */
typedef enum { FN_FORWARD, FN_EVAL, FN_TRAIN } FnKind;

/* By node id of an input: its index in the run function's inputs array
 * (-1: not an argument). Forward takes the inputs its outputs need, the
 * training functions those of their objective (cg_objective_inputs). */
static int *input_slots(Cg *c, FnKind kind, int *count)
{
    const Graph *g = c->g;
    int *slot = arena_alloc(g->arena, sizeof(int) * (size_t)(g->nodes.n + 1));
    int ninputs, k = 0, n = 0;
    bool *need = kind == FN_FORWARD ? cg_needed_inputs(g, &ninputs)
                                    : cg_objective_inputs(g, c->train, &ninputs);
    for (int i = 0; i < g->nodes.n; i++) {
        slot[i] = -1;
        if (g->nodes.v[i]->op == OP_INPUT && need[k++])
            slot[i] = n++;
    }
    *count = n;
    return slot;
}

static bool run_passes(Cg *c, LLVMTargetMachineRef tm, const char *passes, char **err);

/* Kernels built before merging identical ones, a multiple of the part
 * size (docs/CODEGEN.md, Parts): 2048 by default. */
enum { MERGE_PARTS = 32 };

/* A table of the kernels among ks[0..n), which mergefunc keeps up to
 * date: when it deletes a kernel for one identical to it, it points the
 * kernel's uses at the one kept (the kernels are unnamed_addr, so it
 * may). NULL when there are none. External while it lives, or constmerge
 * would delete it, unused. */
static LLVMValueRef kernel_table(Cg *c, const CgKernel *ks, int n)
{
    int m = 0;
    LLVMValueRef *fns = arena_alloc(c->g->arena, sizeof *fns * ((size_t)n + 1));
    for (int i = 0; i < n; i++)
        if (ks[i].fn)
            fns[m++] = ks[i].fn;
    if (!m)
        return NULL;
    LLVMValueRef t = LLVMAddGlobal(c->mod, LLVMArrayType2(c->ptr, (uint64_t)m), "dlc.kernels");
    LLVMSetInitializer(t, LLVMConstArray2(c->ptr, fns, (uint64_t)m));
    return t;
}

/* Points ks[0..n) at the kernels kept, from their table, and deletes it. */
static void kernels_kept(CgKernel *ks, int n, LLVMValueRef table)
{
    if (!table)
        return;
    LLVMValueRef kept = LLVMGetInitializer(table);
    for (int i = 0, k = 0; i < n; i++)
        if (ks[i].fn)
            ks[i].fn = LLVMGetOperand(kept, (unsigned)k++);
    LLVMDeleteGlobal(table);
}

/* By step index: the kernels of c->plan's steps, built before the run
 * function that calls them, with identical ones merged (constmerge,
 * mergefunc, as merge_kernels) every MERGE_PARTS parts' worth of kernels
 * (never without parts), so that a plan of 100,000 steps never holds
 * 100,000 kernels. Every function of the module is complete when they
 * are merged. Each batch's kernels are found again through their table;
 * all tables live until the last merge, which may delete a kernel of an
 * earlier batch. A loop's kernels are its body's, built when it is
 * emitted. */
static CgKernel *build_kernels(Cg *c, LLVMTargetMachineRef tm)
{
    const Graph *g = c->g;
    int n = c->plan->nsteps, first = 0, built = 0;
    LLVMValueRef fn = c->fn, batch = c->batch;
    CgKernel *ks = arena_alloc(g->arena, sizeof *ks * ((size_t)n + 1));
    Vec(int) starts = {0};
    Vec(LLVMValueRef) tables = {0};
    for (int i = 0; i < n; i++) {
        if (c->plan->steps[i]->op == OP_LOOP)
            continue;
        ks[i] = cg_kernel(c, c->plan->steps[i]);
        if (!ks[i].fn)
            continue;
        Node **in = arena_alloc(g->arena, sizeof *in * ((size_t)ks[i].nin + 1));
        for (int j = 0; j < ks[i].nin; j++) /* the kernel's array is its own till the next */
            in[j] = ks[i].in[j];
        ks[i].in = in;
        size_t len;
        const char *name = LLVMGetValueName2(ks[i].fn, &len);
        vec_push(g->arena, &c->kernels, arena_strndup(g->arena, name, len));
        LLVMSetUnnamedAddress(ks[i].fn, LLVMGlobalUnnamedAddr);
        if (++built == MERGE_PARTS * c->part_size) {
            vec_push(g->arena, &starts, first);
            vec_push(g->arena, &tables, kernel_table(c, ks + first, i + 1 - first));
            char *err = NULL;
            if (!run_passes(c, tm, "constmerge,mergefunc", &err))
                die("%s", err);
            first = i + 1;
            built = 0;
        }
    }
    vec_push(g->arena, &starts, first); /* the last batch's end */
    for (int b = 0; b < tables.n; b++)
        kernels_kept(ks + starts.v[b], starts.v[b + 1] - starts.v[b], tables.v[b]);
    c->fn = fn;
    c->batch = batch;
    return ks;
}

/* static i32 NAME.run / NAME.train / NAME.eval (ptr m, i64 batch, ptr
 * inputs, ptr results): the input checks (check.c), the plan's kernels in
 * order, then the results: forward copies each output to results[i]; eval
 * and train store the loss at results, and train (i1 add: unless the
 * caller's update adds them itself) adds each gradient to the instance's
 * grads, after checking the loss and the sums. Returns 0,
 * or a check's code with nothing of the instance or results written. */
static LLVMValueRef build_run(Cg *c, LLVMTargetMachineRef tm, FnKind kind)
{
    const Graph *g = c->g;
    static const char *const suffix[] = {"run", "eval", "train"};
    static const char *const tags[] = {"", "eval.", "train."};
    LLVMTypeRef pt[] = {c->ptr, c->i64, c->ptr, c->ptr, c->i1};
    LLVMTypeRef fty = LLVMFunctionType(c->i32, pt, kind == FN_TRAIN ? 5 : 4, false);
    const char *obj = kind == FN_FORWARD ? "" : cg_obj_tag(c);
    char *name = arena_printf(g->arena, "%s.%s%s", g->name, suffix[kind], obj);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    c->fn = fn;
    c->tag = *obj ? arena_printf(g->arena, "%s%s.", tags[kind], obj + 1) : tags[kind];
    c->training = kind == FN_TRAIN;
    CgKernel *kernels = build_kernels(c, tm);
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    LLVMValueRef m = LLVMGetParam(fn, 0), inputs = LLVMGetParam(fn, 2),
                 results = LLVMGetParam(fn, 3);
    c->batch = LLVMGetParam(fn, 1);
    int ninputs;
    int *input_slot = input_slots(c, kind, &ninputs);
    LLVMValueRef key = NULL; /* the step's random key, computed before its first use */
    if (c->checks)
        cg_check_inputs(c, inputs, input_slot);
    if (kind == FN_TRAIN && c->checks && c->layout->states_bytes > 0) {
        /* batch_norm's kernels update the running statistics in place: a
         * step refused after them puts this copy back (on the stack: the
         * statistics are two vectors per layer) */
        c->undo_states =
            cg_alloca(c, LLVMArrayType2(c->i8, (uint64_t)c->layout->states_bytes), "states.copy");
        LLVMSetAlignment(c->undo_states, 16);
        cg_copy_states(c, m, c->undo_states, false);
    }

    CgFrame f = {.m = m,
                 .arena = cg_byte_gep(c, m, c->layout->arena_offset),
                 .inputs = inputs,
                 .input_slot = input_slot,
                 .key = &key,
                 .kernels = kernels};
    /* gradient reports only where an OS runs libdlrt_mpi's threads */
    if (kind == FN_TRAIN && c->report)
        cg_grads_ready_begin(c);
    cg_run_steps(c, &f);
    cg_grads_ready_end(c);
    if (kind == FN_FORWARD) {
        for (int i = 0; i < g->outputs.n; i++) {
            Node *o = g->outputs.v[i].node;
            LLVMValueRef idx = cg_i64(c, i);
            LLVMValueRef dst = LLVMBuildLoad2(
                c->b, c->ptr, LLVMBuildInBoundsGEP2(c->b, c->ptr, results, &idx, 1, ""), "");
            cg_copy(c, o->dtype, dst, cg_addr(c, &f, o),
                      cg_numel(c, &o->shape), false);
        }
    } else {
        Node *loss = c->train->loss;
        LLVMValueRef at = cg_addr(c, &f, loss);
        if (kind == FN_TRAIN && c->checks) {
            cg_check_finite(c, loss->dtype, at, NULL, cg_i64(c, 1), cg_i64(c, 0), "loss");
            cg_grads_check(c, &f, true);
        }
        c->undo_states = NULL;
        cg_copy(c, loss->dtype, results, at, cg_i64(c, 1), false);
    }
    if (kind == FN_TRAIN) {
        LLVMBasicBlockRef add = LLVMAppendBasicBlockInContext(c->ctx, fn, "grads.add");
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, fn, "done");
        LLVMBuildCondBr(c->b, LLVMGetParam(fn, 4), add, done);
        LLVMPositionBuilderAtEnd(c->b, add);
        cg_grads_add(c, &f);
        LLVMBuildBr(c->b, done);
        LLVMPositionBuilderAtEnd(c->b, done);
    }
    LLVMBuildRet(c->b, i32_c(c, 0));
    c->training = false;
    c->tag = "";
    return fn;
}

/* ---- entry points -------------------------------------------------------- */

static LLVMValueRef begin_fn(Cg *c, const char *suffix, LLVMTypeRef ret, LLVMTypeRef *pt, int n)
{
    char *name = arena_printf(c->g->arena, "%s_%s", c->g->name, suffix);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(ret, pt, (unsigned)n, false));
    LLVMAddAttributeAtIndex(
        fn, LLVMAttributeFunctionIndex,
        LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    c->fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    return fn;
}

/* Branches to a block returning DLRT_EINVAL when bad is true. */
static void fail_if(Cg *c, LLVMValueRef bad)
{
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "einval");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "ok");
    LLVMBuildCondBr(c->b, bad, fail, ok);
    LLVMPositionBuilderAtEnd(c->b, fail);
    LLVMBuildRet(c->b, i32_c(c, DLRT_EINVAL));
    LLVMPositionBuilderAtEnd(c->b, ok);
}

static LLVMValueRef is_null(Cg *c, LLVMValueRef p)
{
    return LLVMBuildICmp(c->b, LLVMIntEQ, p, LLVMConstNull(c->ptr), "");
}

/* The batch as i64 after checking it (i32 batch argument). */
static LLVMValueRef checked_batch(Cg *c, LLVMValueRef batch)
{
    const Graph *g = c->g;
    if (!g->batch) {
        if (!batch)
            return cg_i64(c, 1);
        /* dlrt_forward_fn: 0 or 1 for a model without a batch */
        fail_if(c, LLVMBuildICmp(c->b, LLVMIntUGT, batch, i32_c(c, 1), ""));
        return cg_i64(c, 1);
    }
    fail_if(c, LLVMBuildOr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, batch, i32_c(c, 1), ""),
                           LLVMBuildICmp(c->b, LLVMIntSGT, batch, i32_c(c, g->max_batch), ""), ""));
    return LLVMBuildSExt(c->b, batch, c->i64, "");
}

/* Fails unless every one of the n pointers in the array ptrs is non-NULL. */
static void check_pointer_array(Cg *c, LLVMValueRef ptrs, int n)
{
    LLVMValueRef bad = LLVMConstInt(c->i1, 0, 0);
    for (int i = 0; i < n; i++) {
        LLVMValueRef idx = cg_i64(c, i);
        LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->ptr, ptrs, &idx, 1, "");
        bad = LLVMBuildOr(c->b, bad, is_null(c, LLVMBuildLoad2(c->b, c->ptr, p, "")), "");
    }
    fail_if(c, bad);
}

/* What a call of f, an internal function of this module, calls for the
 * instance m: f itself in an object for one CPU; in one for a --mcpu list
 * the variant of the highest level not above the instance's cpu_level,
 * f for the lowest, else the external F.LEVEL that another module
 * defines (cg_emit links them in). A select per level: no branch, no
 * cpuid, once per call. */
static LLVMValueRef variant_of(Cg *c, LLVMValueRef m, LLVMValueRef f)
{
    if (c->nlevels < 2)
        return f;
    size_t len;
    const char *name = LLVMGetValueName2(f, &len);
    bool known = false;
    for (int i = 0; i < c->variants.n; i++)
        known |= strcmp(c->variants.v[i], name) == 0;
    if (!known)
        vec_push(c->g->arena, &c->variants, arena_strndup(c->g->arena, name, len));
    LLVMValueRef level =
        LLVMBuildLoad2(c->b, c->i32, cg_instance_field(c, m, CG_INST_cpu_level), "cpu.level");
    LLVMValueRef callee = f;
    for (int k = 1; k < c->nlevels; k++) {
        char *vname = arena_printf(c->g->arena, "%.*s.%s", (int)len, name,
                                   cg_level_cpu(c->levels[k]));
        LLVMValueRef v = LLVMGetNamedFunction(c->mod, vname);
        if (!v)
            v = LLVMAddFunction(c->mod, vname, LLVMGlobalGetValueType(f));
        LLVMValueRef at = LLVMBuildICmp(c->b, LLVMIntSGE, level, i32_c(c, c->levels[k]), "");
        callee = LLVMBuildSelect(c->b, at, v, callee, "");
    }
    return callee;
}

/* Calls run and returns its code from the current function when not 0. */
static void call_run(Cg *c, LLVMValueRef run, LLVMValueRef m, LLVMValueRef batch, LLVMValueRef ins,
                     LLVMValueRef outs, bool add)
{
    LLVMValueRef args[] = {m, batch, ins, outs, LLVMConstInt(c->i1, add, 0)};
    LLVMValueRef rc = LLVMBuildCall2(c->b, LLVMGlobalGetValueType(run), variant_of(c, m, run), args,
                                     LLVMCountParams(run), "rc");
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "refused");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "ran");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, rc, i32_c(c, 0), ""), fail, ok);
    LLVMPositionBuilderAtEnd(c->b, fail);
    LLVMBuildRet(c->b, rc);
    LLVMPositionBuilderAtEnd(c->b, ok);
}

/* NAME_SUFFIX_generic(m, batch, inputs, results): the arrays as run takes
 * them; results is an array of nout pointers, or (nout < 0) the loss. */
static LLVMValueRef build_generic(Cg *c, const char *suffix, LLVMValueRef run, int nin, int nout)
{
    LLVMTypeRef gpt[] = {c->ptr, c->i32, c->ptr, c->ptr};
    LLVMValueRef gen = begin_fn(c, suffix, c->i32, gpt, 4);
    LLVMValueRef m = LLVMGetParam(gen, 0), ins = LLVMGetParam(gen, 2), outs = LLVMGetParam(gen, 3);
    LLVMValueRef bad = is_null(c, m);
    if (nin)
        bad = LLVMBuildOr(c->b, bad, is_null(c, ins), "");
    if (nout)
        bad = LLVMBuildOr(c->b, bad, is_null(c, outs), "");
    fail_if(c, bad);
    LLVMValueRef batch = checked_batch(c, LLVMGetParam(gen, 1));
    check_pointer_array(c, ins, nin);
    if (nout > 0)
        check_pointer_array(c, outs, nout);
    call_run(c, run, m, batch, ins, outs, true);
    LLVMBuildRet(c->b, i32_c(c, 0));
    return gen;
}

/* NAME_SUFFIX(m, [batch,] inputs..., results...): checks every pointer,
 * gathers them into arrays for run, then calls after(m) if given. nout < 0:
 * one pointer, the loss, passed to run directly. A training run adds the
 * batch's gradients to the instance's unless after_adds (after reads them
 * from the arena itself). */
static void build_direct(Cg *c, const char *suffix, LLVMValueRef run, int nin, int nout,
                         LLVMValueRef after, bool after_adds)
{
    const Graph *g = c->g;
    int nres = nout < 0 ? 1 : nout;
    int first = 1 + (g->batch ? 1 : 0);
    int np = first + nin + nres;
    LLVMTypeRef *pt = arena_alloc(g->arena, sizeof *pt * (size_t)np);
    pt[0] = c->ptr;
    if (g->batch)
        pt[1] = c->i32;
    for (int i = first; i < np; i++)
        pt[i] = c->ptr;
    LLVMValueRef fn = begin_fn(c, suffix, c->i32, pt, np);
    LLVMValueRef bad = is_null(c, LLVMGetParam(fn, 0));
    for (int i = first; i < np; i++)
        bad = LLVMBuildOr(c->b, bad, is_null(c, LLVMGetParam(fn, (unsigned)i)), "");
    fail_if(c, bad);
    LLVMValueRef batch = checked_batch(c, g->batch ? LLVMGetParam(fn, 1) : NULL);
    LLVMValueRef ins = cg_alloca(c, LLVMArrayType2(c->ptr, (uint64_t)(nin + 1)), "ins");
    LLVMValueRef outs = cg_alloca(c, LLVMArrayType2(c->ptr, (uint64_t)(nres + 1)), "outs");
    for (int i = 0; i < nin + nres; i++) {
        LLVMValueRef idx = cg_i64(c, i < nin ? i : i - nin);
        LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->ptr, i < nin ? ins : outs, &idx, 1, "");
        LLVMBuildStore(c->b, LLVMGetParam(fn, (unsigned)(first + i)), p);
    }
    LLVMValueRef m = LLVMGetParam(fn, 0);
    call_run(c, run, m, batch, ins, nout < 0 ? LLVMGetParam(fn, (unsigned)(first + nin)) : outs,
             !after_adds);
    if (after)
        LLVMBuildCall2(c->b, LLVMGlobalGetValueType(after), variant_of(c, m, after), &m, 1, "");
    LLVMBuildRet(c->b, i32_c(c, 0));
}

/* m + offset when m is not NULL, else NULL */
static void return_region(Cg *c, LLVMValueRef m, int64_t offset)
{
    LLVMValueRef idx = cg_i64(c, offset);
    LLVMValueRef p = LLVMBuildGEP2(c->b, c->i8, m, &idx, 1, "");
    LLVMBuildRet(c->b, LLVMBuildSelect(c->b, is_null(c, m), LLVMConstNull(c->ptr), p, ""));
}

/* The training entry points of the objective c->train (docs/TRAINING.md):
 * NAME_train_step, ... for a single unnamed one, NAME_train_step_OBJ, ...
 * for objective OBJ; the generic ones are returned for the info. */
static void build_training(Cg *c, const MemPlan *train_plan, LLVMValueRef train, LLVMValueRef eval,
                           CgEntries *e)
{
    const Graph *g = c->g;
    const char *obj = c->train->name ? arena_printf(g->arena, "_%s", c->train->name) : "";
#define FN_NAME(base) arena_printf(g->arena, "%s%s", base, obj)
    DType lt = c->train->loss->dtype;
    int nin;
    input_slots(c, FN_TRAIN, &nin);
    LLVMValueRef apply = cg_build_apply(c, false);
    /* train_step's update adds the batch's gradients as it reads the sums
     * (one pass over them fewer), when it can: c->plan is the training
     * function's, whose arena holds them */
    const MemPlan *fwd_plan = c->plan;
    c->plan = train_plan;
    LLVMValueRef apply_sum = cg_build_apply(c, true);
    c->plan = fwd_plan;
    LLVMTypeRef mt[] = {c->ptr};
    LLVMTypeRef pt = cg_type(c, lt);

    build_direct(c, FN_NAME("compute_gradients"), train, nin, -1, NULL, false);
    build_direct(c, FN_NAME("train_step"), train, nin, -1, apply_sum ? apply_sum : apply,
                 apply_sum != NULL);
    build_direct(c, FN_NAME("evaluate"), eval, nin, -1, NULL, false);
    e->compute_gradients = build_generic(c, FN_NAME("compute_gradients_generic"), train, nin, -1);
    e->evaluate = build_generic(c, FN_NAME("evaluate_generic"), eval, nin, -1);
    LLVMSetLinkage(e->compute_gradients, LLVMInternalLinkage);
    LLVMSetLinkage(e->evaluate, LLVMInternalLinkage);

    /* NAME_apply_gradients(m) */
    LLVMValueRef fn = begin_fn(c, FN_NAME("apply_gradients"), c->i32, mt, 1);
    LLVMValueRef m = LLVMGetParam(fn, 0);
    fail_if(c, is_null(c, m));
    if (c->checks) {
        CgFrame f = {.m = m, .arena = LLVMConstNull(c->ptr), .inputs = LLVMConstNull(c->ptr)};
        c->batch = cg_i64(c, 1);
        cg_grads_check(c, &f, false);
    }
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(apply), variant_of(c, m, apply), &m, 1, "");
    LLVMBuildRet(c->b, i32_c(c, 0));
    e->apply_gradients = fn;

    /* NAME_grads(m): one array for every objective */
    if (c->obj == 0) {
        fn = begin_fn(c, "grads", c->ptr, mt, 1);
        return_region(c, LLVMGetParam(fn, 0), c->layout->grads_offset);
    }

    /* NAME_set_learning_rate(m, lr): the base rate; DLRT_EINVAL for NULL
     * and for a rate that is negative, NaN or infinite */
    LLVMTypeRef st[] = {c->ptr, pt};
    fn = begin_fn(c, FN_NAME("set_learning_rate"), c->i32, st, 2);
    m = LLVMGetParam(fn, 0);
    LLVMValueRef lr = cg_to_f64(c, lt, LLVMGetParam(fn, 1));
    LLVMValueRef usable =
        LLVMBuildAnd(c->b, LLVMBuildFCmp(c->b, LLVMRealOGE, lr, LLVMConstReal(c->f64, 0), ""),
                     LLVMBuildFCmp(c->b, LLVMRealOLT, lr, LLVMConstReal(c->f64, INFINITY), ""), "");
    fail_if(c, LLVMBuildOr(c->b, is_null(c, m), LLVMBuildNot(c->b, usable, ""), ""));
    LLVMBuildStore(c->b, lr, cg_objective_field(c, m, CG_INST_lr));
    LLVMBuildRet(c->b, i32_c(c, 0));

    /* NAME_learning_rate(m): the rate of the next step; 0 for NULL */
    fn = begin_fn(c, FN_NAME("learning_rate"), pt, mt, 1);
    m = LLVMGetParam(fn, 0);
    LLVMBasicBlockRef get = LLVMAppendBasicBlockInContext(c->ctx, fn, "get");
    LLVMBasicBlockRef zero = LLVMAppendBasicBlockInContext(c->ctx, fn, "null");
    LLVMBuildCondBr(c->b, is_null(c, m), zero, get);
    LLVMPositionBuilderAtEnd(c->b, zero);
    LLVMBuildRet(c->b, cg_fconst(c, lt, 0));
    LLVMPositionBuilderAtEnd(c->b, get);
    LLVMBuildRet(c->b, cg_from_f64(c, lt, cg_schedule_lr(c, m)));

    /* NAME_step(m): 0 for NULL */
    fn = begin_fn(c, FN_NAME("step"), c->i64, mt, 1);
    m = LLVMGetParam(fn, 0);
    get = LLVMAppendBasicBlockInContext(c->ctx, fn, "get");
    zero = LLVMAppendBasicBlockInContext(c->ctx, fn, "null");
    LLVMBuildCondBr(c->b, is_null(c, m), zero, get);
    LLVMPositionBuilderAtEnd(c->b, zero);
    LLVMBuildRet(c->b, cg_i64(c, 0));
    LLVMPositionBuilderAtEnd(c->b, get);
    LLVMBuildRet(c->b, LLVMBuildLoad2(c->b, c->i64, cg_objective_field(c, m, CG_INST_step), ""));

    /* NAME_report_metric(m, metric): reduce_on_plateau's input, in libdlrt */
    LLVMTypeRef rt[] = {c->ptr, c->f64};
    fn = begin_fn(c, FN_NAME("report_metric"), c->i32, rt, 2);
    LLVMBuildRet(c->b, c->obj == 0 ? cg_rt_model_report_metric(c, LLVMGetParam(fn, 0),
                                                               LLVMGetParam(fn, 1))
                                   : cg_rt_model_report_metric_objective(
                                         c, LLVMGetParam(fn, 0), c->obj, LLVMGetParam(fn, 1)));
#undef FN_NAME
}

/* Without an OS (hosted false) there is no NAME_create, NAME_destroy,
 * NAME_save or NAME_load: they allocate or open files. */
static void build_entry_points(Cg *c, LLVMValueRef info, LLVMValueRef run, int nfwd, bool hosted)
{
    const Graph *g = c->g;
    int nout = g->outputs.n;
    build_generic(c, "forward_generic", run, nfwd, nout);
    build_direct(c, "forward", run, nfwd, nout, NULL, false);

    /* NAME_create(seed) */
    if (hosted) {
        LLVMTypeRef pt[] = {c->i64};
        LLVMValueRef fn = begin_fn(c, "create", c->ptr, pt, 1);
        LLVMBuildRet(c->b, cg_rt_model_create(c, info, LLVMGetParam(fn, 0)));
    }
    /* NAME_destroy(m) */
    if (hosted) {
        LLVMTypeRef pt[] = {c->ptr};
        LLVMValueRef fn = begin_fn(c, "destroy", c->voidt, pt, 1);
        cg_rt_model_destroy(c, LLVMGetParam(fn, 0));
        LLVMBuildRetVoid(c->b);
    }
    /* NAME_init(m, mem, size, seed): m is mem or NULL */
    {
        LLVMTypeRef pt[] = {c->ptr, c->ptr, c->size_t_, c->i64};
        LLVMValueRef fn = begin_fn(c, "init", c->i32, pt, 4);
        LLVMValueRef m = LLVMGetParam(fn, 0), mem = LLVMGetParam(fn, 1);
        fail_if(c, LLVMBuildAnd(c->b, LLVMBuildNot(c->b, is_null(c, m), ""),
                                LLVMBuildICmp(c->b, LLVMIntNE, m, mem, ""), ""));
        LLVMBuildRet(c->b,
                     cg_rt_model_init(c, info, mem, LLVMGetParam(fn, 2), LLVMGetParam(fn, 3)));
    }
    /* NAME_params(m) */
    {
        LLVMTypeRef pt[] = {c->ptr};
        LLVMValueRef fn = begin_fn(c, "params", c->ptr, pt, 1);
        return_region(c, LLVMGetParam(fn, 0), c->layout->params_offset);
    }
    /* NAME_save(m, path), NAME_load(m, path) */
    if (hosted) {
        LLVMTypeRef io[] = {c->ptr, c->ptr};
        LLVMValueRef fn = begin_fn(c, "save", c->i32, io, 2);
        LLVMBuildRet(c->b, cg_rt_model_save(c, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1)));
        fn = begin_fn(c, "load", c->i32, io, 2);
        LLVMBuildRet(c->b, cg_rt_model_load(c, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1)));
    }
    /* NAME_info() */
    begin_fn(c, "info", c->ptr, NULL, 0);
    LLVMBuildRet(c->b, info);
}

/* ---- driver -------------------------------------------------------------- */

/* Writes n bytes to path ("-": standard output); false with *err set when
 * a write fails (a full disk), instead of LLVM's fatal "IO failure". */
static bool write_bytes(Arena *a, const char *path, const char *data, size_t n, char **err)
{
    bool to_stdout = strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (!f) {
        *err = dup_msg(arena_printf(a, "cannot write '%s': ", path), strerror(errno));
        return false;
    }
    bool ok = fwrite(data, 1, n, f) == n;
    ok &= fflush(f) == 0;
    int e = errno;
    if (!to_stdout)
        ok &= fclose(f) == 0;
    if (!ok)
        *err = dup_msg(arena_printf(a, "writing '%s' failed: ", path), strerror(e ? e : errno));
    return ok;
}

/* The module as LLVM IR text, assembly or an object, produced in memory
 * and then written, so that every I/O error is ours to report. */
static bool write_module(Cg *c, LLVMTargetMachineRef tm, CgOutput kind, const char *path,
                         char **err)
{
    if (kind == CG_LLVM) {
        char *s = LLVMPrintModuleToString(c->mod);
        bool ok = !path || write_bytes(c->g->arena, path, s, strlen(s), err);
        LLVMDisposeMessage(s);
        return ok;
    }
    LLVMCodeGenFileType ft = kind == CG_ASM ? LLVMAssemblyFile : LLVMObjectFile;
    LLVMMemoryBufferRef buf;
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, c->mod, ft, &msg, &buf)) {
        *err = dup_msg("", msg);
        LLVMDisposeMessage(msg);
        return false;
    }
    bool ok = !path ||
              write_bytes(c->g->arena, path, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf), err);
    LLVMDisposeMemoryBuffer(buf);
    return ok;
}

/* Why the plans cannot be compiled (a malloc'd message), NULL if they can. */
static char *check_plans(const Graph *g, const CgPlans *plans)
{
    const char *bad = cg_plan_unsupported(g, plans->forward, false);
    for (int k = 0; k < (plans->train ? plans->nobj : 0); k++) {
        if (!bad)
            bad = cg_plan_unsupported(g, plans->obj[k].evaluate, false);
        if (!bad)
            bad = cg_plan_unsupported(g, plans->obj[k].plan, true);
    }
    return bad ? dup_msg("", bad) : NULL;
}

/* An empty module for tm's target in ctx, or in a new context (NULL). */
static void module_new(Cg *c, LLVMTargetMachineRef tm, const CgOptions *o, LLVMContextRef ctx)
{
    c->ctx = ctx ? ctx : LLVMContextCreate();
    c->mod = LLVMModuleCreateWithNameInContext(c->g->name, c->ctx);
    c->b = LLVMCreateBuilderInContext(c->ctx);
    c->td = LLVMCreateTargetDataLayout(tm);
    c->vector_bytes = cg_vector_bytes(tm);
    c->gemm_rows = o->gemm_rows < 0 ? 0 : o->gemm_rows ? o->gemm_rows : cg_small_gemm_limit(c);
    c->gemm_any = !o->gemm_rows && c->vector_bytes >= 32;
    c->l2_bytes = cg_l2_bytes(o, c->vector_bytes);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(c->mod, triple);
    LLVMDisposeMessage(triple);
    LLVMSetModuleDataLayout(c->mod, c->td);
    cg_init_types(c);
    if (!o->triple) /* the C compiler that built dlc lays out the runtime's structs */
        cg_abi_check_host(c);
    c->root = cg_group_roots(c->g);
    cg_group_members(c);
}

/* Frees c's builder and data layout, and its module and context unless
 * the module was linked into another (NULL). */
static void module_free(Cg *c)
{
    LLVMDisposeBuilder(c->b);
    LLVMDisposeTargetData(c->td);
    if (c->mod) {
        LLVMDisposeModule(c->mod);
        LLVMContextDispose(c->ctx);
    }
}

/* The run functions, their kernels, the entry points and the info. */
static void build_module(Cg *c, LLVMTargetMachineRef tm, const CgPlans *plans, bool hosted)
{
    const Graph *g = c->g;
    int ninputs, nfwd = 0;
    bool *need = cg_needed_inputs(g, &ninputs);
    for (int i = 0; i < ninputs; i++)
        nfwd += need[i];
    CgAbiTypes t = cg_abi_types(c);
    char *info_name = arena_printf(g->arena, "%s.info", g->name);
    LLVMValueRef info = LLVMAddGlobal(c->mod, t.info, info_name);
    LLVMValueRef run = build_run(c, tm, FN_FORWARD);
    build_entry_points(c, info, run, nfwd, hosted);
    LLVMValueRef fwd =
        LLVMGetNamedFunction(c->mod, arena_printf(g->arena, "%s_forward_generic", g->name));
    int nobj = plans->train ? plans->nobj : 0;
    CgEntries *entries = arena_alloc(g->arena, sizeof *entries * (size_t)(nobj + 1));
    entries[0].forward = fwd;
    for (int k = 0; k < nobj; k++) {
        const CgObjective *o = &plans->obj[k];
        c->obj = k;
        c->train = o->train;
        c->opt = o->opt;
        c->plan = o->plan;
        LLVMValueRef train = build_run(c, tm, FN_TRAIN);
        c->plan = o->evaluate;
        LLVMValueRef eval = build_run(c, tm, FN_EVAL);
        c->plan = plans->forward;
        entries[k].forward = fwd;
        build_training(c, o->plan, train, eval, &entries[k]);
    }
    c->obj = 0;
    c->train = nobj ? plans->obj[0].train : NULL;
    c->opt = plans->opt;
    cg_build_info(c, info, plans, entries);
}

/* An invalid module is a bug in dlc. */
static void verify(Cg *c)
{
    char *msg = NULL;
    if (LLVMVerifyModule(c->mod, LLVMReturnStatusAction, &msg)) {
        fprintf(stderr, "dlc: internal error: invalid LLVM module:\n%s\n", msg);
        if (getenv("DLC_DUMP_BAD_MODULE"))
            LLVMDumpModule(c->mod);
        die("LLVM module verification failed");
    }
    LLVMDisposeMessage(msg);
}

/* Runs an LLVM pass pipeline on the module; false with *err on failure. */
static bool run_passes(Cg *c, LLVMTargetMachineRef tm, const char *passes, char **err)
{
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(c->mod, passes, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (!e)
        return true;
    char *m = LLVMGetErrorMessage(e);
    *err = dup_msg("LLVM pass pipeline failed: ", m);
    LLVMDisposeErrorMessage(m);
    return false;
}

/* Identical kernels, one function: constmerge first folds equal private
 * constants (a convolution's geometry) so that kernels reading them
 * compare equal, then mergefunc compares the functions' bodies and
 * points the calls of each duplicate at one copy, deleting the rest.
 * The count of kernels left goes to *kept. */
static bool merge_kernels(Cg *c, LLVMTargetMachineRef tm, int *kept, char **err)
{
    if (!run_passes(c, tm, "constmerge,mergefunc", err))
        return false;
    *kept = 0;
    for (int i = 0; i < c->kernels.n; i++)
        *kept += LLVMGetNamedFunction(c->mod, c->kernels.v[i]) != NULL;
    return true;
}

/* LLVM's default<On> pipeline; false with *err on failure. */
static bool optimize(Cg *c, LLVMTargetMachineRef tm, int level, char **err)
{
    if (level <= 0)
        return true;
    char passes[32];
    snprintf(passes, sizeof passes, "default<O%d>", level > 3 ? 3 : level);
    return run_passes(c, tm, passes, err);
}

void cg_set_fatal_handler(void (*handler)(const char *reason))
{
    LLVMInstallFatalErrorHandler(handler);
}

/* Milliseconds since *t0, which becomes now. */
static double lap_ms(struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double ms = (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
    *t0 = t;
    return ms;
}

static Cg cg_state(const Graph *g, const CgPlans *plans, const Layout *layout, const CgOptions *o)
{
    return (Cg){.g = g,
                .plan = plans->forward,
                .layout = layout,
                .opt = plans->opt,
                .tag = "",
                .checks = !o->no_checks,
                .report = !cg_freestanding(o),
                .threads = !cg_freestanding(o),
                .part_size = o->part_size < 0 ? 0 : o->part_size ? o->part_size : CG_PART_SIZE};
}

/* In a variant's module c: every function it defines is renamed F.CPU
 * (a profile tells the variants apart) and made internal, but for those
 * of c0->variants, which stay external, and so does no global, so that
 * linking it brings in those and what they call, and nothing clashes. */
static void export_variant(Cg *c, const Cg *c0, const char *cpu)
{
    for (LLVMValueRef f = LLVMGetFirstFunction(c->mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f)) {
            size_t len;
            const char *old = LLVMGetValueName2(f, &len);
            char *name = arena_printf(c->g->arena, "%.*s.%s", (int)len, old, cpu);
            LLVMSetValueName2(f, name, strlen(name));
            LLVMSetLinkage(f, LLVMInternalLinkage);
        }
    for (int i = 0; i < c->kernels.n; i++) /* merge_kernels counts them by name */
        c->kernels.v[i] = arena_printf(c->g->arena, "%s.%s", c->kernels.v[i], cpu);
    for (int i = 0; i < c0->variants.n; i++) {
        LLVMValueRef f = LLVMGetNamedFunction(
            c->mod, arena_printf(c->g->arena, "%s.%s", c0->variants.v[i], cpu));
        check(f && !LLVMIsDeclaration(f));
        LLVMSetLinkage(f, LLVMExternalLinkage);
    }
    for (LLVMValueRef v = LLVMGetFirstGlobal(c->mod); v; v = LLVMGetNextGlobal(v))
        if (!LLVMIsDeclaration(v) && LLVMGetLinkage(v) != LLVMPrivateLinkage)
            LLVMSetLinkage(v, LLVMInternalLinkage);
}

/* Builds c's whole module (a variant's for c0's object when c0), merges
 * identical kernels and optimizes it; the stats add up over the modules
 * of a --mcpu list. */
static bool build_optimized(Cg *c, const Cg *c0, LLVMTargetMachineRef tm, const CgPlans *plans,
                            const CgOptions *o, CgStats *st, struct timespec *t0, char **err)
{
    build_module(c, tm, plans, !cg_freestanding(o));
    verify(c);
    st->graph_kernels += c->kernels.n;
    st->build_ms += lap_ms(t0);
    if (!c0) {
        st->gemms = c->gemms.n;
        st->gemm_rows = c->gemm_rows;
        size_t at = 0;
        for (int i = 0; i < c->gemms.n && at < sizeof st->gemm_shapes; i++)
            at += (size_t)snprintf(st->gemm_shapes + at, sizeof st->gemm_shapes - at, "%s%s",
                                   i ? " " : "", c->gemms.v[i]);
        if (at >= sizeof st->gemm_shapes) /* cut: say so */
            strcpy(st->gemm_shapes + sizeof st->gemm_shapes - 4, "...");
    }
    if (c0)
        export_variant(c, c0, cg_level_cpu(c->levels[0]));
    /* the back end compiles each function for its own CPU once the
     * modules are one (the target machine's is the lowest level's) */
    for (LLVMValueRef f = LLVMGetFirstFunction(c->mod); c->levels && f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f))
            LLVMAddTargetDependentFunctionAttr(f, "target-cpu", cg_level_cpu(c->levels[0]));
    int kept = 0;
    bool ok = merge_kernels(c, tm, &kept, err);
    st->kernels += kept;
    st->dedup_ms += lap_ms(t0);
    ok = ok && optimize(c, tm, o->opt_level, err);
    st->opt_ms += lap_ms(t0);
    return ok;
}

/* The variants of c0->variants for an x86-64 level: a module of its own
 * built by the level's machine, exported (export_variant), optimized and
 * linked into c0's module (docs/CODEGEN.md, CPU lists). */
static bool add_variant(Cg *c0, const CgPlans *plans, const CgOptions *o, int level, CgStats *st,
                        struct timespec *t0, char **err)
{
    CgOptions vo = *o;
    vo.cpu = cg_level_cpu(level);
    LLVMTargetMachineRef tm = make_machine(&vo, NULL, NULL, err);
    if (!tm)
        return false;
    Cg c = cg_state(c0->g, plans, c0->layout, o);
    c.levels = &level; /* its CPU; nlevels 0: it dispatches nothing */
    module_new(&c, tm, o, c0->ctx);
    bool ok = build_optimized(&c, c0, tm, plans, o, st, t0, err);
    if (ok && LLVMLinkModules2(c0->mod, c.mod))
        die("cannot link the %s variant", vo.cpu);
    if (ok)
        c.mod = NULL; /* the linker took it */
    else
        LLVMDisposeModule(c.mod), c.mod = NULL;
    module_free(&c);
    LLVMDisposeTargetMachine(tm);
    return ok;
}

bool cg_emit(const Graph *g, const CgPlans *plans, const Layout *layout, const CgOptions *o,
             CgOutput kind, const char *path, char **err, CgStats *st)
{
    CgStats unused;
    st = st ? st : &unused;
    *st = (CgStats){0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *err = check_plans(g, plans);
    if (*err)
        return false;
    int levels[4], nlevels;
    LLVMTargetMachineRef tm = make_machine(o, levels, &nlevels, err);
    if (!tm)
        return false;
    Cg c = cg_state(g, plans, layout, o);
    c.nlevels = nlevels;
    c.levels = nlevels ? levels : NULL;
    module_new(&c, tm, o, NULL);
    bool ok = build_optimized(&c, NULL, tm, plans, o, st, &t0, err);
    for (int k = 1; ok && k < nlevels; k++)
        ok = add_variant(&c, plans, o, levels[k], st, &t0, err);
    /* linked: the variants are this object's own */
    for (int k = 1; ok && k < nlevels; k++)
        for (int i = 0; i < c.variants.n; i++)
            LLVMSetLinkage(LLVMGetNamedFunction(c.mod, arena_printf(g->arena, "%s.%s",
                                                                    c.variants.v[i],
                                                                    cg_level_cpu(levels[k]))),
                           LLVMInternalLinkage);
    ok = ok && write_module(&c, tm, kind, path, err);
    st->output_ms = lap_ms(&t0);
    module_free(&c);
    LLVMDisposeTargetMachine(tm);
    return ok;
}

/*
 * The LLVM shorthands of codegen/ (cg_build.h): the module's types,
 * constants, counted loops and nests of them, allocas, element addresses,
 * calls of external functions and intrinsics, and scalar math shared by
 * several kernel families. Every helper emits exactly what its LLVM-C
 * calls emit, in order, so moving code onto these helpers does not change
 * the generated IR.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cg_build.h"

#include <llvm-c/DebugInfo.h>

void cg_init_types(Cg *c)
{
    c->i1 = LLVMInt1TypeInContext(c->ctx);
    c->i8 = LLVMInt8TypeInContext(c->ctx);
    c->i16 = LLVMInt16TypeInContext(c->ctx);
    c->i32 = LLVMInt32TypeInContext(c->ctx);
    c->i64 = LLVMInt64TypeInContext(c->ctx);
    c->f32 = LLVMFloatTypeInContext(c->ctx);
    c->f64 = LLVMDoubleTypeInContext(c->ctx);
    c->ptr = LLVMPointerTypeInContext(c->ctx, 0);
    c->voidt = LLVMVoidTypeInContext(c->ctx);
    c->size_t_ = LLVMIntPtrTypeInContext(c->ctx, c->td);
}

/* ---- types and constants ------------------------------------------------- */

LLVMTypeRef cg_type(Cg *c, DType t)
{
    switch (t) {
    case DT_F32: return c->f32;
    case DT_F64: return c->f64;
    case DT_I32: return c->i32;
    case DT_F16:
    case DT_BF16: return c->i16; /* storage: codegen/half.c converts */
    default: die("no LLVM type for %s", ir_dtype_name(t));
    }
}

int64_t cg_dtype_size(DType t)
{
    return t == DT_F64 ? 8 : ir_dtype_is_half(t) ? 2 : 4;
}

LLVMValueRef cg_i64(Cg *c, int64_t v)
{
    return LLVMConstInt(c->i64, (unsigned long long)v, true);
}

LLVMValueRef cg_private_const(Cg *c, LLVMValueRef init, const char *name, bool unnamed)
{
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    if (unnamed)
        LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    return gv;
}

LLVMValueRef cg_fconst(Cg *c, DType t, double v)
{
    if (t == DT_I32)
        return LLVMConstInt(c->i32, (unsigned long long)(int64_t)v, true);
    return LLVMConstReal(cg_type(c, t), v);
}

/* ---- control flow -------------------------------------------------------- */

LLVMValueRef cg_loop_begin(Cg *c, LLVMValueRef n, CgLoop *l)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    l->header = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "loop");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "done");
    LLVMBuildBr(c->b, l->header);
    LLVMPositionBuilderAtEnd(c->b, l->header);
    l->iv = LLVMBuildPhi(c->b, c->i64, "i");
    LLVMValueRef zero = cg_i64(c, 0);
    LLVMAddIncoming(l->iv, &zero, &pre, 1);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, l->iv, n, ""), body, l->exit);
    LLVMPositionBuilderAtEnd(c->b, body);
    return l->iv;
}

static LLVMValueRef loop_end(Cg *c, CgLoop *l)
{
    LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->iv, cg_i64(c, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMValueRef br = LLVMBuildBr(c->b, l->header);
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(c->b, l->exit);
    return br;
}

void cg_loop_end(Cg *c, CgLoop *l)
{
    loop_end(c, l);
}

void cg_loop_end_interleaved(Cg *c, CgLoop *l, int count)
{
    LLVMValueRef br = loop_end(c, l);
    /* !llvm.loop !{self, !{"llvm.loop.interleave.count", i32 count}} */
    LLVMMetadataRef prop[] = {
        LLVMMDStringInContext2(c->ctx, "llvm.loop.interleave.count", 26),
        LLVMValueAsMetadata(LLVMConstInt(c->i32, (unsigned long long)count, 0))};
    LLVMMetadataRef self = LLVMTemporaryMDNode(c->ctx, NULL, 0);
    LLVMMetadataRef ops[] = {self, LLVMMDNodeInContext2(c->ctx, prop, 2)};
    LLVMMetadataRef loop = LLVMMDNodeInContext2(c->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(self, loop); /* and frees self */
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(c->ctx, "llvm.loop", 9),
                    LLVMMetadataAsValue(c->ctx, loop));
}

LLVMBasicBlockRef cg_if_begin(Cg *c, LLVMValueRef cond)
{
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "then");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "join");
    LLVMBuildCondBr(c->b, cond, then, join);
    LLVMPositionBuilderAtEnd(c->b, then);
    return join;
}

void cg_if_end(Cg *c, LLVMBasicBlockRef join)
{
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
}

/* An innermost loop whose body computes an inline exp or tanh (f32) asks
 * the vectorizer for CG_MATH_INTERLEAVE vectors an iteration (cg_build.h):
 * the GPT's gelu 1309 -> 1026 us a call; gelu_grad 2413 -> 1419 (at 2:
 * 2843). */
void cg_nest_run(Cg *c, CgNest *n, int level, LLVMValueRef *offs)
{
    if (level == n->rank) {
        n->body(c, n, offs);
        return;
    }
    CgLoop l;
    LLVMValueRef iv = cg_loop_begin(c, n->ext[level], &l);
    LLVMValueRef next[64];
    check(n->nops <= 64);
    for (int k = 0; k < n->nops; k++)
        next[k] = LLVMBuildNSWAdd(
            c->b, offs[k], LLVMBuildNSWMul(c->b, iv, n->st[k * IR_MAX_RANK + level], ""), "");
    int math = c->inline_math;
    cg_nest_run(c, n, level + 1, next);
    if (level == n->rank - 1 && c->inline_math > math)
        cg_loop_end_interleaved(c, &l, CG_MATH_INTERLEAVE);
    else
        cg_loop_end(c, &l);
}

void cg_nest_start(Cg *c, CgNest *n, LLVMValueRef *base)
{
    LLVMValueRef zero[64];
    check(n->nops <= 64);
    for (int k = 0; k < n->nops; k++)
        zero[k] = base ? base[k] : cg_i64(c, 0);
    cg_nest_run(c, n, 0, zero);
}

CgNest *cg_nest_new(Cg *c, int rank, int nops)
{
    CgNest *n = arena_alloc(c->g->arena, sizeof *n);
    n->rank = rank;
    n->nops = nops;
    n->st = arena_alloc(c->g->arena, sizeof *n->st * (size_t)(nops * IR_MAX_RANK + 1));
    return n;
}

/* ---- memory and calls ---------------------------------------------------- */

LLVMValueRef cg_alloca(Cg *c, LLVMTypeRef t, const char *name)
{
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c->ctx);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(b, first);
    else
        LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef v = LLVMBuildAlloca(b, t, name);
    LLVMDisposeBuilder(b);
    return v;
}

LLVMValueRef cg_gep(Cg *c, DType t, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildInBoundsGEP2(c->b, cg_type(c, t), base, &idx, 1, "");
}

void cg_fn_attrs(Cg *c, LLVMValueRef fn, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        LLVMAddAttributeAtIndex(
            fn, LLVMAttributeFunctionIndex,
            LLVMCreateEnumAttribute(
                c->ctx, LLVMGetEnumAttributeKindForName(names[i], strlen(names[i])), 0));
}

LLVMValueRef cg_helper_begin(Cg *c, const char *name, LLVMTypeRef fty, unsigned noalias_mask,
                             CgSaved *saved, bool *made)
{
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    *made = fn == NULL;
    if (fn)
        return fn;
    *saved = (CgSaved){c->fn, c->batch, LLVMGetInsertBlock(c->b)};
    fn = LLVMAddFunction(c->mod, name, fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    const char *fattrs[] = {"nounwind", "noinline"};
    cg_fn_attrs(c, fn, fattrs, 2);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (unsigned i = 0; i < 32; i++)
        if (noalias_mask >> i & 1)
            LLVMAddAttributeAtIndex(fn, i + 1, LLVMCreateEnumAttribute(c->ctx, noalias, 0));
    c->fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    return fn;
}

void cg_helper_end(Cg *c, const CgSaved *saved)
{
    c->fn = saved->fn;
    c->batch = saved->batch;
    LLVMPositionBuilderAtEnd(c->b, saved->at);
}

void cg_prefer_widest(Cg *c, LLVMValueRef fn)
{
    if (c->vector_bytes < 64)
        return;
    char bits[8];
    int n = snprintf(bits, sizeof bits, "%d", c->vector_bytes * 8);
    LLVMAddAttributeAtIndex(
        fn, LLVMAttributeFunctionIndex,
        LLVMCreateStringAttribute(c->ctx, "prefer-vector-width", 19, bits, (unsigned)n));
}

static LLVMValueRef get_function(Cg *c, const char *name, LLVMTypeRef fty)
{
    LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
    if (!f) {
        f = LLVMAddFunction(c->mod, name, fty);
        LLVMAddAttributeAtIndex(
            f, LLVMAttributeFunctionIndex,
            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    }
    return f;
}

LLVMValueRef cg_call(Cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int nparams,
                     LLVMValueRef *args)
{
    LLVMTypeRef fty = LLVMFunctionType(ret, params, (unsigned)nparams, false);
    LLVMValueRef f = get_function(c, name, fty);
    return LLVMBuildCall2(c->b, fty, f, args, (unsigned)nparams, "");
}

LLVMValueRef cg_intrinsic(Cg *c, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    check(id != 0);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, &t, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, &t, 1);
    return LLVMBuildCall2(c->b, fty, f, args, (unsigned)n, "");
}

static LLVMValueRef lanes_below(Cg *c, unsigned V, int n)
{
    LLVMValueRef bits[64];
    check(V <= 64);
    for (unsigned i = 0; i < V; i++)
        bits[i] = LLVMConstInt(c->i1, (int)i < n, 0);
    return LLVMConstVector(bits, V);
}

static LLVMValueRef masked_call(Cg *c, const char *name, LLVMTypeRef vt, LLVMValueRef *args, int n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef over[] = {vt, c->ptr};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, over, 2);
    return LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->ctx, id, over, 2), fn, args, (unsigned)n,
                          "");
}

LLVMValueRef cg_load_lanes(Cg *c, LLVMTypeRef vt, LLVMValueRef p, int n)
{
    unsigned V = LLVMGetVectorSize(vt);
    if (n >= (int)V) {
        LLVMValueRef v = LLVMBuildLoad2(c->b, vt, p, "");
        LLVMSetAlignment(v, 4);
        return v;
    }
    LLVMValueRef args[] = {p, LLVMConstInt(c->i32, 4, 0), lanes_below(c, V, n), LLVMConstNull(vt)};
    return masked_call(c, "llvm.masked.load", vt, args, 4);
}

void cg_store_lanes(Cg *c, LLVMValueRef v, LLVMValueRef p, int n)
{
    LLVMTypeRef vt = LLVMTypeOf(v);
    unsigned V = LLVMGetVectorSize(vt);
    if (n >= (int)V) {
        LLVMSetAlignment(LLVMBuildStore(c->b, v, p), 4);
        return;
    }
    LLVMValueRef args[] = {v, p, LLVMConstInt(c->i32, 4, 0), lanes_below(c, V, n)};
    masked_call(c, "llvm.masked.store", vt, args, 4);
}

void cg_store_between(Cg *c, LLVMValueRef v, LLVMValueRef p, LLVMValueRef lo, LLVMValueRef hi)
{
    LLVMTypeRef vt = LLVMTypeOf(v);
    unsigned V = LLVMGetVectorSize(vt);
    LLVMValueRef idx[64];
    check(V <= 64);
    for (unsigned i = 0; i < V; i++)
        idx[i] = LLVMConstInt(c->i64, i, 0);
    LLVMTypeRef it = LLVMVectorType(c->i64, V);
    LLVMValueRef lane = LLVMConstVector(idx, V);
    LLVMValueRef in =
        LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, lane, cg_splat(c, it, lo), ""),
                     LLVMBuildICmp(c->b, LLVMIntSLT, lane, cg_splat(c, it, hi), ""), "");
    LLVMValueRef args[] = {v, p, LLVMConstInt(c->i32, 4, 0), in};
    masked_call(c, "llvm.masked.store", vt, args, 4);
}

LLVMValueRef cg_add_fn(Cg *c, DType t)
{
    const char *name = arena_printf(c->g->arena, "%s.add.%s", c->g->name, ir_dtype_name(t));
    LLVMTypeRef pt[] = {c->ptr, c->ptr, c->i64};
    CgSaved saved;
    bool made;
    LLVMValueRef fn =
        cg_helper_begin(c, name, LLVMFunctionType(c->voidt, pt, 3, false), 3u, &saved, &made);
    if (!made)
        return fn;
    cg_copy(c, t, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), true);
    LLVMBuildRetVoid(c->b);
    cg_helper_end(c, &saved);
    return fn;
}

LLVMValueRef cg_splat(Cg *c, LLVMTypeRef vt, LLVMValueRef s)
{
    LLVMValueRef one = LLVMBuildInsertElement(c->b, LLVMGetPoison(vt), s, cg_i64(c, 0), "");
    return LLVMBuildShuffleVector(c->b, one, LLVMGetPoison(vt),
                                  LLVMConstNull(LLVMVectorType(c->i32, LLVMGetVectorSize(vt))), "");
}

LLVMValueRef cg_lanes_sum(Cg *c, LLVMValueRef v)
{
    for (unsigned w = LLVMGetVectorSize(LLVMTypeOf(v)) / 2; w >= 1; w /= 2) {
        LLVMValueRef lo[32], hi[32];
        check(w <= 32);
        for (unsigned i = 0; i < w; i++) {
            lo[i] = LLVMConstInt(c->i32, i, 0);
            hi[i] = LLVMConstInt(c->i32, i + w, 0);
        }
        LLVMValueRef poison = LLVMGetPoison(LLVMTypeOf(v));
        v = LLVMBuildFAdd(c->b, LLVMBuildShuffleVector(c->b, v, poison, LLVMConstVector(lo, w), ""),
                          LLVMBuildShuffleVector(c->b, v, poison, LLVMConstVector(hi, w), ""), "");
    }
    return LLVMBuildExtractElement(c->b, v, cg_i64(c, 0), "");
}

/* A term's value from its operands' values (vectors of lanes, or
 * scalars) at acc's type ty: v, or with center (v - center)^2, or
 * (v - center) * w with w; then times w2 with w2. */
static LLVMValueRef term_value(Cg *c, LLVMTypeRef ty, LLVMValueRef v, LLVMValueRef center,
                               LLVMValueRef w, LLVMValueRef w2)
{
    LLVMTypeRef et = LLVMGetTypeKind(ty) == LLVMVectorTypeKind ? LLVMGetElementType(ty) : ty;
    LLVMTypeRef vt = LLVMTypeOf(v);
    if (et != (LLVMGetTypeKind(vt) == LLVMVectorTypeKind ? LLVMGetElementType(vt) : vt)) {
        v = LLVMBuildFPExt(c->b, v, ty, "");
        w = w ? LLVMBuildFPExt(c->b, w, ty, "") : NULL;
        w2 = w2 ? LLVMBuildFPExt(c->b, w2, ty, "") : NULL;
    }
    if (center) {
        LLVMValueRef d = LLVMBuildFSub(
            c->b, v, LLVMGetTypeKind(ty) == LLVMVectorTypeKind ? cg_splat(c, ty, center) : center,
            "");
        v = LLVMBuildFMul(c->b, d, w ? w : d, "");
    } else if (w) {
        v = LLVMBuildFMul(c->b, v, w, "");
    }
    return w2 ? LLVMBuildFMul(c->b, v, w2, "") : v;
}

/* acc += the term's value, the first n lanes of it (the others: 0 after
 * the transform) */
static void sum_lanes_into(Cg *c, LLVMValueRef acc, LLVMValueRef v, int n, LLVMValueRef center,
                           LLVMValueRef w, LLVMValueRef w2)
{
    LLVMTypeRef at = LLVMGetAllocatedType(acc);
    unsigned L = LLVMGetVectorSize(at);
    v = term_value(c, at, v, center, w, w2);
    if (center && n < (int)L) /* the masked load's zeros, not their deviations */
        v = LLVMBuildSelect(c->b, lanes_below(c, L, n), v, LLVMConstNull(at), "");
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, at, acc, ""), v, ""), acc);
}

CgSum cg_sum_new(Cg *c, LLVMTypeRef ty, int64_t run)
{
    return (CgSum){cg_alloca(c, run > 0 ? LLVMVectorType(ty, CG_SUM_LANES) : ty, "acc"), run};
}

/* the elements [0, len) of the terms one after another, each into its
 * scalar sum */
static void sums_add_scalar(Cg *c, DType t, const CgSumTerm *terms, int nterms, LLVMValueRef len)
{
    CgLoop l;
    LLVMValueRef j = cg_loop_begin(c, len, &l);
    for (int k = 0; k < nterms; k++) {
        const CgSumTerm *e = &terms[k];
        LLVMTypeRef at = LLVMGetAllocatedType(e->s->at);
        LLVMValueRef w = e->q ? cg_load(c, t, e->q, j) : NULL,
                     w2 = e->q2 ? cg_load(c, t, e->q2, j) : NULL;
        LLVMValueRef v = term_value(c, at, cg_load(c, t, e->p, j), e->center, w, w2);
        LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, cg_get(c, at, e->s->at), v, ""), e->s->at);
    }
    cg_loop_end(c, &l);
}

void cg_sums_add(Cg *c, DType t, const CgSumTerm *terms, int nterms, LLVMValueRef len)
{
    int64_t n = terms[0].s->run;
    if (n == 0) {
        sums_add_scalar(c, t, terms, nterms, len);
        return;
    }
    unsigned L = CG_SUM_LANES;
    LLVMTypeRef vt = LLVMVectorType(cg_type(c, t), L);
    int64_t whole = n / L, rest = n % L;
    for (int part = 0; part < 2; part++) {
        int64_t lanes = part ? rest : L;
        if (part ? rest == 0 : whole == 0)
            continue;
        CgLoop l;
        LLVMValueRef at = cg_i64(c, whole * L);
        if (!part)
            at = cg_mul(c, cg_loop_begin(c, cg_i64(c, whole), &l), cg_i64(c, L));
        for (int k = 0; k < nterms; k++) {
            const CgSumTerm *e = &terms[k];
            check(e->s->run == n);
            LLVMValueRef in[3] = {e->p, e->q, e->q2};
            for (int i = 0; i < 3; i++)
                if (in[i])
                    in[i] = cg_load_lanes(c, vt, cg_gep(c, t, in[i], at), (int)lanes);
            sum_lanes_into(c, e->s->at, in[0], (int)lanes, e->center, in[1], in[2]);
        }
        if (!part)
            cg_loop_end(c, &l);
    }
}

void cg_sum_add_run(Cg *c, const CgSum *s, DType t, LLVMValueRef p, LLVMValueRef center)
{
    cg_sums_add(c, t, &(CgSumTerm){.s = s, .p = p, .center = center}, 1, NULL);
}

void cg_sum_start(Cg *c, const CgSum *s, LLVMValueRef init)
{
    LLVMBuildStore(c->b, s->run > 0 ? LLVMConstNull(LLVMGetAllocatedType(s->at)) : init, s->at);
}

LLVMValueRef cg_sum_total(Cg *c, const CgSum *s)
{
    LLVMValueRef v = LLVMBuildLoad2(c->b, LLVMGetAllocatedType(s->at), s->at, "");
    return s->run > 0 ? cg_lanes_sum(c, v) : v;
}

LLVMValueRef cg_sum_row(Cg *c, DType t, const CgSum *s, LLVMValueRef p, LLVMValueRef len)
{
    cg_sum_start(c, s, cg_fconst(c, t, 0));
    cg_sums_add(c, t, &(CgSumTerm){.s = s, .p = p}, 1, len);
    return cg_sum_total(c, s);
}

LLVMValueRef cg_row_max(Cg *c, DType t, LLVMValueRef p, LLVMValueRef n)
{
    LLVMTypeRef ty = cg_type(c, t);
    int V = t == DT_F64 ? 8 : 16;
    LLVMTypeRef vt = LLVMVectorType(ty, (unsigned)V);
    LLVMValueRef acc = cg_alloca(c, vt, "maxv"), m = cg_alloca(c, ty, "max");
    LLVMValueRef ninf = cg_fconst(c, t, -INFINITY);
    LLVMValueRef splat[16];
    for (int k = 0; k < V; k++)
        splat[k] = ninf;
    LLVMBuildStore(c->b, LLVMConstVector(splat, (unsigned)V), acc);
    LLVMValueRef whole = LLVMBuildSDiv(c->b, n, cg_i64(c, V), "");
    CgLoop l;
    LLVMValueRef k = cg_loop_begin(c, whole, &l);
    LLVMValueRef a[] = {LLVMBuildLoad2(c->b, vt, acc, ""),
                        cg_load_lanes(c, vt, cg_gep(c, t, p, cg_mul(c, k, cg_i64(c, V))), V)};
    LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.maxnum", vt, a, 2), acc);
    cg_loop_end(c, &l);
    LLVMValueRef v = LLVMBuildLoad2(c->b, vt, acc, "");
    LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.vector.reduce.fmax", vt, &v, 1), m);
    LLVMValueRef done = cg_mul(c, whole, cg_i64(c, V));
    LLVMValueRef j = cg_add(c, done, cg_loop_begin(c, LLVMBuildNSWSub(c->b, n, done, ""), &l));
    LLVMValueRef b[] = {LLVMBuildLoad2(c->b, ty, m, ""), cg_load(c, t, p, j)};
    LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.maxnum", ty, b, 2), m);
    cg_loop_end(c, &l);
    return LLVMBuildLoad2(c->b, ty, m, "");
}

/* ---- scalar math --------------------------------------------------------- */

LLVMValueRef cg_libm(Cg *c, const char *name, DType t, LLVMValueRef x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%s%s", name, t == DT_F32 ? "f" : "");
    LLVMTypeRef ty = cg_type(c, t);
    return cg_call(c, buf, ty, &ty, 1, &x);
}

LLVMValueRef cg_intr1(Cg *c, const char *name, DType t, LLVMValueRef x)
{
    return cg_intrinsic(c, name, cg_type(c, t), &x, 1);
}

LLVMValueRef cg_intr2(Cg *c, const char *name, DType t, LLVMValueRef x, LLVMValueRef y)
{
    LLVMValueRef a[] = {x, y};
    return cg_intrinsic(c, name, cg_type(c, t), a, 2);
}

LLVMValueRef cg_max(Cg *c, DType t, LLVMValueRef a, LLVMValueRef b)
{
    if (t == DT_I32)
        return cg_intr2(c, "llvm.smax", t, a, b);
    return cg_intr2(c, "llvm.maxnum", t, a, b);
}

LLVMValueRef cg_min(Cg *c, DType t, LLVMValueRef a, LLVMValueRef b)
{
    if (t == DT_I32)
        return cg_intr2(c, "llvm.smin", t, a, b);
    return cg_intr2(c, "llvm.minnum", t, a, b);
}

static LLVMValueRef fma3(Cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef d)
{
    LLVMValueRef f[3] = {a, b, d};
    return cg_intrinsic(c, "llvm.fmuladd", c->f32, f, 3);
}

/* a * b + d rounded twice on every target: exp_core uses it so that
 * models whose only transcendental is exp (softmax, the losses) give the
 * same bits on aarch64, which fuses llvm.fmuladd, and on baseline x86-64,
 * which does not (tests/cross, docs/TARGETS.md). */
static LLVMValueRef madd(Cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef d)
{
    return LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, a, b, ""), d, "");
}

/* 2^k for i32 k in -126..127, built in the exponent bits. */
static LLVMValueRef pow2(Cg *c, LLVMValueRef k)
{
    LLVMValueRef bits = LLVMBuildShl(c->b, LLVMBuildAdd(c->b, k, LLVMConstInt(c->i32, 127, 0), ""),
                                     LLVMConstInt(c->i32, 23, 0), "");
    return LLVMBuildBitCast(c->b, bits, c->f32, "");
}

/* e^y for an f32 y in [-104, 88.8] (not NaN), the core of cg_exp and
 * cg_tanh: y = n ln2 + r with n rounded to an integer by adding and
 * subtracting 1.5 * 2^23, ln2 in two parts so that n ln2 is exact (its
 * high part has 16 significant bits, n at most 9) and |r| <= ln2 / 2; a
 * degree-7 Taylor polynomial for e^r (the first term left out is below
 * 5.3e-9 relative); then 2^n as two factors 2^(n/2) 2^(n - n/2), each a
 * normal float for n in -150..128, so that the first product is exact and
 * the second rounds once: results below FLT_MIN come out as correctly
 * scaled subnormals (or 0), results above FLT_MAX as +inf. Counted in
 * c->inline_math: a loop whose body builds one is latency-bound and
 * cg_nest_run interleaves it, so any later inline transcendental should
 * be built on this or count itself too. */
static LLVMValueRef exp_core(Cg *c, LLVMValueRef y)
{
    c->inline_math++;
    static const double taylor[] = {1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1, 1};
    LLVMBuilderRef b = c->b;
    LLVMValueRef shift = cg_fconst(c, DT_F32, 12582912.0);
    LLVMValueRef n = LLVMBuildFSub(
        b,
        LLVMBuildFAdd(b, LLVMBuildFMul(b, y, cg_fconst(c, DT_F32, 1.44269504088896341), ""), shift,
                      ""),
        shift, "");
    LLVMValueRef r = madd(c, n, cg_fconst(c, DT_F32, -0.693145751953125), y);
    r = madd(c, n, cg_fconst(c, DT_F32, -1.42860682030941723e-06), r);
    LLVMValueRef e = cg_fconst(c, DT_F32, taylor[0]);
    for (int i = 1; i < countof(taylor); i++)
        e = madd(c, e, r, cg_fconst(c, DT_F32, taylor[i]));
    LLVMValueRef ni = LLVMBuildFPToSI(b, n, c->i32, "");
    LLVMValueRef n1 = LLVMBuildAShr(b, ni, LLVMConstInt(c->i32, 1, 0), "");
    LLVMValueRef n2 = LLVMBuildSub(b, ni, n1, "");
    return LLVMBuildFMul(b, LLVMBuildFMul(b, e, pow2(c, n1), ""), pow2(c, n2), "");
}

/* exp without a libm call, so that the loops using it (sigmoid, softmax,
 * the losses, the LSTM and GRU gates, attention) stay free of calls and
 * vectorize: glibc's expf, a call per element, was what the text models'
 * profiles showed after tanh became inline. f32 only: x is clamped to
 * [-104, 88.8] (e^x is 0 below, +inf above, in f32) with ordered compares
 * so NaN passes through, and exp_core does the rest. Against exp in f64
 * over every float, with or without fused multiply-adds, the error is
 * below 2 ulp where the result is normal and below one subnormal step
 * under FLT_MIN (tests/codegen/math_main.c checks the bounds and
 * docs/CODEGEN.md gives the measured figures). f64 keeps libm's exp. */
LLVMValueRef cg_exp(Cg *c, DType t, LLVMValueRef x)
{
    if (t != DT_F32)
        return cg_intr1(c, "llvm.exp", t, x);
    LLVMBuilderRef b = c->b;
    LLVMValueRef hi = cg_fconst(c, t, 88.8), lo = cg_fconst(c, t, -104);
    LLVMValueRef y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, hi, ""), hi, x, "");
    y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, y, lo, ""), lo, y, "");
    LLVMValueRef e = exp_core(c, y);
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, e, "");
}

/* tanh without a libm call, so that loops using it (the LSTM and GRU
 * cells, gelu and its gradient) stay free of calls and can be vectorized:
 * glibc's tanhf (through expm1f) took a quarter of the text models'
 * training time. f32 only. Below |x| = 0.625, Eigen's rational
 * approximation (odd degree 13 over even degree 6; tanh(x) = x below
 * 4e-4); above it, 1 - 2 / (e^(2|x|) + 1) with the sign of x, e^y by
 * exp_core; |x| is capped at 9.5, where tanh is 1
 * in f32. Near +-1 the error must be absolute: gelu's 1 + tanh(u) cancels
 * it. Against tanh in f64, over every positive float (the function is
 * odd) with or without fused multiply-adds, the error is below 1.1e-7
 * absolute and 2.9e-7 relative, under 2% of the tests' f32 tolerance
 * (atol 1e-6 + rtol 1e-5 |ref|); tests/codegen/math_main.c checks it. NaN
 * passes through (the compares are unordered), +-inf give +-1. f64 keeps
 * libm's tanh. */
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
    LLVMBuilderRef b = c->b;
    LLVMValueRef ax = cg_intrinsic(c, "llvm.fabs", ty, &x, 1);
    LLVMValueRef x2 = LLVMBuildFMul(b, x, x, "");
    LLVMValueRef p = cg_fconst(c, t, num[0]), q = cg_fconst(c, t, den[0]);
    for (int i = 1; i < countof(num); i++)
        p = fma3(c, p, x2, cg_fconst(c, t, num[i]));
    for (int i = 1; i < countof(den); i++)
        q = fma3(c, q, x2, cg_fconst(c, t, den[i]));
    LLVMValueRef cap[2] = {ax, cg_fconst(c, t, 9.5)};
    LLVMValueRef y =
        LLVMBuildFMul(b, cg_fconst(c, t, 2), cg_intrinsic(c, "llvm.minnum", ty, cap, 2), "");
    LLVMValueRef e = exp_core(c, y);
    LLVMValueRef one = cg_fconst(c, t, 1);
    /* small: p x / q; big: 1 - 2 / (e + 1). One division serves both,
     * its operands chosen first: a vector loop computes both sides, and
     * two divisions were most of gelu's time (the GPT's MLP). */
    LLVMValueRef is_small = LLVMBuildFCmp(b, LLVMRealULT, ax, cg_fconst(c, t, 0.625), "");
    LLVMValueRef quo = LLVMBuildFDiv(
        b, LLVMBuildSelect(b, is_small, LLVMBuildFMul(b, p, x, ""), cg_fconst(c, t, 2), ""),
        LLVMBuildSelect(b, is_small, q, LLVMBuildFAdd(b, e, one, ""), ""), "");
    LLVMValueRef sign[2] = {LLVMBuildFSub(b, one, quo, ""), x};
    LLVMValueRef big = cg_intrinsic(c, "llvm.copysign", ty, sign, 2);

    LLVMValueRef res = LLVMBuildSelect(b, is_small, quo, big, "");
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealULT, ax, cg_fconst(c, t, 4e-4), ""), x, res,
                           "");
}

/* ---- elements: loads, stores, copies ------------------------------------- */

LLVMValueRef cg_load(Cg *c, DType t, LLVMValueRef base, LLVMValueRef i)
{
    return LLVMBuildLoad2(c->b, cg_type(c, t), cg_gep(c, t, base, i), "");
}

void cg_store(Cg *c, DType t, LLVMValueRef v, LLVMValueRef base, LLVMValueRef i)
{
    LLVMBuildStore(c->b, v, cg_gep(c, t, base, i));
}

void cg_zero(Cg *c, DType t, LLVMValueRef p, LLVMValueRef count)
{
    int64_t es = cg_dtype_size(t);
    LLVMBuildMemSet(c->b, p, LLVMConstInt(c->i8, 0, 0), cg_mul(c, count, cg_i64(c, es)),
                    (unsigned)es);
}

void cg_memcpy(Cg *c, DType t, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef count)
{
    int64_t es = cg_dtype_size(t);
    LLVMBuildMemCpy(c->b, dst, (unsigned)es, src, (unsigned)es, cg_mul(c, count, cg_i64(c, es)));
}

void cg_prefetch(Cg *c, LLVMValueRef p)
{
    LLVMValueRef args[] = {p, LLVMConstInt(c->i32, 0, 0), /* read */
                           LLVMConstInt(c->i32, 3, 0),    /* keep in all levels */
                           LLVMConstInt(c->i32, 1, 0)};   /* data */
    cg_intrinsic(c, "llvm.prefetch", c->ptr, args, 4);
}

void cg_prefetch_rows(Cg *c, DType t, const LLVMValueRef *rows, int n, LLVMValueRef len)
{
    LLVMValueRef per = cg_i64(c, 64 / cg_dtype_size(t)); /* elements a cache line */
    LLVMValueRef lines =
        LLVMBuildSDiv(c->b, cg_add(c, len, LLVMBuildSub(c->b, per, cg_i64(c, 1), "")), per, "");
    CgLoop l;
    LLVMValueRef i = cg_mul(c, cg_loop_begin(c, lines, &l), per);
    for (int r = 0; r < n; r++)
        cg_prefetch(c, cg_gep(c, t, rows[r], i));
    cg_loop_end(c, &l);
}

void cg_copy(Cg *c, DType t, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef count, bool add)
{
    if (!add) {
        cg_memcpy(c, t, dst, src, count);
        return;
    }
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, count, &l);
    cg_store(c, t, LLVMBuildFAdd(c->b, cg_load(c, t, dst, i), cg_load(c, t, src, i), ""), dst, i);
    cg_loop_end(c, &l);
}

LLVMValueRef cg_from_f64(Cg *c, DType t, LLVMValueRef v)
{
    return t == DT_F64 ? v : LLVMBuildFPTrunc(c->b, v, cg_type(c, t), "");
}

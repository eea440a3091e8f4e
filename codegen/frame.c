/*
 * The kernel frame (cg_frame.h): the signature and attributes of each
 * plan step's kernel function, where node values live, and extents and
 * strides at run time.
 *
 * Kernels are written as plain loop nests over run-time extents so that
 * LLVM's loop vectorizer can take them: every pointer argument is
 * noalias when the plan keeps the output apart from every input.
 */
#include <string.h>

#include "cg_frame.h"

/* ---- groups --------------------------------------------------------------- */

void cg_group_members(Cg *c)
{
    const Graph *g = c->g;
    size_t n = (size_t)g->nodes.n + 1;
    Node **last = arena_alloc(g->arena, n * sizeof *last);
    c->first_member = arena_alloc(g->arena, n * sizeof *c->first_member);
    c->next_member = arena_alloc(g->arena, n * sizeof *c->next_member);
    c->leaf_of = arena_alloc(g->arena, n * sizeof *c->leaf_of);
    c->used = arena_alloc(g->arena, n * sizeof *c->used);
    for (int i = 0; i < g->nodes.n; i++) {
        Node *x = g->nodes.v[i], *r = c->root[i];
        if (last[r->id])
            c->next_member[last[r->id]->id] = x;
        else
            c->first_member[r->id] = x;
        last[r->id] = x;
        c->leaf_of[i] = -1;
    }
}

/* ---- storage and extents -------------------------------------------------- */

Node **cg_group_roots(const Graph *g)
{
    Node **root = arena_alloc(g->arena, sizeof *root * (size_t)(g->nodes.n + 1));
    for (int i = g->nodes.n - 1; i >= 0; i--) {
        Node *n = g->nodes.v[i];
        Node *r = n;
        for (int guard = 0; r->fused; guard++) {
            check(guard < g->nodes.n);
            r = r->fused;
        }
        root[i] = r;
    }
    return root;
}

Node *cg_storage(const Cg *c, Node *n)
{
    n = c->root[n->id];
    for (int guard = 0; guard < 1000; guard++) {
        Node *a = c->plan->alias ? c->plan->alias[n->id] : NULL;
        if (!a || a == n)
            return n;
        n = c->root[a->id];
    }
    die("alias cycle at node %%%d", n->id);
}

LLVMValueRef cg_dim(Cg *c, Dim d)
{
    if (!d.batch)
        return cg_i64(c, d.n);
    if (d.n == 1)
        return c->batch;
    return LLVMBuildNSWMul(c->b, cg_i64(c, d.n), c->batch, "");
}

LLVMValueRef cg_numel(Cg *c, const Shape *s)
{
    int64_t k = 1;
    for (int i = 0; i < s->rank; i++)
        k *= s->d[i].n;
    LLVMValueRef v = k != 1 ? cg_i64(c, k) : NULL;
    for (int i = 0; i < s->rank; i++) /* every batch dim: [B, B] has batch^2 elements */
        if (s->d[i].batch)
            v = v ? LLVMBuildNSWMul(c->b, v, c->batch, "") : c->batch;
    return v ? v : cg_i64(c, 1);
}

/* Contiguous element strides of a shape. */
void cg_strides(Cg *c, const Shape *s, LLVMValueRef *st)
{
    LLVMValueRef acc = cg_i64(c, 1);
    for (int d = s->rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc = LLVMBuildNSWMul(c->b, acc, cg_dim(c, s->d[d]), "");
    }
}

/* ---- kernel functions ---------------------------------------------------- */

static bool overlaps(const Cg *c, Node *a, Node *b)
{
    const MemPlan *p = c->plan;
    int64_t oa = p->offset[a->id], ob = p->offset[b->id];
    if (a == b)
        return true;
    if (oa < 0 || ob < 0)
        return false;
    return oa < ob + p->bytes[b->id] && ob < oa + p->bytes[a->id];
}

LLVMValueRef cg_kernel_begin(Cg *c, Node *step, Node **ins, int nin)
{
    /* a step with scratch memory takes its address next (cg_kernel_scratch),
     * one that draws random numbers the step's key last (cg_step_draws) */
    bool scratch = c->plan->scratch_offset[step->id] >= 0, draws = cg_step_draws(c, step);
    LLVMTypeRef *pt = arena_alloc(c->g->arena, sizeof *pt * (size_t)(nin + 4));
    for (int i = 0; i <= nin; i++)
        pt[i] = c->ptr;
    pt[nin + 1] = c->i64;
    pt[nin + 2] = c->ptr;
    pt[nin + 2 + scratch] = c->i64;
    char *name = arena_printf(c->g->arena, "%s.%sk%d.%s", c->g->name, c->tag, step->id,
                              op_info[step->op].text);
    LLVMValueRef fn = LLVMAddFunction(
        c->mod, name, LLVMFunctionType(c->voidt, pt, (unsigned)nin + 2 + scratch + draws, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    /* not nosync: the GEMM and cut convolutions wait for the thread pool */
    const char *fattrs[] = {"nounwind", "nofree", "willreturn", "noinline"};
    cg_fn_attrs(c, fn, fattrs, countof(fattrs));
    /* Distinct buffers: the output never shares bytes with an input, so
     * every pointer may be noalias (inputs are only read). An input that
     * the step overwrites in place (memplan.c) starts where the output
     * does: cg_kernel_unalias reads it through the output's pointer, so
     * the two still need no run-time overlap test, which fails for equal
     * pointers and left such loops scalar (GPT's gelu, a seventh of its
     * training time). Any other overlap keeps every pointer as it is. */
    Node *out = cg_storage(c, step);
    bool apart = true;
    c->kin_same = arena_alloc(c->g->arena, (size_t)nin + 1);
    for (int i = 0; i < nin; i++) {
        Node *in = cg_storage(c, ins[i]);
        if (!overlaps(c, out, in))
            continue;
        int64_t oo = c->plan->offset[out->id], oi = c->plan->offset[in->id];
        c->kin_same[i] = out == in || (oo >= 0 && oo == oi);
        apart &= c->kin_same[i];
    }
    if (!apart)
        memset(c->kin_same, 0, (size_t)nin + 1);
    if (apart) {
        unsigned na = LLVMGetEnumAttributeKindForName("noalias", 7);
        for (int i = 0; i <= nin; i++)
            LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(c->ctx, na, 0));
    }
    if (scratch) /* a slot of its own, live during this step only */
        LLVMAddAttributeAtIndex(
            fn, (unsigned)nin + 3,
            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    c->fn = fn;
    c->batch = LLVMGetParam(fn, (unsigned)nin + 1);
    c->rng_key = draws ? LLVMGetParam(fn, (unsigned)nin + 2 + scratch) : NULL;
    c->kin = ins;
    c->nkin = nin;
    c->kin_fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    return fn;
}

void cg_kernel_unalias(Cg *c, LLVMValueRef fn)
{
    if (fn != c->kin_fn) /* not begun by cg_kernel_begin */
        return;
    for (int i = 0; i < c->nkin; i++)
        if (c->kin_same[i])
            LLVMReplaceAllUsesWith(LLVMGetParam(fn, (unsigned)i + 1), LLVMGetParam(fn, 0));
}

void cg_kernel_end(Cg *c)
{
    LLVMBuildRetVoid(c->b);
}

LLVMValueRef cg_kernel_scratch(Cg *c, int nin)
{
    check(LLVMCountParams(c->fn) >= (unsigned)nin + 3);
    return LLVMGetParam(c->fn, (unsigned)nin + 2);
}

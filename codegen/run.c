/*
 * The body of a run function (cg.h): the plan's steps in order, each a
 * call of its kernel with the addresses of its buffers, and loops, which
 * run their body's steps once per iteration inside the run function.
 *
 * A loop (docs/CODEGEN.md, Loops) lives in two places: its own slot,
 * holding its results one after the other (MemPlan.loop_part), and its
 * scratch (CgLoopScratch): the body's arena, a second set of the carried
 * values and one buffer per scanned slice. Iteration t reads the carried
 * values from one set and writes the next ones into the other, so a body
 * output may be any body input (a swap of two carried values included)
 * without a copy overwriting what a later copy reads; the sets are
 * arranged so that the last iteration writes into the results. Scanned
 * slices are copied into their buffers before the body runs (a slice of
 * [B, T, F] at t is B rows apart), stacked slices and saved values out of
 * the body's buffers after it. The trip count is a constant, so LLVM sees
 * a counted loop around the body's kernel calls; the kernels themselves
 * are emitted once, whatever the trip count.
 */
#include <string.h>

#include "cg.h"

LLVMValueRef cg_addr(Cg *c, const CgFrame *f, Node *n)
{
    const Layout *l = c->layout;
    Node *s = cg_storage(c, n);
    int64_t off;
    switch (s->op) {
    case OP_INPUT: {
        int k = f->input_slot[s->id];
        check(k >= 0);
        LLVMValueRef idx = cg_i64(c, k);
        LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->ptr, f->inputs, &idx, 1, "");
        return LLVMBuildLoad2(c->b, c->ptr, p, s->name);
    }
    case OP_PARAM: off = l->params_offset + l->param_offset[s->id]; break;
    case OP_STATE: off = l->states_offset + l->state_offset[s->id]; break;
    case OP_CONST: {
        return cg_private_const(c, cg_fconst(c, s->dtype, attr_value(s)), "const", false);
    }
    default: {
        int64_t at = cg_arena_offset(c, n);
        check(at >= 0);
        return cg_byte_gep(c, f->arena, at);
    }
    }
    return cg_byte_gep(c, f->m, off);
}

int64_t cg_arena_offset(Cg *c, Node *n)
{
    Node *s = cg_storage(c, n);
    switch (s->op) {
    case OP_INPUT:
    case OP_PARAM:
    case OP_STATE:
    case OP_CONST: return -1;
    default:
        /* a loop's result sits at its part of the loop's slot */
        return n->op == OP_LOOP_RESULT ? c->plan->offset[n->id] : c->plan->offset[s->id];
    }
}

LLVMValueRef cg_byte_gep(Cg *c, LLVMValueRef base, int64_t off)
{
    LLVMValueRef idx = cg_i64(c, off);
    return LLVMBuildInBoundsGEP2(c->b, c->i8, base, &idx, 1, "");
}

/* Copies slice idx of axis of a tensor (t, s) at x from or into the
 * contiguous slice buffer buf: `outer` runs of `inner` elements, `dim`
 * runs apart. */
static void copy_slice(Cg *c, DType t, const Shape *s, int axis, LLVMValueRef idx, LLVMValueRef x,
                       LLVMValueRef buf, bool into_slice)
{
    Shape outer = {.rank = axis}, inner = {.rank = s->rank - axis - 1};
    for (int i = 0; i < axis; i++)
        outer.d[i] = s->d[i];
    for (int i = axis + 1; i < s->rank; i++)
        inner.d[i - axis - 1] = s->d[i];
    LLVMValueRef ni = cg_numel(c, &inner), dim = cg_i64(c, s->d[axis].n);
    CgLoop l;
    LLVMValueRef o = cg_loop_begin(c, cg_numel(c, &outer), &l);
    LLVMValueRef at = cg_mul(c, cg_add(c, cg_mul(c, o, dim), idx), ni);
    LLVMValueRef xs = cg_gep(c, t, x, at), bs = cg_gep(c, t, buf, cg_mul(c, o, ni));
    if (into_slice)
        cg_copy(c, t, bs, xs, ni, false);
    else
        cg_copy(c, t, xs, bs, ni, false);
    cg_loop_end(c, &l);
}

/* The index start + step * t of scan k. */
static LLVMValueRef scan_index(Cg *c, const Node *l, int k, LLVMValueRef t)
{
    return cg_add(c, cg_i64(c, attr_scan_start(l).v[k].n),
                  cg_mul(c, cg_i64(c, attr_scan_step(l).v[k].n), t));
}

/* The per-graph state of c that kernels read: the graph, its plan and
 * its fusion groups. A body is emitted with its own. */
typedef struct {
    const Graph *g;
    const MemPlan *plan;
    Node **root, **first_member, **next_member;
    int *leaf_of;
    bool *used;
} GraphState;

static GraphState enter(Cg *c, const Graph *g, const MemPlan *plan)
{
    GraphState old = {c->g,           c->plan,    c->root, c->first_member, c->next_member,
                      c->leaf_of,     c->used};
    c->g = g;
    c->plan = plan;
    c->root = cg_group_roots(g);
    cg_group_members(c);
    return old;
}

static void leave(Cg *c, GraphState s)
{
    c->g = s.g;
    c->plan = s.plan;
    c->root = s.root;
    c->first_member = s.first_member;
    c->next_member = s.next_member;
    c->leaf_of = s.leaf_of;
    c->used = s.used;
}

static void emit_loop(Cg *c, const CgFrame *f, Node *l)
{
    LLVMValueRef fn = c->fn;
    const Graph *body = l->body;
    LoopParts p = ir_loop_parts(l);
    CgLoopScratch ls = cg_loop_scratch(c->g, l);
    int64_t *part = c->plan->loop_part[l->id];
    LLVMValueRef own = cg_addr(c, f, l);
    LLVMValueRef scratch = cg_byte_gep(c, f->arena, c->plan->scratch_offset[l->id]);
    int nin;
    Node **bin = ir_body_inputs(body, &nin);

    /* set (t & 1) holds the carried values iteration t reads; the last
     * iteration writes set (trips & 1), the results */
    LLVMValueRef *set[2];
    for (int s = 0; s < 2; s++)
        set[s] = arena_alloc(c->g->arena, sizeof *set[s] * ((size_t)p.carried + 1));
    int res = (int)(p.trips & 1);
    for (int k = 0; k < p.carried; k++) {
        set[res][k] = cg_byte_gep(c, own, part[k]);
        set[!res][k] = cg_byte_gep(c, scratch, ls.carried[k]);
        Node *x = l->in[k];
        cg_copy(c, x->dtype, set[0][k], cg_addr(c, f, x), cg_numel(c, &x->shape), false);
    }
    for (int j = 0; j < p.stacked; j++) {
        Node *x = l->in[p.carried + j];
        cg_copy(c, x->dtype, cg_byte_gep(c, own, part[p.carried + j]), cg_addr(c, f, x),
                cg_numel(c, &x->shape), false);
    }
    /* the body's inputs array; the unchanged values' addresses are fixed */
    LLVMTypeRef arr = LLVMArrayType2(c->ptr, (uint64_t)(nin ? nin : 1));
    LLVMValueRef inputs = cg_alloca(c, arr, "body.inputs");
    int *slot = arena_alloc(c->g->arena, sizeof *slot * ((size_t)body->nodes.n + 1));
    for (int i = 0; i < body->nodes.n; i++)
        slot[i] = -1;
    for (int k = 0; k < nin; k++)
        slot[bin[k]->id] = k;
    LLVMValueRef *inaddr = arena_alloc(c->g->arena, sizeof *inaddr * ((size_t)nin + 1));
    for (int k = 0; k < nin; k++) {
        LLVMValueRef idx = cg_i64(c, k);
        inaddr[k] = LLVMBuildInBoundsGEP2(c->b, c->ptr, inputs, &idx, 1, "");
    }
    int inv0 = p.carried + p.stacked + p.scanned;
    for (int j = 0; j < p.invariant; j++)
        LLVMBuildStore(c->b, cg_addr(c, f, l->in[inv0 + j]), inaddr[p.carried + p.scanned + j]);
    for (int s = 0; s < p.scanned; s++)
        LLVMBuildStore(c->b, cg_byte_gep(c, scratch, ls.slice[s]), inaddr[p.carried + s]);

    CgLoop loop;
    LLVMValueRef t = cg_loop_begin(c, cg_i64(c, p.trips), &loop);
    LLVMValueRef odd = LLVMBuildTrunc(c->b, t, c->i1, "odd");
    LLVMValueRef *next = arena_alloc(c->g->arena, sizeof *next * ((size_t)p.carried + 1));
    for (int k = 0; k < p.carried; k++) {
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, odd, set[1][k], set[0][k], ""), inaddr[k]);
        next[k] = LLVMBuildSelect(c->b, odd, set[0][k], set[1][k], "");
    }
    for (int s = 0; s < p.scanned; s++) {
        Node *x = l->in[p.carried + p.stacked + s];
        copy_slice(c, x->dtype, &x->shape, (int)attr_scan_axis(l).v[p.stacked + s].n,
                   scan_index(c, l, p.stacked + s, t), cg_addr(c, f, x),
                   cg_byte_gep(c, scratch, ls.slice[s]), true);
    }

    GraphState outer = enter(c, body, ls.body);
    CgFrame bf = {.m = f->m, .arena = scratch, .inputs = inputs, .input_slot = slot,
                  .key = f->key};
    cg_run_steps(c, &bf);
    LLVMValueRef *out = arena_alloc(c->g->arena, sizeof *out * ((size_t)body->outputs.n + 1));
    for (int i = 0; i < body->outputs.n; i++)
        out[i] = cg_addr(c, &bf, body->outputs.v[i].node);
    leave(c, outer);
    c->fn = fn;

    for (int j = 0; j < p.stacked; j++) {
        Node *x = l->in[p.carried + j];
        copy_slice(c, x->dtype, &x->shape, (int)attr_scan_axis(l).v[j].n, scan_index(c, l, j, t),
                   cg_byte_gep(c, own, part[p.carried + j]), out[p.carried + j], false);
    }
    for (int k = p.carried + p.stacked; k < body->outputs.n; k++) {
        if (part[k] < 0)
            continue; /* a saved value this function does not read */
        const Node *y = body->outputs.v[k].node;
        LLVMValueRef n = cg_numel(c, &y->shape);
        LLVMValueRef dst = cg_gep(c, y->dtype, cg_byte_gep(c, own, part[k]), cg_mul(c, t, n));
        cg_copy(c, y->dtype, dst, out[k], n, false);
    }
    for (int k = 0; k < p.carried; k++) {
        const Node *y = body->outputs.v[k].node;
        cg_copy(c, y->dtype, next[k], out[k], cg_numel(c, &y->shape), false);
    }
    cg_loop_end(c, &loop);
}

void cg_parts_begin(Cg *c, CgParts *p, CgFrame *f, int limit, bool fails)
{
    *p = (CgParts){.host = c->fn,
                   .batch = c->batch,
                   .undo = c->undo_states,
                   .hf = f,
                   .at = LLVMGetInsertBlock(c->b),
                   .limit = limit,
                   .fails = fails};
}

/* Returns from the current part; the builder back at the host's end. */
static void part_close(Cg *c, CgParts *p)
{
    if (!p->cur)
        return;
    LLVMBuildRet(c->b, LLVMConstInt(c->i32, 0, 0));
    /* calls with constant offsets: nothing for LLVM's passes to improve,
     * and fast instruction selection (docs/CODEGEN.md, Parts); a loop's
     * copies of slices are worth optimizing */
    if (!p->loops)
        LLVMAddAttributeAtIndex(
            p->cur, LLVMAttributeFunctionIndex,
            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("optnone", 7), 0));
    p->cur = NULL;
    c->fn = p->host;
    c->batch = p->batch;
    c->undo_states = p->undo;
    LLVMPositionBuilderAtEnd(c->b, p->at);
}

/* A new part, called from the host at p->at; the builder in its entry. */
static void part_open(Cg *c, CgParts *p)
{
    LLVMTypeRef pt[] = {c->ptr, c->i64, c->ptr, c->ptr, c->ptr};
    LLVMTypeRef fty = LLVMFunctionType(c->i32, pt, 5, false);
    size_t len;
    const char *host = LLVMGetValueName2(p->host, &len);
    LLVMValueRef fn =
        LLVMAddFunction(c->mod, arena_printf(c->g->arena, "%.*s.part", (int)len, host), fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    const char *fattrs[] = {"nounwind", "noinline"};
    cg_fn_attrs(c, fn, fattrs, countof(fattrs));

    LLVMPositionBuilderAtEnd(c->b, p->at);
    LLVMValueRef args[] = {p->hf->m, p->batch, p->hf->inputs, p->hf->arena,
                           p->undo ? p->undo : LLVMConstNull(c->ptr)};
    LLVMValueRef rc = LLVMBuildCall2(c->b, fty, fn, args, 5, "");
    if (p->fails) {
        LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(c->ctx, p->host, "part.failed");
        LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->ctx, p->host, "part.ok");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, rc, LLVMConstInt(c->i32, 0, 0), ""),
                        fail, ok);
        LLVMPositionBuilderAtEnd(c->b, fail);
        LLVMBuildRet(c->b, rc);
        p->at = ok;
    }

    p->cur = fn;
    p->units = 0;
    p->loops = false;
    p->key = NULL;
    p->pf = (CgFrame){.m = LLVMGetParam(fn, 0),
                      .inputs = LLVMGetParam(fn, 2),
                      .arena = LLVMGetParam(fn, 3),
                      .input_slot = p->hf->input_slot,
                      .key = &p->key,
                      .kernels = p->hf->kernels};
    c->fn = fn;
    c->batch = LLVMGetParam(fn, 1);
    c->undo_states = p->undo ? LLVMGetParam(fn, 4) : NULL;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
}

CgFrame *cg_part_next(Cg *c, CgParts *p, int w)
{
    if (!p->limit)
        return p->hf;
    if (p->cur && p->units + w > p->limit && p->units > 0)
        part_close(c, p);
    if (!p->cur)
        part_open(c, p);
    p->units += w;
    return &p->pf;
}

void cg_parts_end(Cg *c, CgParts *p)
{
    part_close(c, p);
}

/* Plan step i in frame f: its kernel's call, or a loop. */
static void run_step(Cg *c, CgFrame *f, int i)
{
    Node *step = c->plan->steps[i];
    if (step->op == OP_LOOP) {
        emit_loop(c, f, step);
        return;
    }
    const Graph *g = c->g;
    CgKernel k;
    if (f->kernels) {
        k = f->kernels[i];
    } else {
        LLVMValueRef fn = c->fn, batch = c->batch;
        LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
        k = cg_kernel(c, step);
        c->fn = fn;
        c->batch = batch;
        LLVMPositionBuilderAtEnd(c->b, here);
        if (k.fn) {
            size_t len;
            const char *kname = LLVMGetValueName2(k.fn, &len);
            vec_push(g->arena, &c->kernels, arena_strndup(g->arena, kname, len));
        }
    }
    LLVMValueRef kfn = k.fn;
    Node **ins = k.in;
    int nin = k.nin;
    if (!kfn)
        return;
    LLVMValueRef *args = arena_alloc(g->arena, sizeof *args * (size_t)(nin + 4));
    args[0] = cg_addr(c, f, step);
    for (int j = 0; j < nin; j++)
        args[j + 1] = cg_addr(c, f, ins[j]);
    args[nin + 1] = c->batch;
    int64_t scratch = c->plan->scratch_offset[step->id];
    if (scratch >= 0)
        args[nin + 2] = cg_byte_gep(c, f->arena, scratch);
    int nargs = nin + 2 + (scratch >= 0);
    if (cg_step_draws(c, step)) {
        if (!*f->key)
            *f->key = cg_step_key(c, f->m);
        args[nargs++] = *f->key;
    }
    cg_call_step(c, step, kfn, ins, nin, args, nargs);
}

/* A step's weight in a part: a loop's body runs inline. */
static int step_weight(const Node *step)
{
    return step->op == OP_LOOP ? 1 + step->body->nodes.n : 1;
}

/* After step i of c->ready_plan in frame f, the reports of the gradients
 * final there (grads.c's cg_grads_ready_begin found them): a call of
 * dlrt_model_grad_ready behind a test of the instance's grad_ready. */
static void report_grads(Cg *c, CgFrame *f, int i)
{
    const Train *t = c->train;
    for (int k = 0; k < t->params.n; k++) {
        if (c->ready_step[k] != i)
            continue;
        Node *p = t->params.v[k];
        int64_t es = cg_dtype_size(p->dtype);
        LLVMValueRef on = LLVMBuildICmp(
            c->b, LLVMIntNE,
            LLVMBuildLoad2(c->b, c->i32, cg_instance_field(c, f->m, CG_INST_grad_ready), ""),
            LLVMConstInt(c->i32, 0, 0), "grad.hook");
        LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "grad.ready");
        LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "grad.next");
        LLVMBuildCondBr(c->b, on, call, next);
        LLVMPositionBuilderAtEnd(c->b, call);
        cg_rt_model_grad_ready(c, f->m, c->layout->param_offset[p->id] / es, c->ready_numel[k],
                               cg_addr(c, f, t->grads.v[k]));
        LLVMBuildBr(c->b, next);
        LLVMPositionBuilderAtEnd(c->b, next);
    }
}

void cg_run_steps(Cg *c, CgFrame *f)
{
    int total = 0;
    for (int i = 0; i < c->plan->nsteps; i++)
        total += step_weight(c->plan->steps[i]);
    CgParts p;
    cg_parts_begin(c, &p, f, total > c->part_size ? c->part_size : 0, false);
    for (int i = 0; i < c->plan->nsteps; i++) {
        Node *step = c->plan->steps[i];
        CgFrame *pf = cg_part_next(c, &p, step_weight(step));
        p.loops |= step->op == OP_LOOP;
        run_step(c, pf, i);
        if (c->ready_plan == c->plan)
            report_grads(c, pf, i);
    }
    cg_parts_end(c, &p);
}

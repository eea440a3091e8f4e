/*
 * The model's constant dlrt_model_info (runtime/dlrt_model.h), returned
 * by NAME_info(): sizes and offsets of the instance layout, a
 * dlrt_tensor_info for every input, output, parameter, state and
 * optimizer state tensor, and the generic entry points.
 */
#include <string.h>

#include "cg.h"

static LLVMValueRef cstring(Cg *c, const char *s)
{
    LLVMValueRef init = LLVMConstStringInContext2(c->ctx, s, strlen(s), false);
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), ".str");
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    return gv;
}

static int dlrt_dtype_of(DType t)
{
    return t == DT_F32 ? 0 : t == DT_F64 ? 1 : 2;
}

static LLVMValueRef tensor_info(Cg *c, const CgAbiTypes *t, const char *name, const Node *n,
                                int64_t offset)
{
    const Graph *g = c->g;
    LLVMValueRef dims[8];
    uint32_t batch_dims = 0;
    for (int i = 0; i < 8; i++) {
        int64_t v = 0;
        if (i < n->shape.rank) {
            Dim d = n->shape.d[i];
            v = d.n * (d.batch ? g->max_batch : 1);
            if (d.batch)
                batch_dims |= 1u << i;
        }
        dims[i] = cg_i64(c, v);
    }
    LLVMValueRef dv[] = {
        cstring(c, name), LLVMConstInt(c->i32, (unsigned)dlrt_dtype_of(n->dtype), 0),
        LLVMConstInt(c->i32, (unsigned)n->shape.rank, 0), LLVMConstArray2(c->i64, dims, 8)};
    LLVMValueRef desc = LLVMConstNamedStruct(t->desc, dv, countof(dv));
    int init = 0, nargs = 0, frozen = 0;
    LLVMValueRef args[4];
    for (int i = 0; i < 4; i++)
        args[i] = LLVMConstReal(c->f64, 0);
    if (n->op == OP_PARAM || n->op == OP_STATE) {
        init = ir_builtin_lookup(init_info, INIT_COUNT, ir_attr_str(n, "init"));
        check(init >= 0);
        const Attr *a = ir_attr(n, "args");
        if (a) {
            check(a->floats.n <= 4);
            nargs = a->floats.n;
            for (int i = 0; i < nargs; i++)
                args[i] = LLVMConstReal(c->f64, a->floats.v[i]);
        }
        if (n->op == OP_PARAM)
            frozen = ir_attr_bool(n, "frozen");
    }
    LLVMValueRef tv[] = {desc,
                         LLVMConstInt(c->i32, batch_dims, 0),
                         LLVMConstInt(c->size_t_, (unsigned long long)offset, 0),
                         LLVMConstInt(c->i32, (unsigned)init, 0),
                         LLVMConstInt(c->i32, (unsigned)nargs, 0),
                         LLVMConstArray2(c->f64, args, 4),
                         LLVMConstInt(c->i32, (unsigned)frozen, 0)};
    return LLVMConstNamedStruct(t->tinfo, tv, countof(tv));
}

static LLVMValueRef const_array_global(Cg *c, LLVMTypeRef elt, LLVMValueRef *v, int n,
                                       const char *name)
{
    if (n == 0)
        return LLVMConstNull(c->ptr);
    LLVMValueRef init = LLVMConstArray2(elt, v, (uint64_t)n);
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    return gv;
}

static DType param_dtype(const Graph *g)
{
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->op == OP_PARAM)
            return g->nodes.v[i]->dtype;
    return DT_F32;
}

static LLVMValueRef size_c(Cg *c, int64_t v)
{
    return LLVMConstInt(c->size_t_, (unsigned long long)v, 0);
}

static LLVMValueRef i32_c(Cg *c, int64_t v)
{
    return LLVMConstInt(c->i32, (unsigned long long)v, 1);
}

static LLVMValueRef fn_or_null(Cg *c, LLVMValueRef f)
{
    return f ? f : LLVMConstNull(c->ptr);
}

void cg_build_info(Cg *c, LLVMValueRef gv, const CgEntries *e)
{
    const Graph *g = c->g;
    const Layout *l = c->layout;
    CgAbiTypes t = cg_abi_types(c);
    Arena *a = g->arena;
    int n = g->nodes.n;
    LLVMValueRef *ins = arena_alloc(a, sizeof *ins * (size_t)(n + 1));
    LLVMValueRef *params = arena_alloc(a, sizeof *params * (size_t)(n + 1));
    LLVMValueRef *states = arena_alloc(a, sizeof *states * (size_t)(n + 1));
    LLVMValueRef *outs = arena_alloc(a, sizeof *outs * (size_t)(g->outputs.n + 1));
    LLVMValueRef *fwd = arena_alloc(a, sizeof *fwd * (size_t)(n + 1));
    int nin = 0, nparams = 0, nstates = 0, nfwd = 0, ninputs;
    bool *need = cg_needed_inputs(g, &ninputs);
    for (int i = 0; i < n; i++) {
        const Node *x = g->nodes.v[i];
        if (x->op == OP_INPUT) {
            if (need[nin])
                fwd[nfwd++] = i32_c(c, nin);
            ins[nin++] = tensor_info(c, &t, x->name, x, 0);
        } else if (x->op == OP_PARAM) {
            params[nparams++] =
                tensor_info(c, &t, x->name, x, l->params_offset + l->param_offset[i]);
        } else if (x->op == OP_STATE) {
            states[nstates++] =
                tensor_info(c, &t, x->name, x, l->states_offset + l->state_offset[i]);
        }
    }
    for (int i = 0; i < g->outputs.n; i++)
        outs[i] = tensor_info(c, &t, g->outputs.v[i].name, g->outputs.v[i].node, 0);
    /* optimizer state: slot-major, each trainable parameter's in order */
    const OptPlan *opt = c->opt;
    int nopt = 0;
    LLVMValueRef *opts = NULL;
    if (opt) {
        const Train *tr = g->train;
        opts = arena_alloc(a, sizeof *opts * (size_t)(opt->nslots * tr->params.n + 1));
        for (int k = 0; k < opt->nslots; k++)
            for (int i = 0; i < tr->params.n; i++) {
                Node *p = tr->params.v[i];
                Node z = *p;
                z.op = OP_STATE;
                z.attrs = (AttrList){0};
                ir_attrs_set(a, &z.attrs, (Attr){.name = "init", .kind = AK_STR, .s = "zeros"});
                int64_t off = l->opt_offset + l->opt_state_offset[p->id] + k * l->opt_slot_bytes;
                opts[nopt++] = tensor_info(
                    c, &t, arena_printf(a, "opt.%s.%s", opt->slot[k], p->name), &z, off);
            }
    }
    LLVMValueRef f[] = {
        cstring(c, g->name),
        i32_c(c, g->batch ? g->max_batch : 0),
        i32_c(c, dlrt_dtype_of(param_dtype(g))),
        cg_i64(c, l->num_param_scalars),
        size_c(c, l->state_bytes),
        i32_c(c, nin),
        i32_c(c, g->outputs.n),
        i32_c(c, nparams),
        i32_c(c, nstates),
        const_array_global(c, t.tinfo, ins, nin, "info.inputs"),
        const_array_global(c, t.tinfo, outs, g->outputs.n, "info.outputs"),
        const_array_global(c, t.tinfo, params, nparams, "info.params"),
        const_array_global(c, t.tinfo, states, nstates, "info.states"),
        i32_c(c, nfwd),
        const_array_global(c, c->i32, fwd, nfwd, "info.forward_inputs"),
        size_c(c, l->params_offset),
        size_c(c, l->params_bytes),
        size_c(c, l->grads_offset),
        size_c(c, l->grads_bytes),
        size_c(c, l->opt_offset),
        size_c(c, l->opt_bytes),
        size_c(c, l->states_offset),
        size_c(c, l->states_bytes),
        size_c(c, l->arena_offset),
        size_c(c, l->arena_bytes),
        e->forward,
        fn_or_null(c, e->compute_gradients),
        fn_or_null(c, e->evaluate),
        fn_or_null(c, e->apply_gradients),
        LLVMConstReal(c->f64, opt ? opt->base_lr : 0),
        i32_c(c, nopt),
        const_array_global(c, t.tinfo, opts, nopt, "info.opt"),
    };
    LLVMSetInitializer(gv, LLVMConstNamedStruct(t.info, f, countof(f)));
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    if (LLVMABISizeOfType(c->td, t.inst) > (unsigned long long)l->header_bytes)
        die("dlrt_instance does not fit the %lld-byte header", (long long)l->header_bytes);
}

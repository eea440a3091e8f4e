/*
 * The model's constant dlrt_model_info (runtime/dlrt_model.h), returned
 * by NAME_info(): sizes and offsets of the instance layout, a
 * dlrt_tensor_info for every input, output, parameter, state and
 * optimizer state tensor, and the generic entry points. Fields are set by
 * their index from runtime/dlrt_abi.def (CG_INFO_name, ...), and a field
 * left unset there is caught (cg_abi_fields).
 */
#include <string.h>

#include "cg.h"

static LLVMValueRef cstring(Cg *c, const char *s)
{
    return cg_private_const(c, LLVMConstStringInContext2(c->ctx, s, strlen(s), false), ".str",
                            true);
}

/* The dlrt_tensor_info of tensor name, node n's shape and type (max batch
 * in batch dimensions), its initializer when n is a param or state, at
 * offset in the instance. */
static LLVMValueRef tensor_info(Cg *c, const CgAbiTypes *t, const char *name, const Node *n,
                                int64_t offset)
{
    const Graph *g = c->g;
    LLVMValueRef dims[DLRT_MAX_RANK];
    uint32_t batch_dims = 0;
    for (int i = 0; i < DLRT_MAX_RANK; i++) {
        int64_t v = 0;
        if (i < n->shape.rank) {
            Dim d = n->shape.d[i];
            v = ir_dim_max(g, d);
            if (d.batch)
                batch_dims |= 1u << i;
        }
        dims[i] = cg_i64(c, v);
    }
    LLVMValueRef dv[CG_DESC_COUNT] = {0};
    dv[CG_DESC_name] = cstring(c, name);
    dv[CG_DESC_dtype] = LLVMConstInt(c->i32, (unsigned)cg_dlrt_dtype(n->dtype), 0);
    dv[CG_DESC_rank] = LLVMConstInt(c->i32, (unsigned)n->shape.rank, 0);
    dv[CG_DESC_shape] = LLVMConstArray2(c->i64, dims, DLRT_MAX_RANK);
    int init = 0, nargs = 0, frozen = 0;
    LLVMValueRef args[4];
    for (int i = 0; i < 4; i++)
        args[i] = LLVMConstReal(c->f64, 0);
    if (n->op == OP_PARAM || n->op == OP_STATE) {
        init = ir_builtin_lookup(init_info, INIT_COUNT, attr_init(n));
        check(init >= 0);
        if (attr_has_args(n)) {
            AttrFloats a = attr_args(n);
            check(a.n <= 4);
            nargs = a.n;
            for (int i = 0; i < nargs; i++)
                args[i] = LLVMConstReal(c->f64, a.v[i]);
        }
        if (n->op == OP_PARAM)
            frozen = attr_frozen(n);
    }
    LLVMValueRef tv[CG_TINFO_COUNT] = {0};
    tv[CG_TINFO_desc] = LLVMConstNamedStruct(t->desc, dv, cg_abi_fields(dv, CG_DESC_COUNT));
    tv[CG_TINFO_batch_dims] = LLVMConstInt(c->i32, batch_dims, 0);
    tv[CG_TINFO_offset] = LLVMConstInt(c->size_t_, (unsigned long long)offset, 0);
    tv[CG_TINFO_init] = LLVMConstInt(c->i32, (unsigned)init, 0);
    tv[CG_TINFO_ninit_args] = LLVMConstInt(c->i32, (unsigned)nargs, 0);
    tv[CG_TINFO_init_args] = LLVMConstArray2(c->f64, args, 4);
    tv[CG_TINFO_frozen] = LLVMConstInt(c->i32, (unsigned)frozen, 0);
    return LLVMConstNamedStruct(t->tinfo, tv, cg_abi_fields(tv, CG_TINFO_COUNT));
}

static LLVMValueRef const_array_global(Cg *c, LLVMTypeRef elt, LLVMValueRef *v, int n,
                                       const char *name)
{
    if (n == 0)
        return LLVMConstNull(c->ptr);
    return cg_private_const(c, LLVMConstArray2(elt, v, (uint64_t)n), name, false);
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

/* The tensor lists of the info, each an array of dlrt_tensor_info
 * constants, and the indices of the inputs forward needs (i32). */
typedef struct {
    LLVMValueRef *v;
    int n;
} List;

typedef struct {
    List ins, outs, params, states, opt, fwd;
} Lists;

static LLVMValueRef *list_new(Arena *a, int n)
{
    return arena_alloc(a, sizeof(LLVMValueRef) * (size_t)(n + 1));
}

static void graph_tensors(Cg *c, const CgAbiTypes *t, Lists *ls)
{
    const Graph *g = c->g;
    const Layout *l = c->layout;
    int n = g->nodes.n, ninputs;
    ls->ins.v = list_new(g->arena, n);
    ls->params.v = list_new(g->arena, n);
    ls->states.v = list_new(g->arena, n);
    ls->outs.v = list_new(g->arena, g->outputs.n);
    ls->fwd.v = list_new(g->arena, n);
    bool *need = cg_needed_inputs(g, &ninputs);
    for (int i = 0; i < n; i++) {
        const Node *x = g->nodes.v[i];
        if (x->op == OP_INPUT) {
            if (need[ls->ins.n])
                ls->fwd.v[ls->fwd.n++] = i32_c(c, ls->ins.n);
            ls->ins.v[ls->ins.n++] = tensor_info(c, t, x->name, x, 0);
        } else if (x->op == OP_PARAM) {
            ls->params.v[ls->params.n++] =
                tensor_info(c, t, x->name, x, l->params_offset + l->param_offset[i]);
        } else if (x->op == OP_STATE) {
            ls->states.v[ls->states.n++] =
                tensor_info(c, t, x->name, x, l->states_offset + l->state_offset[i]);
        }
    }
    for (int i = 0; i < g->outputs.n; i++)
        ls->outs.v[ls->outs.n++] = tensor_info(c, t, g->outputs.v[i].name, g->outputs.v[i].node, 0);
}

/* Optimizer state: each objective's in turn, slot-major, each of its
 * parameters in order: "opt.SLOT.PARAM" of a single unnamed objective,
 * "opt.OBJ.SLOT.PARAM" of objective OBJ. */
static void opt_tensors(Cg *c, const CgAbiTypes *t, const CgPlans *plans, List *ls)
{
    const Graph *g = c->g;
    const Layout *l = c->layout;
    Arena *a = g->arena;
    int nobj = plans->train ? plans->nobj : 0, total = 0;
    for (int j = 0; j < nobj; j++)
        total += plans->obj[j].opt->nslots * plans->obj[j].train->params.n;
    ls->v = list_new(a, total);
    for (int j = 0; j < nobj; j++) {
        const OptPlan *opt = plans->obj[j].opt;
        const Train *tr = plans->obj[j].train;
        const CgObjLayout *ol = &l->obj[j];
        const char *obj = tr->name ? arena_printf(a, "%s.", tr->name) : "";
        for (int k = 0; k < opt->nslots; k++)
            for (int i = 0; i < tr->params.n; i++) {
                Node *p = tr->params.v[i];
                Node z = *p;
                z.op = OP_STATE;
                z.attrs = (AttrList){0};
                ir_attrs_set(a, &z.attrs, (Attr){.name = "init", .kind = AK_STR, .s = "zeros"});
                int64_t off = l->opt_offset + ol->opt_state_offset[p->id] + k * ol->opt_slot_bytes;
                ls->v[ls->n++] = tensor_info(
                    c, t, arena_printf(a, "opt.%s%s.%s", obj, opt->slot[k], p->name), &z, off);
            }
    }
}

/* reduce_on_plateau's constants, a dlrt_plateau (all doubles), or NULL */
static LLVMValueRef plateau(Cg *c, const OptPlan *o)
{
    if (!o || o->sched != SCHED_REDUCE_ON_PLATEAU)
        return LLVMConstNull(c->ptr);
    double v[CG_PLATEAU_COUNT] = {0};
    v[CG_PLATEAU_mode] = o->s_mode;
    v[CG_PLATEAU_factor] = o->p_factor;
    v[CG_PLATEAU_patience] = (double)o->p_patience;
    v[CG_PLATEAU_threshold] = o->p_threshold;
    v[CG_PLATEAU_threshold_mode] = o->p_abs;
    v[CG_PLATEAU_cooldown] = (double)o->p_cooldown;
    v[CG_PLATEAU_min_lr] = o->s_min_lr;
    v[CG_PLATEAU_eps] = o->p_eps;
    LLVMValueRef k[CG_PLATEAU_COUNT];
    for (int i = 0; i < CG_PLATEAU_COUNT; i++)
        k[i] = LLVMConstReal(c->f64, v[i]);
    return cg_private_const(c, LLVMConstArray2(c->f64, k, CG_PLATEAU_COUNT), "info.plateau", false);
}

/* The dlrt_objective_info array: each objective's name, inputs, generic
 * entry points, base rate, plateau constants and counters; NULL without
 * training code. The first's plateau constants are first (plateau0), the
 * pointer the model info holds too. */
static LLVMValueRef objectives(Cg *c, const CgAbiTypes *t, const CgPlans *plans,
                               const CgEntries *e, LLVMValueRef plateau0)
{
    const Graph *g = c->g;
    int nobj = plans->train ? plans->nobj : 0;
    if (!nobj)
        return LLVMConstNull(c->ptr);
    LLVMValueRef *v = list_new(g->arena, nobj);
    for (int k = 0; k < nobj; k++) {
        const CgObjective *o = &plans->obj[k];
        int ninputs, n = 0;
        bool *need = cg_objective_inputs(g, o->train, &ninputs);
        LLVMValueRef *idx = list_new(g->arena, ninputs);
        for (int i = 0; i < ninputs; i++)
            if (need[i])
                idx[n++] = i32_c(c, i);
        LLVMValueRef f[CG_OBJ_COUNT] = {0};
        f[CG_OBJ_name] = o->train->name ? cstring(c, o->train->name) : LLVMConstNull(c->ptr);
        f[CG_OBJ_num_inputs] = i32_c(c, n);
        f[CG_OBJ_inputs] = const_array_global(c, c->i32, idx, n, "info.objective.inputs");
        f[CG_OBJ_compute_gradients] = e[k].compute_gradients;
        f[CG_OBJ_evaluate] = e[k].evaluate;
        f[CG_OBJ_apply_gradients] = e[k].apply_gradients;
        f[CG_OBJ_lr] = LLVMConstReal(c->f64, o->opt->base_lr);
        f[CG_OBJ_plateau] = k == 0 ? plateau0 : plateau(c, o->opt);
        f[CG_OBJ_counters] = size_c(c, c->layout->obj[k].counters);
        v[k] = LLVMConstNamedStruct(t->obj, f, cg_abi_fields(f, CG_OBJ_COUNT));
    }
    return const_array_global(c, t->obj, v, nobj, "info.objectives");
}

void cg_build_info(Cg *c, LLVMValueRef gv, const CgPlans *plans, const CgEntries *e)
{
    const Graph *g = c->g;
    const Layout *l = c->layout;
    CgAbiTypes t = cg_abi_types(c);
    Lists ls = {0};
    graph_tensors(c, &t, &ls);
    opt_tensors(c, &t, plans, &ls.opt);
    LLVMValueRef f[CG_INFO_COUNT] = {0};
    f[CG_INFO_name] = cstring(c, g->name);
    f[CG_INFO_max_batch] = i32_c(c, g->batch ? g->max_batch : 0);
    f[CG_INFO_param_dtype] = i32_c(c, cg_dlrt_dtype(param_dtype(g)));
    f[CG_INFO_num_param_scalars] = cg_i64(c, l->num_param_scalars);
    f[CG_INFO_state_bytes] = size_c(c, l->state_bytes);
    f[CG_INFO_num_inputs] = i32_c(c, ls.ins.n);
    f[CG_INFO_num_outputs] = i32_c(c, ls.outs.n);
    f[CG_INFO_num_params] = i32_c(c, ls.params.n);
    f[CG_INFO_num_states] = i32_c(c, ls.states.n);
    f[CG_INFO_inputs] = const_array_global(c, t.tinfo, ls.ins.v, ls.ins.n, "info.inputs");
    f[CG_INFO_outputs] = const_array_global(c, t.tinfo, ls.outs.v, ls.outs.n, "info.outputs");
    f[CG_INFO_params] = const_array_global(c, t.tinfo, ls.params.v, ls.params.n, "info.params");
    f[CG_INFO_states] = const_array_global(c, t.tinfo, ls.states.v, ls.states.n, "info.states");
    f[CG_INFO_num_forward_inputs] = i32_c(c, ls.fwd.n);
    f[CG_INFO_forward_inputs] =
        const_array_global(c, c->i32, ls.fwd.v, ls.fwd.n, "info.forward_inputs");
    f[CG_INFO_params_offset] = size_c(c, l->params_offset);
    f[CG_INFO_params_bytes] = size_c(c, l->params_bytes);
    f[CG_INFO_grads_offset] = size_c(c, l->grads_offset);
    f[CG_INFO_grads_bytes] = size_c(c, l->grads_bytes);
    f[CG_INFO_opt_offset] = size_c(c, l->opt_offset);
    f[CG_INFO_opt_bytes] = size_c(c, l->opt_bytes);
    f[CG_INFO_states_offset] = size_c(c, l->states_offset);
    f[CG_INFO_states_bytes] = size_c(c, l->states_bytes);
    f[CG_INFO_arena_offset] = size_c(c, l->arena_offset);
    f[CG_INFO_arena_bytes] = size_c(c, l->arena_bytes);
    f[CG_INFO_forward] = e->forward;
    f[CG_INFO_compute_gradients] = fn_or_null(c, e->compute_gradients);
    f[CG_INFO_evaluate] = fn_or_null(c, e->evaluate);
    f[CG_INFO_apply_gradients] = fn_or_null(c, e->apply_gradients);
    f[CG_INFO_lr] = LLVMConstReal(c->f64, c->opt ? c->opt->base_lr : 0);
    f[CG_INFO_num_opt] = i32_c(c, ls.opt.n);
    f[CG_INFO_opt] = const_array_global(c, t.tinfo, ls.opt.v, ls.opt.n, "info.opt");
    f[CG_INFO_loss_dtype] = i32_c(c, cg_dlrt_dtype(c->train ? c->train->loss->dtype : DT_F32));
    f[CG_INFO_plateau] = plateau(c, c->opt);
    f[CG_INFO_num_objectives] = i32_c(c, plans->train ? plans->nobj : 0);
    f[CG_INFO_objectives] = objectives(c, &t, plans, e, f[CG_INFO_plateau]);
    LLVMSetInitializer(gv, LLVMConstNamedStruct(t.info, f, cg_abi_fields(f, CG_INFO_COUNT)));
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    if (LLVMABISizeOfType(c->td, t.inst) > (unsigned long long)l->header_bytes)
        die("dlrt_instance does not fit the %lld-byte header", (long long)l->header_bytes);
}

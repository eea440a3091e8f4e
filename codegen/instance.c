/*
 * The instance block layout (runtime/dlrt_model.h): header, flat
 * parameters, gradients, optimizer state, model state and the arena, each
 * starting on a 64-byte boundary. Parameters are packed in node order (the
 * declaration order, frozen ones included) with no padding between them,
 * so NAME_params is one array of the parameter type; states likewise.
 */
#include "cg.h"

enum { CG_ALIGN = 64 };

/* sizeof(dlrt_instance) is 64 bytes on 64-bit targets and 52 on 32-bit
 * ones; info.c checks the target's size against this. */
enum { CG_HEADER_BYTES = 64 };

static int64_t align_up(int64_t v)
{
    return (v + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
}

static int64_t elem_bytes(DType t)
{
    return t == DT_F64 ? 8 : ir_dtype_is_half(t) ? 2 : 4;
}

static int64_t max_numel(const Graph *g, const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= ir_dim_max(g, s->d[i]);
    return n;
}

Layout *cg_layout(const Graph *g, const CgPlans *plans)
{
    Arena *a = g->arena;
    Layout *l = arena_alloc(a, sizeof *l);
    int n = g->nodes.n;
    size_t nn = (size_t)(n > 0 ? n : 1);
    l->param_offset = arena_alloc(a, sizeof(int64_t) * nn);
    l->state_offset = arena_alloc(a, sizeof(int64_t) * nn);
    bool training = plans->train != NULL;
    int64_t params = 0, states = 0;
    for (int i = 0; i < n; i++) {
        const Node *x = g->nodes.v[i];
        l->param_offset[i] = l->state_offset[i] = -1;
        int64_t bytes = max_numel(g, &x->shape) * elem_bytes(x->dtype);
        if (x->op == OP_PARAM) {
            l->param_offset[i] = params;
            params += bytes;
            l->num_param_scalars += max_numel(g, &x->shape);
        } else if (x->op == OP_STATE) {
            l->state_offset[i] = states;
            states += bytes;
        }
    }
    /* each objective's slots in turn, each slot-major over its parameters
     * (a single objective's parameters are every trainable one) */
    int64_t opt = 0;
    int nobj = training ? plans->nobj : 0;
    l->obj = nobj ? arena_alloc(a, sizeof *l->obj * (size_t)nobj) : NULL;
    for (int k = 0; k < nobj; k++) {
        const Train *t = plans->obj[k].train;
        CgObjLayout *ol = &l->obj[k];
        ol->opt_state_offset = arena_alloc(a, sizeof(int64_t) * nn);
        for (int i = 0; i < n; i++)
            ol->opt_state_offset[i] = -1;
        int64_t slot = 0;
        for (int i = 0; i < t->params.n; i++) {
            const Node *p = t->params.v[i];
            ol->opt_state_offset[p->id] = opt + slot;
            slot += max_numel(g, &p->shape) * elem_bytes(p->dtype);
        }
        ol->opt_slot_bytes = slot;
        opt += slot * plans->obj[k].opt->nslots;
    }
    l->header_bytes = CG_HEADER_BYTES;
    l->params_offset = CG_HEADER_BYTES;
    l->params_bytes = params;
    l->grads_offset = align_up(l->params_offset + params);
    l->grads_bytes = training ? params : 0;
    l->opt_offset = align_up(l->grads_offset + l->grads_bytes);
    l->opt_bytes = opt;
    /* the second and later objectives' counters: a header-sized record each */
    int64_t at = align_up(l->opt_offset + l->opt_bytes);
    for (int k = 1; k < nobj; k++) {
        l->obj[k].counters = at;
        at += CG_HEADER_BYTES;
    }
    l->states_offset = at;
    l->states_bytes = states;
    l->arena_offset = align_up(l->states_offset + states);
    const MemPlan *fns[] = {plans->forward, plans->evaluate, plans->train};
    for (int i = 0; i < countof(fns); i++)
        if (fns[i] && fns[i]->arena_bytes > l->arena_bytes)
            l->arena_bytes = fns[i]->arena_bytes;
    for (int k = 0; k < nobj; k++) {
        const MemPlan *p[] = {plans->obj[k].evaluate, plans->obj[k].plan};
        for (int i = 0; i < 2; i++)
            if (p[i]->arena_bytes > l->arena_bytes)
                l->arena_bytes = p[i]->arena_bytes;
    }
    l->state_bytes = align_up(l->arena_offset + l->arena_bytes);
    return l;
}

/* By input index (node order), whether one of roots depends on it. */
static bool *inputs_of(const Graph *g, Node *const *roots, int nroots, int *ninputs)
{
    int n = g->nodes.n, k = 0;
    bool *live = arena_alloc(g->arena, (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < nroots; i++)
        live[roots[i]->id] = true;
    for (int i = n - 1; i >= 0; i--) {
        const Node *x = g->nodes.v[i];
        if (live[i])
            for (int j = 0; j < x->nin; j++)
                live[x->in[j]->id] = true;
        k += x->op == OP_INPUT;
    }
    bool *need = arena_alloc(g->arena, (size_t)(k > 0 ? k : 1));
    k = 0;
    for (int i = 0; i < n; i++)
        if (g->nodes.v[i]->op == OP_INPUT)
            need[k++] = live[i];
    *ninputs = k;
    return need;
}

/* The inputs the outputs depend on, by input index (node order): only these
 * are arguments of NAME_forward. */
bool *cg_needed_inputs(const Graph *g, int *ninputs)
{
    Node **roots = arena_alloc(g->arena, sizeof *roots * (size_t)(g->outputs.n + 1));
    for (int i = 0; i < g->outputs.n; i++)
        roots[i] = g->outputs.v[i].node;
    return inputs_of(g, roots, g->outputs.n, ninputs);
}

bool *cg_objective_inputs(const Graph *g, const Train *t, int *ninputs)
{
    bool *need = inputs_of(g, (Node *const *)&t->loss, 1, ninputs);
    if (!t->name) /* a single unnamed objective's functions take every input */
        for (int i = 0; i < *ninputs; i++)
            need[i] = true;
    return need;
}

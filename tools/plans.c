/*
 * The memory plans of the generated functions, shared by the dlc driver
 * and the whole-compiler fuzzer (tests/fuzz/fuzz_compile.c).
 */
#include "plans.h"

CgPlans dlc_plan_memory(Arena *a, Graph *g, bool inference_only)
{
    CgPlans plans = {0};
    Node **roots = arena_alloc(a, sizeof *roots * (size_t)(g->outputs.n + 1));
    for (int i = 0; i < g->outputs.n; i++)
        roots[i] = g->outputs.v[i].node;
    plans.forward = pass_memplan(g, roots, g->outputs.n, cg_scratch_bytes);
    int nobj = inference_only ? 0 : ir_train_count(g);
    plans.nobj = nobj;
    plans.obj = arena_alloc(a, sizeof *plans.obj * (size_t)(nobj + 1));
    /* a training step also runs every op with running statistics
     * (batch_norm) off the loss's path: like a PyTorch module in training
     * mode, it updates them whether or not its output reaches the loss;
     * a named objective's, only those its loss reaches */
    int nbn = 0;
    for (int i = 0; i < g->nodes.n; i++)
        nbn += (op_info[g->nodes.v[i]->op].flags & OPF_RUNSTATS) != 0;
    bool *reach = arena_alloc(a, (size_t)g->nodes.n + 1);
    int k = 0;
    for (Train *t = nobj ? g->train : NULL; t; t = t->next, k++) {
        CgObjective *o = &plans.obj[k];
        o->train = t;
        o->evaluate = pass_memplan(g, &t->loss, 1, cg_scratch_bytes);
        Node **troots = arena_alloc(a, sizeof *troots * (size_t)(t->grads.n + 1 + nbn));
        int nr = 0;
        troots[nr++] = t->loss;
        for (int i = 0; i < t->grads.n; i++)
            troots[nr++] = t->grads.v[i];
        for (int i = 0; i < g->nodes.n; i++)
            reach[i] = !t->name || i == t->loss->id;
        for (int i = g->nodes.n - 1; i >= 0; i--)
            for (int j = 0; reach[i] && j < g->nodes.v[i]->nin; j++)
                reach[g->nodes.v[i]->in[j]->id] = true;
        for (int i = 0; i < g->nodes.n; i++) {
            Node *n = g->nodes.v[i];
            if (reach[i] && (op_info[n->op].flags & OPF_RUNSTATS))
                troots[nr++] = n->fused ? n->fused : n;
        }
        o->plan = pass_memplan(g, troots, nr, cg_scratch_bytes);
        o->opt = pass_optim(g, t);
    }
    if (nobj) {
        plans.evaluate = plans.obj[0].evaluate;
        plans.train = plans.obj[0].plan;
        plans.opt = plans.obj[0].opt;
    }
    return plans;
}

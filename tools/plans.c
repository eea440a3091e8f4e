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
    if (g->train && !inference_only) {
        Train *t = g->train;
        plans.evaluate = pass_memplan(g, &t->loss, 1, cg_scratch_bytes);
        /* the step also runs every op with running statistics (batch_norm)
         * off the loss's path: like a PyTorch module in training mode, it
         * updates them whether or not its output reaches the loss */
        int nbn = 0;
        for (int i = 0; i < g->nodes.n; i++)
            nbn += (op_info[g->nodes.v[i]->op].flags & OPF_RUNSTATS) != 0;
        Node **troots = arena_alloc(a, sizeof *troots * (size_t)(t->grads.n + 1 + nbn));
        int nr = 0;
        troots[nr++] = t->loss;
        for (int i = 0; i < t->grads.n; i++)
            troots[nr++] = t->grads.v[i];
        for (int i = 0; i < g->nodes.n; i++) {
            Node *n = g->nodes.v[i];
            if (op_info[n->op].flags & OPF_RUNSTATS)
                troots[nr++] = n->fused ? n->fused : n;
        }
        plans.train = pass_memplan(g, troots, nr, cg_scratch_bytes);
        plans.opt = pass_optim(g);
    }
    return plans;
}

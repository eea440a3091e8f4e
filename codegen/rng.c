/*
 * Training-mode random numbers (cg_rng.h).
 *
 * Training-mode dropout keeps element i of dropout node D when
 * u(key, D, i) >= p and scales it by 1 / (1 - p); dropout_grad(D, dy)
 * recomputes the same mask instead of saving it. Stochastic pooling draws
 * u(key, P, i) for output element i of pool node P in the same way
 * (pool.c). u is a counter-based uniform: splitmix64's finalizer of
 * a per-node key plus (i + 1) times the golden-ratio increment, its top 24
 * (f32) or 53 (f64) bits. The step's key (cg_step_key) mixes the
 * instance's seed with its step counter, so the draws depend on (seed,
 * step, site, element) only: reproducible, the same across resumes, the
 * same for every compute_gradients call within a step, and the same
 * element of a batch sees the same draw whatever the batch size. Member or
 * root, a dropout value's index is the group output's flat index (members
 * have the root's exact shape). A node's site is its ordinal among the
 * graph's drawing nodes, not its id, so that the draws do not change with
 * the number of other nodes: a loop kept or unrolled (--unroll-loops), a
 * pass that adds or removes nodes elsewhere.
 */
#include <math.h>

#include "cg_rng.h"

LLVMValueRef cg_mix64(Cg *c, LLVMValueRef z)
{
    LLVMBuilderRef b = c->b;
    static const uint64_t mul[2] = {0xbf58476d1ce4e5b9u, 0x94d049bb133111ebu};
    static const int shift[3] = {30, 27, 31};
    for (int k = 0; k < 3; k++) {
        z = LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(c, shift[k]), ""), "");
        if (k < 2)
            z = LLVMBuildMul(b, z, LLVMConstInt(c->i64, mul[k], 0), "");
    }
    return z;
}

static const uint64_t golden = 0x9e3779b97f4a7c15u;

/* The ordinal of n among the drawing nodes of c's graph (loop bodies have
 * none: codegen refuses them there). */
static uint64_t draw_site(Cg *c, const Node *n)
{
    const Graph *g = c->g;
    check(n->id < g->nodes.n && g->nodes.v[n->id] == n && op_info[n->op].flags & OPF_RANDOM);
    if (!c->draw_site) {
        c->draw_site = arena_alloc(g->arena, sizeof *c->draw_site * ((size_t)g->nodes.n + 1));
        int k = 0;
        for (int i = 0; i < g->nodes.n; i++)
            c->draw_site[i] = op_info[g->nodes.v[i]->op].flags & OPF_RANDOM ? k++ : -1;
    }
    return (uint64_t)c->draw_site[n->id];
}

LLVMValueRef cg_uniform(Cg *c, const Node *site, LLVMValueRef index, DType t)
{
    check(c->rng_key);
    LLVMBuilderRef b = c->b;
    LLVMValueRef node_key = cg_mix64(
        c, LLVMBuildXor(b, c->rng_key, LLVMConstInt(c->i64, draw_site(c, site) * golden, 0), ""));
    LLVMValueRef ctr = LLVMBuildMul(b, LLVMBuildAdd(b, index, cg_i64(c, 1), ""),
                                    LLVMConstInt(c->i64, golden, 0), "");
    LLVMValueRef h = cg_mix64(c, LLVMBuildAdd(b, node_key, ctr, ""));
    int bits = t == DT_F32 ? 24 : 53;
    return LLVMBuildFMul(
        b, LLVMBuildUIToFP(b, LLVMBuildLShr(b, h, cg_i64(c, 64 - bits), ""), cg_type(c, t), ""),
        cg_fconst(c, t, ldexp(1.0, -bits)), "");
}

bool cg_step_draws(const Cg *c, const Node *step)
{
    if (!c->training)
        return false;
    CG_FOR_MEMBERS(c, step, x)
    {
        if (op_info[x->op].flags & (OPF_RANDOM | OPF_REPLAY))
            return true;
    }
    return false;
}

LLVMValueRef cg_step_key(Cg *c, LLVMValueRef m)
{
    LLVMValueRef seed = LLVMBuildLoad2(c->b, c->i64, cg_instance_field(c, m, CG_INST_seed), "");
    LLVMValueRef step = LLVMBuildLoad2(c->b, c->i64, cg_objective_field(c, m, CG_INST_step), "");
    /* the second and later objectives draw their own masks: the key of
     * step t differs from every other objective's */
    if (c->obj > 0)
        step = LLVMBuildXor(c->b, step, cg_i64(c, (int64_t)c->obj << 48), "");
    return cg_mix64(c, LLVMBuildXor(c->b, seed, cg_mix64(c, step), ""));
}

/*
 * Dispatch (cg_kernels.h): the family whose kernel computes each plan
 * step, by the op's kind in the op table. The kinds map onto the families
 * of passes/ one to one, except that a matrix product heads an
 * elementwise group (its epilogue) and broadcast_to, a layout op, is the
 * identity of an elementwise group with broadcasting strides.
 *
 * Also what the plan of a function needs that codegen cannot emit: the
 * replaying ops (OPF_REPLAY) outside the training function, and
 * training-mode ops (OPF_MODE) without a training kernel (OPF_TRAIN_CODE).
 */
#include "cg_kernels.h"

typedef LLVMValueRef (*KernelFn)(Cg *c, Node *step);

static const KernelFn by_kind[K_COUNT] = {
    [K_SOURCE] = NULL, /* buffers of the instance or the caller, no code */
    [K_ELTWISE] = cg_kernel_eltwise,
    [K_GEMM] = cg_kernel_eltwise,
    [K_ROWWISE] = cg_kernel_reduce,
    [K_REDUCE] = cg_kernel_reduce,
    [K_LOSS] = cg_kernel_loss,
    [K_SHAPE] = cg_kernel_layout,
    [K_SELECT] = cg_kernel_select,
    [K_CONV] = cg_kernel_conv,
    [K_POOL] = cg_kernel_pool,
    [K_NORM] = cg_kernel_norm,
    [K_SEQ] = cg_kernel_seq,
};

static KernelFn kernel_fn(Op op)
{
    if (op == OP_BROADCAST_TO)
        return cg_kernel_eltwise;
    return by_kind[op_info[op].kind];
}

/* Loops run inline in the run function (run.c) and their results are
 * views of the loop's slot: no kernel function, but native code. */
bool cg_op_has_kernel(Op op)
{
    return op < OP_COUNT && (kernel_fn(op) != NULL || op_info[op].kind == K_LOOP);
}

CgKernel cg_kernel(Cg *c, Node *step)
{
    /* views share their input's bytes and need no code */
    if (((step->op == OP_RESHAPE || step->op == OP_FLATTEN) && cg_storage(c, step) != step) ||
        step->op == OP_LOOP_RESULT)
        return (CgKernel){NULL, step->in, step->nin};
    KernelFn fn = kernel_fn(step->op);
    if (!fn)
        die("codegen: %s is not supported by native code generation yet", op_info[step->op].text);
    LLVMValueRef k = fn(c, step);
    cg_kernel_unalias(c, k);
    return (CgKernel){k, c->kin, c->nkin};
}

/* Ops a loop's body cannot hold: those that draw random numbers (every
 * iteration would draw the same) or update running statistics. */
static const char *body_unsupported(const Graph *b)
{
    for (int i = 0; i < b->nodes.n; i++) {
        const Node *n = b->nodes.v[i];
        if (op_info[n->op].flags & (OPF_RANDOM | OPF_REPLAY | OPF_RUNSTATS))
            return arena_printf(b->arena, "native code for '%s' inside a loop is not supported",
                                op_info[n->op].text);
        if (n->body) {
            const char *bad = body_unsupported(n->body);
            if (bad)
                return bad;
        }
    }
    return NULL;
}

const char *cg_plan_unsupported(const Graph *g, const MemPlan *p, bool training)
{
    bool *is_step = arena_alloc(g->arena, (size_t)g->nodes.n + 1);
    for (int s = 0; s < p->nsteps; s++)
        is_step[p->steps[s]->id] = true;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i], *r = n;
        while (r->fused)
            r = r->fused;
        if (!is_step[r->id])
            continue;
        unsigned flags = op_info[n->op].flags;
        if (n->op == OP_LOOP) {
            const char *bad = body_unsupported(n->body);
            if (bad)
                return bad;
        }
        if (flags & OPF_REPLAY && !training)
            return arena_printf(g->arena,
                                "native code for '%s' outside the training step is not supported",
                                op_info[n->op].text);
        if (training && flags & OPF_MODE && !(flags & OPF_TRAIN_CODE))
            return arena_printf(g->arena,
                                "training code for '%s' is not supported yet (compile with "
                                "--inference-only)",
                                op_info[n->op].text);
    }
    return NULL;
}

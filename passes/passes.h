/*
 * Passes over the graph IR. Each pass is one file with one entry point.
 * A pass that can find mistakes in the user's model reports them through
 * diag and returns false; the others cannot fail.
 */
#ifndef DLC_PASSES_H
#define DLC_PASSES_H

#include "ir.h"

/* Infers the element type and shape of every node, checks every op's
 * rules, and canonicalizes attributes that depend on shapes (negative
 * axes, omitted slice bounds, one-int pool/conv sizes expanded per
 * spatial dimension). Reports each mistake at the node's source position;
 * nodes downstream of an error are skipped, not reported again. */
bool pass_shape(Graph *g);

/* Inserts a cast to f32 between every f16 or bf16 value and each op but
 * cast that reads it (passes/widen.c); pass_shape runs it first. */
void pass_widen(Graph *g);

/* Reverse-mode autodiff (passes/autodiff.c): when the graph has a train
 * statement, appends the gradient of the loss with respect to every
 * trainable parameter as ordinary nodes and records them in Train.params
 * and Train.grads (ir.h), then re-runs pass_shape. Needs a graph that
 * passed pass_shape; does nothing when there is no train statement or the
 * gradients are already there. Every differentiable op (OPF_DIFF) has a
 * rule; at the op it reports the cases a rule does not cover yet: concat
 * along the batch dimension, conv_transpose2d with output_padding >=
 * stride, embedding ids with the batch size in more than one dimension,
 * recurrent ops over a batch-sized sequence length. */
bool pass_autodiff(Graph *g);

/* Optimizer lowering (passes/optim.c): what NAME_apply_gradients does,
 * from the train statement (docs/TRAINING.md has the formulas). Every
 * trainable scalar keeps nslots values of optimizer state, slot[k] being
 * its name (PyTorch's: exp_avg, momentum_buffer, ...). NULL without a
 * train statement. */
enum { OPT_MAX_SLOTS = 2 };

typedef struct {
    Optim optim;
    int nslots;
    const char *slot[OPT_MAX_SLOTS];
    double lr, weight_decay, eps, momentum, alpha, beta1, beta2;
    double dampening; /* sgd */
    double l1;        /* l1 * sign(p) added to the gradient */
    bool nesterov;
    bool decoupled; /* adamw: weight decay on the parameter itself */
    bool has_clip;
    double clip_norm;
    bool has_clip_value;
    double clip_value;
    Sched sched;
    double base_lr;  /* the instance's initial base rate: lr, or cyclic's max_lr */
    double s_gamma;  /* step, exponential, multistep, cyclic's exp_range */
    double s_min_lr; /* cosine, warmup_cosine, cosine_restarts, plateau; cyclic's base_lr */
    int64_t s_every; /* step's every; cyclic's step_size; cosine_restarts' T_0 */
    int64_t s_total, s_warmup;
    int s_mode;              /* cyclic: 0 triangular, 1 triangular2, 2 exp_range;
                                one_cycle: 0 cos, 1 linear; plateau: 0 min, 1 max */
    const Dim *s_milestones; /* multistep */
    int s_nmilestones;
    double s_start, s_end;            /* linear_warmup's factors */
    double s_pct, s_div, s_final_div; /* one_cycle */
    bool s_three_phase;
    int64_t s_mult;   /* cosine_restarts' T_mult */
    double s_d_model; /* inverse_sqrt */
    /* reduce_on_plateau (its min_lr is s_min_lr, its mode s_mode) */
    double p_factor, p_threshold, p_eps;
    int64_t p_patience, p_cooldown;
    bool p_abs; /* threshold_mode = "abs" */
} OptPlan;

OptPlan *pass_optim(const Graph *g, const Train *t); /* objective t's recipe */

/* Constant folding, common-subexpression elimination and dead-code
 * elimination: nodes that neither an output nor the training loss needs are
 * removed, except sources (inputs, params and states are the model's
 * interface and state). Keeps results identical up to float rounding. */
void pass_simplify(Graph *g);

/* Marks fusion groups by setting Node.fused: chains of elementwise and
 * broadcast ops become one loop nest computed by the chain's last node; a
 * bias add and activation after a matmul (or conv) run as the product's
 * epilogue. Only nodes with a single user are fused into that user. */
void pass_fuse(Graph *g);

/* Where every value of one generated function lives. Built for the nodes
 * that `roots` need, in a linear schedule; sizes at the maximum batch. */
typedef struct {
    int nsteps;
    Node **steps;            /* materialized nodes (Node.fused == NULL, not
                                sources or consts) in execution order */
    int64_t *offset;         /* by node id: byte offset in the arena, or -1 when
                                the value is not in the arena */
    Node **alias;            /* by node id: the node whose storage this one
                                shares (a reshape view, an in-place update), or
                                the node itself */
    int64_t *bytes;          /* by node id: bytes at the maximum batch */
    int64_t *scratch_offset; /* by node id of a step: arena offset of its
                                kernel's scratch buffer (im2col, gates),
                                live during that step only; -1 for none */
    int64_t *scratch_bytes;  /* by node id: the ScratchFn's bytes for a step */
    int64_t **loop_part;     /* by node id of a loop: per result index, the byte
                                offset of that result in the loop's storage, or
                                -1 for a saved result this function does not
                                read (docs/IR.md, Loops); NULL for other nodes */
    int64_t arena_bytes;     /* what this function needs, 64-byte aligned slots */
    int64_t naive_bytes;     /* every intermediate in a slot of its own */
    int64_t peak_bytes;      /* lower bound: most bytes live at one step */
} MemPlan;

/* Bytes of scratch memory the kernel of step n needs at the maximum batch
 * (e.g. an im2col buffer); 0 for most ops. The code generator knows, since
 * the sizes follow from the paths its kernels take (cg_scratch_bytes); the
 * driver hands it in. The planner gives each a slot live only during its
 * step. */
typedef int64_t (*ScratchFn)(const Graph *g, const Node *n);

/* scratch NULL: no kernel needs scratch. */
MemPlan *pass_memplan(Graph *g, Node *const *roots, int nroots, ScratchFn scratch);

/* How the code generator reads a plan (passes/memplan.c explains why):
 * - A loop's step owns one slot holding its results one after the other
 *   (loop_part); a loop_result is a view of its part: offset[n] is the
 *   part's own offset.
 * - A step n with alias[n] == n and offset[n] >= 0 owns a fresh slot.
 * - A view (OP_RESHAPE or OP_FLATTEN, see pass_memplan_is_view) computes
 *   nothing: alias[n] is its storage, either an arena owner (offset[n] ==
 *   offset[alias[n]]) or an input, param or state (offset -1: read that
 *   source's pointer). A reshape or flatten with alias[n] == n is a copy.
 * - Any other step with alias[n] != n writes in place over alias[n]'s slot:
 *   an all-elementwise kernel whose output element i depends only on
 *   element i of the input it overwrites.
 * Roots live to the end of the function, so their slots are never reused. */
bool pass_memplan_is_view(const MemPlan *p, const Node *n);

/* What `dlc --stats` prints for one function: the number of steps, the
 * arena size, the naive sum and the lower bound with their ratios, and
 * the five largest buffers. */
void pass_memplan_print_stats(FILE *f, const Graph *g, const MemPlan *p, const char *function_name);

#endif

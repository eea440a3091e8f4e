/*
 * Internal to codegen/: the state of one module being built and the
 * helpers that kernels (kernels.c) and the entry points (emit.c) share.
 *
 * Every value of the graph lives in one buffer: user inputs, the flat
 * parameter array and the state area of the instance, or the arena at the
 * offset the memory plan gives. Each materialized node (a plan step) gets
 * one internal kernel function `NAME.kID(out, in..., batch)`; the run
 * function calls them in plan order with the addresses of their buffers.
 * Extents are computed at run time from the batch (Dim.batch dims are
 * n * batch), so one object serves every batch size up to the maximum.
 */
#ifndef DLC_CG_H
#define DLC_CG_H

#include "cg_build.h"

/* Extents at run time in the current function. */
LLVMValueRef cg_dim(Cg *c, Dim d);
LLVMValueRef cg_numel(Cg *c, const Shape *s);

/* The instance header (dlrt_instance): a pointer to field f of the
 * instance at m (emit.c, which knows its LLVM type). */
enum { CG_INST_SEED = 1, CG_INST_STEP = 2, CG_INST_LR = 3 };
LLVMValueRef cg_instance_field(Cg *c, LLVMValueRef m, int f);

/* Training-mode randomness (kernels.c): whether the kernel of step draws
 * (a training function's dropout, stochastic_pool2d or their gradients in
 * its group; the kernel then takes the step's key as its last argument,
 * c->rng_key inside it), that key for the instance at m, the uniform in
 * [0, 1) of type t that node site draws for element index (i64) with the
 * current kernel's key, and splitmix64's finalizer. */
bool cg_step_draws(const Cg *c, const Node *step);
LLVMValueRef cg_step_key(Cg *c, LLVMValueRef m);
LLVMValueRef cg_uniform(Cg *c, const Node *site, LLVMValueRef index, DType t);
LLVMValueRef cg_mix64(Cg *c, LLVMValueRef z);

/* codegen/train.c: `void NAME.apply(ptr m)`, the optimizer step of
 * NAME_apply_gradients (clipping, schedule, update, zeroed gradients, the
 * step counter); and, inside the current function, the learning rate
 * (f64) of the next step of the instance at m. */
LLVMValueRef cg_build_apply(Cg *c);
LLVMValueRef cg_schedule_lr(Cg *c, LLVMValueRef m);

/* By input index (node order of OP_INPUT): whether the outputs need it. */
bool *cg_needed_inputs(const Graph *g, int *ninputs);

/* Element i of the ints attribute name of n (the schema guarantees it). */
static inline int64_t cg_ints_at(const Node *n, const char *name, int i)
{
    const Attr *a = ir_attr(n, name);
    check(a && a->kind == AK_INTS && i < a->ints.n);
    return a->ints.v[i].n;
}

/* Runtime calls (codegen/util.c). cg_gemm: cc[m, n] = alpha * op(a) @ op(b)
 * + beta * cc through dlrt_gemm_f32/f64, row-major with row strides
 * lda, ldb, ldc (i64 values). cg_gemm_c: the same with constant extents,
 * alpha 1 and ldc = n. */
void cg_gemm(Cg *c, DType t, bool ta, bool tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
             LLVMValueRef alpha, LLVMValueRef a, LLVMValueRef lda, LLVMValueRef b, LLVMValueRef ldb,
             double beta, LLVMValueRef cc, LLVMValueRef ldc);
void cg_gemm_c(Cg *c, DType t, bool ta, bool tb, int64_t m, int64_t n, int64_t k, LLVMValueRef a,
               int64_t lda, LLVMValueRef b, int64_t ldb, double beta, LLVMValueRef out);
/* A private constant dlrt_conv_geom (13 int64_t, in its field order). */
LLVMValueRef cg_conv_geom(Cg *c, const int64_t *v);
/* dlrt_im2col_fXX / dlrt_col2im_fXX(geom, src, dst), what "im2col" or
 * "col2im", geom from cg_conv_geom. */
void cg_im2col(Cg *c, const char *what, DType t, LLVMValueRef geom, LLVMValueRef src,
               LLVMValueRef dst);

/* Storage: the node whose buffer holds n's value (follows fusion and the
 * plan's aliases). */
Node *cg_storage(const Cg *c, Node *n);

/* Emits the kernel function for one plan step and returns it together
 * with the nodes whose buffers it takes after the output (in[]). */
LLVMValueRef cg_kernel(Cg *c, Node *step, Node ***in, int *nin);

/* Starts the kernel function of step, `NAME.kID(out, ins..., batch)`, plus
 * a last pointer argument, the step's scratch buffer, when the plan gives
 * it one (plan->scratch_offset[id] >= 0); leaves the builder in its entry
 * block with c->fn and c->batch set. cg_kernel_scratch returns that
 * pointer inside the function (nin as given to cg_kernel_begin). */
LLVMValueRef cg_kernel_begin(Cg *c, Node *step, Node **ins, int nin);
LLVMValueRef cg_kernel_scratch(Cg *c, int nin);

/* Convolution, pooling and normalization kernels (kernels_nn.c); the
 * step's inputs are its operands (in = step->in). */
LLVMValueRef cg_kernel_nn(Cg *c, Node *step);

/* codegen/kernels_grad.c: conv_grad_input, conv_grad_weight,
 * max_pool2d_grad, avg_pool2d_grad, stochastic_pool2d_grad (through
 * cg_kernel_nn). */
LLVMValueRef cg_kernel_grad(Cg *c, Node *step);

/* The input that training-mode stochastic_pool2d node pool samples for its
 * output element index (i64, flat in [N, C, OH, OW]) at window row y and
 * column xo, plane the input image's channel (kernels_nn.c says how): its
 * offset in the plane (i64), -1 for none, and the window's sum (f64).
 * Needs the step's key (cg_step_draws). */
typedef struct {
    LLVMValueRef at, sum;
} CgPoolPick;
CgPoolPick cg_pool_sample(Cg *c, Node *pool, LLVMValueRef plane, LLVMValueRef y, LLVMValueRef xo,
                          LLVMValueRef index);

/* Emits, into the current kernel function, the convolution n (conv2d,
 * conv1d, conv_transpose2d) of the images at xp with the weights at wp
 * into out, with col the im2col/column scratch buffer (NULL for the
 * pointwise path; required for the transposed one). When epilogue is
 * given, it is called inside the loop over images after image b (i64) is
 * complete in out. kernels_nn.c. */
typedef void (*CgImageFn)(Cg *c, void *ctx, LLVMValueRef b);
void cg_emit_conv(Cg *c, Node *n, LLVMValueRef xp, LLVMValueRef wp, LLVMValueRef out,
                  LLVMValueRef col, CgImageFn epilogue, void *ctx);

/* codegen/kernels_seq.c: embedding, rnn, lstm, gru, attention. */
LLVMValueRef cg_kernel_seq(Cg *c, Node *step);

#endif

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

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "codegen.h"

typedef struct {
    const Graph *g;
    const MemPlan *plan;
    const Layout *layout;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTargetDataRef td;
    LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, voidt, size_t_;
    Node **root;        /* by node id: the group root that computes it (itself when unfused) */
    LLVMValueRef fn;    /* the function being built */
    LLVMValueRef batch; /* i64 batch inside fn */
} Cg;

/* By input index (node order of OP_INPUT): whether the outputs need it. */
bool *cg_needed_inputs(const Graph *g, int *ninputs);

/* Types and constants. */
LLVMTypeRef cg_type(Cg *c, DType t);
int64_t cg_dtype_size(DType t);
LLVMValueRef cg_i64(Cg *c, int64_t v);
LLVMValueRef cg_fconst(Cg *c, DType t, double v);

/* Extents at run time in the current function. */
LLVMValueRef cg_dim(Cg *c, Dim d);
LLVMValueRef cg_numel(Cg *c, const Shape *s);

/* Loops: cg_loop_begin leaves the builder in the body with the induction
 * variable returned; cg_loop_end closes the innermost open loop. */
typedef struct {
    LLVMBasicBlockRef header, latch, exit;
    LLVMValueRef iv;
} CgLoop;
LLVMValueRef cg_loop_begin(Cg *c, LLVMValueRef n, CgLoop *l);
void cg_loop_end(Cg *c, CgLoop *l);

/* An alloca in the entry block of the current function. */
LLVMValueRef cg_alloca(Cg *c, LLVMTypeRef t, const char *name);
LLVMValueRef cg_gep(Cg *c, DType t, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef cg_call(Cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int nparams,
                     LLVMValueRef *args);
LLVMValueRef cg_intrinsic(Cg *c, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n);

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
 * max_pool2d_grad, avg_pool2d_grad (through cg_kernel_nn). */
LLVMValueRef cg_kernel_grad(Cg *c, Node *step);

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

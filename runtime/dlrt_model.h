/* Part of libdlrt; include <dlrt.h> rather than this file.
 *
 * What generated code and the runtime share about a compiled model. dlc
 * emits one constant dlrt_model_info per model (returned by NAME_info())
 * and thin NAME_* entry points that check their arguments and call the
 * compiled kernels or the dlrt_model_* functions below.
 *
 * An instance is one 64-byte aligned block of info->state_bytes bytes:
 *
 *   [dlrt_instance header][params][grads][optimizer state][model state][arena]
 *
 * at the offsets given in the info (grads and optimizer state are empty
 * when no training code is compiled in). A model with several objectives
 * has each one's optimizer state in turn, and after it, before the model
 * state, a header-sized record of counters for each objective but the
 * first (dlrt_objective_info.counters). Parameters form one flat array of
 * info->param_dtype in declaration order (NAME_params); the gradients
 * have the same layout (NAME_grads). docs/TRAINING.md describes training.
 */
#ifndef DLRT_MODEL_H
#define DLRT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The structs below are shared with generated code; their fields, in
 * order and with what each means, are listed once in dlrt_abi.def. */

/* One input, output, parameter or state tensor of a model: desc (name,
 * dtype, shape at max batch), batch_dims, offset, init, ninit_args,
 * init_args[4], frozen. */
typedef struct {
#define DLRT_TENSOR_INFO(kind, type, name, dims) type name dims;
#include "dlrt_abi.def"
} dlrt_tensor_info;

/* Generic entry point: arrays in declaration order (only the inputs that
 * info->forward_inputs lists), for harnesses and language bindings. */
typedef int (*dlrt_forward_fn)(void *m, int batch, const void *const *inputs, void *const *outputs);
/* Generic training entry points: every input, in declaration order; loss
 * points to one scalar of param_dtype. */
typedef int (*dlrt_loss_fn)(void *m, int batch, const void *const *inputs, void *loss);
typedef int (*dlrt_apply_fn)(void *m);

/* reduce_on_plateau's constants: mode (0 min, 1 max), factor, patience,
 * threshold, threshold_mode (0 rel, 1 abs), cooldown, min_lr, eps, all
 * doubles (dlrt_abi.def). */
typedef struct dlrt_plateau {
#define DLRT_PLATEAU(kind, type, name, dims) type name dims;
#include "dlrt_abi.def"
} dlrt_plateau;

/* One objective (docs/LANGUAGE.md, Several objectives): name, num_inputs,
 * inputs, compute_gradients, evaluate, apply_gradients, lr, plateau,
 * counters (dlrt_abi.def). */
typedef struct dlrt_objective_info {
#define DLRT_OBJECTIVE(kind, type, name, dims) type name dims;
#include "dlrt_abi.def"
} dlrt_objective_info;

/* What NAME_info() returns: the name, max_batch, param_dtype, sizes, the
 * tensors (inputs, outputs, params, states, opt), the regions of the
 * instance block, the generic entry points and the base learning rate. */
typedef struct dlrt_model_info {
#define DLRT_MODEL_INFO(kind, type, name, dims) type name dims;
#include "dlrt_abi.def"
} dlrt_model_info;

/* The header at the start of every instance block: info, seed, step, lr
 * (the base learning rate), plateau_best, plateau_bad, plateau_cooldown
 * (reduce_on_plateau's state), owned, cpu_level (docs/TARGETS.md, CPU
 * lists), grad_ready (dlrt_model_set_grad_ready). */
typedef struct {
#define DLRT_INSTANCE(kind, type, name, dims) type name dims;
#include "dlrt_abi.def"
} dlrt_instance;

/* Lays out and initializes an instance in caller-owned memory: checks that
 * mem is 64-byte aligned and size >= info->state_bytes (DLRT_EINVAL
 * otherwise), zeroes the block, fills the header and initializes every
 * parameter and state as declared, parameter i from stream i of seed and
 * state j from stream num_params + j, and stores dlrt_cpu_level() in the
 * header. The info is validated first (each
 * param/state a floating tensor inside its region of the block, params of
 * param_dtype, initializer arguments accepted, optimizer state inside its
 * region): DLRT_EINVAL, block untouched. The base learning rate starts
 * at info->lr. */
int dlrt_model_init(const dlrt_model_info *info, void *mem, size_t size, uint64_t seed);
/* The same in a block from aligned_alloc; NULL on failure. */
void *dlrt_model_create(const dlrt_model_info *info, uint64_t seed);
void dlrt_model_destroy(void *m);

/* Gradients as the backward finishes them (docs/DISTRIBUTED.md, Overlap):
 * with a hook set, the training functions (NAME_compute_gradients,
 * NAME_train_step) call fn(ctx, m, first, count, grad) once per trainable
 * parameter as soon as the last kernel that writes this batch's gradient
 * of it has run, in the order the backward finishes them (the last
 * layers' first): grad points to count scalars of info->param_dtype, this
 * batch's gradient of the scalars [first, first + count) of the flat
 * gradient array (NAME_grads), valid and unchanged until the function
 * returns. The instance's gradient sums are not yet updated then: the
 * function adds grad to them after its checks, and only when it returns
 * 0. fn runs on the calling thread, between kernels; it must not call
 * into the instance. A parameter whose gradient the backward does not
 * compute in its own buffer may not be reported; code from dlc before
 * this hook, and bare-metal targets, report nothing. fn NULL removes the
 * hook. Not while the instance is in use by another thread. Up to
 * DLRT_GRAD_HOOKS instances can have a hook at once (DLRT_ENOMEM after);
 * dlrt_model_destroy removes its instance's. DLRT_EINVAL for m NULL. */
enum { DLRT_GRAD_HOOKS = 64 };
typedef void (*dlrt_grad_ready_fn)(void *ctx, void *m, int64_t first, int64_t count,
                                   const void *grad);
int dlrt_model_set_grad_ready(void *m, dlrt_grad_ready_fn fn, void *ctx);
/* For generated code, when the header's grad_ready is not 0: calls the hook. */
void dlrt_model_grad_ready(void *m, int64_t first, int64_t count, const void *grad);

/* Checkpoints: parameters, states and optimizer state by name
 * (safetensors), atomically written; loading validates the whole file
 * against the model first and changes nothing on failure. Tensors: the
 * params in declaration order, the states, then the optimizer state;
 * metadata "format" = "dlc", "model" = info->name, "step" = the step
 * counter in decimal, "lr" = the base learning rate (%.17g). A file whose
 * "model" names another model is DLRT_EMISMATCH, a "step" that is not a
 * decimal int64 >= 0 or an "lr" that is not a finite number DLRT_EFORMAT;
 * step and lr are restored when present. A file with the params and
 * states but no optimizer state at all loads with the optimizer state
 * zeroed (dlrt_model_load_ex reports it), and optimizer state the model
 * has no room for is ignored; but optimizer state that is there and
 * damaged (an opt.* tensor missing, renamed, of another shape or dtype)
 * is DLRT_EMISMATCH. A successful load zeroes the gradients. */
int dlrt_model_save(const void *m, const char *path);
int dlrt_model_load(void *m, const char *path);

/* reduce_on_plateau (docs/TRAINING.md): one report of the watched metric,
 * PyTorch's ReduceLROnPlateau.step(metric): a report that improves on the
 * best by more than the threshold resets the count of bad reports, else
 * the count grows; during a cooldown reports are not counted; a count
 * above patience multiplies the base rate by factor (not below min_lr,
 * and only when that changes it by more than eps) and starts a cooldown.
 * DLRT_EINVAL for NULL, DLRT_ENONFINITE for NaN or an infinity (nothing
 * changed); 0 and nothing done when the model's schedule is another.
 * Checkpoints save the state as metadata "plateau_best", "plateau_bad"
 * and "plateau_cooldown"; a load restores it, or resets it when the file
 * has none. */
int dlrt_model_report_metric(void *m, double metric);
/* The same for objective k of info->objectives (0 is the first, whose
 * state is the header's); DLRT_EINVAL for another k. */
int dlrt_model_report_metric_objective(void *m, int k, double metric);

/* dlrt_model_load's status bits. */
enum {
    DLRT_LOAD_OPT_ZEROED = 1 /* the file had no optimizer state; the model's is zeroed */
};
/* dlrt_model_load, and on success *status (if not NULL) = DLRT_LOAD_* bits;
 * *status is 0 on failure. */
int dlrt_model_load_ex(void *m, const char *path, unsigned *status);

/* For generated code, after its own scan found a bad element (runtime/
 * check.c): find the first one and say in dlrt_last_error() which, e.g.
 * "input 'x': element [3, 17] (sample 3) is -inf". what names the tensor;
 * row is the elements per sample (0: no samples). dlrt_check_nonfinite
 * looks at x[i] (+ y[i] when y is not NULL; f32 or f64) and returns
 * DLRT_ENONFINITE; dlrt_check_index at ids outside 0..hi-1, DLRT_ERANGE,
 * as dlrt_check_index_ignoring does at those that are not ignore either
 * (the labels of a loss with ignore_index). */
int dlrt_check_nonfinite(const char *what, dlrt_dtype t, const void *x, const void *y, int64_t n,
                         int64_t row);
int dlrt_check_index(const char *what, const int32_t *x, int64_t n, int64_t row, int64_t hi);
int dlrt_check_index_ignoring(const char *what, const int32_t *x, int64_t n, int64_t row,
                              int64_t hi, int64_t ignore);

/* The elements of tensor t at a run-time batch: its batch dimensions
 * (batch_dims) are stored at max_batch, the info's, and scale with it. */
int64_t dlrt_tensor_count(const dlrt_tensor_info *t, int max_batch, int batch);

/* DLRT_EINVAL unless 1 <= batch <= max_batch (any batch when the model has
 * no batch dimension is passed as 0 or 1 and accepted). */
int dlrt_model_check_batch(const dlrt_model_info *info, int batch);

/* Row-major GEMM for generated code: C = alpha*op(A)*op(B) + beta*C with
 * op(X) = X or X^T, M x N result, K inner; lda/ldb/ldc are row strides.
 * A large product runs as a grid of tiles of C on the thread pool, the
 * grid decided by m, n and k alone (gemm.c), so its bits do not depend on
 * the thread count. */
void dlrt_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc);
void dlrt_gemm_f64(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                   double *c, int64_t ldc);

/* The geometry of one image of a convolution (runtime/conv.c): c channels
 * of h x w, a kh x kw kernel with stride, padding and dilation per axis,
 * oh x ow output positions; int64_t c, h, w, kh, kw, sh, sw, ph, pw, dh,
 * dw, oh, ow. */
typedef struct {
#define DLRT_CONV_GEOM(kind, type, name, dims) type name dims;
#include "dlrt_abi.def"
} dlrt_conv_geom;

/* col[c*kh*kw, oh*ow] from the image x[c, h, w]: row (ch, i, j), column
 * (y, x) holds x[ch, y*sh - ph + i*dh, x*sw - pw + j*dw], 0 in the padding. */
void dlrt_im2col_f32(const dlrt_conv_geom *g, const float *x, float *col);
void dlrt_im2col_f64(const dlrt_conv_geom *g, const double *x, double *col);
/* The adjoint: x[c, h, w] = the sum of the col entries that im2col would
 * take from each pixel (x is overwritten). */
void dlrt_col2im_f32(const dlrt_conv_geom *g, const float *col, float *x);
void dlrt_col2im_f64(const dlrt_conv_geom *g, const double *col, double *x);

#ifdef __cplusplus
}
#endif

#endif

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
 * when no training code is compiled in). Parameters form one flat array of
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

/* One input, output, parameter or state tensor of a model. */
typedef struct {
    dlrt_tensor_desc desc; /* name, dtype, shape; batch dimensions at max batch */
    uint32_t batch_dims;   /* bit i: dimension i scales with the run-time batch
                              (its extent is shape[i] / max_batch * batch) */
    size_t offset;         /* params and states: byte offset in the instance */
    int init;              /* params and states: a dlrt_init_kind */
    int ninit_args;
    double init_args[4];
    int frozen; /* params: stored and saved, never updated */
} dlrt_tensor_info;

/* Generic entry point: arrays in declaration order (only the inputs that
 * info->forward_inputs lists), for harnesses and language bindings. */
typedef int (*dlrt_forward_fn)(void *m, int batch, const void *const *inputs, void *const *outputs);
/* Generic training entry points: every input, in declaration order; loss
 * points to one scalar of param_dtype. */
typedef int (*dlrt_loss_fn)(void *m, int batch, const void *const *inputs, void *loss);
typedef int (*dlrt_apply_fn)(void *m);

typedef struct dlrt_model_info {
    const char *name;
    int max_batch;             /* 0: the model has no batch dimension */
    dlrt_dtype param_dtype;    /* the one floating type of all parameters */
    int64_t num_param_scalars; /* NAME_NUM_PARAMS */
    size_t state_bytes;        /* NAME_STATE_BYTES: the whole instance block */

    int num_inputs, num_outputs, num_params, num_states;
    const dlrt_tensor_info *inputs, *outputs, *params, *states;
    int num_forward_inputs;    /* inputs the outputs need, in order */
    const int *forward_inputs; /* indices into inputs */

    size_t params_offset, params_bytes; /* the flat parameter array */
    size_t grads_offset, grads_bytes;
    size_t opt_offset, opt_bytes;
    size_t states_offset, states_bytes;
    size_t arena_offset, arena_bytes;

    dlrt_forward_fn forward;

    /* Training; NULL and 0 when no training code is compiled in. */
    dlrt_loss_fn compute_gradients; /* adds this batch's gradients to the grads */
    dlrt_loss_fn evaluate;          /* the loss in inference mode, no update */
    dlrt_apply_fn apply_gradients;  /* one optimizer step; zeroes the grads */
    double lr;                      /* the base learning rate a new instance starts with */
    int num_opt;                    /* optimizer state tensors ("opt.SLOT.PARAM"), */
    const dlrt_tensor_info *opt;    /* in [opt_offset, +opt_bytes), zeros at first */
} dlrt_model_info;

/* The header at the start of every instance block. */
typedef struct {
    const dlrt_model_info *info;
    uint64_t seed;
    int64_t step;
    double lr;   /* the base learning rate (docs/TRAINING.md) */
    void *owned; /* the block itself when dlrt_model_create allocated it */
} dlrt_instance;

/* Lays out and initializes an instance in caller-owned memory: checks that
 * mem is 64-byte aligned and size >= info->state_bytes (DLRT_EINVAL
 * otherwise), zeroes the block, fills the header and initializes every
 * parameter and state as declared, parameter i from stream i of seed and
 * state j from stream num_params + j. The info is validated first (each
 * param/state a floating tensor inside its region of the block, params of
 * param_dtype, initializer arguments accepted, optimizer state inside its
 * region): DLRT_EINVAL, block untouched. The base learning rate starts
 * at info->lr. */
int dlrt_model_init(const dlrt_model_info *info, void *mem, size_t size, uint64_t seed);
/* The same in a block from aligned_alloc; NULL on failure. */
void *dlrt_model_create(const dlrt_model_info *info, uint64_t seed);
void dlrt_model_destroy(void *m);

/* Checkpoints: parameters, states and optimizer state by name
 * (safetensors), atomically written; loading validates the whole file
 * against the model first and changes nothing on failure. Tensors: the
 * params in declaration order, the states, then the optimizer state;
 * metadata "format" = "dlc", "model" = info->name, "step" = the step
 * counter in decimal, "lr" = the base learning rate (%.17g). A file whose
 * "model" names another model is DLRT_EMISMATCH, a "step" that is not a
 * decimal int64 >= 0 or an "lr" that is not a finite number DLRT_EFORMAT;
 * step and lr are restored when present. A file with the params and
 * states but no optimizer state loads with the optimizer state zeroed,
 * and optimizer state the model has no room for is ignored. A successful
 * load zeroes the gradients. */
int dlrt_model_save(const void *m, const char *path);
int dlrt_model_load(void *m, const char *path);

/* DLRT_EINVAL unless 1 <= batch <= max_batch (any batch when the model has
 * no batch dimension is passed as 0 or 1 and accepted). */
int dlrt_model_check_batch(const dlrt_model_info *info, int batch);

/* Row-major GEMM for generated code: C = alpha*op(A)*op(B) + beta*C with
 * op(X) = X or X^T, M x N result, K inner; lda/ldb/ldc are row strides. */
void dlrt_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc);
void dlrt_gemm_f64(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                   double *c, int64_t ldc);

/* The geometry of one image of a convolution (runtime/conv.c): c channels
 * of h x w, a kh x kw kernel with stride, padding and dilation per axis,
 * oh x ow output positions. */
typedef struct {
    int64_t c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
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

/*
 * Private to the reference interpreter (tests/exec/ref*.c): shared
 * helpers, and the op families kept in files of their own.
 */
#ifndef DLC_TESTS_REF_OPS_H
#define DLC_TESTS_REF_OPS_H

#include <math.h>

#include "ref.h"

static inline double ref_sigmoid(double x)
{
    return 1 / (1 + exp(-x));
}

/* n doubles, zeroed; aborts when out of memory */
double *ref_calloc(int64_t n);

/* rnn, lstm, gru and their backward ops (ref_recurrent.c) */
void ref_recurrent(const Node *n, RefTensor *const *in, RefTensor *out);
void ref_recurrent_grad(const Node *n, RefTensor *const *in, RefTensor *out);
/* reverse_sequence (ref_recurrent.c) */
void ref_reverse_sequence(RefTensor *const *in, RefTensor *out);

/* the nn family (ref_nn.c): conv1d/conv2d, conv_transpose2d, the windowed
 * pools, global pooling, batch_norm (inference) and layer_norm, and the
 * backward primitives conv_grad_input/conv_grad_weight, max/avg_pool2d_grad,
 * the adaptive pools with their gradients, upsample and upsample_grad */
void ref_conv(const Node *n, const RefTensor *x, const RefTensor *w, RefTensor *out);
void ref_conv_transpose(const Node *n, const RefTensor *x, const RefTensor *w, RefTensor *out);
void ref_pool(const Node *n, const RefTensor *x, RefTensor *out);
void ref_global_pool(const Node *n, const RefTensor *x, RefTensor *out);
void ref_batch_norm(const Node *n, RefTensor *const *in, RefTensor *out);
void ref_batch_norm_grad(const Node *n, RefTensor *const *in, RefTensor *out);
void ref_layer_norm(const Node *n, RefTensor *const *in, RefTensor *out);
void ref_layer_norm_grad(const Node *n, RefTensor *const *in, RefTensor *out);
void ref_conv_grad(const Node *n, RefTensor *const *in, RefTensor *out);
void ref_pool_grad(const Node *n, RefTensor *const *in, RefTensor *out);
void ref_adaptive_pool(const Node *n, RefTensor *const *in, RefTensor *out);
void ref_upsample(const Node *n, RefTensor *const *in, RefTensor *out);

/* loop, interpreting its body per trip, and loop_result (ref_loop.c); a
 * loop's value holds its results, flattened one after the other */
bool ref_loop(const Node *n, RefTensor *const *in, int64_t batch, RefTensor *out, char *err,
              size_t errsize);
bool ref_loop_result(const Node *n, const RefTensor *token, int64_t batch, RefTensor *out);

#endif

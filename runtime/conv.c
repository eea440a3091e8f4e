/*
 * im2col and col2im for generated convolution kernels.
 *
 * A convolution of one image (C channels of H x W) with an O x C x kh x kw
 * weight is the product W[O, C*kh*kw] @ col[C*kh*kw, OH*OW], where row
 * (c, i, j) of col holds, for every output position (y, x), the input
 * pixel that kernel tap (i, j) of channel c meets there (zero in the
 * padding). im2col builds col; col2im is its adjoint, the transposed
 * convolution's last step, adding each column entry back into the pixel
 * it came from.
 *
 * For every (row, output row y) the valid output columns form one range
 * [x0, x1), computed once, so the inner loop has no bounds checks and with
 * stride 1 is a plain contiguous copy.
 */
#include "dlrt.h"

#include <string.h>

/* floor(a / b) for b > 0 */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The output columns x in [*x0, *x1) whose input column x*s + off lies in
 * [0, w). */
static void valid_range(int64_t off, int64_t s, int64_t w, int64_t ow, int64_t *x0, int64_t *x1)
{
    int64_t lo = floor_div(-off + s - 1, s), hi = floor_div(w - 1 - off, s) + 1;
    *x0 = lo < 0 ? 0 : lo > ow ? ow : lo;
    *x1 = hi > ow ? ow : hi < *x0 ? *x0 : hi;
}

#define DEFINE_IM2COL(NAME, T)                                                                     \
    void NAME(const dlrt_conv_geom *g, const T *x, T *col)                                         \
    {                                                                                              \
        int64_t p = g->oh * g->ow;                                                                 \
        for (int64_t ch = 0; ch < g->c; ch++)                                                      \
            for (int64_t i = 0; i < g->kh; i++)                                                    \
                for (int64_t j = 0; j < g->kw; j++) {                                              \
                    T *row = col + ((ch * g->kh + i) * g->kw + j) * p;                             \
                    int64_t xoff = j * g->dw - g->pw, x0, x1;                                      \
                    valid_range(xoff, g->sw, g->w, g->ow, &x0, &x1);                               \
                    for (int64_t y = 0; y < g->oh; y++) {                                          \
                        T *dst = row + y * g->ow;                                                  \
                        int64_t iy = y * g->sh - g->ph + i * g->dh;                                \
                        if (iy < 0 || iy >= g->h) {                                                \
                            memset(dst, 0, (size_t)g->ow * sizeof(T));                             \
                            continue;                                                              \
                        }                                                                          \
                        const T *src = x + (ch * g->h + iy) * g->w;                                \
                        for (int64_t k = 0; k < x0; k++)                                           \
                            dst[k] = 0;                                                            \
                        if (g->sw == 1 && x1 > x0)                                                 \
                            memcpy(dst + x0, src + (x0 + xoff), (size_t)(x1 - x0) * sizeof(T));    \
                        else if (g->sw != 1)                                                       \
                            for (int64_t k = x0; k < x1; k++)                                      \
                                dst[k] = src[k * g->sw + xoff];                                    \
                        for (int64_t k = x1; k < g->ow; k++)                                       \
                            dst[k] = 0;                                                            \
                    }                                                                              \
                }                                                                                  \
    }

#define DEFINE_COL2IM(NAME, T)                                                                     \
    void NAME(const dlrt_conv_geom *g, const T *col, T *x)                                         \
    {                                                                                              \
        int64_t p = g->oh * g->ow;                                                                 \
        memset(x, 0, (size_t)(g->c * g->h * g->w) * sizeof(T));                                    \
        for (int64_t ch = 0; ch < g->c; ch++)                                                      \
            for (int64_t i = 0; i < g->kh; i++)                                                    \
                for (int64_t j = 0; j < g->kw; j++) {                                              \
                    const T *row = col + ((ch * g->kh + i) * g->kw + j) * p;                       \
                    int64_t xoff = j * g->dw - g->pw, x0, x1;                                      \
                    valid_range(xoff, g->sw, g->w, g->ow, &x0, &x1);                               \
                    for (int64_t y = 0; y < g->oh; y++) {                                          \
                        int64_t iy = y * g->sh - g->ph + i * g->dh;                                \
                        if (iy < 0 || iy >= g->h)                                                  \
                            continue;                                                              \
                        const T *src = row + y * g->ow;                                            \
                        T *dst = x + (ch * g->h + iy) * g->w;                                      \
                        for (int64_t k = x0; k < x1; k++)                                          \
                            dst[k * g->sw + xoff] += src[k];                                       \
                    }                                                                              \
                }                                                                                  \
    }

DEFINE_IM2COL(dlrt_im2col_f32, float)
DEFINE_IM2COL(dlrt_im2col_f64, double)
DEFINE_COL2IM(dlrt_col2im_f32, float)
DEFINE_COL2IM(dlrt_col2im_f64, double)

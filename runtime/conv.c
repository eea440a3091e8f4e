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
 * The valid output rows [y0, y1) of kernel row i and columns [x0, x1) of
 * kernel column j do not depend on the channel, so they are computed once
 * per tap (without a division at stride 1) and the channels loop inside.
 * Each row of col is then zeros for y < y0, rows of zeros-copy-zeros, and
 * zeros for y >= y1, with no bounds checks. Rows are short in small
 * networks (10-28 elements), so stride-1 rows are copied with a few
 * fixed-size moves instead of a memcpy call each.
 */
#include "dlrt.h"

#include <string.h>

/* floor(a / b) for b > 0 */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The output indices o in [*lo, *hi) (within [0, on)) whose input index
 * o*s + off lies in [0, n). */
static void valid_range(int64_t off, int64_t s, int64_t n, int64_t on, int64_t *lo, int64_t *hi)
{
    int64_t a = s == 1 ? -off : floor_div(-off + s - 1, s);
    int64_t b = s == 1 ? n - off : floor_div(n - 1 - off, s) + 1;
    *lo = a < 0 ? 0 : a > on ? on : a;
    *hi = b > on ? on : b < *lo ? *lo : b;
}

/* memcpy(d, s, n) for the short rows of col: fixed-size moves, which the
 * compiler inlines, from both ends; n is a multiple of 4. */
static inline void copy_bytes(void *restrict d, const void *restrict s, size_t n)
{
    char *dc = d;
    const char *sc = s;
    if (n > 128) {
        memcpy(d, s, n);
    } else if (n >= 64) {
        memcpy(dc, sc, 64);
        memcpy(dc + n - 64, sc + n - 64, 64);
    } else if (n >= 32) {
        memcpy(dc, sc, 32);
        memcpy(dc + n - 32, sc + n - 32, 32);
    } else if (n >= 16) {
        memcpy(dc, sc, 16);
        memcpy(dc + n - 16, sc + n - 16, 16);
    } else if (n >= 8) {
        memcpy(dc, sc, 8);
        memcpy(dc + n - 8, sc + n - 8, 8);
    } else if (n >= 4) {
        memcpy(dc, sc, 4);
    }
}

/* memset(d, 0, n) likewise */
static inline void zero_bytes(void *d, size_t n)
{
    static const char zeros[128];
    if (n > 128)
        memset(d, 0, n);
    else
        copy_bytes(d, zeros, n);
}

/* The geometry in locals: col's stores cannot alias them, so they stay in
 * registers. */
#define GEOM(g)                                                                                    \
    const int64_t C = (g)->c, H = (g)->h, W = (g)->w, KH = (g)->kh, KW = (g)->kw, SH = (g)->sh,    \
                  SW = (g)->sw, PH = (g)->ph, PW = (g)->pw, DH = (g)->dh, DW = (g)->dw,            \
                  OH = (g)->oh, OW = (g)->ow, P = OH * OW, HW = H * W

#define DEFINE_IM2COL(NAME, T)                                                                     \
    void NAME(const dlrt_conv_geom *g, const T *restrict x, T *restrict col)                       \
    {                                                                                              \
        GEOM(g);                                                                                   \
        for (int64_t i = 0; i < KH; i++) {                                                         \
            int64_t yoff = i * DH - PH, y0, y1;                                                    \
            valid_range(yoff, SH, H, OH, &y0, &y1);                                                \
            for (int64_t j = 0; j < KW; j++) {                                                     \
                int64_t xoff = j * DW - PW, x0, x1;                                                \
                valid_range(xoff, SW, W, OW, &x0, &x1);                                            \
                size_t head = (size_t)x0 * sizeof(T), tail = (size_t)(OW - x1) * sizeof(T);        \
                size_t body = (size_t)(x1 - x0) * sizeof(T);                                       \
                for (int64_t ch = 0; ch < C; ch++) {                                               \
                    T *dst = col + ((ch * KH + i) * KW + j) * P;                                   \
                    const T *src = x + ch * HW + (y0 * SH + yoff) * W + xoff;                      \
                    zero_bytes(dst, (size_t)(y0 * OW) * sizeof(T));                                \
                    dst += y0 * OW;                                                                \
                    for (int64_t y = y0; y < y1; y++, dst += OW, src += SH * W) {                  \
                        zero_bytes(dst, head);                                                     \
                        if (SW == 1)                                                               \
                            copy_bytes(dst + x0, src + x0, body);                                  \
                        else                                                                       \
                            for (int64_t k = x0; k < x1; k++)                                      \
                                dst[k] = src[k * SW];                                              \
                        zero_bytes(dst + x1, tail);                                                \
                    }                                                                              \
                    zero_bytes(dst, (size_t)((OH - y1) * OW) * sizeof(T));                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

#define DEFINE_COL2IM(NAME, T)                                                                     \
    void NAME(const dlrt_conv_geom *g, const T *restrict col, T *restrict x)                       \
    {                                                                                              \
        GEOM(g);                                                                                   \
        memset(x, 0, (size_t)(C * HW) * sizeof(T));                                                \
        for (int64_t i = 0; i < KH; i++) {                                                         \
            int64_t yoff = i * DH - PH, y0, y1;                                                    \
            valid_range(yoff, SH, H, OH, &y0, &y1);                                                \
            for (int64_t j = 0; j < KW; j++) {                                                     \
                int64_t xoff = j * DW - PW, x0, x1;                                                \
                valid_range(xoff, SW, W, OW, &x0, &x1);                                            \
                for (int64_t ch = 0; ch < C; ch++) {                                               \
                    const T *src = col + ((ch * KH + i) * KW + j) * P + y0 * OW;                   \
                    T *dst = x + ch * HW + (y0 * SH + yoff) * W + xoff;                            \
                    for (int64_t y = y0; y < y1; y++, src += OW, dst += SH * W) {                  \
                        if (SW == 1)                                                               \
                            for (int64_t k = x0; k < x1; k++)                                      \
                                dst[k] += src[k];                                                  \
                        else                                                                       \
                            for (int64_t k = x0; k < x1; k++)                                      \
                                dst[k * SW] += src[k];                                             \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_IM2COL(dlrt_im2col_f32, float)
DEFINE_IM2COL(dlrt_im2col_f64, double)
DEFINE_COL2IM(dlrt_col2im_f32, float)
DEFINE_COL2IM(dlrt_col2im_f64, double)

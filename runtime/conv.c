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
 * Each row of col is then zeros for y < y0, a block of rows y0..y1-1
 * made of zeros, a copy and zeros, and zeros for y >= y1, with no bounds
 * checks; at stride 1 the block's copy is the same short move for every
 * row (copy_rows). col2im's stride-1 sums are unrolled by 4, which the
 * compiler turns into vector adds (its -O2 does not vectorize loops of
 * unknown length that need a remainder).
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

/* Kernel tap (i, j): the offsets of the input pixel it meets from output
 * position (y, x), y*sh + yoff and x*sw + xoff, and the output rows
 * [y0, y1) and columns [x0, x1) where that pixel lies in the image. */
typedef struct {
    int64_t yoff, xoff, y0, y1, x0, x1;
} Tap;

static Tap tap_at(const dlrt_conv_geom *g, int64_t i, int64_t j)
{
    Tap t = {.yoff = i * g->dh - g->ph, .xoff = j * g->dw - g->pw};
    valid_range(t.yoff, g->sh, g->h, g->oh, &t.y0, &t.y1);
    valid_range(t.xoff, g->sw, g->w, g->ow, &t.x0, &t.x1);
    return t;
}

/* Copies rows rows of n bytes (a multiple of 4) from s, row stride ss
 * bytes, to d, row stride ds. The rows of col are short (10-28 floats in
 * LeNet-5), so each is moved with two fixed-size, possibly overlapping
 * copies, which the compiler inlines, chosen once for all rows. */
static void copy_rows(char *restrict d, ptrdiff_t ds, const char *restrict s, ptrdiff_t ss,
                      int64_t rows, size_t n)
{
#define ROWS(...)                                                                                  \
    do {                                                                                           \
        for (int64_t r = 0; r < rows; r++, d += ds, s += ss) {                                     \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
        return;                                                                                    \
    } while (0)
#define TWO(k) ROWS(memcpy(d, s, k); memcpy(d + n - k, s + n - k, k))
    if (n > 128)
        ROWS(memcpy(d, s, n));
    if (n >= 64)
        TWO(64);
    if (n >= 32)
        TWO(32);
    if (n >= 16)
        TWO(16);
    if (n >= 8)
        TWO(8);
    if (n >= 4)
        ROWS(memcpy(d, s, 4));
#undef TWO
#undef ROWS
}

static const char zeros[128];

/* Zeroes rows rows of n bytes at d, row stride ds. */
static void zero_rows(char *d, ptrdiff_t ds, int64_t rows, size_t n)
{
    if (n > sizeof zeros)
        for (int64_t r = 0; r < rows; r++, d += ds)
            memset(d, 0, n);
    else
        copy_rows(d, ds, zeros, 0, rows, n);
}

/* The geometry in locals: col's stores cannot alias them, so they stay in
 * registers. */
#define GEOM(g)                                                                                    \
    const int64_t C = (g)->c, H = (g)->h, W = (g)->w, KH = (g)->kh, KW = (g)->kw, SH = (g)->sh,    \
                  SW = (g)->sw, OH = (g)->oh, OW = (g)->ow, P = OH * OW, HW = H * W

#define DEFINE_IM2COL(NAME, T)                                                                     \
    void NAME(const dlrt_conv_geom *g, const T *restrict x, T *restrict col)                       \
    {                                                                                              \
        GEOM(g);                                                                                   \
        const ptrdiff_t rs = (ptrdiff_t)(OW * (int64_t)sizeof(T)),                                 \
                        ss = (ptrdiff_t)(SH * W * (int64_t)sizeof(T));                             \
        for (int64_t i = 0; i < KH; i++)                                                           \
            for (int64_t j = 0; j < KW; j++) {                                                     \
                const Tap t = tap_at(g, i, j);                                                     \
                const int64_t yoff = t.yoff, xoff = t.xoff, y0 = t.y0, y1 = t.y1, x0 = t.x0,       \
                              x1 = t.x1;                                                           \
                size_t head = (size_t)x0 * sizeof(T), tail = (size_t)(OW - x1) * sizeof(T);        \
                size_t body = (size_t)(x1 - x0) * sizeof(T);                                       \
                for (int64_t ch = 0; ch < C; ch++) {                                               \
                    T *dst = col + ((ch * KH + i) * KW + j) * P;                                   \
                    const T *src = x + ch * HW + (y0 * SH + yoff) * W + xoff;                      \
                    zero_rows((char *)dst, 0, 1, (size_t)(y0 * OW) * sizeof(T));                   \
                    dst += y0 * OW;                                                                \
                    zero_rows((char *)dst, rs, y1 - y0, head);                                     \
                    if (SW == 1)                                                                   \
                        copy_rows((char *)(dst + x0), rs, (const char *)(src + x0), ss, y1 - y0,   \
                                  body);                                                           \
                    else                                                                           \
                        for (int64_t y = y0; y < y1; y++)                                          \
                            for (int64_t k = x0; k < x1; k++)                                      \
                                dst[(y - y0) * OW + k] = src[(y - y0) * SH * W + k * SW];          \
                    zero_rows((char *)(dst + x1), rs, y1 - y0, tail);                              \
                    zero_rows((char *)(dst + (y1 - y0) * OW), 0, 1,                                \
                              (size_t)((OH - y1) * OW) * sizeof(T));                               \
                }                                                                                  \
            }                                                                                      \
    }

#define DEFINE_COL2IM(NAME, T)                                                                     \
    void NAME(const dlrt_conv_geom *g, const T *restrict col, T *restrict x)                       \
    {                                                                                              \
        GEOM(g);                                                                                   \
        memset(x, 0, (size_t)(C * HW) * sizeof(T));                                                \
        for (int64_t i = 0; i < KH; i++)                                                           \
            for (int64_t j = 0; j < KW; j++) {                                                     \
                const Tap t = tap_at(g, i, j);                                                     \
                const int64_t yoff = t.yoff, xoff = t.xoff, y0 = t.y0, y1 = t.y1, x0 = t.x0,       \
                              x1 = t.x1;                                                           \
                for (int64_t ch = 0; ch < C; ch++) {                                               \
                    const T *src = col + ((ch * KH + i) * KW + j) * P + y0 * OW;                   \
                    T *dst = x + ch * HW + (y0 * SH + yoff) * W + xoff;                            \
                    for (int64_t y = y0; y < y1; y++, src += OW, dst += SH * W) {                  \
                        if (SW == 1) {                                                             \
                            int64_t k = x0;                                                        \
                            for (; k + 4 <= x1; k += 4) {                                          \
                                dst[k] += src[k];                                                  \
                                dst[k + 1] += src[k + 1];                                          \
                                dst[k + 2] += src[k + 2];                                          \
                                dst[k + 3] += src[k + 3];                                          \
                            }                                                                      \
                            for (; k < x1; k++)                                                    \
                                dst[k] += src[k];                                                  \
                        } else                                                                     \
                            for (int64_t k = x0; k < x1; k++)                                      \
                                dst[k * SW] += src[k];                                             \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
    }

DEFINE_IM2COL(dlrt_im2col_f32, float)
DEFINE_IM2COL(dlrt_im2col_f64, double)
DEFINE_COL2IM(dlrt_col2im_f32, float)
DEFINE_COL2IM(dlrt_col2im_f64, double)

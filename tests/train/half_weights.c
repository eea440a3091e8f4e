/* half_weights.dl compiled three times: f32 (HALF undefined) trains and
 * writes its checkpoint and its outputs on fixed inputs; --weights=f16
 * (HALF=1) and --weights=bf16 (HALF=2) load that f32 checkpoint, which
 * rounds every weight to nearest even (DLRT_CKPT_NARROW), and check
 * - the weights: bit for bit dlrt_f16_from_f32 (bf16) of the file's;
 * - the outputs: against the model in double on those rounded weights
 *   (1e-5), and against the f32 model's within a bound derived from the
 *   format (2^-11 resp. 2^-8 relative per weight, summed over the paths);
 * - the half checkpoint: F16 (BF16) tensors of 2 bytes an element, loaded
 *   strictly as such, and into a fresh instance bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "half_weights.h"

enum { B = 16, I = 4, H = 16, O = 2, NW = I * H + H + H * O + O };

static float x[B * I], y[B * O], out[B * O];

static void data(void)
{
    for (int i = 0; i < B; i++) {
        for (int k = 0; k < I; k++)
            x[i * I + k] = (float)data_value(1, (uint64_t)(i * I + k));
        y[i * O] = tanhf(x[i * I] - x[i * I + 1]);
        y[i * O + 1] = x[i * I + 2] * x[i * I + 3];
    }
}

#ifndef HALF
int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    data();
    half_weights *m = half_weights_create(7);
    float loss0 = 0, loss = 0;
    for (int s = 0; s < 300; s++)
        expect("train_step", half_weights_train_step(m, B, x, y, s ? &loss : &loss0) == 0);
    expect("trained", loss < loss0 / 4);
    expect("forward", half_weights_forward(m, B, x, out) == 0);
    expect("save", half_weights_save(m, argv[1]) == 0);
    FILE *f = fopen(argv[2], "wb");
    expect("outputs written", f && fwrite(out, sizeof out, 1, f) == 1);
    if (f)
        fclose(f);
    half_weights_destroy(m);
    return failures != 0;
}
#else
#if HALF == 1
#define DTYPE DLRT_F16
#define NARROW dlrt_f16_from_f32
#define WIDEN dlrt_f32_from_f16
#define EPS 0x1p-11
#else
#define DTYPE DLRT_BF16
#define NARROW dlrt_bf16_from_f32
#define WIDEN dlrt_f32_from_bf16
#define EPS 0x1p-8
#endif

/* the model in double on weights w (w1, b1, w2, b2 in order); with bound,
 * also sum |w2| (|x| |w1| + |b1|) + |b2|, the scale of weight errors */
static void forward_ref(const double *w, int i, double *pred, double *bound)
{
    const double *w1 = w, *b1 = w1 + I * H, *w2 = b1 + H, *b2 = w2 + H * O;
    for (int o = 0; o < O; o++) {
        pred[o] = b2[o];
        bound[o] = fabs(b2[o]);
    }
    for (int j = 0; j < H; j++) {
        double s = b1[j], a = fabs(b1[j]);
        for (int k = 0; k < I; k++) {
            s += x[i * I + k] * w1[k * H + j];
            a += fabs(x[i * I + k] * w1[k * H + j]);
        }
        double t = tanh(s);
        for (int o = 0; o < O; o++) {
            pred[o] += t * w2[j * O + o];
            bound[o] += fabs(w2[j * O + o]) * (1 + a);
        }
    }
}

/* the instance's weights, tensor after tensor, by their offsets */
static void gather(half_weights *m, uint16_t *w)
{
    const dlrt_model_info *info = half_weights_info();
    for (int p = 0; p < info->num_params; p++) {
        size_t n = (size_t)dlrt_tensor_count(&info->params[p], 0, 0);
        memcpy(w, (const char *)m + info->params[p].offset, n * sizeof *w);
        w += n;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    data();
    const dlrt_model_info *info = half_weights_info();
    expect("param dtype", info->param_dtype == DTYPE && info->num_params == 4);
    /* the f32 file as it is */
    static float w32[NW];
    dlrt_tensor_desc d[4];
    void *dst[4];
    for (int p = 0, at = 0; p < 4; p++) {
        d[p] = info->params[p].desc;
        d[p].dtype = DLRT_F32;
        dst[p] = w32 + at;
        at += (int)dlrt_tensor_count(&info->params[p], 0, 0);
    }
    expect("f32 file read as f32",
           dlrt_checkpoint_load(argv[1], d, dst, 4, DLRT_CKPT_ALLOW_EXTRA, NULL, NULL) == 0);
    half_weights *m = half_weights_create(1);
    expect("load narrows", half_weights_load(m, argv[1]) == 0);
    static uint16_t hw[NW];
    gather(m, hw);
    expect("NAME_params: one array of 2-byte weights",
           memcmp(half_weights_params(m), hw, sizeof hw) == 0);
    static double wr[NW], w64[NW];
    for (int i = 0; i < NW; i++) {
        expect("weight rounded to nearest even", hw[i] == NARROW(w32[i]));
        wr[i] = WIDEN(hw[i]);
        w64[i] = w32[i];
    }
    expect("forward", half_weights_forward(m, B, x, out) == 0);
    float out32[B * O];
    FILE *f = fopen(argv[2], "rb");
    expect("f32 outputs read", f && fread(out32, sizeof out32, 1, f) == 1);
    if (f)
        fclose(f);
    for (int i = 0; i < B; i++) {
        double want[O], bound[O], full[O], unused[O];
        forward_ref(wr, i, want, bound);
        forward_ref(w64, i, full, unused);
        for (int o = 0; o < O; o++) {
            near("pred vs double on the rounded weights", i * O + o, out[i * O + o], want[o], 1e-5);
            /* each weight off by at most EPS relative, tanh 1-Lipschitz */
            double tol = 2 * EPS * bound[o] + 1e-5;
            expect("pred within the format's bound of the f32 model",
                   fabs(out[i * O + o] - out32[i * O + o]) <= tol);
            near("f32 model's outputs", i * O + o, out32[i * O + o], full[o], 1e-5);
        }
    }
    /* the half checkpoint: 2 bytes a weight */
    expect("save", half_weights_save(m, argv[3]) == 0);
    struct stat st32, st16;
    expect("stat", stat(argv[1], &st32) == 0 && stat(argv[3], &st16) == 0);
    expect("half file holds 2 bytes a weight (and a header)",
           st16.st_size > 2 * NW && st16.st_size < 2 * NW + 1024 && st32.st_size > 4 * NW);
    static uint16_t back[NW];
    for (int p = 0, at = 0; p < 4; p++) {
        d[p].dtype = DTYPE;
        dst[p] = back + at;
        at += (int)dlrt_tensor_count(&info->params[p], 0, 0);
    }
    expect("half file read as half",
           dlrt_checkpoint_load(argv[3], d, dst, 4, DLRT_CKPT_ALLOW_EXTRA, NULL, NULL) == 0);
    expect("same bits in the file", memcmp(back, hw, sizeof back) == 0);
    d[0].dtype = DLRT_F32;
    expect("half file is not f32", dlrt_checkpoint_load(argv[3], d, dst, 4, DLRT_CKPT_ALLOW_EXTRA,
                                                        NULL, NULL) == DLRT_EMISMATCH);
    half_weights *m2 = half_weights_create(2);
    expect("load half", half_weights_load(m2, argv[3]) == 0);
    gather(m2, back);
    expect("same weights", memcmp(back, hw, sizeof back) == 0);
    half_weights_destroy(m2);
    half_weights_destroy(m);
    return failures != 0;
}
#endif

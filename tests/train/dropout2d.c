/* dropout2d in training (dropout2d.dl, p = 0.3, x = 1 and w = 1): the
 * gradient of w at batch 1 is the mask scaled by 1 / (1 - p). Every
 * element is 0 or 1 / 0.7, the 6 elements of each channel alike (one draw
 * per sample and channel), the dropped fraction of the 1024 channels is p
 * within 5 standard deviations, and the next step draws another mask. At
 * batch 2, sample 1 draws its own channels (its mask differs from sample
 * 0's, shown by a batch whose sample 0 is zero), and sample 0's mask does
 * not depend on the batch size. forward (inference) is the identity. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "drop2d.h"

enum { C = 1024, S = 6, N = C * S };

static float ones[2 * N];

/* the channels' mask of gradient g: 1 kept, 0 dropped; -1 if an element
 * is neither or a channel is mixed */
static int mask_of(const float *g, unsigned char *mask, int *dropped)
{
    *dropped = 0;
    for (int c = 0; c < C; c++) {
        for (int i = 0; i < S; i++) {
            float v = g[c * S + i];
            int keep = fabsf(v - 1.0f / 0.7f) < 1e-6f;
            if (!keep && v != 0.0f)
                return -1;
            if (i == 0)
                mask[c] = (unsigned char)keep;
            else if (mask[c] != keep)
                return -1;
        }
        *dropped += !mask[c];
    }
    return 0;
}

int main(void)
{
    for (int i = 0; i < 2 * N; i++)
        ones[i] = 1;
    drop2d *a = drop2d_create(1), *b = drop2d_create(1);
    expect("create", a && b);
    if (!a || !b)
        return 1;
    unsigned char m[2][C];
    float loss;
    double sd = sqrt(C * 0.3 * 0.7);
    for (int s = 0; s < 2; s++) {
        int dropped;
        expect("compute_gradients", drop2d_compute_gradients(a, 1, ones, &loss) == 0);
        expect("whole channels of 0 or 1/(1-p)", mask_of(drop2d_grads(a), m[s], &dropped) == 0);
        fprintf(stderr, "step %d: %d of %d channels dropped (expect %.0f +- %.0f)\n", s, dropped,
                C, C * 0.3, sd);
        expect("dropped fraction near p", fabs(dropped - C * 0.3) < 5 * sd);
        expect("apply_gradients", drop2d_apply_gradients(a) == 0);
        expect("compute_gradients", drop2d_compute_gradients(b, 1, ones, &loss) == 0);
        expect("apply_gradients", drop2d_apply_gradients(b) == 0);
    }
    expect("another step, another mask", memcmp(m[0], m[1], C) != 0);

    /* a and b at the same step: a at batch 2 with sample 0 zero shows
     * sample 1's mask, b at batch 1 sample 0's, then a at batch 2 with
     * sample 1 zero shows sample 0's again */
    float x[2 * N];
    unsigned char m1[C], m0[C], m0b[C];
    int dropped;
    for (int i = 0; i < 2 * N; i++)
        x[i] = i < N ? 0.0f : 1.0f;
    expect("compute_gradients", drop2d_compute_gradients(a, 2, x, &loss) == 0);
    expect("sample 1: whole channels", mask_of(drop2d_grads(a), m1, &dropped) == 0);
    memset(drop2d_grads(a), 0, sizeof(float) * N);
    expect("compute_gradients", drop2d_compute_gradients(b, 1, ones, &loss) == 0);
    expect("sample 0: whole channels", mask_of(drop2d_grads(b), m0, &dropped) == 0);
    for (int i = 0; i < 2 * N; i++)
        x[i] = i < N ? 1.0f : 0.0f;
    expect("compute_gradients", drop2d_compute_gradients(a, 2, x, &loss) == 0);
    expect("sample 0 at batch 2", mask_of(drop2d_grads(a), m0b, &dropped) == 0);
    expect("sample 0's mask does not depend on the batch size", memcmp(m0, m0b, C) == 0);
    expect("each sample draws its own channels", memcmp(m0, m1, C) != 0);

    float out[2 * N];
    expect("forward", drop2d_forward(a, 2, x, out) == 0);
    for (int i = 0; i < 2 * N; i++)
        if (out[i] != x[i]) {
            expect("forward is the identity", 0);
            break;
        }
    drop2d_destroy(a);
    drop2d_destroy(b);
    return failures != 0;
}

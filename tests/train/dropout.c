/* Dropout in training (dropout.dl, p = 0.3, x = 1 and w = 1, batch 1): the
 * gradient of w is the mask scaled by 1 / (1 - p), so each element is 0 or
 * 1 / 0.7 and the dropped fraction is p within 5 standard deviations; the
 * training loss is the sum of the gradient; a second compute_gradients in
 * the same step draws the same mask (the gradient doubles exactly); the
 * next step draws another; the same seed gives the same masks, another
 * seed others; forward (inference) is the identity; batch element 0's mask
 * does not depend on the batch size. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "drop.h"

enum { N = 4096 };

static float ones[4 * N];

/* the mask of the gradient g (batch 1): 1 kept, 0 dropped; -1 if malformed */
static int mask_of(const float *g, unsigned char *mask, int *dropped)
{
    *dropped = 0;
    for (int i = 0; i < N; i++) {
        if (g[i] == 0.0f)
            mask[i] = 0, ++*dropped;
        else if (fabsf(g[i] - 1.0f / 0.7f) < 1e-6f)
            mask[i] = 1;
        else
            return -1;
    }
    return 0;
}

/* one step at batch 1: returns the mask's drop count, fills mask */
static int step(drop *m, unsigned char *mask)
{
    float loss;
    expect("compute_gradients", drop_compute_gradients(m, 1, ones, &loss) == 0);
    float *g = drop_grads(m);
    int dropped;
    expect("each gradient is 0 or 1/(1-p)", mask_of(g, mask, &dropped) == 0);
    double sum = 0;
    for (int i = 0; i < N; i++)
        sum += g[i];
    /* an f32 sum of 4096 terms */
    near("loss = sum of the kept inputs / (1 - p)", 0, loss, sum, 1e-4);
    /* the same step again: the same mask, so every gradient doubles */
    float first[N];
    memcpy(first, g, sizeof first);
    expect("compute_gradients", drop_compute_gradients(m, 1, ones, &loss) == 0);
    for (int i = 0; i < N; i++)
        if (g[i] != 2 * first[i]) {
            expect("the same mask within a step", 0);
            break;
        }
    expect("apply_gradients", drop_apply_gradients(m) == 0);
    return dropped;
}

int main(void)
{
    for (int i = 0; i < 4 * N; i++)
        ones[i] = 1;
    drop *a = drop_create(1), *b = drop_create(1), *c = drop_create(2);
    expect("create", a && b && c);
    if (!a || !b || !c)
        return 1;
    unsigned char ma[3][N], mb[N], mc[N];
    double sd = sqrt(N * 0.3 * 0.7);
    for (int s = 0; s < 3; s++) {
        int dropped = step(a, ma[s]);
        fprintf(stderr, "step %d: %d of %d dropped (expect %.0f +- %.0f)\n", s, dropped, N, N * 0.3,
                sd);
        expect("dropped fraction near p", fabs(dropped - N * 0.3) < 5 * sd);
        step(b, mb);
        step(c, mc);
        expect("the same seed, the same mask", memcmp(ma[s], mb, N) == 0);
        expect("another seed, another mask", memcmp(ma[s], mc, N) != 0);
    }
    expect("another step, another mask", memcmp(ma[0], ma[1], N) != 0);
    expect("another step, another mask", memcmp(ma[1], ma[2], N) != 0);

    /* at the same step, a at batch 4 with only element 0 nonzero and b at
     * batch 1: batch element 0 has the same mask */
    float x0[4 * N], loss;
    for (int i = 0; i < 4 * N; i++)
        x0[i] = i < N ? 1.0f : 0.0f;
    unsigned char m4[N], m1[N];
    int dropped;
    expect("step", drop_step(a) == drop_step(b));
    expect("compute_gradients", drop_compute_gradients(a, 4, x0, &loss) == 0);
    expect("batch 4: 0 or 1/(1-p)", mask_of(drop_grads(a), m4, &dropped) == 0);
    expect("compute_gradients", drop_compute_gradients(b, 1, ones, &loss) == 0);
    expect("batch 1: 0 or 1/(1-p)", mask_of(drop_grads(b), m1, &dropped) == 0);
    expect("batch element 0's mask does not depend on the batch size", memcmp(m4, m1, N) == 0);
    /* forward is the identity */
    float out[4 * N];
    expect("forward", drop_forward(a, 4, x0, out) == 0);
    for (int i = 0; i < 4 * N; i++)
        if (out[i] != x0[i]) {
            expect("forward is the identity", 0);
            break;
        }
    drop_destroy(a);
    drop_destroy(b);
    drop_destroy(c);
    return failures != 0;
}

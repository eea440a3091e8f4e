/* Checked inputs (checks.dl), per entry point: an id outside the
 * embedding's table, a label outside the classes (reaching cross_entropy
 * through a slice), a NaN or infinite input, each given to train_step,
 * compute_gradients, evaluate and forward (the direct and the generic
 * entry points), must return DLRT_ERANGE or DLRT_ENONFINITE, name the
 * input and the element in dlrt_last_error(), and leave the whole
 * instance block bit for bit as it was. A loss made infinite by finite
 * inputs must refuse the step with everything but the arena unchanged:
 * parameters, gradients, optimizer state, batch norm's running statistics
 * (which its kernel had moved), step and rate. apply_gradients refuses
 * non-finite hand-written gradients, the instance unchanged.
 * set_learning_rate refuses negative and non-finite rates.
 *
 *   run checks       the model compiled with checks (the default)
 *   run no-checks    compiled with --no-checks: the same bad labels give
 *                    rc 0 and a NaN loss, as the kernels define it */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "checks.h"

enum { B = 8, T = 4, F = 3 };

typedef struct {
    int32_t ids[B * T];
    float x[B * F];
    int32_t yy[B * 2];
} batch;

static void good_batch(batch *d, int step)
{
    for (int i = 0; i < B * T; i++)
        d->ids[i] = (int32_t)((i * 7 + step) % 10);
    for (int i = 0; i < B * F; i++)
        d->x[i] = (float)data_value(10 + (uint64_t)step, (uint64_t)i);
    for (int i = 0; i < B; i++) {
        d->yy[2 * i] = 0; /* never used: only column 1 is a label */
        d->yy[2 * i + 1] = (int32_t)((i + step) % 4);
    }
}

/* Every entry point on d must return code with the message naming want,
 * and leave m's whole block unchanged. */
static void refused_everywhere(checks *m, const batch *d, int code, const char *want,
                               int forward_takes_it)
{
    const dlrt_model_info *info = checks_info();
    unsigned char *before = state_copy(m, checks_STATE_BYTES);
    float loss = 12345, probs[B * 4];
    memset(probs, 0, sizeof probs);
    const void *in[] = {d->ids, d->x, d->yy};
    void *out[] = {probs};
    struct {
        const char *name;
        int rc;
    } calls[7];
    int n = 0;
    calls[n].name = "train_step";
    calls[n++].rc = checks_train_step(m, B, d->ids, d->x, d->yy, &loss);
    calls[n].name = "compute_gradients";
    calls[n++].rc = checks_compute_gradients(m, B, d->ids, d->x, d->yy, &loss);
    calls[n].name = "evaluate";
    calls[n++].rc = checks_evaluate(m, B, d->ids, d->x, d->yy, &loss);
    calls[n].name = "compute_gradients_generic";
    calls[n++].rc = info->compute_gradients(m, B, in, &loss);
    calls[n].name = "evaluate_generic";
    calls[n++].rc = info->evaluate(m, B, in, &loss);
    if (forward_takes_it) {
        calls[n].name = "forward";
        calls[n++].rc = checks_forward(m, B, d->ids, d->x, probs);
        calls[n].name = "forward_generic";
        calls[n++].rc = info->forward(m, B, in, out);
    }
    for (int i = 0; i < n; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s: rc %d, want %d (%s)", calls[i].name, calls[i].rc, code,
                 want);
        expect(what, calls[i].rc == code);
    }
    char what[400];
    snprintf(what, sizeof what, "message '%s' should contain '%s'", dlrt_last_error(), want);
    expect(what, strstr(dlrt_last_error(), want) != NULL);
    expect("instance unchanged", memcmp(before, m, checks_STATE_BYTES) == 0);
    expect("loss not written", loss == 12345);
    for (int i = 0; i < B * 4; i++)
        expect("outputs not written", probs[i] == 0);
    free(before);
}

/* What a refused step must keep: the whole instance block but the arena
 * of intermediate values (the kernels ran before the loss was checked):
 * params, grads, optimizer state, the running statistics batch_norm
 * updates as it runs, step and rate. */
static int same_training_state(const checks *m, const unsigned char *s)
{
    const dlrt_model_info *info = checks_info();
    const dlrt_instance *h = (const void *)m, *o = (const void *)s;
    const unsigned char *b = (const void *)m;
    return same_but_arena(info, m, s, checks_STATE_BYTES) &&
           memcmp(b + info->states_offset, s + info->states_offset, info->states_bytes) == 0 &&
           h->step == o->step && h->lr == o->lr;
}

static float *param(checks *m, const char *name)
{
    const dlrt_model_info *info = checks_info();
    for (int i = 0; i < info->num_params; i++)
        if (strcmp(info->params[i].desc.name, name) == 0)
            return (float *)((char *)m + info->params[i].offset);
    abort();
}

/* name's gradient in checks_grads(m), laid out like the parameters */
static float *grad(checks *m, const char *name)
{
    const dlrt_model_info *info = checks_info();
    return (float *)((char *)param(m, name) - info->params_offset + info->grads_offset);
}

static void with_checks(checks *m)
{
    batch d;
    good_batch(&d, 0);
    d.yy[2 * 3 + 1] = 4; /* classes are 0..3 */
    refused_everywhere(m, &d, DLRT_ERANGE,
                       "input 'yy' (labels of cross_entropy): element [3, 1] (sample 3) is 4, "
                       "outside 0..3",
                       0);
    d.yy[7] = -1;
    refused_everywhere(m, &d, DLRT_ERANGE, "element [3, 1] (sample 3) is -1", 0);
    good_batch(&d, 0);
    d.yy[0] = 1000; /* column 0 goes nowhere, but the input is checked whole */
    refused_everywhere(m, &d, DLRT_ERANGE, "element [0, 0] (sample 0) is 1000", 0);

    good_batch(&d, 0);
    d.ids[2 * T + 3] = 10;
    refused_everywhere(m, &d, DLRT_ERANGE,
                       "input 'ids' (ids of embedding): element [2, 3] (sample 2) is 10, outside "
                       "0..9",
                       1);
    d.ids[2 * T + 3] = INT32_MIN;
    refused_everywhere(m, &d, DLRT_ERANGE, "is -2147483648", 1);

    const float bad[] = {NAN, INFINITY, -INFINITY};
    const char *said[] = {"is NaN", "is +inf", "is -inf"};
    for (int k = 0; k < 3; k++) {
        good_batch(&d, 0);
        d.x[1 * F + 2] = bad[k];
        char want[80];
        snprintf(want, sizeof want, "input 'x': element [1, 2] (sample 1) %s", said[k]);
        refused_everywhere(m, &d, DLRT_ENONFINITE, want, 1);
    }

    /* finite inputs, an infinite product: the step is refused with
     * nothing of the training state changed, and training goes on */
    good_batch(&d, 0);
    for (int i = 0; i < F; i++)
        d.x[i] = 3e38f;
    float *wx = param(m, "wx");
    float saved[F * 6];
    memcpy(saved, wx, sizeof saved);
    for (int i = 0; i < F * 6; i++)
        wx[i] = 1;
    unsigned char *before = state_copy(m, checks_STATE_BYTES);
    float loss = 12345;
    expect("overflow: train_step refused",
           checks_train_step(m, B, d.ids, d.x, d.yy, &loss) == DLRT_ENONFINITE);
    expect("overflow: compute_gradients refused",
           checks_compute_gradients(m, B, d.ids, d.x, d.yy, &loss) == DLRT_ENONFINITE);
    expect("overflow: loss named",
           strstr(dlrt_last_error(), "loss is NaN") || strstr(dlrt_last_error(), "gradient of"));
    expect("overflow: training state unchanged", same_training_state(m, before));
    expect("overflow: loss not written", loss == 12345);
    free(before);
    memcpy(wx, saved, sizeof saved);
    good_batch(&d, 1);
    expect("a good step after", checks_train_step(m, B, d.ids, d.x, d.yy, &loss) == 0);
    expect("its loss finite", isfinite(loss));

    /* hand-written gradients: apply_gradients refuses a non-finite one
     * and changes nothing, then applies finite ones */
    float *gb2 = grad(m, "b2");
    for (int k = 0; k < 3; k++) {
        memset(checks_grads(m), 0, checks_info()->grads_bytes);
        gb2[2] = bad[k];
        before = state_copy(m, checks_STATE_BYTES);
        expect("apply_gradients refused", checks_apply_gradients(m) == DLRT_ENONFINITE);
        char want[80];
        snprintf(want, sizeof want, "gradient of 'b2': element 2 %s", said[k]);
        char what[300];
        snprintf(what, sizeof what, "message '%s' should contain '%s'", dlrt_last_error(), want);
        expect(what, strstr(dlrt_last_error(), want) != NULL);
        expect("apply_gradients: instance unchanged",
               memcmp(before, m, checks_STATE_BYTES) == 0);
        free(before);
    }
    /* the last of big's 51200 scalars, in the last of the scan's tasks,
     * at two threads (codegen/grads.c) */
    expect("two threads", dlrt_set_num_threads(2) == DLRT_OK);
    memset(checks_grads(m), 0, checks_info()->grads_bytes);
    grad(m, "big")[128 * 400 - 1] = INFINITY;
    before = state_copy(m, checks_STATE_BYTES);
    expect("apply_gradients refused: big", checks_apply_gradients(m) == DLRT_ENONFINITE);
    expect("big's element named",
           strstr(dlrt_last_error(), "gradient of 'big': element 51199 is +inf") != NULL);
    expect("big: instance unchanged", memcmp(before, m, checks_STATE_BYTES) == 0);
    free(before);
    memset(checks_grads(m), 0, checks_info()->grads_bytes);
    gb2[2] = 0.5f;
    int64_t step = checks_step(m);
    float b2 = param(m, "b2")[2];
    expect("finite gradients applied", checks_apply_gradients(m) == 0);
    expect("the step advances", checks_step(m) == step + 1);
    expect("b2 moves", param(m, "b2")[2] != b2);

    /* the learning rate */
    float lr = checks_learning_rate(m);
    const float rates[] = {-1, -0.0f + -1e-30f, NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 5; i++) {
        expect("bad rate refused", checks_set_learning_rate(m, rates[i]) == DLRT_EINVAL);
        expect("rate unchanged", checks_learning_rate(m) == lr);
    }
    expect("NULL refused", checks_set_learning_rate(NULL, 0.1f) == DLRT_EINVAL);
    expect("rate 0 accepted", checks_set_learning_rate(m, 0) == 0 && checks_learning_rate(m) == 0);
    expect("rate 0.02 accepted",
           checks_set_learning_rate(m, 0.02f) == 0 && checks_learning_rate(m) == 0.02f);
}

static void without_checks(checks *m)
{
    batch d;
    good_batch(&d, 0);
    d.yy[2 * 3 + 1] = 4;
    float loss = 0;
    expect("no checks: rc 0", checks_evaluate(m, B, d.ids, d.x, d.yy, &loss) == 0);
    expect("no checks: NaN loss", isnan(loss));
    expect("no checks: rates still checked", checks_set_learning_rate(m, -1) == DLRT_EINVAL);
    memset(checks_grads(m), 0, checks_info()->grads_bytes);
    checks_grads(m)[0] = NAN;
    expect("no checks: a NaN gradient applied", checks_apply_gradients(m) == 0);
}

int main(int argc, char **argv)
{
    int with = check_mode(argc, argv);
    if (with < 0)
        return 2;
    checks *m = checks_create(3);
    if (!m)
        return 1;
    /* a few steps first: moments, running statistics and a step to keep */
    batch d;
    float loss;
    for (int s = 0; s < 3; s++) {
        good_batch(&d, s);
        expect("good step", checks_train_step(m, B, d.ids, d.x, d.yy, &loss) == 0);
    }
    if (with)
        with_checks(m);
    else
        without_checks(m);
    checks_destroy(m);
    return report();
}

/* The checks' f64 path (checks_f64.dl): the scans of f64 inputs, loss and
 * gradients test the 64-bit exponent, so finite values beyond f32's range
 * (1e300, the largest double, subnormals) pass and NaN and infinities
 * anywhere are refused with the element named; a loss that overflows from
 * finite inputs refuses the step with everything but the arena unchanged,
 * the f64 running statistics that batch_norm's kernel moved included;
 * apply_gradients refuses a non-finite f64 gradient, the instance
 * unchanged. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "checks_f64.h"

enum { B = 4, F = 3, O = 2 };

static void good_batch(double *x, double *y, int step)
{
    for (int i = 0; i < B * F; i++)
        x[i] = data_value(20 + (uint64_t)step, (uint64_t)i);
    for (int i = 0; i < B * O; i++)
        y[i] = data_value(40 + (uint64_t)step, (uint64_t)i);
}

static void expect_message(const char *want)
{
    char what[400];
    snprintf(what, sizeof what, "message '%s' should contain '%s'", dlrt_last_error(), want);
    expect(what, strstr(dlrt_last_error(), want) != NULL);
}

static double *param(checks_f64 *m, const char *name)
{
    const dlrt_model_info *info = checks_f64_info();
    for (int i = 0; i < info->num_params; i++)
        if (strcmp(info->params[i].desc.name, name) == 0)
            return (double *)((char *)m + info->params[i].offset);
    abort();
}

int main(void)
{
    checks_f64 *m = checks_f64_create(5);
    if (!m)
        return 1;
    const dlrt_model_info *info = checks_f64_info();
    expect("the model has running statistics", info->states_bytes == 2 * 4 * sizeof(double));
    double x[B * F], y[B * O], out[B * O], loss;
    for (int s = 0; s < 3; s++) {
        good_batch(x, y, s);
        expect("good step", checks_f64_train_step(m, B, x, y, &loss) == 0 && isfinite(loss));
    }

    /* finite doubles that f32 cannot hold are finite */
    const double big[] = {1e300, -DBL_MAX, DBL_MIN / 4, -0.0};
    for (int k = 0; k < 4; k++) {
        good_batch(x, y, 0);
        x[5] = big[k];
        expect("a finite f64 input is accepted", checks_f64_forward(m, B, x, out) == 0);
    }

    /* NaN and infinities, in an input of each entry point and in the
     * loss's target, refused with the instance unchanged */
    const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    const char *said[] = {"is NaN", "is NaN", "is +inf", "is -inf"};
    for (int k = 0; k < 4; k++) {
        good_batch(x, y, 0);
        x[2 * F + 1] = bad[k];
        unsigned char *before = state_copy(m, checks_f64_STATE_BYTES);
        char want[80];
        snprintf(want, sizeof want, "input 'x': element [2, 1] (sample 2) %s", said[k]);
        expect("forward refused", checks_f64_forward(m, B, x, out) == DLRT_ENONFINITE);
        expect_message(want);
        expect("train_step refused", checks_f64_train_step(m, B, x, y, &loss) == DLRT_ENONFINITE);
        expect_message(want);
        expect("evaluate refused", checks_f64_evaluate(m, B, x, y, &loss) == DLRT_ENONFINITE);
        expect("instance unchanged", memcmp(before, m, checks_f64_STATE_BYTES) == 0);
        good_batch(x, y, 0);
        y[B * O - 1] = bad[k];
        snprintf(want, sizeof want, "input 'y': element [3, 1] (sample 3) %s", said[k]);
        expect("compute_gradients refused",
               checks_f64_compute_gradients(m, B, x, y, &loss) == DLRT_ENONFINITE);
        expect_message(want);
        expect("instance unchanged (target)", memcmp(before, m, checks_f64_STATE_BYTES) == 0);
        free(before);
    }

    /* finite inputs whose product overflows: x @ w is +inf, batch norm
     * makes NaN of it; the step is refused after the kernels ran */
    good_batch(x, y, 0);
    for (int i = 0; i < F; i++)
        x[i] = DBL_MAX;
    double *w = param(m, "w"), saved[F * 4];
    memcpy(saved, w, sizeof saved);
    for (int i = 0; i < F * 4; i++)
        w[i] = 1;
    unsigned char *before = state_copy(m, checks_f64_STATE_BYTES);
    loss = 12345;
    expect("overflow: train_step refused",
           checks_f64_train_step(m, B, x, y, &loss) == DLRT_ENONFINITE);
    expect_message("loss is NaN");
    expect("overflow: compute_gradients refused",
           checks_f64_compute_gradients(m, B, x, y, &loss) == DLRT_ENONFINITE);
    expect("overflow: all but the arena unchanged, running statistics included",
           same_but_arena(checks_f64_info(), m, before, checks_f64_STATE_BYTES));
    expect("overflow: loss not written", loss == 12345);
    free(before);
    memcpy(w, saved, sizeof saved);
    good_batch(x, y, 1);
    expect("a good step after", checks_f64_train_step(m, B, x, y, &loss) == 0 && isfinite(loss));

    /* hand-written f64 gradients */
    double *gw2 = (double *)((char *)param(m, "w2") - info->params_offset + info->grads_offset);
    for (int k = 0; k < 4; k++) {
        memset(checks_f64_grads(m), 0, info->grads_bytes);
        gw2[5] = bad[k];
        before = state_copy(m, checks_f64_STATE_BYTES);
        expect("apply_gradients refused", checks_f64_apply_gradients(m) == DLRT_ENONFINITE);
        char want[80];
        snprintf(want, sizeof want, "gradient of 'w2': element 5 %s", said[k]);
        expect_message(want);
        expect("apply_gradients: instance unchanged",
               memcmp(before, m, checks_f64_STATE_BYTES) == 0);
        free(before);
    }
    gw2[5] = 1e300; /* finite: applied */
    int64_t step = checks_f64_step(m);
    expect("a finite f64 gradient applied", checks_f64_apply_gradients(m) == 0);
    expect("the step advances", checks_f64_step(m) == step + 1);
    checks_f64_destroy(m);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}

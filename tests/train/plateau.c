/* Drives reduce_on_plateau on optim.dl.in (model optim, parameters of
 * type REAL):
 *
 *   plateau 'TRAIN OPTIONS' CKPT METRIC...
 *
 * Each metric is one "epoch": a train_step, whose rate must be the base
 * rate the reference holds, then optim_report_metric(m, METRIC), after
 * which NAME_learning_rate must be the reference's new base rate
 * (ref_plateau_report: ReduceLROnPlateau.step as PyTorch's source reads).
 * Halfway the instance is saved; the checkpoint must carry the plateau's
 * state, and a fresh instance loaded from it must then follow the same
 * rates as the original to the end. Bad reports (NULL, NaN, infinities)
 * must fail and change nothing. With any other schedule, reports must
 * change nothing. At least one report must have lowered the rate and
 * one must not have (so the test cannot pass by doing nothing). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "optim.h"
#include "reference.h"

#define IS_F64 (sizeof(REAL) == 8)
#define TOL_LR (IS_F64 ? 1e-15 : 1.2e-7)

static void one_step(optim *m, int t)
{
    REAL x[4 * 3], y[4 * 2], loss;
    for (int i = 0; i < 4 * 3; i++)
        x[i] = (REAL)data_value(10 + (uint64_t)t, (uint64_t)i);
    for (int i = 0; i < 4 * 2; i++)
        y[i] = (REAL)data_value(20 + (uint64_t)t, (uint64_t)i);
    expect("train_step", optim_train_step(m, 4, x, y, &loss) == 0);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s 'TRAIN OPTIONS' CKPT METRIC...\n", argv[0]);
        return 2;
    }
    TrainSpec spec;
    char err[200];
    if (ref_parse(argv[1], &spec, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 2;
    }
    int plateau = spec.sched == SCHED_REDUCE_ON_PLATEAU;
    int n = argc - 3, half = n / 2, lowered = 0, kept = 0;
    const char *ckpt = argv[2];
    expect("info: plateau constants exactly with reduce_on_plateau",
           (optim_info()->plateau != NULL) == plateau);

    optim *m = optim_create(3), *resumed = NULL;
    expect("create", m != NULL);
    if (!m)
        return 1;
    RefPlateau ref;
    ref_plateau_init(&spec, &ref);
    double base = ref_initial_base(&spec);

    /* rejected reports change nothing */
    expect("NULL instance", optim_report_metric(NULL, 1) == DLRT_EINVAL);
    expect("NaN metric", optim_report_metric(m, NAN) == DLRT_ENONFINITE);
    expect("infinite metric", optim_report_metric(m, INFINITY) == DLRT_ENONFINITE);
    expect("-infinite metric", optim_report_metric(m, -INFINITY) == DLRT_ENONFINITE);

    for (int e = 0; e < n; e++) {
        double metric = strtod(argv[3 + e], NULL);
        optim *both[2] = {m, resumed};
        for (int k = 0; k < 2 && both[k]; k++) {
            near("rate of the epoch's step", e * 10 + k, optim_learning_rate(both[k]),
                 (REAL)ref_rate(&spec, base, e), TOL_LR);
            one_step(both[k], e);
            expect("report", optim_report_metric(both[k], metric) == 0);
        }
        double before = base;
        if (plateau)
            base = ref_plateau_report(&spec, &ref, base, metric);
        lowered += base < before;
        kept += base == before;
        for (int k = 0; k < 2 && both[k]; k++)
            near("rate after the report", e * 10 + k, optim_learning_rate(both[k]),
                 (REAL)ref_rate(&spec, base, e + 1), TOL_LR);
        if (e + 1 == half) {
            expect("save", optim_save(m, ckpt) == 0);
            char buf[64];
            if (plateau) {
                expect("plateau_best saved", dlrt_checkpoint_meta(ckpt, "plateau_best", buf,
                                                                   sizeof buf) > 0 &&
                                                 strtod(buf, NULL) == ref.best);
                expect("plateau_bad saved",
                       dlrt_checkpoint_meta(ckpt, "plateau_bad", buf, sizeof buf) > 0 &&
                           atoll(buf) == ref.bad);
                expect("plateau_cooldown saved",
                       dlrt_checkpoint_meta(ckpt, "plateau_cooldown", buf, sizeof buf) > 0 &&
                           atoll(buf) == ref.cooldown);
            } else {
                expect("no plateau state without reduce_on_plateau",
                       dlrt_checkpoint_meta(ckpt, "plateau_best", buf, sizeof buf) <= 0);
            }
            resumed = optim_create(4);
            expect("create resumed", resumed != NULL);
            if (resumed)
                expect("load", optim_load(resumed, ckpt) == 0);
        }
    }
    if (plateau)
        expect("some report lowered the rate and some did not", lowered > 0 && kept > 0);
    else
        expect("reports change nothing without reduce_on_plateau", lowered == 0);
    optim_destroy(m);
    optim_destroy(resumed);
    if (failures)
        fprintf(stderr, "%s: %d failures\n", argv[1], failures);
    return failures != 0;
}

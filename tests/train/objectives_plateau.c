/* reduce_on_plateau per objective (objectives_plateau.dl): PyTorch's
 * ReduceLROnPlateau with patience 1 halves the rate at the third report
 * of an unchanged metric (the first sets the best, then two bad ones).
 * Reports to objective `two` lower only its rate; its state survives a
 * save and load. */
#include "check.h"
#include "plateau2.h"

int main(int argc, char **argv)
{
    plateau2 *m = plateau2_create(1);
    expect("create", m != NULL);
    if (!m)
        return 1;
    for (int i = 0; i < 3; i++)
        expect("report two", plateau2_report_metric_two(m, 1.0) == 0);
    near("two halved", 0, plateau2_learning_rate_two(m), 0.5, 0);
    near("one untouched", 0, plateau2_learning_rate_one(m), 0.1, 0);
    expect("one reports", plateau2_report_metric_one(m, 1.0) == 0);
    near("one still", 0, plateau2_learning_rate_one(m), 0.1, 0);
    /* one bad report pending in two, none of its own in one: saved */
    expect("report two again", plateau2_report_metric_two(m, 1.0) == 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/p.ckpt", argc > 1 ? argv[1] : ".");
    expect("save", plateau2_save(m, path) == 0);
    plateau2 *r = plateau2_create(2);
    expect("load", r && plateau2_load(r, path) == 0);
    if (!r)
        return 1;
    near("loaded rate", 0, plateau2_learning_rate_two(r), 0.5, 0);
    /* the next bad report is the second in a row: halves again, in both */
    expect("report both",
           plateau2_report_metric_two(m, 1.0) == 0 && plateau2_report_metric_two(r, 1.0) == 0);
    near("m quartered", 0, plateau2_learning_rate_two(m), 0.25, 0);
    near("r quartered", 0, plateau2_learning_rate_two(r), 0.25, 0);
    /* one's best (1.0) came back too: two bad reports halve its rate
     * (from a reset state, best = inf, the first would be an improvement) */
    expect("one in r", plateau2_report_metric_one(r, 1.0) == 0);
    near("r one after one", 0, plateau2_learning_rate_one(r), 0.1, 0);
    expect("one in r again", plateau2_report_metric_one(r, 1.0) == 0);
    near("r one halved", 0, plateau2_learning_rate_one(r), 0.05, 0);
    expect("bad objective", dlrt_model_report_metric_objective(m, 2, 1.0) == DLRT_EINVAL);
    expect("non-finite", plateau2_report_metric_two(m, NAN) == DLRT_ENONFINITE);
    plateau2_destroy(m);
    plateau2_destroy(r);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}

/* Drives one case of flush.dl.in (model flush, scalars of type REAL):
 *
 *   flush DECAY...
 *
 * One step with gradients of four magnitudes (x = 1, 1e-2, 1e-4, 1e-6),
 * then steps with x = 0, whose gradients are exactly 0: each optimizer
 * slot k (in the model's order) then only decays, s' = DECAY[k] s, in
 * the type's arithmetic. Every step, every slot must be that product
 * while it is a normal number and exactly 0 from the step it would fall
 * below the smallest normal one (docs/TRAINING.md): never subnormal.
 * Every slot ends at 0. */
#include <float.h>
#include <math.h>

#include "check.h"
#include "flush.h"

enum { N = 4, STEPS = 1200 };

#define IS_F64 (sizeof(REAL) == 8)
#define SMALLEST (IS_F64 ? DBL_MIN : FLT_MIN)

int main(int argc, char **argv)
{
    const dlrt_model_info *info = flush_info();
    if (info->num_opt > 8 || argc - 1 != info->num_opt) {
        fprintf(stderr, "flush: %d decays given, the model has %d slots\n", argc - 1,
                info->num_opt);
        return 2;
    }
    REAL decay[8];
    for (int k = 0; k < info->num_opt; k++)
        decay[k] = (REAL)strtod(argv[k + 1], NULL);
    flush *m = flush_create(1);
    expect("create", m != NULL);
    if (!m)
        return 1;
    REAL x[N] = {1, 1e-2, 1e-4, 1e-6}, y[N] = {0}, loss;
    expect("first step", flush_train_step(m, x, y, &loss) == 0);
    memset(x, 0, sizeof x);
    REAL prev[8][N];
    int flushed = 0;
    for (int k = 0; k < info->num_opt; k++)
        memcpy(prev[k], (char *)m + info->opt[k].offset, sizeof prev[k]);
    for (int s = 1; s < STEPS; s++) {
        expect("step", flush_train_step(m, x, y, &loss) == 0);
        for (int k = 0; k < info->num_opt; k++) {
            const REAL *slot = (const REAL *)((const char *)m + info->opt[k].offset);
            for (int i = 0; i < N; i++) {
                REAL want = decay[k] * prev[k][i];
                if (fabs((double)want) < SMALLEST) {
                    flushed += want != 0;
                    want = 0;
                }
                if (slot[i] != want || fpclassify(slot[i]) == FP_SUBNORMAL) {
                    if (failures < 20)
                        fprintf(stderr, "step %d, %s[%d]: %.9g, want %.9g\n", s,
                                info->opt[k].desc.name, i, (double)slot[i], (double)want);
                    failures++;
                }
                prev[k][i] = slot[i];
            }
        }
    }
    for (int k = 0; k < info->num_opt; k++)
        for (int i = 0; i < N; i++)
            expect("every slot decayed to 0", prev[k][i] == 0);
    expect("some slot flushed from a normal value", flushed >= N * info->num_opt);
    flush_destroy(m);
    return report();
}

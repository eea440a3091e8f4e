/* XOR converges: from each of three seeds, full-batch adam steps on the
 * four points bring the training loss below 0.01 within MAX_STEPS; then
 * the inference-mode loss (evaluate) is below 0.01 too, it agrees with
 * the binary cross-entropy computed here from forward's probabilities, and
 * every point is classified with a margin. */
#include <math.h>

#include "check.h"
#include "xor.h"

enum { MAX_STEPS = 1000 };

int main(void)
{
    const float x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, y[4] = {0, 1, 1, 0};
    for (uint64_t seed = 1; seed <= 3; seed++) {
        xor*m = xor_create(seed);
        expect("create", m != NULL);
        if (!m)
            return 1;
        float first = 0, loss = 1;
        int steps = 0;
        while (steps < MAX_STEPS && loss >= 0.01f) {
            expect("train_step", xor_train_step(m, 4, x, y, &loss) == 0);
            if (steps++ == 0)
                first = loss;
        }
        fprintf(stderr, "seed %d: loss %.3g -> %.3g in %d steps\n", (int)seed, first, loss, steps);
        expect("the first loss is that of an untrained model", first > 0.3f);
        expect("training loss below 0.01", loss < 0.01f);
        float eval, prob[4];
        expect("evaluate", xor_evaluate(m, 4, x, y, &eval) == 0);
        expect("forward", xor_forward(m, 4, x, prob) == 0);
        double bce = 0;
        for (int i = 0; i < 4; i++) {
            bce -= (y[i] * log(prob[i]) + (1 - y[i]) * log(1 - prob[i])) / 4;
            expect("classified with a margin", fabsf(prob[i] - y[i]) < 0.1f);
        }
        expect("evaluated loss below 0.01", eval < 0.01f);
        near("evaluated loss = bce of the probabilities", (int)seed, eval, bce, 1e-4);
        expect("step counter", xor_step(m) == steps);
        xor_destroy(m);
    }
    return failures != 0;
}

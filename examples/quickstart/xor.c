/* The README's quick start: trains the compiled XOR model (xor.dl) for 500
 * steps and prints its predictions; exits 1 if one of them is wrong. */
#include <stdio.h>

#include "xor.h"

int main(void)
{
    const float x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}}, y[4] = {0, 1, 1, 0};
    xor *m = xor_create(1);
    if (!m)
        return 1;
    float loss = 0, prob[4];
    for (int step = 0; step < 500; step++) {
        int rc = xor_train_step(m, 4, &x[0][0], y, &loss);
        if (rc < 0) {
            fprintf(stderr, "train_step: %s\n", dlrt_strerror(rc));
            return 1;
        }
    }
    xor_forward(m, 4, &x[0][0], prob);
    printf("loss after 500 steps: %.4f\n", loss);
    int wrong = 0;
    for (int i = 0; i < 4; i++) {
        printf("%g xor %g = %.3f\n", x[i][0], x[i][1], prob[i]);
        wrong += (prob[i] > 0.5f) != (y[i] > 0.5f);
    }
    xor_destroy(m);
    return wrong != 0;
}

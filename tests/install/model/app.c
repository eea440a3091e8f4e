/* The out-of-tree projects' program: trains the classifier on four
 * separable points and checks that it learned them (exit 0) from an
 * installed dlc and libdlrt. */
#include <stdio.h>

#include "classifier.h"

int main(void)
{
    const float x[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
    const int32_t y[4] = {0, 1, 2, 0};
    classifier *m = classifier_create(1);
    if (!m)
        return 1;
    float loss = 0, probs[4][3];
    for (int step = 0; step < 200; step++)
        if (classifier_train_step(m, 4, &x[0][0], y, &loss) != 0)
            return 1;
    if (classifier_forward(m, 4, &x[0][0], &probs[0][0]) != 0)
        return 1;
    int right = 0;
    for (int i = 0; i < 4; i++)
        right += probs[i][y[i]] > 0.5f;
    printf("loss %.4f, %d of 4 right\n", loss, right);
    classifier_destroy(m);
    return right == 4 ? 0 : 1;
}

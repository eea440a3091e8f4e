/* crosscheck_NAME — the first steps of an MNIST classifier's compiled
 * training, for crosscheck.py to repeat in PyTorch from the same initial
 * weights on the same batches:
 *
 *   crosscheck_NAME DATA_DIR STEPS BATCH INIT.safetensors FINAL.safetensors
 *
 * saves the freshly initialized instance (seed 1) to INIT, trains STEPS
 * steps on the training images in file order (batch k is images
 * k*BATCH .. k*BATCH+BATCH-1, standardized as the demos do), prints each
 * step's loss, one per line, with 9 significant digits, and saves FINAL.
 * -DMODEL=NAME picks the model (examples/common/model.h). */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "crosscheck_" STR(MODEL) ": %s: %s\n", what, dlrt_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s DATA_DIR STEPS BATCH INIT FINAL\n", argv[0]);
        return 2;
    }
    long steps = strtol(argv[2], NULL, 10), batch = strtol(argv[3], NULL, 10);
    char err[256];
    dlrt_dataset train = {0};
    int rc = dlrt_mnist_load(argv[1], "train", DLRT_MNIST_NORMALIZE, &train, err, sizeof err);
    if (rc) {
        fprintf(stderr, "crosscheck_" STR(MODEL) ": %s\n", err);
        return 1;
    }
    if (steps < 1 || batch < 1 || batch > CAT(MODEL, _MAX_BATCH) || steps * batch > train.n)
        return fail("STEPS and BATCH", DLRT_EINVAL);
    Model *m = M(create)(1);
    if (!m)
        return fail("create", DLRT_ENOMEM);
    if ((rc = M(save)(m, argv[4])))
        return fail(argv[4], rc);
    for (long k = 0; k < steps; k++) {
        float loss;
        if ((rc = M(train_step)(m, (int)batch, train.x + k * batch * train.dim,
                                train.y + k * batch, &loss)))
            return fail("train_step", rc);
        printf("%.9g\n", (double)loss);
    }
    if ((rc = M(save)(m, argv[5])))
        return fail(argv[5], rc);
    M(destroy)(m);
    dlrt_dataset_free(&train);
    return 0;
}

/* train_mnist — trains an MNIST classifier compiled by dlc (the MLP of
 * examples/mnist, LeNet-5 of examples/lenet, the residual network of
 * examples/resnet, the VGG-, NiN-, GoogLeNet- and DenseNet-style networks
 * of examples/vgg, nin, googlenet and densenet) on the 60000 training
 * images and reports test accuracy after every epoch. The model is chosen when this file is
 * compiled: -DMODEL=lenet includes lenet.h and calls lenet_create, lenet_train_step,
 * ... The model takes x [B, 784] or [B, 1, 28, 28] (the same floats), the
 * labels y [B], and outputs probabilities [B, 10].
 *
 *   train_NAME [--data DIR] [--epochs N] [--steps N] [--batch N] [--seed N]
 *              [--threads N] [--checkpoint FILE] [--resume] [--min-accuracy PCT]
 *              [--log FILE]
 *
 * A checkpoint (parameters, Adam's moments, the step counter) is written
 * after every epoch. --resume loads it and carries on from the step it
 * holds: the batches of an epoch depend only on (seed, epoch), so a run
 * that stops and resumes visits the same batches in the same order and
 * ends with the same bits as one that never stopped. --min-accuracy makes
 * the exit status 1 when the final test accuracy is below PCT percent.
 * --steps stops each epoch after its first N batches (a short run, as the
 * tests use); a run with --steps resumes only with the same --steps.
 * --threads sets the threads each step uses (dlrt_set_num_threads; by
 * default DLRT_NUM_THREADS or every processor the process may use); the
 * results are the same bits at any count.
 * --log writes a CSV log (dlrt_log: the training loss every LOG_EVERY
 * steps, the test loss and accuracy after each epoch; appended to on
 * --resume) that scripts/plot-log.sh draws.
 *
 * Data-parallel (dist.h): `mpirun -np N train_NAME ...` trains on N ranks.
 * --batch is the global batch: every rank visits the same shuffled order
 * and takes its block of each batch, the gradients are averaged, and the
 * run follows the trajectory of one process with the same options (up to
 * the order of sums; batch norm and dropout act per rank). Rank 0 prints,
 * logs and writes the checkpoint; the test set is split across the ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "model.h" /* MODEL's generated API: M(create) is lenet_create */
#define MAX_BATCH CAT(MODEL, _MAX_BATCH)
#define EVAL_BATCH MAX_BATCH
#define LOG_EVERY 50

typedef struct {
    const char *data, *checkpoint, *log;
    int epochs, steps, batch, resume; /* steps: batches per epoch, 0: all */
    uint64_t seed;
    double min_accuracy; /* percent; < 0: no requirement */
} Options;

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--data DIR] [--epochs N] [--steps N] [--batch N] [--seed N]\n"
            "       [--threads N] [--checkpoint FILE] [--resume] [--min-accuracy PCT]\n"
            "       [--log FILE]\n",
            argv0);
    exit(2);
}

/* --batch may reach MAX_BATCH rows per rank */
static Options parse(int argc, char **argv, int ranks)
{
    Options o = {"data/mnist", STR(MODEL) ".safetensors", NULL, 3, 0, 64, 0, 1, -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--resume") == 0) {
            o.resume = 1;
            continue;
        }
        if (!v)
            usage(argv[0]);
        i++;
        if (strcmp(a, "--data") == 0)
            o.data = v;
        else if (strcmp(a, "--checkpoint") == 0)
            o.checkpoint = v;
        else if (strcmp(a, "--log") == 0)
            o.log = v;
        else if (strcmp(a, "--epochs") == 0)
            o.epochs = (int)cli_number(argv[0], a, v, 1, 1000);
        else if (strcmp(a, "--steps") == 0)
            o.steps = (int)cli_number(argv[0], a, v, 1, 1000000);
        else if (strcmp(a, "--batch") == 0)
            o.batch = (int)cli_number(argv[0], a, v, 1, (long)MAX_BATCH * ranks);
        else if (strcmp(a, "--threads") == 0) /* the same results at any count */
            dlrt_set_num_threads((int)cli_number(argv[0], a, v, 1, 256));
        else if (strcmp(a, "--seed") == 0)
            o.seed = (uint64_t)cli_number(argv[0], a, v, 0, 0x7fffffff);
        else if (strcmp(a, "--min-accuracy") == 0)
            o.min_accuracy = cli_real(argv[0], a, v, 0, 100);
        else
            usage(argv[0]);
    }
    return o;
}

/* Test-set accuracy (percent) with forward, and mean loss with evaluate;
 * each rank scores its block of the test set. */
static int test(Model *m, const dlrt_dataset *t, double *accuracy, double *loss)
{
    static float probs[EVAL_BATCH * 10];
    double sums[2] = {0, 0}; /* correct, total loss */
    int64_t first, count;
    dist_shard(t->n, &first, &count);
    int rc = dist_average_states(m);
    if (rc)
        return rc;
    for (int64_t i = first; i < first + count; i += EVAL_BATCH) {
        int n = (int)(first + count - i < EVAL_BATCH ? first + count - i : EVAL_BATCH);
        const float *x = t->x + i * t->dim;
        float l;
        rc = M(forward)(m, n, x, probs);
        if (!rc)
            rc = M(evaluate)(m, n, x, t->y + i, &l);
        if (rc)
            return rc;
        double acc = dlrt_accuracy(probs, n, 10, t->y + i);
        if (acc < 0)
            return (int)acc;
        sums[0] += (double)(int64_t)(acc * n + 0.5);
        sums[1] += (double)l * n;
    }
    if ((rc = dist_sum(sums, 2)))
        return rc;
    *accuracy = 100.0 * sums[0] / (double)t->n;
    *loss = sums[1] / (double)t->n;
    return 0;
}

/* A failure on one rank ends them all (the others would wait for it). */
static int fail(const char *what, int rc)
{
    cli_fail("train_" STR(MODEL), what, rc);
    if (dist_size() > 1)
        dist_abort(1);
    return 1;
}

int main(int argc, char **argv)
{
    int rc = dist_init(&argc, &argv);
    if (rc)
        return fail("MPI", rc);
    Options o = parse(argc, argv, dist_size());
    int root = dist_rank() == 0;
    char err[256];
    dlrt_dataset train = {0}, t10k = {0};
    rc = dlrt_mnist_load(o.data, "train", DLRT_MNIST_NORMALIZE, &train, err, sizeof err);
    if (!rc)
        rc = dlrt_mnist_load(o.data, "test", DLRT_MNIST_NORMALIZE, &t10k, err, sizeof err);
    if (rc) {
        fprintf(stderr, "train_" STR(MODEL) ": %s (run scripts/fetch-mnist.sh)\n", err);
        if (dist_size() > 1)
            dist_abort(1);
        return 1;
    }

    Model *m = M(create)(o.seed);
    if (!m)
        return fail("create", DLRT_ENOMEM);
    if ((rc = o.resume ? dist_load(m, o.checkpoint) : dist_sync(m)))
        return fail(o.resume ? o.checkpoint : "sync", rc);

    dlrt_batches b;
    if ((rc = dlrt_batches_init(&b, train.n, o.batch, o.seed, 0)))
        return fail("batches", rc);
    int64_t per_epoch = dlrt_batches_count(&b);
    if (o.steps && o.steps < per_epoch)
        per_epoch = o.steps;
    int64_t step = M(step)(m);
    int first = (int)(step / per_epoch);
    int64_t skip = step % per_epoch; /* a checkpoint taken mid-epoch */
    if (root && dist_size() > 1)
        printf("%d ranks, %d rows of each batch per rank\n", dist_size(),
               (o.batch + dist_size() - 1) / dist_size());
    if (root)
        printf("%s: %lld parameters, batch %d, %lld steps per epoch, lr %g%s\n", STR(MODEL),
               (long long)CAT(MODEL, _NUM_PARAMS), o.batch, (long long)per_epoch,
               (double)M(learning_rate)(m), o.resume ? " (resumed)" : "");
    if (root && first >= o.epochs)
        printf("the checkpoint is at step %lld: %d epochs are done already\n", (long long)step,
               first);

    size_t rows = (size_t)(o.batch + dist_size() - 1) / (size_t)dist_size(); /* this rank's */
    float *xb = malloc(sizeof *xb * rows * (size_t)train.dim);
    int32_t *yb = malloc(sizeof *yb * rows);
    if (!xb || !yb)
        return fail("batch buffers", DLRT_ENOMEM);
    dlrt_progress p;
    dlrt_progress_init(&p, stderr, NULL, NULL);
    dlrt_log log = {0};
    if (!root)
        o.log = NULL;
    if (o.log &&
        (rc = dlrt_log_open(&log, o.log, LOG_EVERY, o.resume ? DLRT_LOG_APPEND : 0, NULL, NULL)))
        return fail("log", rc);
    double accuracy = 0, loss = 0;
    for (int e = first; e < o.epochs; e++) {
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", e + 1, o.epochs);
        dlrt_batches_start(&b, e);
        if (root)
            dlrt_progress_begin(&p, per_epoch, label);
        int n, local;
        for (int64_t k = 0;
             k < per_epoch && (n = dist_batches_next(&b, train.x, train.dim, xb, train.y, DLRT_I32,
                                                     1, yb, &local)) > 0;
             k++) {
            if (k < skip)
                continue;
            double l;
            if ((rc = dist_train_step(m, local, n, (const void *const[]){xb, yb}, &l)))
                return fail("train_step", rc);
            if (root)
                dlrt_progress_update(&p, k + 1, l, n);
            if (o.log && (rc = dlrt_log_step(&log, M(step)(m), (double)M(step)(m) / per_epoch, l, n,
                                             M(learning_rate)(m))))
                return fail(o.log, rc);
        }
        skip = 0;
        if (root)
            dlrt_progress_end(&p);
        if ((rc = test(m, &t10k, &accuracy, &loss)))
            return fail("test", rc);
        if (root)
            printf("epoch %d: test accuracy %.2f%%, test loss %.4f\n", e + 1, accuracy, loss);
        if (o.log && (rc = dlrt_log_eval(&log, M(step)(m), e + 1, "test", loss, accuracy)))
            return fail(o.log, rc);
        fflush(stdout);
        if ((rc = dist_save(m, o.checkpoint)))
            return fail(o.checkpoint, rc);
    }
    if (first >= o.epochs && (rc = test(m, &t10k, &accuracy, &loss)))
        return fail("test", rc);
    if (root)
        printf("final test accuracy %.2f%% after %lld steps; checkpoint %s\n", accuracy,
               (long long)M(step)(m), o.checkpoint);

    if (o.log && (rc = dlrt_log_close(&log)))
        return fail(o.log, rc);
    free(xb);
    free(yb);
    dlrt_batches_free(&b);
    M(destroy)(m);
    dlrt_dataset_free(&train);
    dlrt_dataset_free(&t10k);
    if ((rc = dist_finalize()))
        return fail("MPI", rc);
    if (o.min_accuracy >= 0 && accuracy < o.min_accuracy) {
        fprintf(stderr, "train_" STR(MODEL) ": test accuracy %.2f%% is below the required %.2f%%\n",
                accuracy, o.min_accuracy);
        return 1;
    }
    return 0;
}

/* train_gan — trains the GAN of gan.dl on the 60000 MNIST training digits:
 * each batch, one step of the discriminator (gan_train_step_disc: real
 * digits and fakes from fresh noise) and one of the generator
 * (gan_train_step_gen: noise only), as in Goodfellow et al.'s algorithm
 * with k = 1. A progress bar shows the discriminator's loss; after every
 * epoch it prints both players' mean losses, writes a checkpoint (both
 * objectives' Adam moments and step counters) and a sheet of 8x8 samples
 * as a PGM image.
 *
 *   train_gan [--data DIR] [--epochs N] [--steps N] [--seed N]
 *             [--checkpoint FILE] [--samples FILE] [--min-correlation R]
 *
 * --steps stops each epoch after N batches (a short run). There is no test
 * accuracy for a generator; as a check that it learned something digit
 * shaped, the program compares the mean of 1024 generated images with the
 * mean training digit, pixel by pixel (their Pearson correlation, about 0
 * for the untrained generator), and with --min-correlation the exit status
 * is 1 when it is below R. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gan.h"

enum { BATCH = 64, NOISE = 64, DIM = 784, CHECK = 1024 };

typedef struct {
    const char *data, *checkpoint, *samples;
    int epochs, steps;
    uint64_t seed;
    double min_correlation;
} Options;

static Options parse(int argc, char **argv)
{
    Options o = {"data/mnist", "gan.safetensors", "gan_samples.pgm", 1, 0, 1, -2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--data") == 0 && v)
            o.data = argv[++i];
        else if (strcmp(a, "--checkpoint") == 0 && v)
            o.checkpoint = argv[++i];
        else if (strcmp(a, "--samples") == 0 && v)
            o.samples = argv[++i];
        else if (strcmp(a, "--epochs") == 0 && v)
            o.epochs = (int)cli_number("train_gan", a, argv[++i], 1, 1000);
        else if (strcmp(a, "--steps") == 0 && v)
            o.steps = (int)cli_number("train_gan", a, argv[++i], 1, 1000000);
        else if (strcmp(a, "--seed") == 0 && v)
            o.seed = (uint64_t)cli_number("train_gan", a, argv[++i], 0, 1L << 30);
        else if (strcmp(a, "--min-correlation") == 0 && v)
            o.min_correlation = cli_real("train_gan", a, argv[++i], -1, 1);
        else {
            fprintf(
                stderr,
                "usage: train_gan [--data DIR] [--epochs N] [--steps N] [--seed N]\n"
                "                 [--checkpoint FILE] [--samples FILE] [--min-correlation R]\n");
            exit(2);
        }
    }
    return o;
}

/* standard normal noise: splitmix64 and Box-Muller */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static void noise(uint64_t *s, float *z, int n)
{
    for (int i = 0; i < n; i += 2) {
        double u = ((double)(next(s) >> 11) + 0.5) / 9007199254740992.0;
        double v = (double)(next(s) >> 11) / 9007199254740992.0;
        double r = sqrt(-2 * log(u));
        z[i] = (float)(r * cos(2 * M_PI * v));
        if (i + 1 < n)
            z[i + 1] = (float)(r * sin(2 * M_PI * v));
    }
}

static int fail(const char *what, int rc)
{
    return cli_fail("train_gan", what, rc);
}

/* 64 samples as one 8x8 sheet of 28x28 digits, white on black */
static int write_sheet(const char *path, const float *x)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return DLRT_EIO;
    fprintf(f, "P5\n%d %d\n255\n", 8 * 28, 8 * 28);
    for (int r = 0; r < 8 * 28; r++)
        for (int c = 0; c < 8 * 28; c++) {
            float v = x[((r / 28) * 8 + c / 28) * DIM + (r % 28) * 28 + c % 28];
            fputc((int)lrintf(fminf(fmaxf((v + 1) * 127.5f, 0), 255)), f);
        }
    return fclose(f) == 0 ? DLRT_OK : DLRT_EIO;
}

/* the Pearson correlation of two DIM-vectors */
static double correlation(const double *a, const double *b)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < DIM; i++) {
        ma += a[i] / DIM;
        mb += b[i] / DIM;
    }
    for (int i = 0; i < DIM; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

/* the mean of CHECK generated images against the mean digit */
static int check_samples(gan *m, const double *mean_real, uint64_t *rng, float *sheet, double *corr)
{
    static float z[BATCH * NOISE], x[BATCH * DIM];
    double mean[DIM] = {0};
    for (int k = 0; k < CHECK / BATCH; k++) {
        noise(rng, z, BATCH * NOISE);
        int rc = gan_forward(m, BATCH, z, x);
        if (rc)
            return rc;
        for (int i = 0; i < BATCH * DIM; i++)
            mean[i % DIM] += x[i] / CHECK;
        if (k == 0)
            memcpy(sheet, x, sizeof x);
    }
    *corr = correlation(mean, mean_real);
    return 0;
}

int main(int argc, char **argv)
{
    Options o = parse(argc, argv);
    char err[256];
    dlrt_dataset train = {0};
    int rc = dlrt_mnist_load(o.data, "train", 0, &train, err, sizeof err);
    if (rc) {
        fprintf(stderr, "train_gan: %s (run scripts/fetch-mnist.sh)\n", err);
        return 1;
    }
    double mean_real[DIM] = {0};
    for (int64_t i = 0; i < train.n * DIM; i++) {
        train.x[i] = train.x[i] * 2 - 1; /* [0, 1] -> [-1, 1], tanh's range */
        mean_real[i % DIM] += train.x[i] / (double)train.n;
    }
    gan *m = gan_create(o.seed);
    if (!m)
        return fail("create", DLRT_ENOMEM);
    dlrt_batches b;
    if ((rc = dlrt_batches_init(&b, train.n, BATCH, o.seed, DLRT_BATCH_DROP_LAST)))
        return fail("batches", rc);
    int64_t per_epoch = dlrt_batches_count(&b);
    if (o.steps && o.steps < per_epoch)
        per_epoch = o.steps;
    printf("gan: %lld parameters, batch %d, %lld steps per epoch\n", (long long)gan_NUM_PARAMS,
           BATCH, (long long)per_epoch);
    static float xb[BATCH * DIM], z[BATCH * NOISE], sheet[BATCH * DIM];
    uint64_t rng = o.seed * 7919 + 1, check_rng = 12345;
    double corr;
    if ((rc = check_samples(m, mean_real, &check_rng, sheet, &corr)))
        return fail("forward", rc);
    printf("before training: samples' mean against the mean digit: correlation %.3f\n", corr);
    dlrt_progress p;
    dlrt_progress_init(&p, stderr, NULL, NULL);
    for (int e = 0; e < o.epochs; e++) {
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", e + 1, o.epochs);
        dlrt_batches_start(&b, e);
        dlrt_progress_begin(&p, per_epoch, label);
        double dsum = 0, gsum = 0;
        int n;
        int64_t k = 0;
        while (k < per_epoch &&
               (n = dlrt_batches_next(&b, train.x, DIM, xb, NULL, DLRT_I32, 1, NULL)) > 0) {
            float dl, gl;
            noise(&rng, z, n * NOISE);
            if ((rc = gan_train_step_disc(m, n, xb, z, &dl)))
                return fail("train_step_disc", rc);
            noise(&rng, z, n * NOISE);
            if ((rc = gan_train_step_gen(m, n, z, &gl)))
                return fail("train_step_gen", rc);
            dsum += dl;
            gsum += gl;
            dlrt_progress_update(&p, ++k, dl, n);
        }
        dlrt_progress_end(&p);
        check_rng = 12345; /* the same noise every epoch: the sheets compare */
        if ((rc = check_samples(m, mean_real, &check_rng, sheet, &corr)))
            return fail("forward", rc);
        printf("epoch %d: discriminator loss %.3f, generator loss %.3f, samples' mean against "
               "the mean digit: correlation %.3f\n",
               e + 1, dsum / (double)k, gsum / (double)k, corr);
        fflush(stdout);
        if ((rc = gan_save(m, o.checkpoint)))
            return fail(o.checkpoint, rc);
        if ((rc = write_sheet(o.samples, sheet)))
            return fail(o.samples, rc);
    }
    printf("%lld steps of each player; checkpoint %s, samples %s\n", (long long)gan_step_gen(m),
           o.checkpoint, o.samples);
    dlrt_batches_free(&b);
    gan_destroy(m);
    dlrt_dataset_free(&train);
    if (corr < o.min_correlation) {
        fprintf(stderr, "train_gan: correlation %.3f is below the required %.3f\n", corr,
                o.min_correlation);
        return 1;
    }
    return 0;
}

/*
 * The PC side of the firmware (README.md): trains digits.dl on MNIST,
 * writes the trained parameters and the first DIGITS_IMAGES test images
 * as C (digits_data.c, for the firmware), and prints the lines the
 * firmware must print (report.h), computed here with the x86-64 build.
 *
 *   export MNIST_DIR STEPS digits_data.c > expected.txt
 *
 * STEPS Adam steps of batch 64 over the training images in order (938 is
 * one epoch); the parameters start from seed 1.
 */
#include <stdio.h>
#include <stdlib.h>

#include "digits.h"
#include "digits_data.h"
#include "report.h"

static int fail(const char *what, const char *err)
{
    fprintf(stderr, "export: %s: %s\n", what, err);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MNIST_DIR STEPS OUT.c\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    long steps = strtol(argv[2], NULL, 10);
    char err[256] = "", path[1024];
    dlrt_dataset train;
    if (dlrt_mnist_load(dir, "train", 0, &train, err, sizeof err) != DLRT_OK)
        return fail(dir, err);
    dlrt_idx *images, *labels;
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    if (dlrt_idx_load(path, &images, err, sizeof err) != DLRT_OK)
        return fail(path, err);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    if (dlrt_idx_load(path, &labels, err, sizeof err) != DLRT_OK)
        return fail(path, err);
    if (images->type != DLRT_IDX_U8 || images->count < DIGITS_IMAGES * 784 ||
        labels->type != DLRT_IDX_U8 || labels->count < DIGITS_IMAGES || train.dim != 784)
        return fail(dir, "not MNIST");

    digits *m = digits_create(1);
    if (!m)
        return fail("digits_create", "out of memory");
    const int64_t batch = 64;
    for (long s = 0; s < steps; s++) {
        int64_t at = s * batch % (train.n - batch + 1);
        float loss;
        if (digits_train_step(m, (int)batch, train.x + at * 784, train.y + at, &loss) != DLRT_OK)
            return fail("digits_train_step", "failed");
    }

    FILE *out = fopen(argv[3], "w");
    if (!out)
        return fail(argv[3], "cannot write");
    fprintf(out,
            "/* digits_data.c: written by export.c after %ld training steps. */\n"
            "#include \"digits_data.h\"\n\n"
            "const uint32_t digits_trained_count = %d;\n"
            "const float digits_trained[] = {\n",
            steps, (int)digits_NUM_PARAMS);
    const float *p = digits_params(m);
    for (int i = 0; i < digits_NUM_PARAMS; i++)
        fprintf(out, "%af,%s", (double)p[i], i % 4 == 3 ? "\n" : " ");
    fputs("};\n\nconst uint8_t digits_images[DIGITS_IMAGES][784] = {\n", out);
    const uint8_t *px = images->data, *lab = labels->data;
    for (int i = 0; i < DIGITS_IMAGES; i++) {
        fputs("{", out);
        for (int j = 0; j < 784; j++)
            fprintf(out, "%d,%s", px[i * 784 + j], j % 28 == 27 ? "\n" : "");
        fputs("},\n", out);
    }
    fputs("};\n\nconst uint8_t digits_labels[DIGITS_IMAGES] = {", out);
    for (int i = 0; i < DIGITS_IMAGES; i++)
        fprintf(out, "%d,", lab[i]);
    fputs("};\n", out);
    if (fclose(out) != 0)
        return fail(argv[3], "cannot write");

    for (int i = 0; i < DIGITS_IMAGES; i++) {
        float x[784], probs[10];
        int32_t digit;
        for (int j = 0; j < 784; j++)
            x[j] = digits_pixel(px[i * 784 + j]);
        if (digits_forward(m, 1, x, &digit, probs) != DLRT_OK)
            return fail("digits_forward", "failed");
        char line[64];
        report_line(line, i, lab[i], (int)digit, probs[digit]);
        fputs(line, stdout);
    }
    digits_destroy(m);
    dlrt_idx_free(images);
    dlrt_idx_free(labels);
    dlrt_dataset_free(&train);
    return 0;
}

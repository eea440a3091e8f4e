/* Save, load and continue gives the same bits as never stopping (model
 * resume: resume.dl, resume_bn.dl):
 *
 *   resume DIR SLOT...     SLOT: the optimizer's state slots, in order
 *
 * A trains N + M steps; B trains N steps (both set the base rate to
 * NEW_LR before step SET_AT) and saves; C, created with another seed and
 * holding gradients of its own, loads that file and trains M steps.
 * C's losses must equal A's bit for bit, and so must the parameters, the
 * model state, the optimizer state, the step, the rate and a second
 * checkpoint's bytes. The checkpoint holds exactly the parameters, the
 * states and opt.SLOT.PARAM for every trainable parameter, with "step"
 * and "lr" metadata. A file with parameters and states only loads with
 * the optimizer state zeroed: training then matches a fresh instance. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "resume.h"

enum { N = 4, M = 5, SET_AT = 2, MAXB = 8, NIN = 6, MAX_TENSORS = 64 };
static const float new_lr = 0.004f;

static void batch_data(int t, int *rows, float *x, int32_t *y)
{
    static const int sizes[] = {8, 6, 7, 8, 5};
    *rows = sizes[t % 5];
    for (int i = 0; i < *rows * NIN; i++)
        x[i] = (float)(1.5 * data_value(40 + (uint64_t)t, (uint64_t)i));
    for (int i = 0; i < *rows; i++)
        y[i] = (int32_t)((data_value(90 + (uint64_t)t, (uint64_t)i) + 1) * 1.5);
}

static void step(resume *m, int t, float *loss)
{
    if (t == SET_AT)
        resume_set_learning_rate(m, new_lr);
    float x[MAXB * NIN];
    int32_t y[MAXB];
    int rows;
    batch_data(t, &rows, x, y);
    expect("train_step", resume_train_step(m, rows, x, y, loss) == 0);
}

static const char *region(const resume *m, size_t offset)
{
    return (const char *)m + offset;
}

/* the whole instance state but the gradients and the arena */
static int same_state(const resume *a, const resume *b)
{
    const dlrt_model_info *info = resume_info();
    return memcmp(region(a, info->params_offset), region(b, info->params_offset),
                  info->params_bytes) == 0 &&
           memcmp(region(a, info->opt_offset), region(b, info->opt_offset), info->opt_bytes) == 0 &&
           memcmp(region(a, info->states_offset), region(b, info->states_offset),
                  info->states_bytes) == 0 &&
           resume_step(a) == resume_step(b) && resume_learning_rate(a) == resume_learning_rate(b);
}

static int all_zero(const resume *m, size_t offset, size_t bytes)
{
    const char *p = region(m, offset);
    for (size_t i = 0; i < bytes; i++)
        if (p[i])
            return 0;
    return 1;
}

static char *read_file(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (*size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)*size);
        if (buf && fread(buf, 1, (size_t)*size, f) != (size_t)*size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int64_t numel(const dlrt_tensor_desc *d)
{
    int64_t n = 1;
    for (int i = 0; i < d->rank; i++)
        n *= d->shape[i];
    return n;
}

/* The tensors the checkpoint must hold, exactly: params, states, then
 * opt.SLOT.PARAM for each slot and trainable parameter (frozen ones must
 * have none). Checks their values against the instance m. */
static void check_contents(const resume *m, const char *path, int nslots, char **slots)
{
    const dlrt_model_info *info = resume_info();
    dlrt_tensor_desc descs[MAX_TENSORS];
    const char *want[MAX_TENSORS];
    static char names[MAX_TENSORS][96];
    int n = 0;
    for (int i = 0; i < info->num_params; i++, n++) {
        descs[n] = info->params[i].desc;
        want[n] = region(m, info->params[i].offset);
    }
    for (int i = 0; i < info->num_states; i++, n++) {
        descs[n] = info->states[i].desc;
        want[n] = region(m, info->states[i].offset);
    }
    int nopt = 0;
    for (int k = 0; k < nslots; k++)
        for (int i = 0; i < info->num_params; i++) {
            snprintf(names[n], sizeof names[n], "opt.%s.%s", slots[k], info->params[i].desc.name);
            if (info->params[i].frozen) {
                dlrt_tensor_desc d = info->params[i].desc;
                d.name = names[n];
                float buf[1024];
                void *p = buf;
                expect("frozen parameter without optimizer state",
                       numel(&d) <= 1024 &&
                           dlrt_checkpoint_load(path, &d, &p, 1, DLRT_CKPT_ALLOW_EXTRA, NULL,
                                                NULL) == DLRT_EMISMATCH);
                continue;
            }
            descs[n] = info->params[i].desc;
            descs[n].name = names[n];
            want[n] = NULL; /* the optimizer state: some entries nonzero */
            n++;
            nopt++;
        }
    expect("the model lists the optimizer tensors", info->num_opt == nopt);
    void *data[MAX_TENSORS];
    for (int i = 0; i < n; i++)
        data[i] = calloc((size_t)numel(&descs[i]), sizeof(float));
    int rc = dlrt_checkpoint_load(path, descs, data, n, 0, NULL, NULL);
    if (rc != 0)
        fprintf(stderr, "checkpoint: %s\n", dlrt_strerror(rc));
    expect("the checkpoint holds exactly the params, states and opt.SLOT.PARAM", rc == 0);
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t bytes = (size_t)numel(&descs[i]) * sizeof(float);
        if (want[i]) {
            expect(descs[i].name, memcmp(data[i], want[i], bytes) == 0);
        } else {
            int nonzero = 0;
            for (int64_t j = 0; j < numel(&descs[i]); j++)
                nonzero += ((float *)data[i])[j] != 0;
            expect("optimizer state is saved (not all zero)", nonzero > 0);
        }
    }
    for (int i = 0; i < n; i++)
        free(data[i]);
    /* the same optimizer state as the instance, slot by slot */
    if (rc == 0 && info->num_opt == nopt)
        for (int k = 0; k < info->num_opt; k++) {
            const dlrt_tensor_info *o = &info->opt[k];
            int found = 0;
            for (int i = 0; i < n; i++)
                found += strcmp(descs[i].name, o->desc.name) == 0;
            expect("info->opt names a saved tensor", found == 1);
        }
    char buf[64];
    expect("meta step",
           dlrt_checkpoint_meta(path, "step", buf, sizeof buf) > 0 && strcmp(buf, "4") == 0);
    expect("meta lr is the base rate set", dlrt_checkpoint_meta(path, "lr", buf, sizeof buf) > 0 &&
                                               strtod(buf, NULL) == (double)new_lr);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR SLOT...\n", argv[0]);
        return 2;
    }
    char ck1[512], ck_a[512], ck_c[512], ck_p[512];
    snprintf(ck1, sizeof ck1, "%s/after%d.safetensors", argv[1], N);
    snprintf(ck_a, sizeof ck_a, "%s/a.safetensors", argv[1]);
    snprintf(ck_c, sizeof ck_c, "%s/c.safetensors", argv[1]);
    snprintf(ck_p, sizeof ck_p, "%s/params-only.safetensors", argv[1]);
    const dlrt_model_info *info = resume_info();
    resume *a = resume_create(1), *b = resume_create(1), *c = resume_create(77);
    expect("create", a && b && c);
    if (!a || !b || !c)
        return 1;
    expect("another seed, other parameters",
           memcmp(resume_params(a), resume_params(c), info->params_bytes) != 0);

    float la[N + M], loss;
    for (int t = 0; t < N + M; t++)
        step(a, t, &la[t]);
    for (int t = 0; t < N; t++) {
        step(b, t, &loss);
        expect("same losses before the save", loss == la[t]);
    }
    expect("save", resume_save(b, ck1) == 0);
    check_contents(b, ck1, argc - 2, argv + 2);

    /* C holds gradients of its own before the load */
    float x[MAXB * NIN];
    int32_t y[MAXB];
    int rows;
    batch_data(0, &rows, x, y);
    expect("compute_gradients", resume_compute_gradients(c, rows, x, y, &loss) == 0);
    expect("C has gradients", !all_zero(c, info->grads_offset, info->grads_bytes));
    expect("load", resume_load(c, ck1) == 0);
    expect("a load zeroes the gradients", all_zero(c, info->grads_offset, info->grads_bytes));
    expect("loaded = saved", same_state(b, c));
    expect("loaded step", resume_step(c) == N);
    for (int t = N; t < N + M; t++) {
        step(c, t, &loss);
        if (loss != la[t])
            fprintf(stderr, "step %d: loss %.9g, uninterrupted %.9g\n", t, loss, la[t]);
        expect("resumed losses = uninterrupted", loss == la[t]);
    }
    expect("resumed state = uninterrupted (params, opt, states, step, lr)", same_state(a, c));
    expect("saves", resume_save(a, ck_a) == 0 && resume_save(c, ck_c) == 0);
    long sa = 0, sc = 0;
    char *fa = read_file(ck_a, &sa), *fc = read_file(ck_c, &sc);
    expect("the two checkpoints are the same bytes",
           fa && fc && sa == sc && memcmp(fa, fc, (size_t)sa) == 0);
    free(fa);
    free(fc);

    /* parameters and states only: the optimizer state starts from zero */
    resume *d = resume_create(5);
    expect("create d", d != NULL);
    if (!d)
        return 1;
    resume_set_learning_rate(d, new_lr);
    dlrt_tensor_desc descs[MAX_TENSORS];
    const void *data[MAX_TENSORS];
    int n = 0;
    for (int i = 0; i < info->num_params; i++, n++) {
        descs[n] = info->params[i].desc;
        data[n] = region(d, info->params[i].offset);
    }
    for (int i = 0; i < info->num_states; i++, n++) {
        descs[n] = info->states[i].desc;
        data[n] = region(d, info->states[i].offset);
    }
    const char *keys[] = {"step"}, *values[] = {"0"};
    expect("write params only", dlrt_checkpoint_save(ck_p, descs, data, n, keys, values, 1) == 0);
    expect("B has optimizer state", !all_zero(b, info->opt_offset, info->opt_bytes));
    expect("load params only", resume_load(b, ck_p) == 0);
    expect("optimizer state zeroed", all_zero(b, info->opt_offset, info->opt_bytes));
    expect("loaded params only = fresh", same_state(b, d));
    for (int t = 0; t < 3; t++) {
        float lb, ld;
        step(b, t, &lb);
        step(d, t, &ld);
        expect("params-only load trains like a fresh instance", lb == ld);
    }
    expect("params-only load: same state after 3 steps", same_state(b, d));
    resume_destroy(a);
    resume_destroy(b);
    resume_destroy(c);
    resume_destroy(d);
    return failures != 0;
}

/* The same training at any thread count, and instances trained side by
 * side from application threads (threads.test, tsan.sh; docs/RUNTIME.md,
 * "Threads"). Build with -DINFO=NAME_info; through the generic entry
 * points only, so one driver serves every model.
 *
 *   threads BATCH STEPS counts    STEPS training steps of a fresh instance
 *                                 at 1, 2 and 3 threads; the parameters,
 *                                 optimizer state, the last loss and the
 *                                 forward pass's outputs after training must
 *                                 be the same bits at every count
 *   threads BATCH STEPS apart     two instances (seeds 1 and 2, each its
 *                                 own data) trained one after the other,
 *                                 then again from two threads at once: the
 *                                 same bits both times; those threads have
 *                                 64 KiB of stack beside the static TLS, the
 *                                 least docs/RUNTIME.md promises a call is
 *                                 enough for
 *
 * Each step trains on a new batch: floats uniform in [0, 1), int32 0 or 1
 * (valid ids and labels for any model), drawn from a generator seeded by
 * the instance's seed and the step.
 */
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlrt.h"

#ifndef INFO
#error "build with -DINFO=NAME_info"
#endif

const dlrt_model_info *INFO(void);

/* The stack docs/RUNTIME.md promises a call is enough for, bytes;
 * glibc takes the static thread-local storage (OpenBLAS's is 60 KiB)
 * from the same allocation, so the threads ask for that much more. */
enum { CALL_STACK = 64 << 10 };

static int add_tls(struct dl_phdr_info *o, size_t size, void *sum)
{
    (void)size;
    for (int i = 0; i < o->dlpi_phnum; i++)
        if (o->dlpi_phdr[i].p_type == PT_TLS) {
            size_t align = o->dlpi_phdr[i].p_align ? o->dlpi_phdr[i].p_align : 1;
            *(size_t *)sum += (o->dlpi_phdr[i].p_memsz + align - 1) / align * align;
        }
    return 0;
}

static size_t app_stack(void)
{
    size_t tls = 0;
    dl_iterate_phdr(add_tls, &tls);
    return CALL_STACK + tls;
}

static const dlrt_model_info *info;
static int batch, steps;

/* What one training run leaves: the instance from the parameters to the
 * arena (parameters, gradients, optimizer and model state), the losses
 * and the outputs of a forward pass at the end. */
typedef struct {
    unsigned char *state;
    size_t state_bytes;
    double losses[1024];
    unsigned char *outputs;
    size_t outputs_bytes;
} Result;

static uint64_t next(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fill(const dlrt_tensor_info *t, void *p, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        double u = (double)(next(s) >> 11) * 0x1p-53;
        if (t->desc.dtype == DLRT_F32)
            ((float *)p)[i] = (float)u;
        else if (t->desc.dtype == DLRT_F64)
            ((double *)p)[i] = u;
        else
            ((int32_t *)p)[i] = u < 0.5 ? 0 : 1;
    }
}

static void *alloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p)
        abort();
    return p;
}

static size_t count(const dlrt_tensor_info *t)
{
    int nb = info->max_batch ? info->max_batch : 1;
    return (size_t)dlrt_tensor_count(t, nb, batch);
}

/* Trains a fresh instance of seed; 0 or a failing call's code. */
static int train(uint64_t seed, Result *r)
{
    unsigned char *m = dlrt_model_create(info, seed);
    if (!m)
        return DLRT_ENOMEM;
    const void **ins = alloc(sizeof *ins * (size_t)(info->num_inputs + 1));
    for (int i = 0; i < info->num_inputs; i++)
        ins[i] = alloc(count(&info->inputs[i]) * dlrt_dtype_size(info->inputs[i].desc.dtype));
    int rc = 0;
    uint64_t s = seed * 1000003;
    for (int k = 0; k < steps && !rc; k++) {
        for (int i = 0; i < info->num_inputs; i++)
            fill(&info->inputs[i], (void *)ins[i], count(&info->inputs[i]), &s);
        double loss = 0;
        rc = info->compute_gradients(m, batch, ins, &loss);
        if (!rc)
            rc = info->apply_gradients(m);
        r->losses[k] = loss;
    }
    r->outputs_bytes = 0;
    for (int i = 0; i < info->num_outputs; i++)
        r->outputs_bytes += count(&info->outputs[i]) * dlrt_dtype_size(info->outputs[i].desc.dtype);
    r->outputs = alloc(r->outputs_bytes);
    void **outs = alloc(sizeof *outs * (size_t)(info->num_outputs + 1));
    const void **fins = alloc(sizeof *fins * (size_t)(info->num_forward_inputs + 1));
    size_t at = 0;
    for (int i = 0; i < info->num_outputs; i++) {
        outs[i] = r->outputs + at;
        at += count(&info->outputs[i]) * dlrt_dtype_size(info->outputs[i].desc.dtype);
    }
    for (int i = 0; i < info->num_forward_inputs; i++)
        fins[i] = ins[info->forward_inputs[i]];
    if (!rc)
        rc = info->forward(m, batch, fins, outs);
    /* not the arena: which task used its scratch slot depends on the threads */
    r->state_bytes = info->arena_offset - info->params_offset;
    r->state = alloc(r->state_bytes);
    memcpy(r->state, m + info->params_offset, r->state_bytes);
    for (int i = 0; i < info->num_inputs; i++)
        free((void *)ins[i]);
    free(ins);
    free(fins);
    free(outs);
    dlrt_model_destroy(m);
    return rc;
}

static void result_free(Result *r)
{
    free(r->state);
    free(r->outputs);
}

/* 0 when a and b are the same bits; else says where they differ. */
static int differ(const char *what, const Result *a, const Result *b)
{
    if (memcmp(a->losses, b->losses, sizeof a->losses) != 0) {
        for (int k = 0; k < steps; k++)
            if (a->losses[k] != b->losses[k]) {
                printf("FAIL %s: %s: loss of step %d differs (%a vs %a)\n", info->name, what, k,
                       a->losses[k], b->losses[k]);
                return 1;
            }
    }
    for (size_t i = 0; i < a->state_bytes; i++)
        if (a->state[i] != b->state[i]) {
            size_t off = info->params_offset + i;
            const char *region = off < info->grads_offset ? "parameters"
                                 : off < info->opt_offset ? "gradients"
                                                          : "optimizer/model state or arena";
            printf("FAIL %s: %s: byte %zu of the instance (%s) differs\n", info->name, what, off,
                   region);
            return 1;
        }
    if (memcmp(a->outputs, b->outputs, a->outputs_bytes) != 0) {
        printf("FAIL %s: %s: the outputs differ\n", info->name, what);
        return 1;
    }
    return 0;
}

typedef struct {
    uint64_t seed;
    Result r;
    int rc;
} Job;

static void *run_job(void *arg)
{
    Job *j = arg;
    j->rc = train(j->seed, &j->r);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[3], "counts") != 0 && strcmp(argv[3], "apart") != 0)) {
        fprintf(stderr, "usage: %s BATCH STEPS counts|apart\n", argv[0]);
        return 2;
    }
    info = INFO();
    batch = atoi(argv[1]);
    steps = atoi(argv[2]);
    if (info->max_batch && batch > info->max_batch)
        batch = info->max_batch;
    if (!info->max_batch)
        batch = 1;
    if (steps < 1 || steps > 1024 || batch < 1) {
        fprintf(stderr, "bad BATCH or STEPS\n");
        return 2;
    }
    int failed = 0;
    if (strcmp(argv[3], "counts") == 0) {
        Result r[3];
        for (int n = 1; n <= 3; n++) {
            if (dlrt_set_num_threads(n) != 0 || train(1, &r[n - 1]) != 0) {
                printf("FAIL %s: training at %d threads failed\n", info->name, n);
                return 1;
            }
        }
        failed |= differ("2 threads vs 1", &r[0], &r[1]);
        failed |= differ("3 threads vs 1", &r[0], &r[2]);
        if (!failed)
            printf("%s: batch %d, %d steps: the same bits at 1, 2 and 3 threads\n", info->name,
                   batch, steps);
        for (int n = 0; n < 3; n++)
            result_free(&r[n]);
    } else {
        dlrt_set_num_threads(2);
        Job one[2] = {{.seed = 1}, {.seed = 2}}, both[2] = {{.seed = 1}, {.seed = 2}};
        for (int i = 0; i < 2; i++)
            run_job(&one[i]);
        pthread_t th[2];
        pthread_attr_t attr;
        if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, app_stack()) != 0) {
            printf("FAIL: pthread_attr\n");
            return 1;
        }
        for (int i = 0; i < 2; i++)
            if (pthread_create(&th[i], &attr, run_job, &both[i]) != 0) {
                printf("FAIL: pthread_create\n");
                return 1;
            }
        pthread_attr_destroy(&attr);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < 2; i++) {
            if (one[i].rc || both[i].rc) {
                printf("FAIL %s: training returned %d and %d\n", info->name, one[i].rc,
                       both[i].rc);
                return 1;
            }
            failed |= differ(i ? "instance 2, side by side vs alone" :
                                 "instance 1, side by side vs alone", &one[i].r, &both[i].r);
        }
        if (memcmp(one[0].r.state, one[1].r.state, one[0].r.state_bytes) == 0) {
            printf("FAIL %s: seeds 1 and 2 trained to the same instance\n", info->name);
            failed = 1;
        }
        if (!failed)
            printf("%s: batch %d, %d steps: two instances side by side, the same bits as one "
                   "after the other\n", info->name, batch, steps);
        for (int i = 0; i < 2; i++) {
            result_free(&one[i].r);
            result_free(&both[i].r);
        }
    }
    return failed;
}

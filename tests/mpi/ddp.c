/* ddp — the driver of tests/mpi, built once per model (-DMODEL=NAME, as the
 * demos) for models with inputs x [B, 784 floats] and y [B] (i32).
 *
 *   ddp run STEPS BATCH OUT [--resume CKPT] [--save CKPT] [--die-at STEP]
 *           [--hang-at STEP]
 *       under mpirun: STEPS data-parallel steps (libdlrt_mpi), BATCH rows per
 *       rank, global batch ranks * BATCH; --resume loads CKPT first and
 *       continues from its step, --save writes it at the end; --die-at
 *       kills the last rank (SIGKILL) when it reaches that step, --hang-at
 *       makes it sleep there for good (the others time out: DLRT_MPI_TIMEOUT).
 *   ddp sim RANKS STEPS BATCH OUT
 *       the reference, in one process without MPI: RANKS instances, each
 *       with its rank's seed, compute their shares' gradients, which are
 *       averaged (weights BATCH / global) and applied to every instance;
 *       their model states are averaged at the end. RANKS 1 is plain
 *       training with batch BATCH.
 *   ddp hooks BATCH
 *       without MPI: the gradient reports of the backward (hooks(), below)
 *   ddp compare REF OUT TOL
 *       every loss OUT has is REF's loss at that step, and OUT's parameters
 *       and model state are REF's, within relative error TOL (losses each,
 *       parameters and states in the 2-norm).
 *
 * OUT (rank 0's) holds "loss STEP VALUE" per step, then "param I VALUE" and
 * "state I VALUE" for every scalar after the last step. The data: 1024
 * synthetic 28x28 images of 10 classes (a faintly brighter 7x7 block per
 * class on uniform noise, a third of the labels random: the loss is still
 * far from 0 after 100 steps, where relative errors would mean little), visited in dlrt_batches'
 * shuffled order, epoch after epoch. Seed 1 throughout. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dlrt_mpi.h"
#include "model.h"

#define NSAMPLES 1024
#define DIM 784
#define SEED 1

static float data_x[NSAMPLES * DIM];
static int32_t data_y[NSAMPLES];

static void make_data(void)
{
    dlrt_rng rng;
    dlrt_rng_seed(&rng, 99, 0);
    for (int i = 0; i < NSAMPLES; i++) {
        int c = (int)(dlrt_rng_next(&rng) % 10);
        /* a third of the labels at random */
        data_y[i] = dlrt_rng_next(&rng) % 3 ? c : (int32_t)(dlrt_rng_next(&rng) % 10);
        for (int j = 0; j < DIM; j++) {
            int r = j / 28, col = j % 28, br = c / 4 * 7 + 3, bc = c % 4 * 7;
            float v = (float)(dlrt_rng_next(&rng) >> 40) / (float)(1 << 24);
            data_x[i * DIM + j] =
                v - 0.5f + 0.3f * (r >= br && r < br + 7 && col >= bc && col < bc + 7);
        }
    }
}

static void say(const char *what, int rc)
{
    fprintf(stderr, "ddp: %s: %s", what, dlrt_strerror(rc));
    if (*dlrt_last_error())
        fprintf(stderr, " (%s)", dlrt_last_error());
    fprintf(stderr, "\n");
}

static void die(const char *what, int rc)
{
    say(what, rc);
    exit(1);
}

/* An error every rank returned (the library's collective calls agree on
 * it): each says it, then they end together. Exiting at once, the first
 * rank out let mpirun kill the others, on a loaded machine before they
 * had written a word. */
static void die_together(const char *what, int rc)
{
    say(what, rc);
    dlrt_mpi_finalize();
    exit(1);
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void write_model(FILE *f, Model *m)
{
    const dlrt_model_info *info = M(info)();
    const float *p = (const float *)M(params)(m);
    for (int64_t i = 0; i < info->num_param_scalars; i++)
        fprintf(f, "param %lld %.9g\n", (long long)i, (double)p[i]);
    const float *s = (const float *)((const char *)m + info->states_offset);
    for (size_t i = 0; i < info->states_bytes / sizeof *s; i++)
        fprintf(f, "state %zu %.9g\n", i, (double)s[i]);
    if (fclose(f)) {
        perror("ddp: output");
        exit(1);
    }
}

/* The inputs of the generic entry points: x, y */
#define INPUTS(x, y) ((const void *const[]){(x), (y)})

static int run(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    int steps = atoi(argv[2]), batch = atoi(argv[3]);
    const char *out = argv[4], *resume = NULL, *save = NULL;
    int die_at = -1, hang_at = -1;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--resume"))
            resume = argv[i + 1];
        else if (!strcmp(argv[i], "--save"))
            save = argv[i + 1];
        else if (!strcmp(argv[i], "--die-at"))
            die_at = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hang-at"))
            hang_at = atoi(argv[i + 1]);
        else
            return 2;
    }
    int rc = dlrt_mpi_init(&argc, &argv);
    if (rc)
        die("init", rc);
    int rank = dlrt_mpi_rank(), size = dlrt_mpi_size(), global = size * batch;
    if (batch < 1 || batch > M(info)()->max_batch || global > NSAMPLES)
        return 2;
    Model *m = M(create)(SEED);
    if (!m)
        die("create", DLRT_ENOMEM);
    if ((rc = resume ? dlrt_mpi_load(m, resume) : dlrt_mpi_sync(m)))
        die_together(resume ? resume : "sync", rc);
    FILE *f = rank == 0 ? open_out(out) : NULL;
    if (f)
        setvbuf(f, NULL, _IOLBF, 0); /* what rank 0 did, even when the job is killed */
    dlrt_batches b;
    if ((rc = dlrt_batches_init(&b, NSAMPLES, global, SEED, DLRT_BATCH_DROP_LAST)))
        die("batches", rc);
    float *xb = malloc(sizeof *xb * (size_t)batch * DIM);
    int32_t *yb = malloc(sizeof *yb * (size_t)batch);
    if (!xb || !yb)
        die("buffers", DLRT_ENOMEM);
    int64_t per_epoch = dlrt_batches_count(&b), step = M(step)(m);
    int64_t first = step / per_epoch, skip = step % per_epoch; /* resumed mid-epoch */
    for (int64_t e = first; step < steps; e++) {
        dlrt_batches_start(&b, e);
        int n, local;
        for (int64_t k = 0;
             step < steps &&
             (n = dlrt_mpi_batches_next(&b, data_x, DIM, xb, data_y, DLRT_I32, 1, yb, &local)) > 0;
             k++) {
            if (e == first && k < skip)
                continue;
            if (step == die_at && rank == size - 1 && size > 1)
                raise(SIGKILL);
            while (step == hang_at && rank == size - 1 && size > 1)
                sleep(1000);
            double loss;
            if ((rc = dlrt_mpi_train_step(m, local, n, INPUTS(xb, yb), &loss)))
                die("train_step", rc);
            if (f)
                fprintf(f, "loss %lld %.9g\n", (long long)step, loss);
            step++;
        }
    }
    if ((rc = dlrt_mpi_average_states(m)))
        die("average states", rc);
    if (save && (rc = dlrt_mpi_save(m, save)))
        die(save, rc);
    if (f)
        write_model(f, m);
    dlrt_mpi_stats st = dlrt_mpi_get_stats();
    if (rank == 0 && st.buckets > 0)
        printf("ddp: overlap: %lld buckets, started during the backward: %lld\n",
               (long long)st.buckets, (long long)st.buckets_early);
    free(xb);
    free(yb);
    dlrt_batches_free(&b);
    M(destroy)(m);
    return dlrt_mpi_finalize() ? 1 : 0;
}

static int sim(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    int ranks = atoi(argv[2]), steps = atoi(argv[3]), batch = atoi(argv[4]);
    int global = ranks * batch;
    if (ranks < 1 || ranks > 16 || batch < 1 || batch > M(info)()->max_batch || global > NSAMPLES)
        return 2;
    Model *m[16];
    for (int r = 0; r < ranks; r++) {
        if (!(m[r] = M(create)(SEED)))
            die("create", DLRT_ENOMEM);
        ((dlrt_instance *)m[r])->seed = dlrt_mpi_rank_seed(SEED, r);
    }
    FILE *f = open_out(argv[5]);
    dlrt_batches b;
    int rc;
    if ((rc = dlrt_batches_init(&b, NSAMPLES, global, SEED, DLRT_BATCH_DROP_LAST)))
        die("batches", rc);
    float *xb = malloc(sizeof *xb * (size_t)global * DIM);
    int32_t *yb = malloc(sizeof *yb * (size_t)global);
    int64_t n = M(NUM_PARAMS);
    float *sum = malloc(sizeof *sum * (size_t)n);
    if (!xb || !yb || !sum)
        die("buffers", DLRT_ENOMEM);
    int64_t step = 0;
    for (int64_t e = 0; step < steps; e++) {
        dlrt_batches_start(&b, e);
        while (step < steps &&
               dlrt_batches_next(&b, data_x, DIM, xb, data_y, DLRT_I32, 1, yb) == global) {
            double loss = 0;
            for (int r = 0; r < ranks; r++) {
                float l;
                if ((rc = M(compute_gradients)(m[r], batch, xb + (size_t)r * batch * DIM,
                                               yb + r * batch, &l)))
                    die("compute_gradients", rc);
                loss += (double)l * batch / global;
            }
            memset(sum, 0, sizeof *sum * (size_t)n);
            for (int r = 0; r < ranks; r++) {
                const float *g = M(grads)(m[r]);
                for (int64_t i = 0; i < n; i++)
                    sum[i] += ranks == 1 ? g[i] : g[i] * (float)((double)batch / global);
            }
            for (int r = 0; r < ranks; r++) {
                memcpy(M(grads)(m[r]), sum, sizeof *sum * (size_t)n);
                if ((rc = M(apply_gradients)(m[r])))
                    die("apply_gradients", rc);
            }
            fprintf(f, "loss %lld %.9g\n", (long long)step, loss);
            step++;
        }
    }
    const dlrt_model_info *info = M(info)();
    float *s0 = (float *)((char *)m[0] + info->states_offset);
    for (size_t i = 0; i < info->states_bytes / sizeof *s0; i++) {
        double t = 0;
        for (int r = 0; r < ranks; r++)
            t += ((const float *)((const char *)m[r] + info->states_offset))[i];
        s0[i] = (float)(t / ranks);
    }
    write_model(f, m[0]);
    for (int r = 0; r < ranks; r++)
        M(destroy)(m[r]);
    free(xb);
    free(yb);
    free(sum);
    dlrt_batches_free(&b);
    return 0;
}

typedef struct {
    int64_t nloss, nparam, nstate;
    double *loss, *param, *state; /* indexed by step / scalar; NAN where absent */
} Result;

static void read_result(const char *path, Result *r)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    memset(r, 0, sizeof *r);
    r->loss = calloc(1 << 20, sizeof(double));
    r->param = calloc(1 << 22, sizeof(double));
    r->state = calloc(1 << 20, sizeof(double));
    if (!r->loss || !r->param || !r->state)
        die("compare", DLRT_ENOMEM);
    for (int i = 0; i < 1 << 20; i++)
        r->loss[i] = NAN;
    char kind[16];
    long long i;
    double v;
    while (fscanf(f, "%15s %lld %lg", kind, &i, &v) == 3) {
        int64_t cap = !strcmp(kind, "param") ? 1 << 22 : 1 << 20;
        if (i < 0 || i >= cap) {
            fprintf(stderr, "ddp: %s: index %lld out of range\n", path, i);
            exit(1);
        }
        if (!strcmp(kind, "loss")) {
            r->loss[i] = v;
            r->nloss = i + 1 > r->nloss ? i + 1 : r->nloss;
        } else if (!strcmp(kind, "param")) {
            r->param[i] = v;
            r->nparam = i + 1;
        } else {
            r->state[i] = v;
            r->nstate = i + 1;
        }
    }
    fclose(f);
}

/* the largest |a - b| / max(|a|, |b|, floor) over n pairs; *at its index */
static double max_rel(const double *a, const double *b, int64_t n, double floor, int64_t *at)
{
    double worst = 0;
    *at = -1;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i]))
            continue;
        double s = fmax(fmax(fabs(a[i]), fabs(b[i])), floor), d = fabs(a[i] - b[i]) / s;
        if (!(d <= worst)) {
            worst = d;
            *at = i;
        }
    }
    return worst;
}

static double rel2(const double *a, const double *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d += (a[i] - b[i]) * (a[i] - b[i]);
        s += a[i] * a[i];
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

static void free_result(Result *r)
{
    free(r->loss);
    free(r->param);
    free(r->state);
}

static int compare(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    double tol = atof(argv[4]);
    Result a, b;
    read_result(argv[2], &a);
    read_result(argv[3], &b);
    int bad = 0;
    int64_t common = 0;
    for (int64_t i = 0; i < b.nloss; i++) {
        if (isnan(b.loss[i]))
            continue;
        if (isnan(a.loss[i])) {
            fprintf(stderr, "ddp: step %lld: no reference loss\n", (long long)i);
            bad = 1;
        }
        common++;
    }
    if (common == 0 || a.nparam == 0 || a.nparam != b.nparam || a.nstate != b.nstate) {
        fprintf(stderr, "ddp: %lld common steps; %lld vs %lld params, %lld vs %lld states\n",
                (long long)common, (long long)a.nparam, (long long)b.nparam, (long long)a.nstate,
                (long long)b.nstate);
        bad = 1;
    }
    /* parameters and states in the 2-norm, ||b - a|| / ||a||: Adam moves a
     * parameter whose gradient is nearly 0 by about lr whatever the
     * gradient's rounding, so elementwise relative errors of such
     * parameters say nothing */
    if (bad) {
        free_result(&a);
        free_result(&b);
        return 1;
    }
    int64_t at[3] = {0, -1, -1};
    double e[3] = {max_rel(a.loss, b.loss, b.nloss, 0, &at[0]), rel2(a.param, b.param, a.nparam),
                   rel2(a.state, b.state, a.nstate)};
    const char *what[3] = {"loss at step", "parameters", "states"};
    printf("%lld steps compared; largest relative differences: losses %.3g, parameters %.3g, "
           "states %.3g\n",
           (long long)common, e[0], e[1], e[2]);
    for (int k = 0; k < 3; k++)
        if (!(e[k] <= tol)) {
            fprintf(stderr, "ddp: %s%s%.0lld differ by %.3g (tolerance %g)\n", what[k],
                    at[k] >= 0 ? " " : "", (long long)(at[k] >= 0 ? at[k] : 0), e[k], tol);
            bad = 1;
        }
    free_result(&a);
    free_result(&b);
    return bad;
}


/* ddp hooks BATCH: without MPI, the gradient reports of the generated
 * backward (dlrt_model_set_grad_ready) over two compute_gradients calls
 * (the second adds to the first's sums): every parameter reported once
 * per call, as a whole, while the instance's sums still hold their old
 * value, with this batch's gradient (old + reported = new, bit for bit),
 * the last layer's first and the first layer's last; none once the hook
 * is removed. */
typedef struct {
    const float *old; /* the sums before the call */
    float *seen;      /* the reported gradients */
    int *times;       /* reports by parameter */
    int order[256], calls, bad;
    double at[256]; /* seconds since the call began */
    double t0;
} Hooks;

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int64_t numel(const dlrt_tensor_desc *d)
{
    int64_t n = 1;
    for (int k = 0; k < d->rank; k++)
        n *= d->shape[k];
    return n;
}

static int param_at(int64_t first)
{
    const dlrt_model_info *info = M(info)();
    for (int i = 0; i < info->num_params; i++)
        if ((int64_t)(info->params[i].offset - info->params_offset) / 4 == first)
            return i;
    return -1;
}

static void on_ready(void *ctx, void *m, int64_t first, int64_t count, const void *grad)
{
    Hooks *h = ctx;
    const float *g = M(grads)(m);
    int i = param_at(first);
    if (i < 0 || count != numel(&M(info)()->params[i].desc)) {
        fprintf(stderr, "ddp: report of [%lld, +%lld) is no whole parameter\n", (long long)first,
                (long long)count);
        h->bad = 1;
        return;
    }
    if (memcmp(g + first, h->old + first, sizeof *g * (size_t)count)) {
        fprintf(stderr, "ddp: parameter %d reported after its sum was updated\n", i);
        h->bad = 1;
    }
    memcpy(h->seen + first, grad, sizeof *g * (size_t)count);
    h->times[i]++;
    if (h->calls < 256) {
        h->order[h->calls] = i;
        h->at[h->calls] = seconds() - h->t0;
    }
    h->calls++;
}

static int hooks(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int batch = atoi(argv[2]);
    const dlrt_model_info *info = M(info)();
    if (batch < 1 || batch > info->max_batch)
        return 2;
    Model *m = M(create)(SEED);
    int64_t n = M(NUM_PARAMS);
    Hooks h = {.old = malloc(sizeof(float) * (size_t)n), .seen = malloc(sizeof(float) * (size_t)n),
               .times = calloc((size_t)info->num_params, sizeof(int))};
    if (!m || !h.old || !h.seen || !h.times)
        die("memory", DLRT_ENOMEM);
    int rc;
    if (dlrt_model_set_grad_ready(NULL, on_ready, &h) != DLRT_EINVAL)
        die("set_grad_ready(NULL)", DLRT_EINVAL);
    if ((rc = dlrt_model_set_grad_ready(m, on_ready, &h)))
        die("set_grad_ready", rc);
    for (int call = 0; call < 2; call++) {
        memcpy((float *)h.old, M(grads)(m), sizeof(float) * (size_t)n);
        memset(h.times, 0, sizeof(int) * (size_t)info->num_params);
        h.calls = 0;
        float l;
        h.t0 = seconds();
        if ((rc = M(compute_gradients)(m, batch, data_x + (size_t)call * batch * DIM,
                                       data_y + call * batch, &l)))
            die("compute_gradients", rc);
        double took = seconds() - h.t0;
        const float *g = M(grads)(m);
        for (int i = 0; i < info->num_params; i++)
            if (h.times[i] != 1) {
                fprintf(stderr, "ddp: parameter %d reported %d times\n", i, h.times[i]);
                h.bad = 1;
            }
        for (int64_t i = 0; i < n && !h.bad; i++) {
            float want = h.old[i] + h.seen[i];
            if (memcmp(&want, &g[i], sizeof want)) {
                fprintf(stderr, "ddp: call %d: scalar %lld: sum %.9g + reported %.9g != %.9g\n",
                        call, (long long)i, (double)h.old[i], (double)h.seen[i], (double)g[i]);
                h.bad = 1;
            }
        }
        if (h.calls > 0 && (h.order[0] < info->num_params - 2 || h.order[h.calls - 1] > 1)) {
            fprintf(stderr, "ddp: reports from parameter %d to %d: want the last layer's first\n",
                    h.order[0], h.order[h.calls - 1]);
            h.bad = 1;
        }
        printf("ddp: call %d: %d reports in %.3f ms: parameter at ms", call, h.calls, took * 1e3);
        for (int i = 0; i < h.calls && i < 256; i++)
            printf(" %d %.3f,", h.order[i], h.at[i] * 1e3);
        printf("\n");
    }
    dlrt_model_set_grad_ready(m, NULL, NULL);
    h.calls = 0;
    float l;
    if ((rc = M(compute_gradients)(m, batch, data_x, data_y, &l)))
        die("compute_gradients", rc);
    if (h.calls) {
        fprintf(stderr, "ddp: %d reports after the hook was removed\n", h.calls);
        h.bad = 1;
    }
    M(destroy)(m);
    free((float *)h.old);
    free(h.seen);
    free(h.times);
    return h.bad;
}

int main(int argc, char **argv)
{
    int rc = 2;
    make_data();
    if (argc > 1 && !strcmp(argv[1], "run"))
        rc = run(argc, argv);
    else if (argc > 1 && !strcmp(argv[1], "sim"))
        rc = sim(argc, argv);
    else if (argc > 1 && !strcmp(argv[1], "compare"))
        rc = compare(argc, argv);
    else if (argc > 1 && !strcmp(argv[1], "hooks"))
        rc = hooks(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: ddp run STEPS BATCH OUT [--resume CKPT] [--save CKPT] "
                        "[--die-at STEP] [--hang-at STEP]\n       ddp sim RANKS STEPS BATCH OUT\n"
                        "       ddp compare REF OUT TOL\n       ddp hooks BATCH\n");
    return rc;
}

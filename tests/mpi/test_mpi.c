/* test_mpi — libdlrt_mpi's functions on a hand-made model, run on 3 ranks
 * (mpi_unit: mpirun.sh 3), where the ring's chunks are uneven and the
 * order of its sums matters (2 ranks, as ddp.sh runs, would hide both).
 *
 * The model: P parameters of type float or double, one input x [rows, P]
 * of the same type and a double loss;
 * its compute_gradients adds the mean of x's rows to the gradients and
 * reports the mean of column 0 as the loss; apply_gradients subtracts the
 * gradients from the parameters and zeroes them. A data-parallel step
 * must then leave params = -(the mean over the whole global batch), the
 * same bits on every rank, whatever the shares (one rank without rows
 * included). Also: dlrt_mpi_sum, the model check of dlrt_mpi_sync,
 * dlrt_mpi_average_states, dlrt_mpi_shard. Every rank checks; the exit
 * status is 1 when any check failed on this rank. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlrt_mpi.h"

#define P 1001 /* not a multiple of 3: uneven chunks */

static int failed, passed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond)                                                                                  \
            passed++;                                                                              \
        else {                                                                                     \
            failed++;                                                                              \
            fprintf(stderr, "rank %d: %s:%d: ", dlrt_mpi_rank(), __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* x[j][i] of global row j */
static double value(int j, int i)
{
    return sin(j * 31.0 + i * 0.7) + 0.01 * j;
}

typedef struct {
    union {
        dlrt_instance head;
        char header[64]; /* the header's bytes before the parameters */
    };
    double params[P], grads[P], state[4];
} Block;

static int compute(void *m, int batch, const void *const *inputs, void *loss)
{
    Block *b = m;
    const dlrt_model_info *info = b->head.info;
    double l = 0;
    for (int i = 0; i < P; i++) {
        double s = 0;
        for (int r = 0; r < batch; r++)
            s += info->param_dtype == DLRT_F64 ? ((const double *)inputs[0])[r * P + i]
                                               : ((const float *)inputs[0])[r * P + i];
        if (info->param_dtype == DLRT_F64)
            b->grads[i] += s / batch;
        else
            ((float *)b->grads)[i] += (float)(s / batch);
        if (i == 0)
            l = s / batch;
    }
    if (info->loss_dtype == DLRT_F64)
        *(double *)loss = l;
    else
        *(float *)loss = (float)l;
    return 0;
}

static int apply(void *m)
{
    Block *b = m;
    for (int i = 0; i < P; i++) {
        if (b->head.info->param_dtype == DLRT_F64)
            b->params[i] -= b->grads[i];
        else
            ((float *)b->params)[i] -= ((float *)b->grads)[i];
    }
    memset(b->grads, 0, sizeof b->grads);
    return 0;
}

static dlrt_tensor_info state_info = {
    {"s", DLRT_F64, 1, {4}}, 0, offsetof(Block, state), 0, 0, {0}, 0};

static dlrt_model_info make_info(dlrt_dtype t, int64_t nparams)
{
    dlrt_model_info info;
    memset(&info, 0, sizeof info);
    info.name = "fake";
    info.max_batch = 16;
    info.param_dtype = t;
    info.loss_dtype = DLRT_F64; /* with f32 parameters too: read as loss_dtype says */
    info.num_param_scalars = nparams;
    info.state_bytes = sizeof(Block);
    info.num_states = 1;
    info.states = &state_info;
    info.params_offset = offsetof(Block, params);
    info.params_bytes = (size_t)nparams * dlrt_dtype_size(t);
    info.grads_offset = offsetof(Block, grads);
    info.grads_bytes = info.params_bytes;
    info.states_offset = offsetof(Block, state);
    info.states_bytes = sizeof(double[4]);
    info.compute_gradients = compute;
    info.apply_gradients = apply;
    return info;
}

/* every rank's copy of n bytes equals rank 0's */
static int same_everywhere(const void *p, size_t n)
{
    char *root = malloc(n);
    memcpy(root, p, n);
    MPI_Bcast(root, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = memcmp(root, p, n) == 0, all;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    free(root);
    return all;
}

static void step_case(dlrt_dtype t, int global)
{
    dlrt_model_info info = make_info(t, P);
    Block *b = calloc(1, sizeof *b);
    b->head.info = &info;
    b->head.seed = 5;
    CHECK(dlrt_mpi_sync(b) == 0, "sync");
    CHECK(b->head.seed == dlrt_mpi_rank_seed(5, dlrt_mpi_rank()), "rank seed");
    int64_t first, count;
    dlrt_mpi_shard(global, &first, &count);
    double *xd = malloc(sizeof *xd * (size_t)(count + 1) * P);
    float *xf = (float *)xd;
    for (int64_t r = 0; r < count; r++)
        for (int i = 0; i < P; i++) {
            if (t == DLRT_F64)
                xd[r * P + i] = value((int)(first + r), i);
            else
                xf[r * P + i] = (float)value((int)(first + r), i);
        }
    double loss = -1;
    int rc = dlrt_mpi_train_step(b, (int)count, global, (const void *const[]){xd}, &loss);
    CHECK(rc == 0, "train_step: %s", dlrt_strerror(rc));
    double worst = 0, mean0 = 0;
    for (int i = 0; i < P; i++) {
        double mean = 0;
        for (int j = 0; j < global; j++)
            mean += (t == DLRT_F64 ? value(j, i) : (double)(float)value(j, i)) / global;
        if (i == 0)
            mean0 = mean;
        double got = t == DLRT_F64 ? b->params[i] : (double)((float *)b->params)[i];
        worst = fmax(worst, fabs(got + mean));
    }
    double tol = t == DLRT_F64 ? 1e-14 : 1e-6;
    CHECK(worst <= tol, "%s, global batch %d: params off by %g", t == DLRT_F64 ? "f64" : "f32",
          global, worst);
    CHECK(fabs(loss - mean0) <= tol, "loss %g, want %g", loss, mean0);
    CHECK(same_everywhere(b->params, sizeof b->params), "params differ between ranks");
    free(xd);
    free(b);
}

int main(int argc, char **argv)
{
    int rc = dlrt_mpi_init(&argc, &argv);
    if (rc) {
        fprintf(stderr, "init: %s\n", dlrt_strerror(rc));
        return 1;
    }
    int rank = dlrt_mpi_rank(), size = dlrt_mpi_size();

    CHECK(dlrt_mpi_set_timeout(-1) == DLRT_EINVAL && dlrt_mpi_set_timeout(NAN) == DLRT_EINVAL,
          "negative timeouts refused");
    CHECK(dlrt_mpi_set_timeout(60) == 0, "timeout 60 s");

    /* shards: blocks in rank order covering 0..n */
    for (int64_t n = 0; n < 20; n++) {
        int64_t first, count;
        dlrt_mpi_shard(n, &first, &count);
        CHECK(first == rank * (n / size) + (rank < n % size ? rank : n % size) &&
                  count == n / size + (rank < n % size),
              "shard of %lld: %lld+%lld", (long long)n, (long long)first, (long long)count);
    }

    /* sums of doubles: exact here (integers), the same bits on all ranks */
    int lens[] = {0, 1, 2, 3, 7, 1000};
    for (int k = 0; k < 6; k++) {
        int n = lens[k];
        double *v = malloc(sizeof *v * (size_t)(n + 1));
        for (int i = 0; i < n; i++)
            v[i] = rank * 1000.0 + i;
        CHECK(dlrt_mpi_sum(v, n) == 0, "sum");
        int ok = 1;
        for (int i = 0; i < n; i++)
            ok &= v[i] == 1000.0 * size * (size - 1) / 2 + (double)i * size;
        CHECK(ok, "sum of %d doubles", n);
        CHECK(same_everywhere(v, sizeof *v * (size_t)n), "sums differ between ranks");
        free(v);
    }

    /* steps: f32 and f64; shares 4,3,3 and 1,1,0 (a rank without rows) */
    step_case(DLRT_F32, 10);
    step_case(DLRT_F64, 10);
    step_case(DLRT_F32, 2);
    step_case(DLRT_F64, 1);

    /* gradient accumulation: two compute_gradients of half the rows each,
     * then one all-reduce weighted rows / global / 2 = one step's update */
    {
        int global = 12;
        dlrt_model_info info = make_info(DLRT_F64, P);
        Block *b = calloc(1, sizeof *b);
        b->head.info = &info;
        int64_t first, count;
        dlrt_mpi_shard(global, &first, &count); /* 4 rows each on 3 ranks */
        double *x = malloc(sizeof *x * (size_t)count * P), l;
        for (int64_t r = 0; r < count; r++)
            for (int i = 0; i < P; i++)
                x[r * P + i] = value((int)(first + r), i);
        int half = (int)count / 2;
        info.compute_gradients(b, half, (const void *const[]){x}, &l);
        info.compute_gradients(b, half, (const void *const[]){x + half * P}, &l);
        CHECK(dlrt_mpi_allreduce_grads(b, (double)count / global / 2) == 0, "all-reduce");
        info.apply_gradients(b);
        double worst = 0;
        for (int i = 0; i < P; i++) {
            double mean = 0;
            for (int j = 0; j < global; j++)
                mean += value(j, i) / global;
            worst = fmax(worst, fabs(b->params[i] + mean));
        }
        CHECK(count % 2 == 0 && worst <= 1e-14, "accumulated step off by %g", worst);
        free(x);
        free(b);
    }

    /* model state averaged */
    {
        dlrt_model_info info = make_info(DLRT_F64, P);
        Block *b = calloc(1, sizeof *b);
        b->head.info = &info;
        for (int i = 0; i < 4; i++)
            b->state[i] = rank + i;
        CHECK(dlrt_mpi_average_states(b) == 0, "average_states");
        CHECK(b->state[0] == (size - 1) / 2.0 && b->state[3] == (size - 1) / 2.0 + 3,
              "averaged state %g %g", b->state[0], b->state[3]);
        free(b);
    }

    /* a rank with another model: every rank refuses */
    {
        dlrt_model_info info = make_info(DLRT_F32, rank == 1 ? P - 1 : P);
        Block *b = calloc(1, sizeof *b);
        b->head.info = &info;
        rc = dlrt_mpi_sync(b);
        CHECK(rc == DLRT_EMISMATCH, "sync of different models: %d", rc);
        free(b);
    }

    /* a missing checkpoint: rank 0's error on every rank */
    {
        dlrt_model_info info = make_info(DLRT_F32, P);
        Block *b = calloc(1, sizeof *b);
        b->head.info = &info;
        rc = dlrt_mpi_load(b, "/nonexistent/ckpt.safetensors");
        CHECK(rc == DLRT_EIO, "load of a missing file: %d", rc);
        CHECK(strstr(dlrt_last_error(), "nonexistent") != NULL, "message '%s'", dlrt_last_error());
        free(b);
    }

    printf("rank %d: %d passed, %d failed\n", rank, passed, failed);
    dlrt_mpi_finalize();
    return failed != 0;
}

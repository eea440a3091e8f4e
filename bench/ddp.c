/* bench_ddp_NAME — data-parallel training speed of a compiled MNIST
 * classifier (the MLP: bench_ddp_mnist_mlp, LeNet-5: bench_ddp_lenet) on
 * however many ranks mpirun starts (bench/mpi.sh runs 1 and 2). The model
 * is chosen when this file is compiled (-DMODEL=NAME, as bench/mnist.c).
 *
 * Every rank trains on its share of a global batch of random inputs and
 * labels (dlrt_mpi_train_step: compute_gradients, the gradient all-reduce,
 * apply_gradients), in rounds of STEPS steps after a warm-up round. Rank
 * 0 prints the median round's time per step and samples/s, the
 * communication time per step inside the step (dlrt_mpi_get_stats: the
 * all-reduce, including waiting for the slower rank) and its share, then
 * the all-reduce of the gradients alone, timed in a loop with no compute
 * between calls: its time and the bandwidth it reaches. docs/DISTRIBUTED.md
 * models the step time over N ranks from these. On 2 ranks or more the
 * rounds alternate between the all-reduce after the backward on the
 * calling thread, overlapped with the backward, and on the communication
 * thread after the backward (dlrt_mpi_set_overlap's modes), and two more
 * lines give the figures of the last two.
 *
 *   bench_ddp_NAME [GLOBAL_BATCH [STEPS [ROUNDS]]]     default 64 200 5 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dlrt_mpi.h"
#include "model.h"
#define PROG "bench_ddp_" STR(MODEL)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* argv[i] as an integer in 1..hi, def when absent */
static int arg(int argc, char **argv, int i, int def, int hi)
{
    int v = argc > i ? atoi(argv[i]) : def;
    if (v < 1 || v > hi) {
        fprintf(stderr, PROG ": argument %d must be in 1..%d\n", i, hi);
        dlrt_mpi_abort(2);
    }
    return v;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check(const char *what, int rc)
{
    if (rc) {
        fprintf(stderr, PROG ": %s: %s\n", what, dlrt_strerror(rc));
        dlrt_mpi_abort(1);
    }
}

int main(int argc, char **argv)
{
    check("MPI", dlrt_mpi_init(&argc, &argv));
    int size = dlrt_mpi_size(), rank = dlrt_mpi_rank();
    const dlrt_model_info *info = M(info)();
    int global = arg(argc, argv, 1, 64, info->max_batch * size);
    int steps = arg(argc, argv, 2, 200, 1000000);
    int rounds = arg(argc, argv, 3, 5, 100);
    int64_t first, local;
    dlrt_mpi_shard(global, &first, &local);
    int64_t dim = 1;
    for (int i = 1; i < info->inputs[0].desc.rank; i++)
        dim *= info->inputs[0].desc.shape[i];
    float *x = malloc(sizeof *x * (size_t)(local ? local : 1) * (size_t)dim);
    int32_t *y = malloc(sizeof *y * (size_t)(local ? local : 1));
    Model *m = M(create)(1);
    if (!x || !y || !m)
        check("memory", DLRT_ENOMEM);
    dlrt_rng rng;
    dlrt_rng_seed(&rng, 7, (uint64_t)rank);
    for (int64_t i = 0; i < local * dim; i++)
        x[i] = (float)(dlrt_rng_next(&rng) >> 40) / (float)(1 << 24);
    for (int64_t i = 0; i < local; i++)
        y[i] = (int32_t)(dlrt_rng_next(&rng) % 10);
    check("sync", dlrt_mpi_sync(m));

    /* [mode * rounds + r]: mode 0 the all-reduce after the backward, on
     * 2 ranks or more also 1 overlapped with it and 2 on the
     * communication thread after it (dlrt_mpi_set_overlap), alternating
     * round by round so that all see the same load; hidden: the
     * all-reduce's time on the communication thread */
    enum { MODES = 3 };
    double *per_step = malloc(sizeof *per_step * MODES * (size_t)rounds);
    double *comm = malloc(sizeof *comm * MODES * (size_t)rounds);
    double *hidden = malloc(sizeof *hidden * MODES * (size_t)rounds);
    int64_t early[MODES] = {0}, buckets[MODES] = {0};
    if (!per_step || !comm || !hidden)
        check("memory", DLRT_ENOMEM);
    int modes = size > 1 ? MODES : 1;
    for (int r = -1; r < rounds; r++) { /* round -1: warm-up */
        for (int mode = 0; mode < modes; mode++) {
            double loss, zero = 0;
            dlrt_mpi_set_overlap(mode);
            check("barrier", dlrt_mpi_sum(&zero, 1));
            dlrt_mpi_stats s0 = dlrt_mpi_get_stats();
            double t0 = now();
            for (int s = 0; s < steps; s++)
                check("train_step", dlrt_mpi_train_step(m, (int)local, global,
                                                        (const void *const[]){x, y}, &loss));
            double t = now() - t0;
            dlrt_mpi_stats s1 = dlrt_mpi_get_stats();
            if (r >= 0) {
                per_step[mode * rounds + r] = t / steps;
                comm[mode * rounds + r] = (s1.comm_seconds - s0.comm_seconds) / steps;
                hidden[mode * rounds + r] = (s1.overlap_seconds - s0.overlap_seconds) / steps;
                early[mode] += s1.buckets_early - s0.buckets_early;
                buckets[mode] += s1.buckets - s0.buckets;
            }
        }
    }
    dlrt_mpi_set_overlap(DLRT_MPI_AFTER);
    /* the all-reduce alone, of zeros (sums of zeros stay finite) */
    float *g = M(grads)(m);
    for (int64_t i = 0; i < info->num_param_scalars; i++)
        g[i] = 0;
    int reps = steps;
    double zero = 0;
    check("barrier", dlrt_mpi_sum(&zero, 1));
    double t0 = now();
    for (int s = 0; s < reps; s++)
        check("all-reduce", dlrt_mpi_allreduce_grads(m, 1));
    double alone = (now() - t0) / reps;

    /* the median round by step time, with its communication */
    double sorted[100];
    for (int r = 0; r < rounds; r++)
        sorted[r] = per_step[r];
    qsort(sorted, (size_t)rounds, sizeof *sorted, cmp);
    double med = sorted[rounds / 2], med_comm = 0;
    for (int r = 0; r < rounds; r++)
        if (per_step[r] == med)
            med_comm = comm[r];
    double bytes = (double)info->num_param_scalars * (double)dlrt_dtype_size(info->param_dtype);
    if (rank == 0) {
        printf("%s: %d rank%s, global batch %d (%lld per rank), %lld parameters: "
               "step %.3f ms (median of %d rounds of %d; min %.3f, max %.3f), %.0f samples/s; "
               "communication %.3f ms per step (%.1f%%); all-reduce of %.0f kB alone %.3f ms",
               STR(MODEL), size, size > 1 ? "s" : "", global, (long long)local,
               (long long)info->num_param_scalars, med * 1e3, rounds, steps, sorted[0] * 1e3,
               sorted[rounds - 1] * 1e3, global / med, med_comm * 1e3, 100 * med_comm / med,
               bytes / 1e3, alone * 1e3);
        if (size > 1) /* each rank sends and receives 2 (N-1)/N of the array */
            printf(" (%.2f GB/s bus bandwidth)", 2.0 * (size - 1) / size * bytes / alone / 1e9);
        printf("\n");
        static const char *const what[MODES] = {
            "", "overlapped with the backward", "on the communication thread after the backward"};
        for (int mode = 1; mode < modes; mode++) {
            double ms[100], *ps = per_step + mode * rounds, om = 0, oc = 0, oh = 0;
            for (int r = 0; r < rounds; r++)
                ms[r] = ps[r];
            qsort(ms, (size_t)rounds, sizeof *ms, cmp);
            om = ms[rounds / 2];
            for (int r = 0; r < rounds; r++)
                if (ps[r] == om) {
                    oc = comm[mode * rounds + r];
                    oh = hidden[mode * rounds + r];
                }
            printf("%s: all-reduce %s (same rounds, alternating): %.3f ms per step (min %.3f, "
                   "max %.3f), %.0f samples/s, %.2fx the time of the all-reduce after it on the "
                   "calling thread; waited %.3f ms per step for communication (%.1f%%); the "
                   "all-reduce took %.3f ms per step on the communication thread; %lld of %lld "
                   "buckets started during the backward\n",
                   STR(MODEL), what[mode], om * 1e3, ms[0] * 1e3, ms[rounds - 1] * 1e3,
                   global / om, om / med, oc * 1e3, 100 * oc / om, oh * 1e3,
                   (long long)early[mode], (long long)buckets[mode]);
        }
    }
    free(per_step);
    free(comm);
    free(hidden);
    free(x);
    free(y);
    M(destroy)(m);
    return dlrt_mpi_finalize() ? 1 : 0;
}

/* libdlrt's thread pool (runtime/pool.c) and the GEMM tiles on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checklib.h"
#include "dlrt.h"

SUITE("runtime-pool");
GROUP(pool, NULL, NULL, 60);

enum { NTASKS = 1000 };

typedef struct {
    atomic_int runs[NTASKS];
    atomic_int with_scratch, without_scratch;
    size_t scratch_bytes;
} Count;

static void count_task(void *ctx, int64_t t, void *scratch)
{
    Count *c = ctx;
    atomic_fetch_add(&c->runs[t], 1);
    if (scratch) {
        ck_assert_uint_eq((uintptr_t)scratch % 64, 0);
        memset(scratch, (int)t, c->scratch_bytes); /* all of it is ours (ASan) */
        atomic_fetch_add(&c->with_scratch, 1);
    } else {
        atomic_fetch_add(&c->without_scratch, 1);
    }
}

static void check_each_once(Count *c, int64_t n)
{
    for (int64_t t = 0; t < n; t++)
        ck_assert_int_eq(atomic_load(&c->runs[t]), 1);
}

TEST(pool, count_from_environment)
{
    setenv("DLRT_NUM_THREADS", "3", 1);
    ck_assert_int_eq(dlrt_num_threads(), 3);
}
END_TEST

TEST(pool, count_from_affinity)
{
    unsetenv("DLRT_NUM_THREADS");
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    ck_assert_int_eq(dlrt_num_threads(), CPU_COUNT(&set));
}
END_TEST

TEST(pool, bad_environment_falls_back)
{
    setenv("DLRT_NUM_THREADS", "zero", 1);
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    ck_assert_int_eq(dlrt_num_threads(), CPU_COUNT(&set));
}
END_TEST

TEST(pool, set_count)
{
    ck_assert_int_eq(dlrt_set_num_threads(0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_set_num_threads(-3), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_set_num_threads(5), DLRT_OK);
    ck_assert_int_eq(dlrt_num_threads(), 5);
    ck_assert_int_eq(dlrt_set_num_threads(100000), DLRT_OK);
    ck_assert_int_eq(dlrt_num_threads(), 256);
}
END_TEST

/* Every task exactly once at 1, 2, 3 and 7 threads, and again after the
 * count changes (the workers are stopped and made anew). */
TEST(pool, every_task_once)
{
    static const int counts[] = {1, 2, 3, 7, 2};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(dlrt_set_num_threads(counts[i]), DLRT_OK);
        for (int64_t n = 0; n <= NTASKS; n += n < 4 ? 1 : 333) {
            Count *c = calloc(1, sizeof *c);
            c->scratch_bytes = 100;
            dlrt_parallel_for(n, count_task, c, c->scratch_bytes);
            check_each_once(c, n);
            for (int64_t t = n; t < NTASKS; t++)
                ck_assert_int_eq(atomic_load(&c->runs[t]), 0);
            if (counts[i] == 1)
                ck_assert_int_eq(atomic_load(&c->with_scratch), 0);
            free(c);
        }
    }
}
END_TEST

/* A lane whose owner is slow is shared, but its owner keeps the last
 * quarter of it (runtime/pool.c): at 2 threads the caller owns tasks
 * 0-19, each 2 ms, the worker 20-39, instant; whatever the worker takes
 * of the caller's, tasks 15-19 stay the caller's, and every task runs
 * once. */
typedef struct {
    pthread_t caller;
    atomic_int runs[40], by_caller[40];
} Lanes;

static void lane_task(void *ctx, int64_t t, void *scratch)
{
    (void)scratch;
    Lanes *l = ctx;
    atomic_fetch_add(&l->runs[t], 1);
    atomic_store(&l->by_caller[t], pthread_equal(pthread_self(), l->caller) ? 1 : 0);
    if (t < 20) {
        struct timespec d = {0, 2000000};
        nanosleep(&d, NULL);
    }
}

TEST(pool, owner_keeps_last_quarter)
{
    ck_assert_int_eq(dlrt_set_num_threads(2), DLRT_OK);
    for (int rep = 0; rep < 3; rep++) {
        Lanes *l = calloc(1, sizeof *l);
        l->caller = pthread_self();
        dlrt_parallel_for(40, lane_task, l, 0);
        for (int t = 0; t < 40; t++)
            ck_assert_int_eq(atomic_load(&l->runs[t]), 1);
        for (int t = 15; t < 20; t++)
            ck_assert_int_eq(atomic_load(&l->by_caller[t]), 1);
        free(l);
    }
}
END_TEST

/* Two tasks that each wait for the other to have started: they can only
 * finish if they run at the same time, on two threads. */
typedef struct {
    atomic_int started;
    atomic_int met;
} Meet;

static void meet_task(void *ctx, int64_t t, void *scratch)
{
    (void)t;
    (void)scratch;
    Meet *m = ctx;
    atomic_fetch_add(&m->started, 1);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        if (atomic_load(&m->started) == 2) {
            atomic_fetch_add(&m->met, 1);
            return;
        }
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - start.tv_sec < 30);
}

TEST(pool, tasks_run_side_by_side)
{
    ck_assert_int_eq(dlrt_set_num_threads(2), DLRT_OK);
    Meet m = {0};
    dlrt_parallel_for(2, meet_task, &m, 0);
    ck_assert_int_eq(atomic_load(&m.met), 2);
}
END_TEST

/* A loop inside a task runs on that task's thread, all of it. */
static void outer_task(void *ctx, int64_t t, void *scratch)
{
    (void)scratch;
    Count *c = ctx;
    dlrt_parallel_for(10, count_task, &c[1 + t], 0);
    ck_assert_int_eq(dlrt_set_num_threads(4), DLRT_ESTATE);
}

TEST(pool, nested_loops)
{
    ck_assert_int_eq(dlrt_set_num_threads(3), DLRT_OK);
    Count *c = calloc(9, sizeof *c);
    dlrt_parallel_for(8, outer_task, c, 0);
    for (int t = 1; t < 9; t++) {
        check_each_once(&c[t], 10);
        ck_assert_int_eq(atomic_load(&c[t].with_scratch), 0);
    }
    free(c);
    ck_assert_int_eq(dlrt_num_threads(), 3);
}
END_TEST

/* Application threads submitting loops at once all complete theirs. */
static void *submitter(void *arg)
{
    Count *c = arg;
    for (int r = 0; r < 50; r++) {
        memset(c->runs, 0, sizeof c->runs);
        dlrt_parallel_for(64, count_task, c, c->scratch_bytes);
        for (int t = 0; t < 64; t++)
            if (atomic_load(&c->runs[t]) != 1)
                return (void *)1;
    }
    return NULL;
}

TEST(pool, concurrent_callers)
{
    ck_assert_int_eq(dlrt_set_num_threads(2), DLRT_OK);
    enum { NCALLERS = 3 };
    pthread_t th[NCALLERS];
    Count *c = calloc(NCALLERS, sizeof *c);
    for (int i = 0; i < NCALLERS; i++) {
        c[i].scratch_bytes = 64 * (size_t)(i + 1);
        ck_assert_int_eq(pthread_create(&th[i], NULL, submitter, &c[i]), 0);
    }
    for (int i = 0; i < NCALLERS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        ck_assert_ptr_null(ret);
    }
    free(c);
}
END_TEST

/* Idle workers sleep: a second with 3 workers idle costs the process
 * almost no CPU time (spinning workers would cost up to 3 s). */
TEST(pool, idle_workers_sleep)
{
    ck_assert_int_eq(dlrt_set_num_threads(4), DLRT_OK);
    Count *c = calloc(1, sizeof *c);
    dlrt_parallel_for(100, count_task, c, 0);
    check_each_once(c, 100);
    free(c);
    struct timespec cpu0, cpu1, pause = {1, 0};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    nanosleep(&pause, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    double used = (double)(cpu1.tv_sec - cpu0.tv_sec) + 1e-9 * (double)(cpu1.tv_nsec - cpu0.tv_nsec);
    ck_assert_double_lt(used, 0.1);
}
END_TEST

/* Products large enough to be tiled: the same bits at 1, 2 and 3
 * threads, for every transposition, and close to a naive f64 product.
 * The shapes take each cut of runtime/gemm.c: 203x317x129 (no operand
 * dominates: row tiles); 40x300x1003 (B dominates: parts of k, or column
 * tiles when B is transposed); 300x40x1003 (A dominates: parts of k when
 * A is transposed, row tiles when not); 40x600x1500 (B dominates and
 * each half of k is cut into row tiles). */
TEST(pool, gemm_tiles_same_bits)
{
    static const int shapes[][3] = {
        {203, 317, 129}, {40, 300, 1003}, {300, 40, 1003}, {40, 600, 1500}};
    for (int sh = 0; sh < 4; sh++) {
        int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
        float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
        float *c[3];
        for (int i = 0; i < M * K; i++)
            a[i] = (float)sin(0.37 * i);
        for (int i = 0; i < K * N; i++)
            b[i] = (float)cos(0.11 * i);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                for (int th = 0; th < 3; th++) {
                    ck_assert_int_eq(dlrt_set_num_threads(th + 1), DLRT_OK);
                    c[th] = malloc(sizeof(float) * M * N);
                    for (int i = 0; i < M * N; i++)
                        c[th][i] = 1.0f;
                    dlrt_gemm_f32(ta, tb, M, N, K, 0.5f, a, ta ? M : K, b, tb ? K : N, 2.0f,
                                  c[th], N);
                }
                ck_assert_mem_eq(c[0], c[1], sizeof(float) * M * N);
                ck_assert_mem_eq(c[0], c[2], sizeof(float) * M * N);
                for (int i = 0; i < M; i += 7)
                    for (int j = 0; j < N; j += 5) {
                        double s = 0, g = 0;
                        for (int p = 0; p < K; p++) {
                            double x = (double)a[ta ? p * M + i : i * K + p] *
                                       (double)b[tb ? j * K + p : p * N + j];
                            s += x;
                            g += fabs(x);
                        }
                        ck_assert_double_eq_tol(c[0][i * N + j], 0.5 * s + 2.0, 1e-6 * (2 + g));
                    }
                for (int th = 0; th < 3; th++)
                    free(c[th]);
            }
        free(a);
        free(b);
    }
}
END_TEST

/* A child of fork() after the pool ran has no workers of its parent's:
 * its loops start their own and complete. */
TEST(pool, loops_after_fork)
{
    ck_assert_int_eq(dlrt_set_num_threads(2), DLRT_OK);
    Count *c = calloc(1, sizeof *c);
    dlrt_parallel_for(100, count_task, c, 0);
    check_each_once(c, 100);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        memset(c->runs, 0, sizeof c->runs);
        dlrt_parallel_for(100, count_task, c, 64);
        for (int t = 0; t < 100; t++)
            if (atomic_load(&c->runs[t]) != 1)
                _exit(1);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(c);
}
END_TEST

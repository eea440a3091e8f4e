/*
 * The thread pool: one per process, made on first use, of
 * dlrt_num_threads() - 1 workers beside the calling thread.
 *
 * dlrt_parallel_for(ntasks, fn, ctx, scratch_bytes) runs fn on every task
 * of a fixed list. What a task computes is decided by its caller from the
 * shapes alone; threads only take tasks, so the result never depends on
 * which thread ran which task or on how many there are. A caller that
 * combines partial results does it after the loop, in task order.
 *
 * Who takes which task is still chosen for speed: thread k of n (the
 * caller is 0) owns the k-th of n consecutive blocks of the list (a
 * lane, an atomic counter) and takes its own tasks first, then those
 * left in the other lanes. Generated code cuts every step the same way
 * (rows of the batch, rows of a product's output, chunks of the
 * parameters, in order), so a thread mostly works on the data it wrote in
 * the step before. Tasks taken from a shared counter, by whoever came
 * first, moved data between the cores at every step: on this 2-core
 * machine the optimizer's update and the gradient sums, which only
 * stream memory, took 2-4 times longer on two threads than on one.
 * A thread takes from the lane of a thread that has joined the loop only
 * while more than a quarter of that lane is left: each task taken moves
 * its data to the other core, which makes its owner slower at the next
 * loop over the same data, and so more likely to be robbed again. With
 * every steal allowed, the MNIST MLP's two threads took 50-170k tasks
 * from each other over 9,000 training steps and trained at 190-240k
 * samples/s; keeping the last quarter, 10-20k and 240-270k. A lane whose
 * owner has not joined is taken whole: no thread waits for one that is
 * not running.
 *
 * Between loops a worker first watches for the next one for SPIN_NS
 * (the loops of one model call follow each other within microseconds,
 * and waking a sleeping thread takes tens of them: as long as a loop of
 * 8 tasks of 8 us on this machine), then sleeps on a condition variable,
 * so an idle pool -- between calls, or in a program that has stopped
 * calling -- uses no processor. The calling thread takes tasks too and
 * then waits, watching for SPIN_NS and then on a condition variable, for
 * the tasks still running; it never waits for a worker that has not woken
 * yet (on a loaded machine, a worker may be scheduled only after the
 * caller has done every task: it then finds nothing to take).
 *
 * One loop at a time uses the workers. A call made while another
 * application thread's loop holds them, or from inside a task (nested),
 * runs its tasks one after the other on the calling thread: the same
 * tasks, so the same results, and no thread ever waits for a pool that
 * waits for it. That is what makes the pool safe to share between model
 * instances used from different threads.
 *
 * Scratch: a task that needs working memory of its own (an im2col
 * matrix) is given the worker's buffer of scratch_bytes, allocated before
 * the loop starts, or NULL when it runs on the calling thread, which then
 * uses the caller's own memory (generated code: the step's slot in the
 * instance's arena). When a worker's buffer cannot be allocated, the loop
 * runs on the calling thread alone; it never fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "dlrt.h"
#include "profile.h"

enum { MAX_THREADS = 256 };

/* How long a thread watches for what it waits for before it sleeps. */
#define SPIN_NS 200000

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Tells the core this thread is waiting (frees the sibling hyperthread,
 * saves power). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* One thread's watching: spin_more() until it returns 0, SPIN_NS after
 * the first call. */
typedef struct {
    unsigned i;
    int64_t until;
} Spin;

static int spin_more(Spin *s)
{
    cpu_relax();
    if (++s->i % 64) /* the clock costs more than a pause */
        return 1;
    int64_t t = now_ns();
    if (!s->until)
        s->until = t + SPIN_NS;
    return t < s->until;
}

typedef struct {
    pthread_t tid;
    uint64_t seen; /* the last loop it ran */
    void *scratch;
    size_t scratch_bytes;
} Worker;

static struct {
    pthread_mutex_t use;   /* held by the thread whose loop runs on the workers */
    pthread_mutex_t m;     /* guards everything below */
    pthread_cond_t wake;   /* workers: a new loop or quit */
    pthread_cond_t done;   /* the caller: the last worker left the loop */
    int nthreads;          /* 0 until first asked for */
    int nworkers;          /* started, nthreads - 1 once started */
    Worker w[MAX_THREADS];
    uint64_t generation;   /* counts loops; a worker joins each loop at most once */
    _Atomic uint64_t posted; /* generation + quit, for workers watching without m */
    int quit;
    dlrt_task_fn fn;
    void *ctx;
    int64_t ntasks;
    int nlanes;            /* the loop's threads: its caller and every worker */
    atomic_int_fast64_t finished; /* tasks of the loop done */
} pool = {
    .use = PTHREAD_MUTEX_INITIALIZER,
    .m = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

/* Lane k's next task (low 32 bits) and the loop's generation (high 32):
 * a worker that wakes after its loop ended takes nothing from the next
 * one, whose generation differs; joined: the generation of the last loop
 * its owner joined. One cache line each. */
static struct {
    _Alignas(64) _Atomic uint64_t next;
    _Atomic uint64_t joined;
} lane[MAX_THREADS];

/* The first task of lane k of n, for ntasks tasks: the caller's lane 0
 * is the longest, as the caller is the one thread sure to be running. */
static int64_t lane_start(int k, int n, int64_t ntasks)
{
    return ntasks - (n - k) * ntasks / n;
}

static _Thread_local int in_task; /* this thread is running a task */

static int default_threads(void)
{
    const char *env = getenv("DLRT_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == 0 && v >= 1)
            return v > MAX_THREADS ? MAX_THREADS : (int)v;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1)
        return CPU_COUNT(&set) > MAX_THREADS ? MAX_THREADS : CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* pool.m held */
static void init_count(void)
{
    if (!pool.nthreads)
        pool.nthreads = default_threads();
}

/* Takes tasks of loop gen (low 32 bits of the generation) until none is
 * left, from its own lane me of n first, then from the others in turn;
 * the caller has set in_task. The thread that finishes the last task
 * wakes the loop's caller. */
static void take_tasks(uint64_t gen, int me, int n, dlrt_task_fn fn, void *ctx, int64_t ntasks,
                       void *scratch)
{
    atomic_store(&lane[me].joined, gen);
    for (int j = 0; j < n; j++) {
        int k = (me + j) % n;
        int64_t end = lane_start(k + 1, n, ntasks);
        int64_t keep = (end - lane_start(k, n, ntasks) + 3) / 4; /* a quarter, rounded up */
        uint64_t v = atomic_load(&lane[k].next);
        for (;;) {
            if (v >> 32 != gen || (int64_t)(v & 0xffffffffu) >= end)
                break;
            if (k != me && end - (int64_t)(v & 0xffffffffu) <= keep &&
                atomic_load(&lane[k].joined) == gen)
                break; /* its owner keeps the last quarter */
            if (!atomic_compare_exchange_weak(&lane[k].next, &v, v + 1))
                continue;
            fn(ctx, (int64_t)(v & 0xffffffffu), scratch);
            if (atomic_fetch_add(&pool.finished, 1) + 1 == ntasks) {
                pthread_mutex_lock(&pool.m);
                pthread_cond_signal(&pool.done);
                pthread_mutex_unlock(&pool.m);
            }
            v = atomic_load(&lane[k].next);
        }
    }
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    in_task = 1; /* everything a worker runs is inside a task */
    for (;;) {
        /* (posted may still lag behind a loop this worker was woken for) */
        for (Spin sp = {0}; atomic_load_explicit(&pool.posted, memory_order_acquire) <= w->seen &&
                            spin_more(&sp);)
            ;
        pthread_mutex_lock(&pool.m);
        while (pool.generation == w->seen && !pool.quit)
            pthread_cond_wait(&pool.wake, &pool.m);
        if (pool.quit)
            break;
        w->seen = pool.generation;
        dlrt_task_fn fn = pool.fn;
        void *ctx = pool.ctx, *scratch = w->scratch;
        int64_t ntasks = pool.ntasks;
        int n = pool.nlanes;
        pthread_mutex_unlock(&pool.m);
        take_tasks(w->seen & 0xffffffffu, (int)(w - pool.w), n, fn, ctx, ntasks, scratch);
    }
    pthread_mutex_unlock(&pool.m);
    return NULL;
}

/* Joins every worker; pool.use held. */
static void stop_workers(void)
{
    pthread_mutex_lock(&pool.m);
    pool.quit = 1;
    atomic_store(&pool.posted, pool.generation + 1); /* ends the watching */
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.m);
    for (int i = 1; i <= pool.nworkers; i++) {
        pthread_join(pool.w[i].tid, NULL);
        free(pool.w[i].scratch);
        pool.w[i].scratch = NULL;
        pool.w[i].scratch_bytes = 0;
    }
    pool.nworkers = 0;
    pool.quit = 0;
    pool.generation = 0;
    atomic_store(&pool.posted, 0);
}

/* A child of fork() has none of its parent's workers: it starts its own
 * (the parent's scratch buffers are freed, its locks made anew). */
static void forget_workers(void)
{
    for (int i = 1; i <= pool.nworkers; i++) {
        free(pool.w[i].scratch);
        pool.w[i].scratch = NULL;
        pool.w[i].scratch_bytes = 0;
    }
    pool.nworkers = 0;
    pool.quit = 0;
    pool.generation = 0;
    atomic_store(&pool.posted, 0);
    pthread_mutex_init(&pool.use, NULL);
    pthread_mutex_init(&pool.m, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_workers); }

/* Starts the workers up to nthreads - 1 (pool.use held); fewer when the
 * system refuses threads. */
static void start_workers(void)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.m);
    init_count();
    int want = pool.nthreads - 1;
    pthread_mutex_unlock(&pool.m);
    while (pool.nworkers < want) {
        Worker *w = &pool.w[pool.nworkers + 1];
        w->seen = pool.generation; /* no loop runs now: pool.use is held */
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0)
            break;
        pool.nworkers++;
    }
}

int dlrt_set_num_threads(int n)
{
    if (n < 1)
        return DLRT_EINVAL;
    if (in_task)
        return DLRT_ESTATE;
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    pthread_mutex_lock(&pool.use); /* waits for a loop that is running */
    pthread_mutex_lock(&pool.m);
    int old = pool.nthreads;
    pool.nthreads = n;
    pthread_mutex_unlock(&pool.m);
    if (n != old && pool.nworkers)
        stop_workers();
    pthread_mutex_unlock(&pool.use);
    return DLRT_OK;
}

int dlrt_num_threads(void)
{
    pthread_mutex_lock(&pool.m);
    init_count();
    int n = pool.nthreads;
    pthread_mutex_unlock(&pool.m);
    return n;
}

/* Each worker's scratch at least bytes; false when one cannot have it. */
static int grow_scratch(size_t bytes)
{
    size_t want = (bytes + 63) / 64 * 64;
    for (int i = 1; i <= pool.nworkers; i++) {
        Worker *w = &pool.w[i];
        if (w->scratch_bytes >= want)
            continue;
        free(w->scratch);
        w->scratch = aligned_alloc(64, want);
        w->scratch_bytes = w->scratch ? want : 0;
        if (!w->scratch)
            return 0;
    }
    return 1;
}

static void run_inline(int64_t ntasks, dlrt_task_fn fn, void *ctx)
{
    int outer = in_task;
    in_task = 1;
    for (int64_t t = 0; t < ntasks; t++)
        fn(ctx, t, NULL);
    in_task = outer;
}

/* The loop; *mine is set to when the calling thread ran out of tasks of
 * its own when others ran some. */
static void run_loop(int64_t ntasks, dlrt_task_fn fn, void *ctx, size_t scratch_bytes,
                     int64_t *mine)
{
    if (ntasks == 1 || ntasks > INT32_MAX || in_task || pthread_mutex_trylock(&pool.use) != 0) {
        run_inline(ntasks, fn, ctx);
        return;
    }
    start_workers();
    pthread_mutex_lock(&pool.m);
    if (pool.nworkers == 0 || (scratch_bytes && !grow_scratch(scratch_bytes))) {
        pthread_mutex_unlock(&pool.m);
        pthread_mutex_unlock(&pool.use);
        run_inline(ntasks, fn, ctx);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.ntasks = ntasks;
    pool.generation++;
    uint64_t gen = pool.generation & 0xffffffffu;
    pool.nlanes = pool.nworkers + 1;
    atomic_store(&pool.finished, 0);
    for (int k = 0; k < pool.nlanes; k++)
        atomic_store(&lane[k].next, gen << 32 | (uint64_t)lane_start(k, pool.nlanes, ntasks));
    pthread_cond_broadcast(&pool.wake);
    int n = pool.nlanes;
    uint64_t posted = pool.generation;
    pthread_mutex_unlock(&pool.m);
    /* after the unlock: a watching worker that saw the loop while the
     * caller still held the lock slept in the kernel until it was free */
    atomic_store_explicit(&pool.posted, posted, memory_order_release);

    in_task = 1;
    take_tasks(gen, 0, n, fn, ctx, ntasks, NULL);
    in_task = 0;
    if (mine)
        *mine = now_ns();

    /* every task done; workers that woke too late take nothing and touch
     * nothing of this loop */
    for (Spin sp = {0}; atomic_load(&pool.finished) < ntasks && spin_more(&sp);)
        ;
    pthread_mutex_lock(&pool.m);
    while (atomic_load(&pool.finished) < ntasks)
        pthread_cond_wait(&pool.done, &pool.m);
    pthread_mutex_unlock(&pool.m);
    pthread_mutex_unlock(&pool.use);
}

void dlrt_parallel_for(int64_t ntasks, dlrt_task_fn fn, void *ctx, size_t scratch_bytes)
{
    if (ntasks <= 0 || !fn)
        return;
    if (in_task || !dlrt_profile_on()) {
        run_loop(ntasks, fn, ctx, scratch_bytes, NULL);
        return;
    }
    int64_t start = now_ns(), mine = 0;
    run_loop(ntasks, fn, ctx, scratch_bytes, &mine);
    int64_t end = now_ns();
    dlrt_profile_loop(fn, ntasks, dlrt_num_threads(), start, mine ? mine : end, end);
}

/*
 * libdlrt_mpi (dlrt_mpi.h): data-parallel training over MPI.
 *
 * The gradient all-reduce is a ring written here rather than
 * MPI_Allreduce: Open MPI picks its algorithm by message size and rank
 * count, and with it the order of the sums, and does not promise that
 * every rank ends with the same bits. The ring does: the flat gradient
 * array is cut into `size` chunks; in size - 1 reduce-scatter steps each
 * rank sends one chunk to the next rank and adds the chunk it receives
 * from the previous one, so chunk c is summed in the fixed order c, c+1,
 * ..., c-1 (mod size) and ends complete on rank c-1; size - 1 all-gather
 * steps then pass the complete chunks around. Each rank sends
 * 2 (size-1)/size of the array, the least any all-reduce can.
 *
 * Errors: the communicator returns MPI errors instead of aborting; they
 * become DLRT_EIO with MPI's message in dlrt_last_error(). A rank that
 * dies is noticed by mpirun, which ends the others. A rank that stays
 * alive but stops answering (hung, or on a host that mpirun cannot hear
 * from) is not: every communication here is non-blocking and waited for
 * with a deadline (dlrt_mpi_set_timeout), after which it fails with
 * DLRT_EIO naming what it waited for, and the caller can abort the job.
 */
#include "dlrt_mpi.h"

#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../error.h"

static struct {
    MPI_Comm comm;
    MPI_Comm ring; /* the communication thread's: its messages never meet the caller's */
    int rank, size;
    int owns_mpi;   /* dlrt_mpi_init called MPI_Init */
    double timeout; /* seconds a wait may take; 0: no limit */
    int timed_out;  /* a wait timed out: requests are still pending on
                       buffers that may be gone, so MPI is not entered
                       again (but by MPI_Abort) */
    int serialized; /* MPI lets one thread at a time call it (a comm thread) */
    int overlap;    /* dlrt_mpi_set_overlap */
    dlrt_mpi_stats stats;
} ctx = {MPI_COMM_NULL, MPI_COMM_NULL, 0, 1, 0, 0, 0, 0, 0, {0, 0, 0, 0, 0, 0}};

static void overlap_stop(void);

/* Set while an overlapped step's backward runs: the communication
 * thread's waits then poll every 20 us instead of back to back, leaving
 * the core to the backward (on a rank bound to one core, the two share
 * it); after the backward they spin, as the calling thread's do. */
static _Thread_local int comm_thread;
static int backward_running;

/* DLRT_EIO with MPI's text for a failed call; rc when it succeeded. */
static int mpi_check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return DLRT_OK;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error %d", rc);
    return dlrt_fail(DLRT_EIO, "MPI: %s: %s", what, text);
}

/* Waits for n requests until the deadline; DLRT_EIO naming `what` and
 * the peer when it passes (the requests are then left to MPI_Abort or
 * MPI_Finalize: cancelling a send is not possible in general). */
static int wait_all(MPI_Request *req, int n, const char *what, int peer)
{
    double start = MPI_Wtime();
    for (;;) {
        int done = 0, rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_check(rc, what);
        if (done)
            return DLRT_OK;
        if (ctx.timeout > 0 && MPI_Wtime() - start > ctx.timeout) {
            ctx.timed_out = 1;
            if (peer >= 0)
                return dlrt_fail(DLRT_EIO, "MPI: %s: rank %d had no answer from rank %d in %g s",
                                 what, ctx.rank, peer, ctx.timeout);
            return dlrt_fail(DLRT_EIO, "MPI: %s: rank %d had no answer in %g s", what, ctx.rank,
                             ctx.timeout);
        }
        if (comm_thread && __atomic_load_n(&backward_running, __ATOMIC_RELAXED))
            nanosleep(&(struct timespec){0, 20000}, NULL);
    }
}

int dlrt_mpi_set_timeout(double seconds)
{
    if (!(seconds >= 0))
        return DLRT_EINVAL;
    ctx.timeout = seconds;
    return DLRT_OK;
}

static int need_init(void)
{
    if (ctx.comm == MPI_COMM_NULL)
        return dlrt_fail(DLRT_ESTATE, "dlrt_mpi_init has not been called");
    if (ctx.timed_out)
        return dlrt_fail(DLRT_ESTATE, "a communication timed out: end the job (dlrt_mpi_abort)");
    return DLRT_OK;
}

int dlrt_mpi_init(int *argc, char ***argv)
{
    dlrt_error_clear();
    if (ctx.comm != MPI_COMM_NULL)
        return DLRT_OK;
    int inited = 0, rc;
    MPI_Initialized(&inited);
    int level = MPI_THREAD_SINGLE;
    if (!inited) {
        if ((rc = mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &level),
                            "MPI_Init_thread")))
            return rc;
        ctx.owns_mpi = 1;
    } else {
        MPI_Query_thread(&level);
    }
    ctx.serialized = level >= MPI_THREAD_SERIALIZED;
    if ((rc = mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &ctx.comm), "MPI_Comm_dup")))
        return rc;
    MPI_Comm_set_errhandler(ctx.comm, MPI_ERRORS_RETURN);
    if ((rc = mpi_check(MPI_Comm_dup(ctx.comm, &ctx.ring), "MPI_Comm_dup")))
        return rc;
    MPI_Comm_rank(ctx.comm, &ctx.rank);
    MPI_Comm_size(ctx.comm, &ctx.size);
    memset(&ctx.stats, 0, sizeof ctx.stats);
    ctx.timeout = 600;
    ctx.overlap = DLRT_MPI_OVERLAP_DEFAULT;
    const char *o = getenv("DLRT_MPI_OVERLAP");
    if (o && *o) {
        if ((strcmp(o, "0") && strcmp(o, "1") && strcmp(o, "2")) ||
            dlrt_mpi_set_overlap(*o - '0'))
            return dlrt_fail(DLRT_EINVAL, "DLRT_MPI_OVERLAP='%s' is not 0, 1 or 2", o);
    }
    const char *t = getenv("DLRT_MPI_TIMEOUT");
    if (t && *t) {
        char *end;
        double v = strtod(t, &end);
        if (*end || dlrt_mpi_set_timeout(v))
            return dlrt_fail(DLRT_EINVAL, "DLRT_MPI_TIMEOUT='%s' is not a number of seconds >= 0",
                             t);
    }
    return DLRT_OK;
}

int dlrt_mpi_finalize(void)
{
    if (ctx.timed_out)
        return dlrt_fail(DLRT_ESTATE, "a communication timed out: end the job (dlrt_mpi_abort)");
    overlap_stop();
    if (ctx.ring != MPI_COMM_NULL)
        MPI_Comm_free(&ctx.ring);
    if (ctx.comm != MPI_COMM_NULL)
        MPI_Comm_free(&ctx.comm);
    ctx.comm = ctx.ring = MPI_COMM_NULL;
    if (ctx.owns_mpi) {
        ctx.owns_mpi = 0;
        return mpi_check(MPI_Finalize(), "MPI_Finalize");
    }
    return DLRT_OK;
}

void dlrt_mpi_abort(int code)
{
    MPI_Abort(ctx.comm != MPI_COMM_NULL ? ctx.comm : MPI_COMM_WORLD, code);
}

int dlrt_mpi_rank(void)
{
    return ctx.rank;
}
int dlrt_mpi_size(void)
{
    return ctx.size;
}
dlrt_mpi_stats dlrt_mpi_get_stats(void)
{
    return ctx.stats;
}

uint64_t dlrt_mpi_rank_seed(uint64_t seed, int rank)
{
    if (rank == 0)
        return seed;
    uint64_t z = seed ^ ((uint64_t)rank * 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The lowest code over the ranks (an error on any rank is an error on
 * all); DLRT_EIO when the reduction itself fails. */
static int agree(int rc)
{
    int all = rc;
    double t0 = MPI_Wtime();
    MPI_Request req;
    int mrc = mpi_check(MPI_Iallreduce(&rc, &all, 1, MPI_INT, MPI_MIN, ctx.comm, &req),
                        "status agreement");
    if (!mrc)
        mrc = wait_all(&req, 1, "status agreement", -1);
    ctx.stats.comm_seconds += MPI_Wtime() - t0;
    if (mrc)
        return mrc;
    if (all < 0 && rc >= 0)
        return dlrt_fail(all, "another rank failed: %s", dlrt_strerror(all));
    return all;
}

static int bcast(void *p, size_t bytes, const char *what)
{
    double t0 = MPI_Wtime();
    int rc = DLRT_OK;
    for (size_t done = 0; done < bytes && !rc;) {
        size_t n = bytes - done < (size_t)1 << 30 ? bytes - done : (size_t)1 << 30;
        MPI_Request req;
        rc = mpi_check(MPI_Ibcast((char *)p + done, (int)n, MPI_BYTE, 0, ctx.comm, &req), what);
        if (!rc)
            rc = wait_all(&req, 1, what, ctx.rank == 0 ? -1 : 0);
        done += n;
    }
    ctx.stats.comm_seconds += MPI_Wtime() - t0;
    return rc;
}

void dlrt_mpi_shard(int64_t n, int64_t *first, int64_t *count)
{
    int64_t q = n / ctx.size, r = n % ctx.size, k = ctx.rank;
    *first = k * q + (k < r ? k : r);
    *count = q + (k < r);
}

int dlrt_mpi_batches_next(dlrt_batches *b, const float *x, int64_t d, float *xb, const void *y,
                          dlrt_dtype ytype, int64_t k, void *yb, int *local)
{
    if (!local)
        return DLRT_EINVAL;
    *local = 0;
    if (x && (d < 1 || !xb))
        return DLRT_EINVAL;
    if (y && (!yb || (ytype == DLRT_I32 && k != 1) || (ytype == DLRT_F32 && k < 1) ||
              (ytype != DLRT_I32 && ytype != DLRT_F32)))
        return DLRT_EINVAL;
    int n = dlrt_batches_next(b, NULL, 0, NULL, NULL, DLRT_I32, 1, NULL);
    if (n <= 0)
        return n;
    const int64_t *idx = dlrt_batches_indices(b);
    int64_t first, count;
    dlrt_mpi_shard(n, &first, &count);
    for (int64_t i = 0; i < count; i++) {
        int64_t s = idx[first + i];
        if (x)
            memcpy(xb + i * d, x + s * d, (size_t)d * sizeof *x);
        if (y && ytype == DLRT_I32)
            ((int32_t *)yb)[i] = ((const int32_t *)y)[s];
        else if (y)
            memcpy((float *)yb + i * k, (const float *)y + s * k, (size_t)k * sizeof(float));
    }
    *local = (int)count;
    return n;
}

static const dlrt_model_info *info_of(const void *m)
{
    return m ? ((const dlrt_instance *)m)->info : NULL;
}

/* a[i] += b[i] for n elements of dtype t (F32 or F64) */
static void add_into(void *a, const void *b, int64_t n, dlrt_dtype t)
{
    if (t == DLRT_F64) {
        double *x = a;
        const double *y = b;
        for (int64_t i = 0; i < n; i++)
            x[i] += y[i];
    } else {
        float *x = a;
        const float *y = b;
        for (int64_t i = 0; i < n; i++)
            x[i] += y[i];
    }
}

/* One ring step: sends to the next rank and receives from the previous. */
static int exchange(const void *out, int nout, void *in, int nin, MPI_Datatype t, int tag,
                    const char *what)
{
    int next = (ctx.rank + 1) % ctx.size, prev = (ctx.rank + ctx.size - 1) % ctx.size;
    MPI_Request req[2];
    MPI_Comm comm = comm_thread ? ctx.ring : ctx.comm;
    int rc = mpi_check(MPI_Irecv(in, nin, t, prev, tag, comm, &req[0]), what);
    if (rc)
        return rc;
    if ((rc = mpi_check(MPI_Isend(out, nout, t, next, tag, comm, &req[1]), what)))
        return rc;
    return wait_all(req, 2, what, prev);
}

/* The ring all-reduce (sum) of buf[0..n) in place; see the top. Chunks
 * hold at most 2^30 bytes' worth of elements per message by construction
 * of the callers (gradient arrays); larger ones are refused. */
static int ring_allreduce(void *buf, int64_t n, dlrt_dtype t)
{
    int p = ctx.size, r = ctx.rank;
    if (p == 1 || n == 0)
        return DLRT_OK;
    size_t es = dlrt_dtype_size(t);
    MPI_Datatype mt = t == DLRT_F64 ? MPI_DOUBLE : MPI_FLOAT;
    int64_t maxchunk = (n + p - 1) / p;
    if (maxchunk > INT32_MAX)
        return dlrt_fail(DLRT_ERANGE, "all-reduce of %lld elements: chunks too large for MPI",
                         (long long)n);
    char *tmp = malloc((size_t)maxchunk * es);
    if (!tmp)
        return DLRT_ENOMEM;
#define LO(c) ((int64_t)(c)*n / p)
#define LEN(c) (LO((c) + 1) - LO(c))
    char *base = buf;
    int rc = DLRT_OK;
    for (int s = 0; s < p - 1 && !rc; s++) {
        int send = ((r - s) % p + p) % p, recv = ((r - s - 1) % p + p) % p;
        rc = exchange(base + LO(send) * (int64_t)es, (int)LEN(send), tmp, (int)LEN(recv), mt, 0,
                      "all-reduce (reduce-scatter)");
        if (!rc)
            add_into(base + LO(recv) * (int64_t)es, tmp, LEN(recv), t);
    }
    for (int s = 0; s < p - 1 && !rc; s++) {
        int send = ((r + 1 - s) % p + p) % p, recv = ((r - s) % p + p) % p;
        rc = exchange(base + LO(send) * (int64_t)es, (int)LEN(send), base + LO(recv) * (int64_t)es,
                      (int)LEN(recv), mt, 1, "all-reduce (all-gather)");
    }
#undef LO
#undef LEN
    free(tmp);
    return rc;
}

int dlrt_mpi_sum(double *v, int n)
{
    int rc = need_init();
    if (rc)
        return rc;
    if (!v || n < 0)
        return DLRT_EINVAL;
    double t0 = MPI_Wtime();
    rc = ring_allreduce(v, n, DLRT_F64);
    ctx.stats.comm_seconds += MPI_Wtime() - t0;
    return rc;
}

int dlrt_mpi_allreduce_grads(void *m, double weight)
{
    int rc = need_init();
    if (rc)
        return rc;
    const dlrt_model_info *info = info_of(m);
    if (!info || !info->apply_gradients || !(weight >= 0))
        return DLRT_EINVAL;
    int64_t n = info->num_param_scalars;
    char *g = (char *)m + info->grads_offset;
    if (weight != 1) {
        if (info->param_dtype == DLRT_F64)
            for (int64_t i = 0; i < n; i++)
                ((double *)g)[i] *= weight;
        else
            for (int64_t i = 0; i < n; i++)
                ((float *)g)[i] *= (float)weight;
    }
    double t0 = MPI_Wtime();
    rc = ring_allreduce(g, n, info->param_dtype);
    ctx.stats.comm_seconds += MPI_Wtime() - t0;
    ctx.stats.allreduce_calls++;
    ctx.stats.allreduce_bytes += n * (int64_t)dlrt_dtype_size(info->param_dtype);
    return rc;
}


/* ---- the all-reduce overlapped with the backward pass --------------------
 *
 * The generated backward reports each parameter's gradient of the batch
 * as soon as it is final (dlrt_model_set_grad_ready), last layers first.
 * The hook stages it -- (the instance's sum + the batch's) * weight, the
 * very value dlrt_mpi_allreduce_grads would scale, computed the same way
 * -- into a buffer the shape of the flat gradient array, and when that
 * completes a bucket hands the bucket to a communication thread, which
 * runs the ring all-reduce on it while the backward goes on. Buckets are
 * runs of whole parameters from the end of the array (where the last
 * layers lie), at least BUCKET_BYTES each, reduced in that fixed order on
 * every rank, whatever the order of the reports: the messages match from
 * rank to rank, and a parameter reported late only delays its bucket.
 * After compute_gradients, whatever was not reported (a gradient outside
 * the arena, a failed step) is staged from the instance's sums, the
 * thread finishes, and only then do the ranks agree on the step's status
 * (every rank takes part in every bucket, even a rank whose step failed:
 * its buckets' results are thrown away with everyone else's). On
 * success the staged, reduced sums replace the instance's.
 *
 * On 2 ranks each element is the sum of two terms, which does not depend
 * on the order, so the result is the non-overlapped path's bit for bit;
 * on more, each bucket's ring starts its chunks at other ranks than the
 * whole array's does, so the bits may differ from that path's (still the
 * same on every rank and from run to run). One thread calls MPI at a
 * time: the calling thread does not while the bucket thread works. */
enum { BUCKET_BYTES = 1 << 16 };

static struct {
    pthread_t thread;
    int started, quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* the model's buckets */
    const dlrt_model_info *info;
    int64_t n;
    size_t es;
    char *stage;
    int np, nb;
    int64_t *pfirst, *pcount; /* by parameter, ascending first */
    int *pbucket;
    int64_t *blo, *bhi, *bneed; /* by bucket, from the end of the array */
    /* the step */
    void *m;
    double weight;
    unsigned char *staged; /* by parameter */
    int64_t *bhave;
    int active, ended, next, early, rc;
    char msg[480];
} ov = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *comm_main(void *arg)
{
    (void)arg;
    comm_thread = 1;
    pthread_mutex_lock(&ov.mu);
    for (;;) {
        while (!ov.quit && !(ov.active && ov.next < ov.nb &&
                             (ov.ended || ov.bhave[ov.next] == ov.bneed[ov.next])))
            pthread_cond_wait(&ov.cv, &ov.mu);
        if (ov.quit)
            break;
        int b = ov.next, rc = ov.rc;
        ov.early += !ov.ended;
        pthread_mutex_unlock(&ov.mu);
        if (!rc) {
            double t0 = now();
            rc = ring_allreduce(ov.stage + ov.blo[b] * (int64_t)ov.es, ov.bhi[b] - ov.blo[b],
                                ov.info->param_dtype);
            ctx.stats.overlap_seconds += now() - t0;
        }
        pthread_mutex_lock(&ov.mu);
        if (rc && !ov.rc) {
            ov.rc = rc;
            snprintf(ov.msg, sizeof ov.msg, "%s", dlrt_last_error());
        }
        if (++ov.next == ov.nb) {
            ov.active = 0;
            pthread_cond_broadcast(&ov.cv);
        }
    }
    pthread_mutex_unlock(&ov.mu);
    return NULL;
}

static void overlap_free(void)
{
    free(ov.stage);
    free(ov.pfirst);
    free(ov.pcount);
    free(ov.pbucket);
    free(ov.blo);
    free(ov.bhi);
    free(ov.bneed);
    free(ov.staged);
    free(ov.bhave);
    ov.stage = NULL;
    ov.pfirst = ov.pcount = ov.blo = ov.bhi = ov.bneed = ov.bhave = NULL;
    ov.pbucket = NULL;
    ov.staged = NULL;
    ov.info = NULL;
}

static void overlap_stop(void)
{
    if (ov.started) {
        pthread_mutex_lock(&ov.mu);
        ov.quit = 1;
        pthread_cond_broadcast(&ov.cv);
        pthread_mutex_unlock(&ov.mu);
        pthread_join(ov.thread, NULL);
        ov.started = 0;
        ov.quit = 0;
    }
    overlap_free();
}

/* The buckets of info's model; 0 when its parameters do not tile the flat
 * array end to end (then the step is not overlapped). */
static int overlap_prepare(const dlrt_model_info *info)
{
    if (ov.info == info)
        return 1;
    overlap_free();
    int np = info->num_params;
    size_t es = dlrt_dtype_size(info->param_dtype);
    int64_t n = info->num_param_scalars;
    if (np < 1 || n < 1)
        return 0;
    ov.pfirst = malloc(sizeof *ov.pfirst * (size_t)np);
    ov.pcount = malloc(sizeof *ov.pcount * (size_t)np);
    ov.pbucket = malloc(sizeof *ov.pbucket * (size_t)np);
    ov.blo = malloc(sizeof *ov.blo * (size_t)np);
    ov.bhi = malloc(sizeof *ov.bhi * (size_t)np);
    ov.bneed = malloc(sizeof *ov.bneed * (size_t)np);
    ov.bhave = malloc(sizeof *ov.bhave * (size_t)np);
    ov.staged = malloc((size_t)np);
    ov.stage = malloc((size_t)n * es);
    if (!ov.pfirst || !ov.pcount || !ov.pbucket || !ov.blo || !ov.bhi || !ov.bneed || !ov.bhave ||
        !ov.staged || !ov.stage) {
        overlap_free();
        return 0;
    }
    int64_t at = 0;
    for (int i = 0; i < np; i++) {
        const dlrt_tensor_info *p = &info->params[i];
        int64_t k = 1;
        for (int d = 0; d < p->desc.rank; d++)
            k *= p->desc.shape[d];
        if (p->offset != info->params_offset + (size_t)at * es) {
            overlap_free();
            return 0;
        }
        ov.pfirst[i] = at;
        ov.pcount[i] = k;
        at += k;
    }
    if (at != n) {
        overlap_free();
        return 0;
    }
    int nb = 0;
    for (int i = np - 1; i >= 0; i--) {
        if (nb == 0 || (ov.bhi[nb - 1] - ov.blo[nb - 1]) * (int64_t)es >= BUCKET_BYTES) {
            ov.bhi[nb] = ov.pfirst[i] + ov.pcount[i];
            nb++;
        }
        ov.blo[nb - 1] = ov.pfirst[i];
        ov.pbucket[i] = nb - 1;
    }
    for (int b = 0; b < nb; b++)
        ov.bneed[b] = ov.bhi[b] - ov.blo[b];
    ov.np = np;
    ov.nb = nb;
    ov.n = n;
    ov.es = es;
    ov.info = info;
    return 1;
}

/* dst = (g + batch) * weight, as the instance's sum and
 * dlrt_mpi_allreduce_grads would compute it (batch NULL: g * weight) */
static void stage_range(void *dst, const void *g, const void *batch, int64_t n, dlrt_dtype t,
                        double weight)
{
    if (t == DLRT_F64) {
        double *d = dst;
        const double *x = g, *y = batch;
        for (int64_t i = 0; i < n; i++) {
            double v = y ? x[i] + y[i] : x[i];
            d[i] = weight != 1 ? v * weight : v;
        }
    } else {
        float *d = dst, w = (float)weight;
        const float *x = g, *y = batch;
        for (int64_t i = 0; i < n; i++) {
            float v = y ? x[i] + y[i] : x[i];
            d[i] = weight != 1 ? v * w : v;
        }
    }
}

/* Stages parameter i (batch: its gradient of the batch, or NULL when the
 * instance's sum is already the whole value); the caller holds ov.mu
 * when the thread may be running. */
static void stage_param(int i, const void *batch)
{
    const char *g = (const char *)ov.m + ov.info->grads_offset + ov.pfirst[i] * (int64_t)ov.es;
    stage_range(ov.stage + ov.pfirst[i] * (int64_t)ov.es, g, batch, ov.pcount[i],
                ov.info->param_dtype, ov.weight);
    ov.staged[i] = 1;
    ov.bhave[ov.pbucket[i]] += ov.pcount[i];
}

static void grad_ready(void *arg, void *m, int64_t first, int64_t count, const void *grad)
{
    (void)arg;
    if (m != ov.m)
        return;
    int lo = 0, hi = ov.np - 1;
    while (lo < hi) { /* the last parameter whose first is <= first */
        int mid = (lo + hi + 1) / 2;
        if (ov.pfirst[mid] <= first)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (ov.pfirst[lo] != first || ov.pcount[lo] != count || ov.staged[lo])
        return; /* not a whole parameter: staged from the sums at the end */
    /* the staging writes only this parameter's range, which the thread
     * does not read before its bucket is complete */
    stage_range(ov.stage + first * (int64_t)ov.es,
                (const char *)m + ov.info->grads_offset + first * (int64_t)ov.es, grad, count,
                ov.info->param_dtype, ov.weight);
    pthread_mutex_lock(&ov.mu);
    ov.staged[lo] = 1;
    int b = ov.pbucket[lo];
    ov.bhave[b] += count;
    if (ov.bhave[b] == ov.bneed[b] && b == ov.next)
        pthread_cond_broadcast(&ov.cv);
    pthread_mutex_unlock(&ov.mu);
}

/* dlrt_mpi_train_step's gradients and all-reduce, overlapped; *computed:
 * compute_gradients' code. Returns the communication's code. */
static int overlapped_step(void *m, int batch, int global, const void *const *inputs,
                           void *loss, int *computed)
{
    const dlrt_model_info *info = ov.info;
    if (!ov.started) {
        if (pthread_create(&ov.thread, NULL, comm_main, NULL))
            return dlrt_fail(DLRT_ENOMEM, "no thread for the all-reduce");
        ov.started = 1;
    }
    pthread_mutex_lock(&ov.mu);
    ov.m = m;
    ov.weight = (double)batch / global;
    memset(ov.staged, 0, (size_t)ov.np);
    memset(ov.bhave, 0, sizeof *ov.bhave * (size_t)ov.nb);
    ov.next = 0;
    ov.ended = 0;
    ov.rc = 0;
    ov.early = 0;
    ov.active = 1;
    pthread_mutex_unlock(&ov.mu);

    *computed = DLRT_OK;
    if (batch > 0) {
        /* DLRT_MPI_THREAD: nothing staged before the backward ends */
        /* without a hook (none free), as DLRT_MPI_THREAD */
        if (ctx.overlap == DLRT_MPI_OVERLAP)
            dlrt_model_set_grad_ready(m, grad_ready, NULL);
        __atomic_store_n(&backward_running, 1, __ATOMIC_RELAXED);
        *computed = info->compute_gradients(m, batch, inputs, loss);
        __atomic_store_n(&backward_running, 0, __ATOMIC_RELAXED);
        dlrt_model_set_grad_ready(m, NULL, NULL);
    }
    /* the rest from the sums, which now hold the batch's gradients (or,
     * after a failure, do not: that step's result is not kept) */
    pthread_mutex_lock(&ov.mu);
    for (int i = 0; i < ov.np; i++)
        if (!ov.staged[i])
            stage_param(i, NULL);
    ov.ended = 1;
    pthread_cond_broadcast(&ov.cv);
    double t0 = now();
    while (ov.active)
        pthread_cond_wait(&ov.cv, &ov.mu);
    int rc = ov.rc;
    ctx.stats.comm_seconds += now() - t0;
    ctx.stats.buckets += ov.nb;
    ctx.stats.buckets_early += ov.early;
    pthread_mutex_unlock(&ov.mu);
    if (rc)
        return dlrt_fail(rc, "%s", ov.msg);
    ctx.stats.allreduce_calls++;
    ctx.stats.allreduce_bytes += ov.n * (int64_t)ov.es;
    return DLRT_OK;
}

int dlrt_mpi_set_overlap(int mode)
{
    if (mode != DLRT_MPI_AFTER && mode != DLRT_MPI_OVERLAP && mode != DLRT_MPI_THREAD)
        return DLRT_EINVAL;
    ctx.overlap = mode;
    return DLRT_OK;
}

int dlrt_mpi_train_step(void *m, int batch, int global, const void *const *inputs, double *loss)
{
    int rc = need_init();
    if (rc)
        return rc;
    const dlrt_model_info *info = info_of(m);
    if (!info || !info->compute_gradients || !inputs || !loss || batch < 0 || global < 1 ||
        batch > global)
        return DLRT_EINVAL;
    double part[1] = {0};
    union {
        float f;
        double d;
    } l;
    if (ctx.overlap != DLRT_MPI_AFTER && ctx.serialized && ctx.size > 1 &&
        overlap_prepare(info)) {
        int computed = DLRT_OK;
        if ((rc = overlapped_step(m, batch, global, inputs, &l, &computed)))
            return rc;
        if (batch > 0 && !computed)
            part[0] = (info->loss_dtype == DLRT_F64 ? l.d : (double)l.f) * batch / global;
        if ((rc = agree(computed)))
            return rc;
        memcpy((char *)m + info->grads_offset, ov.stage, (size_t)ov.n * ov.es);
        if ((rc = dlrt_mpi_sum(part, 1)))
            return rc;
        *loss = part[0];
        return info->apply_gradients(m);
    }
    if (batch > 0) {
        rc = info->compute_gradients(m, batch, inputs, &l);
        if (!rc)
            part[0] = (info->loss_dtype == DLRT_F64 ? l.d : (double)l.f) * batch / global;
    }
    /* a failed compute_gradients must not leave the others in the ring */
    if ((rc = agree(rc)))
        return rc;
    if ((rc = dlrt_mpi_allreduce_grads(m, (double)batch / global)) || (rc = dlrt_mpi_sum(part, 1)))
        return rc;
    *loss = part[0];
    return info->apply_gradients(m);
}

int dlrt_mpi_average_states(void *m)
{
    int rc = need_init();
    if (rc)
        return rc;
    const dlrt_model_info *info = info_of(m);
    if (!info)
        return DLRT_EINVAL;
    for (int i = 0; i < info->num_states && !rc; i++) {
        const dlrt_tensor_info *s = &info->states[i];
        int64_t n = 1;
        for (int d = 0; d < s->desc.rank; d++)
            n *= s->desc.shape[d];
        void *p = (char *)m + s->offset;
        if (s->desc.dtype != DLRT_F32 && s->desc.dtype != DLRT_F64) {
            rc = bcast(p, (size_t)n * dlrt_dtype_size(s->desc.dtype), "state broadcast");
            continue;
        }
        double t0 = MPI_Wtime();
        rc = ring_allreduce(p, n, s->desc.dtype);
        ctx.stats.comm_seconds += MPI_Wtime() - t0;
        double inv = 1.0 / ctx.size;
        for (int64_t j = 0; j < n && !rc; j++) {
            if (s->desc.dtype == DLRT_F64)
                ((double *)p)[j] *= inv;
            else
                ((float *)p)[j] = (float)(((float *)p)[j] * inv);
        }
    }
    return rc;
}

/* What every rank must agree on before their instances can be mixed. */
typedef struct {
    int64_t num_param_scalars, state_bytes, params_bytes, opt_bytes, states_bytes;
    int64_t param_dtype, name_hash;
} Fingerprint;

static int64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (int64_t)(h >> 1);
}

int dlrt_mpi_sync(void *m)
{
    int rc = need_init();
    if (rc)
        return rc;
    const dlrt_model_info *info = info_of(m);
    if ((rc = agree(info ? DLRT_OK : DLRT_EINVAL)))
        return rc;
    Fingerprint mine = {info->num_param_scalars,     (int64_t)info->state_bytes,
                        (int64_t)info->params_bytes, (int64_t)info->opt_bytes,
                        (int64_t)info->states_bytes, info->param_dtype,
                        name_hash(info->name)};
    Fingerprint root = mine;
    if ((rc = bcast(&root, sizeof root, "model check")))
        return rc;
    if ((rc = agree(memcmp(&mine, &root, sizeof mine) ? DLRT_EMISMATCH : DLRT_OK))) {
        if (memcmp(&mine, &root, sizeof mine))
            dlrt_fail(rc, "rank %d's model '%s' differs from rank 0's", ctx.rank, info->name);
        return rc;
    }
    dlrt_instance *h = m;
    struct {
        uint64_t seed;
        int64_t step;
        double lr;
    } head = {h->seed, h->step, h->lr};
    char *base = m;
    if ((rc = bcast(&head, sizeof head, "step broadcast")) ||
        (rc = bcast(base + info->params_offset, info->params_bytes, "parameter broadcast")) ||
        (rc = bcast(base + info->opt_offset, info->opt_bytes, "optimizer state broadcast")) ||
        (rc = bcast(base + info->states_offset, info->states_bytes, "model state broadcast")))
        return rc;
    h->seed = dlrt_mpi_rank_seed(head.seed, ctx.rank);
    h->step = head.step;
    h->lr = head.lr;
    memset(base + info->grads_offset, 0, info->grads_bytes);
    return DLRT_OK;
}

/* Rank 0's code on every rank; the others take its message too. */
static int from_root(int rc)
{
    struct {
        int rc;
        char msg[480];
    } r = {rc, ""};
    if (ctx.rank == 0)
        snprintf(r.msg, sizeof r.msg, "%s", dlrt_last_error());
    int brc = bcast(&r, sizeof r, "status broadcast");
    if (brc)
        return brc;
    if (ctx.rank != 0 && r.rc < 0)
        return dlrt_fail(r.rc, "%s", r.msg);
    return r.rc;
}

int dlrt_mpi_save(void *m, const char *path)
{
    int rc = need_init();
    if (rc)
        return rc;
    if ((rc = agree(m && path ? DLRT_OK : DLRT_EINVAL)) || (rc = dlrt_mpi_average_states(m)))
        return rc;
    if (ctx.rank == 0)
        rc = dlrt_model_save(m, path);
    return from_root(rc);
}

int dlrt_mpi_load(void *m, const char *path)
{
    int rc = need_init();
    if (rc)
        return rc;
    if ((rc = agree(m && path ? DLRT_OK : DLRT_EINVAL)))
        return rc;
    if (ctx.rank == 0)
        rc = dlrt_model_load(m, path);
    if ((rc = from_root(rc)))
        return rc;
    return dlrt_mpi_sync(m);
}

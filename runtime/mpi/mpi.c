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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../error.h"

static struct {
    MPI_Comm comm;
    int rank, size;
    int owns_mpi;   /* dlrt_mpi_init called MPI_Init */
    double timeout; /* seconds a wait may take; 0: no limit */
    int timed_out;  /* a wait timed out: requests are still pending on
                       buffers that may be gone, so MPI is not entered
                       again (but by MPI_Abort) */
    dlrt_mpi_stats stats;
} ctx = {MPI_COMM_NULL, 0, 1, 0, 0, 0, {0, 0, 0}};

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
    if (!inited) {
        if ((rc = mpi_check(MPI_Init(argc, argv), "MPI_Init")))
            return rc;
        ctx.owns_mpi = 1;
    }
    if ((rc = mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &ctx.comm), "MPI_Comm_dup")))
        return rc;
    MPI_Comm_set_errhandler(ctx.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(ctx.comm, &ctx.rank);
    MPI_Comm_size(ctx.comm, &ctx.size);
    memset(&ctx.stats, 0, sizeof ctx.stats);
    ctx.timeout = 600;
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
    if (ctx.comm != MPI_COMM_NULL)
        MPI_Comm_free(&ctx.comm);
    ctx.comm = MPI_COMM_NULL;
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
    int rc = mpi_check(MPI_Irecv(in, nin, t, prev, tag, ctx.comm, &req[0]), what);
    if (rc)
        return rc;
    if ((rc = mpi_check(MPI_Isend(out, nout, t, next, tag, ctx.comm, &req[1]), what)))
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
    if (batch > 0) {
        union {
            float f;
            double d;
        } l;
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

/* dist.h — the demos' data parallelism. Built with DLC_MPI (CMake defines
 * it where libdlrt_mpi is built), every dist_* function is the libdlrt_mpi
 * one (runtime/mpi/dlrt_mpi.h) and `mpirun -np N train_NAME ...` trains
 * on N ranks; without it the program is one process and the functions do
 * that process's part (no communication). A demo's --batch is the global
 * batch either way, so the same options train the same model on any number
 * of ranks (docs/DISTRIBUTED.md). */
#ifndef DLC_EXAMPLES_DIST_H
#define DLC_EXAMPLES_DIST_H

#include <stdlib.h>

#include "dlrt.h"

#ifdef DLC_MPI
#include "dlrt_mpi.h"

static inline int dist_init(int *argc, char ***argv)
{
    return dlrt_mpi_init(argc, argv);
}
static inline int dist_finalize(void)
{
    return dlrt_mpi_finalize();
}
static inline int dist_rank(void)
{
    return dlrt_mpi_rank();
}
static inline int dist_size(void)
{
    return dlrt_mpi_size();
}
/* ends every rank: for an error only this one sees */
static inline void dist_abort(int code)
{
    dlrt_mpi_abort(code);
}
static inline int dist_sync(void *m)
{
    return dlrt_mpi_sync(m);
}
static inline int dist_load(void *m, const char *path)
{
    return dlrt_mpi_load(m, path);
}
static inline int dist_save(void *m, const char *path)
{
    return dlrt_mpi_save(m, path);
}
static inline int dist_average_states(void *m)
{
    return dlrt_mpi_average_states(m);
}
static inline int dist_sum(double *v, int n)
{
    return dlrt_mpi_sum(v, n);
}
static inline void dist_shard(int64_t n, int64_t *first, int64_t *count)
{
    dlrt_mpi_shard(n, first, count);
}
static inline int dist_train_step(void *m, int batch, int global, const void *const *inputs,
                                  double *loss)
{
    return dlrt_mpi_train_step(m, batch, global, inputs, loss);
}
static inline int dist_batches_next(dlrt_batches *b, const float *x, int64_t d, float *xb,
                                    const void *y, dlrt_dtype ytype, int64_t k, void *yb,
                                    int *local)
{
    return dlrt_mpi_batches_next(b, x, d, xb, y, ytype, k, yb, local);
}

#else /* one process */

static inline int dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return DLRT_OK;
}
static inline int dist_finalize(void)
{
    return DLRT_OK;
}
static inline int dist_rank(void)
{
    return 0;
}
static inline int dist_size(void)
{
    return 1;
}
static inline void dist_abort(int code)
{
    exit(code);
}
static inline int dist_sync(void *m)
{
    return m ? DLRT_OK : DLRT_EINVAL;
}
static inline int dist_load(void *m, const char *path)
{
    return dlrt_model_load(m, path);
}
static inline int dist_save(void *m, const char *path)
{
    return dlrt_model_save(m, path);
}
static inline int dist_average_states(void *m)
{
    return m ? DLRT_OK : DLRT_EINVAL;
}
static inline int dist_sum(double *v, int n)
{
    return v && n >= 0 ? DLRT_OK : DLRT_EINVAL;
}
static inline void dist_shard(int64_t n, int64_t *first, int64_t *count)
{
    *first = 0;
    *count = n;
}
/* NAME_train_step through the generic entry points */
static inline int dist_train_step(void *m, int batch, int global, const void *const *inputs,
                                  double *loss)
{
    const dlrt_model_info *info = ((const dlrt_instance *)m)->info;
    union {
        float f;
        double d;
    } l;
    int rc = batch == global ? info->compute_gradients(m, batch, inputs, &l) : DLRT_EINVAL;
    if (rc)
        return rc;
    *loss = info->loss_dtype == DLRT_F64 ? l.d : (double)l.f;
    return info->apply_gradients(m);
}
static inline int dist_batches_next(dlrt_batches *b, const float *x, int64_t d, float *xb,
                                    const void *y, dlrt_dtype ytype, int64_t k, void *yb,
                                    int *local)
{
    int n = dlrt_batches_next(b, x, d, xb, y, ytype, k, yb);
    *local = n > 0 ? n : 0;
    return n;
}

#endif
#endif

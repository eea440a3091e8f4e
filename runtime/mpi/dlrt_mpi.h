/*
 * libdlrt_mpi: data-parallel training of dlc models over MPI.
 *
 * Every rank holds a whole instance of the model. A step: each rank
 * computes the gradients of its share of the global batch
 * (NAME_compute_gradients), the gradients are summed over the ranks with
 * weights share / global batch (a ring all-reduce in a fixed order, so all
 * ranks end with the same bits and a run repeats bit for bit), and every
 * rank applies the same update. N ranks with shares of b rows follow the
 * trajectory of one process with batch N*b, up to the order of the sums;
 * batch norm's statistics are per rank and dropout draws per rank (the
 * same as PyTorch's DDP without SyncBatchNorm; docs/DISTRIBUTED.md).
 *
 * The functions take the instance as void * (any NAME * of a generated
 * header) and work through its dlrt_model_info. Every function is
 * collective: all ranks call it, in the same order. They return 0 or a
 * negative DLRT_E* code (DLRT_EIO when MPI fails; dlrt_last_error() then
 * says how), and a collective that fails on one rank fails on all, so the
 * ranks can stop together.
 *
 *     dlrt_mpi_init(&argc, &argv);
 *     mnist_mlp *m = mnist_mlp_create(seed);
 *     dlrt_mpi_sync(m);                           // rank 0's parameters everywhere
 *     ... dlrt_mpi_train_step(m, n, global, inputs, &loss) per step ...
 *     dlrt_mpi_save(m, "ckpt.safetensors");        // written by rank 0
 *     dlrt_mpi_finalize();
 *
 * The header needs no <mpi.h>; the library uses a duplicate of
 * MPI_COMM_WORLD, with errors returned rather than fatal.
 */
#ifndef DLRT_MPI_H
#define DLRT_MPI_H

#include <stdint.h>

#include "dlrt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Initializes MPI (unless the program did) and the library's
 * communicator. A program started without mpirun is one rank of one. */
int dlrt_mpi_init(int *argc, char ***argv);
/* How long one communication may wait for another rank, in seconds (0:
 * forever), before it fails with DLRT_EIO ("rank 0 had no answer from
 * rank 1 in 600 s"): a rank that hangs, or a host that stops answering
 * without its processes dying, which mpirun does not notice. Default 600,
 * or the environment's DLRT_MPI_TIMEOUT at dlrt_mpi_init. Set it above
 * the longest time one rank may spend away from the others (a step, an
 * evaluation, a checkpoint). After a timeout the library refuses every
 * call (DLRT_ESTATE), dlrt_mpi_finalize too: end the job with
 * dlrt_mpi_abort. DLRT_EINVAL for a negative or NaN value. */
int dlrt_mpi_set_timeout(double seconds);
/* Frees the communicator and finalizes MPI if dlrt_mpi_init initialized it. */
int dlrt_mpi_finalize(void);
/* Ends every rank of the job with exit status code (MPI_Abort): for an
 * error that only this rank sees, where the others would wait for it. */
void dlrt_mpi_abort(int code);
int dlrt_mpi_rank(void);
int dlrt_mpi_size(void);

/* The seed of rank's random numbers (dropout, stochastic pooling): seed
 * itself on rank 0, so one rank draws what a single process draws, and a
 * distinct splitmix64 mix of (seed, rank) on the others. */
uint64_t dlrt_mpi_rank_seed(uint64_t seed, int rank);

/* Start-up after NAME_create (and after NAME_load, if every rank loaded):
 * checks that every rank has the same model (DLRT_EMISMATCH otherwise),
 * copies rank 0's parameters, optimizer state, model state, step and base
 * learning rate to every rank, zeroes the gradients and sets each rank's
 * seed to dlrt_mpi_rank_seed(rank 0's seed, rank). */
int dlrt_mpi_sync(void *m);

/* The rows [*first, *first + *count) of a global batch of n rows that
 * this rank takes: contiguous blocks in rank order, the first n % size
 * ranks one row more. A rank's count is 0 when n < size. */
void dlrt_mpi_shard(int64_t n, int64_t *first, int64_t *count);

/* dlrt_batches_next over a dlrt_batches made with the global batch: the
 * next global batch in the shared shuffled order, of which this rank
 * gathers its dlrt_mpi_shard into xb and yb (arguments as
 * dlrt_batches_next). Returns the global batch's size (0 when the epoch
 * is done, a negative code on errors); *local gets this rank's rows. */
int dlrt_mpi_batches_next(dlrt_batches *b, const float *x, int64_t d, float *xb, const void *y,
                          dlrt_dtype ytype, int64_t k, void *yb, int *local);

/* Sums the gradients over the ranks in place, rank r's scaled by
 * weights (its rows / the global batch rows when the loss is a mean over
 * the batch): one ring all-reduce of the flat NAME_grads array. */
int dlrt_mpi_allreduce_grads(void *m, double weight);

/* One data-parallel step: NAME_compute_gradients on this rank's `batch`
 * rows (none when batch is 0), the weighted all-reduce with weight batch /
 * global, NAME_apply_gradients on every rank. inputs as the generic
 * entry points (every input, in declaration order). *loss gets the loss of
 * the global batch (the weighted sum of the ranks' losses) on every rank.
 * The weights assume the loss is a mean over the batch (dlc's default,
 * reduction = "mean"); for a summed loss call NAME_compute_gradients,
 * dlrt_mpi_allreduce_grads(m, 1) and NAME_apply_gradients. */
int dlrt_mpi_train_step(void *m, int batch, int global, const void *const *inputs, double *loss);

/* Where dlrt_mpi_train_step runs the gradient all-reduce
 * (docs/DISTRIBUTED.md, Overlap):
 *   DLRT_MPI_AFTER    on the calling thread, after the backward pass;
 *   DLRT_MPI_OVERLAP  overlapped with the backward: the backward reports
 *                     each parameter's gradient as it is final, and a
 *                     communication thread all-reduces buckets of them
 *                     (runs of whole parameters from the last, 64 kB or
 *                     more) while the backward goes on;
 *   DLRT_MPI_THREAD   the same thread and buckets, after the backward:
 *                     what the overlap alone gains is OVERLAP vs THREAD.
 * The same results in every mode on 2 ranks, bit for bit; on more, up to
 * the order of each sum's terms. OVERLAP and THREAD need
 * MPI_THREAD_SERIALIZED (dlrt_mpi_init asks for it), and OVERLAP code
 * from a dlc that reports gradients; without, they do what they can
 * (THREAD, AFTER). Default DLRT_MPI_OVERLAP_DEFAULT, or the environment's
 * DLRT_MPI_OVERLAP (0, 1, 2: the modes) at dlrt_mpi_init. DLRT_EINVAL for
 * another mode. Not collective, but every rank must make the same
 * choice. */
enum { DLRT_MPI_AFTER = 0, DLRT_MPI_OVERLAP = 1, DLRT_MPI_THREAD = 2 };
#define DLRT_MPI_OVERLAP_DEFAULT DLRT_MPI_AFTER
int dlrt_mpi_set_overlap(int mode);

/* The sum over the ranks of n doubles, in place, in rank order. */
int dlrt_mpi_sum(double *v, int n);

/* Averages the model state (batch norm's running statistics) over the
 * ranks, so that evaluation and checkpoints see one model. */
int dlrt_mpi_average_states(void *m);

/* Checkpoints: save averages the states, then rank 0 writes the file
 * (NAME_save); load has rank 0 read it (NAME_load) and dlrt_mpi_sync it
 * to the others, so only rank 0 needs the file. Either returns rank 0's
 * result on every rank, with its dlrt_last_error(). */
int dlrt_mpi_save(void *m, const char *path);
int dlrt_mpi_load(void *m, const char *path);

/* Time this rank's calling thread spent in the library's communication
 * (all-reduce, sync, sums) since dlrt_mpi_init, in seconds, and the
 * gradient bytes it all-reduced. */
typedef struct {
    double comm_seconds;
    int64_t allreduce_calls, allreduce_bytes;
    /* overlapped steps: seconds of all-reduce on the communication thread
     * (comm_seconds counts only what the step waited for at its end),
     * buckets all-reduced, and those started before the backward ended */
    double overlap_seconds;
    int64_t buckets, buckets_early;
} dlrt_mpi_stats;
dlrt_mpi_stats dlrt_mpi_get_stats(void);

#ifdef __cplusplus
}
#endif

#endif

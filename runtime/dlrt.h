/*
 * libdlrt: the runtime that dlc's generated code and its users link with.
 * Error codes, threads, and (as the project grows) GEMM wrappers, RNG and
 * initializers, safetensors checkpoints, data loading and progress bars.
 * It depends on nothing else in the dlc tree.
 */
#ifndef DLRT_H
#define DLRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every entry point returns 0 or one of these (negative) codes:
 * DLRT_OK, DLRT_EINVAL, DLRT_ENOMEM, DLRT_EIO, DLRT_EFORMAT,
 * DLRT_EMISMATCH, DLRT_ERANGE, DLRT_ESTATE, DLRT_ENONFINITE (dlrt_abi.def
 * says when). */
enum {
#define DLRT_ERROR(name, value, text) DLRT_##name = value,
#include "dlrt_abi.def"
    /* one past the most negative code */
    DLRT_ECOUNT = 0
#define DLRT_ERROR(name, value, text) +1
#include "dlrt_abi.def"
};

/* Element types of tensors crossing the runtime's interfaces. DLRT_F16
 * (IEEE binary16) and DLRT_BF16 (bfloat16) are storage types, held as
 * uint16_t bit patterns: see dlrt_f16_from_f32 and the rest below. */
typedef enum { DLRT_F32 = 0, DLRT_F64 = 1, DLRT_I32 = 2, DLRT_F16 = 3, DLRT_BF16 = 4 } dlrt_dtype;

#define DLRT_MAX_RANK 8

/* The name, type and shape of one tensor: what checkpoints store and what
 * dlrt_model_info (generated code) lists for inputs, outputs and params.
 * Fields: const char *name; dlrt_dtype dtype; int rank;
 * int64_t shape[DLRT_MAX_RANK] (dlrt_abi.def). */
typedef struct {
#define DLRT_TENSOR_DESC(kind, type, name, dims) type name dims;
#include "dlrt_abi.def"
} dlrt_tensor_desc;

/* Bytes per element of a dtype (4, 8, 4, 2, 2); 0 for an unknown value. */
size_t dlrt_dtype_size(dlrt_dtype t);

/* Half-precision storage (docs/LANGUAGE.md, "Half-precision storage"): the
 * bits of f rounded to nearest, ties to even (overflow gives an infinity,
 * tiny values subnormals or a signed zero; a NaN stays a quiet NaN with
 * its sign), and the exact float of a bit pattern. The same conversions
 * as the generated code's. */
uint16_t dlrt_f16_from_f32(float f);
float dlrt_f32_from_f16(uint16_t h);
uint16_t dlrt_bf16_from_f32(float f);
float dlrt_f32_from_bf16(uint16_t h);

/* A short English explanation of a DLRT_E* code; never NULL. */
const char *dlrt_strerror(int code);

/* What exactly went wrong in this thread's last failing call, where the
 * runtime knows more than the code says: which tensor of a checkpoint does
 * not fit the model, and how ("w.pt: tensor 'fc1.w': the model has F32
 * [784, 256], the file F32 [256, 784]"). Loading and saving checkpoints
 * set it; "" when there is nothing more to say. Never NULL. */
const char *dlrt_last_error(void);

/* The runtime's version, "MAJOR.MINOR.PATCH". */
const char *dlrt_version(void);

/* The CPU (docs/TARGETS.md, "CPU lists"): on x86-64, the highest level of
 * the x86-64 psABI that this CPU and its OS support (1: x86-64, 2:
 * x86-64-v2, 3: x86-64-v3 with AVX2 and FMA, 4: x86-64-v4 with AVX-512),
 * at most the level the DLRT_CPU environment variable names ("x86-64",
 * "x86-64-v2", "x86-64-v3", "x86-64-v4"; another value is ignored); 0 on
 * other architectures. dlrt_model_init stores it in the instance, and an
 * object compiled for a --mcpu list runs its variant for the highest
 * listed level not above it. dlrt_cpu_level_name(level) is the level's
 * name, "" for 0 and out of range. */
int dlrt_cpu_level(void);
const char *dlrt_cpu_level_name(int level);

/* Threads: every call of a model (forward, training step, evaluate) runs
 * its large kernels on a pool of dlrt_num_threads() threads, the calling
 * thread and dlrt_num_threads() - 1 workers that sleep between calls.
 * The default is the DLRT_NUM_THREADS environment variable, else the
 * processors this process may run on (sched_getaffinity). OpenBLAS is
 * kept to one thread of its own: the pool is the only parallelism.
 *
 * The same at any thread count: work is split into tasks by the shapes
 * (and the batch) alone, never by the number of threads, and partial
 * results are combined in a fixed order, so a model computes the same
 * bits with 1, 2 or 64 threads.
 *
 * Concurrency: different model instances may be used from different
 * threads at once (one instance from one thread at a time). The pool
 * serves one call at a time; a call that finds it busy runs its tasks
 * on its own thread, with the same results. dlrt_set_num_threads may be
 * called from any thread; it waits for a running call to finish.
 *
 * dlrt_set_num_threads(n): n >= 1 threads from now on (at most 256);
 * DLRT_EINVAL for n < 1, DLRT_ESTATE from inside a task. */
int dlrt_set_num_threads(int n);
int dlrt_num_threads(void);

/* One task of dlrt_parallel_for: task in [0, ntasks); scratch is the
 * running worker's buffer of the loop's scratch_bytes, or NULL on the
 * calling thread, which uses the caller's own memory. */
typedef void (*dlrt_task_fn)(void *ctx, int64_t task, void *scratch);

/* Runs fn(ctx, t, scratch) once for every t in [0, ntasks) on the pool
 * and returns when all are done. Tasks may run in any order and at the
 * same time; the caller decides what each computes, from its data and
 * never from the thread count. Called from inside a task, or while the
 * pool serves another thread, it runs the tasks on the calling thread.
 * Used by generated code and the GEMM wrappers; never fails. */
void dlrt_parallel_for(int64_t ntasks, dlrt_task_fn fn, void *ctx, size_t scratch_bytes);

#ifdef __cplusplus
}
#endif

#include "dlrt_rand.h"       /* deterministic RNG and parameter initializers */
#include "dlrt_checkpoint.h" /* safetensors reading and writing */
#include "dlrt_data.h"       /* IDX/CSV/text loading, mini-batches, accuracy, progress bar */
#include "dlrt_model.h"      /* compiled models: info, instances, checkpoints, GEMM */

#endif

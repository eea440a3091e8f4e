/*
 * Code generation: graph IR + memory plan -> LLVM IR -> object file, and
 * the C header that goes with it. The only part of dlc that includes LLVM
 * headers (the header writer does not need LLVM and lives here because it
 * describes the same ABI).
 */
#ifndef DLC_CODEGEN_H
#define DLC_CODEGEN_H

#include <stdbool.h>
#include <stdio.h>

#include "ir.h"
#include "passes.h"

/* "19.1.7": the LLVM this dlc was built with. */
const char *cg_llvm_version(void);

/* Calls handler with LLVM's reason instead of LLVM's own report when LLVM
 * meets a fatal error (LLVM then exits with status 1 if it returns). */
void cg_set_fatal_handler(void (*handler)(const char *reason));

/* The host's target triple, e.g. "x86_64-pc-linux-gnu"; static storage. */
const char *cg_host_triple(void);

typedef enum { CG_OBJ, CG_ASM, CG_LLVM } CgOutput;

typedef struct {
    const char *triple; /* NULL: the host */
    const char *cpu;    /* NULL or "native": the host's CPU */
    int opt_level;      /* 0..3 */
    bool inference_only;
    bool no_checks; /* --no-checks: entry points do not scan inputs, loss, gradients */
    int part_size;  /* --part-size: kernel calls in one part of a long run function
                       (docs/CODEGEN.md, Parts); 0: CG_PART_SIZE, < 0: no parts */
    int gemm_rows;  /* --gemm-rows: products of at most this many rows in generated
                       code (docs/CODEGEN.md, Generated products); 0: as the target's
                       vectors suggest, < 0: none */
} CgOptions;

enum { CG_PART_SIZE = 64 };

/* Whether o's target has no operating system: a "none" part in its triple
 * (thumbv7em-none-eabihf, aarch64-none-elf). Its object and header then
 * have no entry point that allocates or opens files (docs/TARGETS.md). */
bool cg_freestanding(const CgOptions *o);

/* The memory plans of the generated functions (docs/TRAINING.md): forward
 * always; evaluate (the loss, inference mode) and train (the loss and the
 * gradients, training mode) with opt, the optimizer's recipe, only when
 * training code is compiled (NULL otherwise). */
typedef struct {
    const Train *train;       /* its train statement */
    MemPlan *evaluate, *plan; /* NAME_evaluate[_OBJ]'s and the training step's */
    const OptPlan *opt;
} CgObjective;

/* With training code, evaluate, train and opt are the first objective's;
 * obj[0..nobj-1] has every objective's, in source order. */
typedef struct {
    MemPlan *forward, *evaluate, *train;
    const OptPlan *opt;
    int nobj;
    CgObjective *obj;
} CgPlans;

/* One objective's part of the instance block. */
typedef struct {
    int64_t *opt_state_offset; /* by node id of one of its parameters: byte
                                  offset of its slot 0 in the optimizer area;
                                  slot k is opt_slot_bytes further (-1 otherwise) */
    int64_t opt_slot_bytes;    /* one slot of every parameter of the objective */
    int64_t counters;          /* byte offset of the dlrt_instance whose step,
                                  lr and plateau fields are the objective's:
                                  0 (the header) for the first */
} CgObjLayout;

/* The instance layout that the object and the header agree on (see
 * runtime/dlrt_model.h): byte offsets in the instance block. */
typedef struct {
    int64_t num_param_scalars;
    int64_t *param_offset;     /* by node id: byte offset of a param in the flat
                                  parameter array (-1 for other nodes); its
                                  gradient has the same offset in the grads */
    int64_t *state_offset;     /* by node id: byte offset of a state in the state
                                  area (-1 for other nodes) */
    CgObjLayout *obj;          /* by objective (CgPlans.obj); the optimizer
                                  area holds the first's slots, then the
                                  second's, ...; NULL without training code */
    int64_t header_bytes, params_offset, params_bytes, grads_offset, grads_bytes;
    int64_t opt_offset, opt_bytes, states_offset, states_bytes, arena_offset, arena_bytes;
    int64_t state_bytes; /* the whole block */
} Layout;

Layout *cg_layout(const Graph *g, const CgPlans *plans);

/* Whether codegen has a kernel for op (every op but the sources, whose
 * values are buffers of the instance or the caller). */
bool cg_op_has_kernel(Op op);

/* What cg_emit did: wall time of each phase in ms, and the kernels. */
typedef struct {
    double build_ms;   /* LLVM IR of the kernels, run functions, entry points */
    double dedup_ms;   /* merging identical kernels */
    double opt_ms;     /* LLVM's optimization pipeline (0 at -O0) */
    double output_ms;  /* instruction selection and the object, assembly or IR text */
    int graph_kernels; /* kernel functions built, one per plan step with code */
    int kernels;       /* kernel functions left after merging identical ones */
    int gemms;         /* matrix products generated in code (codegen/gemm.c) */
    int64_t gemm_rows; /* up to this many rows (BLAS above), for the shapes */
    char gemm_shapes[512]; /* "KxN ..."; of the lowest level's module */
} CgStats;

/* Builds the module for a checked, simplified, fused and planned graph
 * and writes it to path ("-" for stdout) as an object, assembly or LLVM IR
 * (path NULL: made in memory and dropped, for the fuzzer);
 * fills *st when st is not NULL. Returns false with a malloc'd message in
 * *err on failure. */
bool cg_emit(const Graph *g, const CgPlans *plans, const Layout *layout, const CgOptions *o,
             CgOutput kind, const char *path, char **err, CgStats *st);

/* codegen/scratch.c: the scratch bytes of step n's kernel at the maximum
 * batch (a ScratchFn for pass_memplan): im2col and column matrices of
 * convolutions, recurrent gates, attention scores; 0 for most kernels. */
int64_t cg_scratch_bytes(const Graph *g, const Node *n);
/* Floats of a [K, N] matrix packed into panels for generated products
 * (cg_pack_b, gemm.c) on any target: N rounded up to whole panels of
 * each target's width (8: 4 lanes by 2; 24: AVX2, 8 by 3; 64: AVX-512, 16
 * by 4), the most of the three. */
static inline int64_t cg_packed_floats(int64_t K, int64_t N)
{
    static const int64_t widths[] = {8, 24, 64};
    int64_t most = 0;
    for (int i = 0; i < 3; i++) {
        int64_t cols = (N + widths[i] - 1) / widths[i] * widths[i];
        most = cols > most ? cols : most;
    }
    return most * K;
}

/* A direct convolution's geometry (codegen/conv.c, docs/CODEGEN.md): a
 * convolution of dilation 1, or one of its gradients, runs as a product
 * whose b is a window onto the image (CgWindow) when its type is f32 and
 * generated products are on. The image the window reads is x itself, or
 * a copy padded with zeros: h x w of its C channels (after an offset oy,
 * ox of x's rows and columns), of which the product makes oh rows of ow
 * outputs each, wp apart. With a
 * stride sh, sw above 1 the copy holds each channel's phases instead,
 * planes of h x w (cg_win_phases of them). For conv_grad_input the
 * convolution is the adjoint one, of the output gradient (its C) with
 * the flipped weights, making the input's pixels; strided, one such of
 * stride 1 per phase of the input (cg_adjoint_phase), each reading
 * the copy of dy (oy, ox: its padding) with its part of the kernel. wt:
 * a weight gradient of CG_WT_CHANNELS output channels or more a group,
 * summed transposed
 * ([taps, O] += window @ dy^T) in scratch. elems: the scratch elements it
 * needs per image (and per chunk of the weight gradient); ok false when
 * the node does not qualify. */
enum { CG_WT_CHANNELS = 16, CG_MAX_PHASES = 16 };
typedef struct {
    bool ok, copy, wt;
    int64_t C, O, kh, kw, sh, sw, H, W, oy, ox, h, w, oh, ow, wp, elems;
    int64_t ph, pw; /* a strided input gradient's padding of the convolution */
} CgConvWin;
CgConvWin cg_conv_window(const Node *n);
static inline bool cg_conv_strided(const CgConvWin *v)
{
    return v->sh > 1 || v->sw > 1;
}
/* The input gradient of a strided convolution, along one axis (kernel k,
 * stride s, padding p, an input of n): the input's phase a (its pixels
 * a, a + s, ...: count of them) takes the taps first, first + s, ...
 * (taps of them), tap first + q*s from dy's pixel m + shift - q for the
 * phase's pixel m. conv.c makes each phase a stride-1 convolution of dy
 * (scratch.c sizes it). */
typedef struct {
    int64_t first, taps, shift, count;
} CgAdjointPhase;
static inline CgAdjointPhase cg_adjoint_phase(int64_t a, int64_t k, int64_t s, int64_t p, int64_t n)
{
    CgAdjointPhase ph = {.first = (a + p) % s, .shift = (a + p) / s};
    ph.taps = ph.first < k ? (k - ph.first + s - 1) / s : 0;
    ph.count = a < n ? (n - a + s - 1) / s : 0;
    return ph;
}
/* The planes a channel of a strided window keeps along an axis of kernel
 * k and stride s: the phases some tap reads (min(kh, sh) by min(kw, sw),
 * row-major, CgWindow). */
static inline int64_t cg_win_phases(int64_t k, int64_t s)
{
    return k < s ? k : s;
}
/* the scratch elements conv_grad_weight's step needs per chunk of images,
 * besides the chunk's partial sum */
int64_t cg_conv_chunk_elems(const Node *n);

/* codegen/cost.c: the work of a step's kernel, from the shapes at batch
 * size batch: flops (a multiply-add is 2) and the bytes it must move (its
 * operands from outside its fusion group and its result, once each; 0 for
 * a view). cg_plan_cost fills out[s] for step s of p; cg_apply_cost is
 * the optimizer step's (NAME_apply_gradients, opt from pass_optim). */
typedef struct {
    int64_t flops, bytes;
} CgCost;
void cg_plan_cost(const Graph *g, const MemPlan *p, int64_t batch, CgCost *out);
CgCost cg_apply_cost(const Graph *g, const OptPlan *opt);

/* Parallel code (codegen/parallel.c): the work of one task on the thread
 * pool, in multiply-adds or element operations (about 30 us on one core
 * here, several times what waking a worker costs), and the number of
 * chunks of images conv_grad_weight sums separately before adding them
 * in order (cg_conv_weight_chunks: 1 when the step is too small to cut
 * or needs no column matrix; its scratch then holds a column matrix and
 * a partial sum per chunk). */
enum { CG_TASK_WORK = 1 << 16, CG_WEIGHT_CHUNKS = 4 };
int64_t cg_conv_weight_chunks(const Graph *g, const Node *n);
/* A sum over the batch (the gradients of biases, batch norm's sums;
 * codegen/reduce.c) cut into chunks of this many rows, a power of two; 0
 * when it is one pass. Its scratch holds a partial sum per chunk of the
 * largest batch (cg_sum_max_chunks). */
int64_t cg_sum_chunk_rows(const Graph *g, const Node *n);
int64_t cg_sum_max_chunks(const Graph *g, const Node *n);
/* Whether a generated f32 product a @ w (w 2-D, no transposes, k static
 * and >= CG_SPLIT_K_MIN, a task's work a row) may be cut along k in two
 * halves (gemm.c): at
 * run time when w has more elements than a and the output together, at
 * most cg_split_k_rows(K, N) rows; its step's scratch then holds the
 * second half's partial product [M, N]. */
enum { CG_SPLIT_K_MIN = 128 };
bool cg_gemm_splits_k(const Node *matmul);
/* A class loss (cross_entropy, nll_loss, multi_margin_loss) reduced to
 * a mean or sum whose classes and inner extent are known: its rows'
 * losses are computed in tasks of this many rows into the step's scratch
 * (a value per row and inner position, at the largest batch), then
 * added in order on the calling thread (loss.c); 0 when it stays one
 * pass (one task's work at the largest batch). */
int64_t cg_loss_rows(const Graph *g, const Node *loss);
static inline int64_t cg_split_k_rows(int64_t K, int64_t N)
{
    return (K * N - 1) / (K + N);
}

/* A loop's scratch (docs/CODEGEN.md, Loops): its body's arena (the body's
 * own plan), then a second set of the carried values (the loop alternates
 * between it and the carried results), then one buffer per scanned
 * sequence's slice. Offsets from the start of the scratch, at the maximum
 * batch. */
typedef struct {
    MemPlan *body;
    int64_t *carried; /* by carried index */
    int64_t *slice;   /* by scanned index */
    int64_t bytes;
} CgLoopScratch;
CgLoopScratch cg_loop_scratch(const Graph *g, const Node *loop);

/* Writes NAME.h (SPEC 3) for the object that cg_emit writes. */
void cg_write_header(FILE *f, const Graph *g, const CgPlans *plans, const Layout *layout,
                     const CgOptions *o);

#endif

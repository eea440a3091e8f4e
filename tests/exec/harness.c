/*
 * The execution-test harness, compiled once per model:
 *
 *   cc -DMODEL_HEADER='"m.h"' -DMODEL=m harness.c ref.c m.o libdlrt.a libdlc_passes.a libdlc_ir.a ...
 *   ./harness m.ir m.dl [--level N] [--dump FILE | --against FILE]
 *
 * It runs the compiled model through its generic entry (info->forward) on
 * seeded random inputs at several batch sizes and compares every output
 * with the reference interpreter (ref.c) evaluating the shape-checked
 * graph m.ir (dlc --dump-ir=shape) in double precision on the same inputs
 * and parameters. It also checks what the generated interface promises:
 * the info's tensors match the graph's names, types and shapes; outputs
 * are written exactly within their extents (guard elements after each
 * buffer stay intact) and inputs are never written; a batch outside
 * 1..max_batch is refused with DLRT_EINVAL; a repeated call gives the
 * same bits.
 *
 * Settings come from "# EXEC:" comment lines in m.dl, words of the form
 * key=value (later words override earlier ones):
 *
 *   batches=1,7,16     batch sizes to run (default: 1, an odd one, max)
 *   range=LO,HI        uniform range of floating inputs and parameters
 *                      (default -2,2); for i32 inputs integers LO..HI
 *   rtol=R atol=A      tolerance |got - ref| <= A + R*|ref| (defaults: f32
 *                      rtol 1e-5 atol 1e-6, f64 rtol 1e-12 atol 1e-12; f16
 *                      and bf16 outputs add one ulp, 2^-10 and 2^-7, to rtol)
 *   seed=N             the random seed (default 1)
 *   params=init        keep the parameters the model initialized (default:
 *                      overwrite them with values drawn from range)
 *   input=NAME ...     the words after it on the line apply to that input
 *   param=NAME ...     ... to that parameter
 *   state=NAME ...     ... to the model states NAME (NAME* for every state
 *                      whose name starts with NAME): with a range, they
 *                      are overwritten with values drawn from it (e.g.
 *                      batch norm's running statistics); other states keep
 *                      their initial values
 *   output=NAME ...    ... to that output (rtol, atol)
 *
 * i32 inputs without a range get one from their use: the indices of an
 * OPF_INDEX op (class labels 0..C-1, embedding ids 0..V-1), one_hot
 * indices -1..n (one out of range at each end), else -3..3.
 */
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "ir.h"
#include "passes.h"
#include "ref.h"

#include MODEL_HEADER

#define HARNESS_TAG "EXEC"
#include "harness_util.h"

enum { GUARD = 16, MAX_BATCHES = 16, MAX_NAMED = 64 };

/* Settings for one input, parameter or output, or the defaults. */
typedef struct {
    char name[64];
    char kind; /* 'i'nput, 'p'aram, 'o'utput, 0 for the defaults */
    bool has_range, has_rtol, has_atol;
    double lo, hi, rtol, atol;
} Setting;

static struct {
    int batches[MAX_BATCHES];
    int nbatches;
    uint64_t seed;
    bool keep_params;
    Setting def;
    Setting named[MAX_NAMED];
    int nnamed;
} cfg = {.seed = 1};

/* Settings */

/* One key=value of the settings; a line starts with the defaults. */
static void parse_setting(const char *k, char *v, bool line_start)
{
    static Setting *cur;
    if (line_start)
        cur = &cfg.def;
    Setting *s = cur;
    if (strcmp(k, "input") == 0 || strcmp(k, "param") == 0 || strcmp(k, "output") == 0 ||
        strcmp(k, "state") == 0) {
        if (cfg.nnamed == MAX_NAMED)
            fatal("EXEC: too many named settings");
        s = &cfg.named[cfg.nnamed++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", v);
        s->kind = k[0];
        cur = s;
    } else if (strcmp(k, "range") == 0) {
        if (!parse_pair(v, &s->lo, &s->hi) || !(s->lo <= s->hi))
            fatal("EXEC: range=%s: expected LO,HI", v);
        s->has_range = true;
    } else if (strcmp(k, "rtol") == 0) {
        s->rtol = parse_num(k, v);
        s->has_rtol = true;
    } else if (strcmp(k, "atol") == 0) {
        s->atol = parse_num(k, v);
        s->has_atol = true;
    } else if (s != &cfg.def) {
        fatal("EXEC: '%s' cannot be set for one %s", k,
              s->kind == 'i'   ? "input"
              : s->kind == 'p' ? "param"
              : s->kind == 's' ? "state"
                               : "output");
    } else if (strcmp(k, "batches") == 0) {
        cfg.nbatches = 0;
        for (char *t = strtok(v, ","); t; t = strtok(NULL, ",")) {
            if (cfg.nbatches == MAX_BATCHES)
                fatal("EXEC: too many batch sizes");
            cfg.batches[cfg.nbatches++] = (int)parse_num(k, t);
        }
    } else if (strcmp(k, "seed") == 0) {
        cfg.seed = (uint64_t)parse_num(k, v);
    } else if (strcmp(k, "params") == 0) {
        if (strcmp(v, "init") != 0)
            fatal("EXEC: params=%s: only 'init' is known", v);
        cfg.keep_params = true;
    } else {
        fatal("EXEC: unknown setting '%s'", k);
    }
}

static const Setting *find_setting(char kind, const char *name)
{
    const Setting *found = NULL;
    for (int i = 0; i < cfg.nnamed; i++)
        if (cfg.named[i].kind == kind && strcmp(cfg.named[i].name, name) == 0)
            found = &cfg.named[i];
    return found;
}

/* Tensors in the model's buffers */

static double load_elem(const void *p, dlrt_dtype t, int64_t i)
{
    switch (t) {
    case DLRT_F32: return ((const float *)p)[i];
    case DLRT_F64: return ((const double *)p)[i];
    case DLRT_F16: return dlrt_f32_from_f16(((const uint16_t *)p)[i]);
    case DLRT_BF16: return dlrt_f32_from_bf16(((const uint16_t *)p)[i]);
    default: return ((const int32_t *)p)[i];
    }
}

static void store_elem(void *p, dlrt_dtype t, int64_t i, double v)
{
    switch (t) {
    case DLRT_F32: ((float *)p)[i] = (float)v; break;
    case DLRT_F64: ((double *)p)[i] = v; break;
    case DLRT_F16: ((uint16_t *)p)[i] = dlrt_f16_from_f32((float)v); break;
    case DLRT_BF16: ((uint16_t *)p)[i] = dlrt_bf16_from_f32((float)v); break;
    default: ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

static dlrt_dtype to_dlrt(DType t)
{
    switch (t) {
    case DT_F64: return DLRT_F64;
    case DT_I32: return DLRT_I32;
    case DT_F16: return DLRT_F16;
    case DT_BF16: return DLRT_BF16;
    default: return DLRT_F32;
    }
}

/* The info agrees with the graph: same dtype and shape (at max batch),
 * batch dimensions where the graph has the batch symbol. */
static void check_desc(const dlrt_tensor_info *t, const Node *n, const char *what, int max_batch)
{
    const char *name = t->desc.name;
    if (to_dlrt(n->dtype) != t->desc.dtype) {
        fail("%s %s: info dtype %d, graph %s", what, name, t->desc.dtype, ir_dtype_name(n->dtype));
        return;
    }
    bool same = t->desc.rank == n->shape.rank;
    for (int i = 0; same && i < n->shape.rank; i++) {
        Dim d = n->shape.d[i];
        same = t->desc.shape[i] == (d.batch ? d.n * max_batch : d.n) &&
               (bool)(t->batch_dims >> i & 1) == d.batch;
    }
    if (!same) {
        char buf[128];
        fail("%s %s: info shape (rank %d, batch_dims 0x%x) differs from the graph's %s", what, name,
             t->desc.rank, (unsigned)t->batch_dims, ir_shape_str(&n->shape, NULL, buf, sizeof buf));
    }
}

static const Node *graph_output(const Graph *g, const char *name)
{
    for (int i = 0; i < g->outputs.n; i++)
        if (strcmp(g->outputs.v[i].name, name) == 0)
            return g->outputs.v[i].node;
    return NULL;
}

/* The default integer range of an i32 input, from its uses. */
static void int_range(const Graph *g, const Node *in, double *lo, double *hi)
{
    *lo = -3;
    *hi = 3;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        int k;
        int64_t bound;
        if (ir_index_operand(n, &k, &bound) && n->in[k] == in) {
            *lo = 0;
            *hi = (double)bound - 1;
            return;
        }
        if (n->op == OP_ONE_HOT && n->in[0] == in) {
            *lo = -1;
            *hi = (double)ir_attr_int(n, "n");
            return;
        }
    }
}

static void fill_random(void *p, dlrt_dtype t, int64_t count, double lo, double hi)
{
    for (int64_t i = 0; i < count; i++) {
        double v = t == DLRT_I32 ? floor(rng_uniform(lo, hi + 1)) : rng_uniform(lo, hi);
        store_elem(p, t, i, v > hi ? hi : v);
    }
}

/* The range of input t (graph node n): its setting, the default range for
 * floating inputs, else one from its use. */
static void input_range(const Graph *g, const dlrt_tensor_info *t, const Node *n, double *lo,
                        double *hi)
{
    *lo = -2;
    *hi = 2;
    const Setting *s = find_setting('i', t->desc.name);
    if (t->desc.dtype == DLRT_I32)
        int_range(g, n, lo, hi);
    if (s && s->has_range) {
        *lo = s->lo;
        *hi = s->hi;
    } else if (cfg.def.has_range && t->desc.dtype != DLRT_I32) {
        *lo = cfg.def.lo;
        *hi = cfg.def.hi;
    }
}

/* Overwrites every parameter of the instance at base with values drawn
 * from its range. */
static void fill_params(const dlrt_model_info *info, unsigned char *base)
{
    int maxb = info->max_batch;
    for (int i = 0; i < info->num_params; i++) {
        const dlrt_tensor_info *p = &info->params[i];
        const Setting *s = find_setting('p', p->desc.name);
        const Setting *r = s && s->has_range ? s : &cfg.def;
        fill_random(base + p->offset, p->desc.dtype, count_at(p, maxb, maxb),
                    r->has_range ? r->lo : -2, r->has_range ? r->hi : 2);
    }
}

/* Overwrites the states that a state=NAME setting gives a range. */
static void fill_states(const dlrt_model_info *info, unsigned char *base)
{
    for (int i = 0; i < info->num_states; i++) {
        const dlrt_tensor_info *st = &info->states[i];
        const Setting *r = NULL;
        for (int k = 0; k < cfg.nnamed; k++) {
            const Setting *s = &cfg.named[k];
            size_t len = strlen(s->name);
            bool prefix = len > 0 && s->name[len - 1] == '*';
            if (s->kind == 's' && s->has_range &&
                (prefix ? strncmp(s->name, st->desc.name, len - 1) == 0
                        : strcmp(s->name, st->desc.name) == 0))
                r = s;
        }
        if (r)
            fill_random(base + st->offset, st->desc.dtype,
                        count_at(st, info->max_batch, info->max_batch), r->lo, r->hi);
    }
}

/* Buffers with guard bytes after the data. */
static unsigned char *alloc_guarded(size_t bytes)
{
    unsigned char *p = malloc(bytes + GUARD * 8);
    if (!p)
        fatal("out of memory");
    memset(p, 0xA5, bytes + GUARD * 8);
    return p;
}

static bool guard_intact(const unsigned char *p, size_t bytes)
{
    for (size_t i = 0; i < GUARD * 8; i++)
        if (p[bytes + i] != 0xA5)
            return false;
    return true;
}

/* Compares one output with want (the reference, or the outputs of another
 * optimization level when vs names it); prints the largest differences. */
static void compare(const char *name, const void *got, dlrt_dtype t, const RefTensor *want,
                    int batch, const char *vs)
{
    const Setting *s = find_setting('o', name);
    bool f64 = t == DLRT_F64;
    double rtol = f64 ? 1e-12 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
    /* a half-precision output is the f32 value rounded once more: one unit
     * in the last place of the format (2^-10 for f16, 2^-7 for bf16),
     * since an f32 value close to a tie may round the other way than the
     * reference's, plus the f32 tolerance */
    if (t == DLRT_F16 || t == DLRT_BF16)
        rtol += t == DLRT_F16 ? 0x1p-10 : 0x1p-7;
    if (cfg.def.has_rtol)
        rtol = cfg.def.rtol;
    if (cfg.def.has_atol)
        atol = cfg.def.atol;
    if (s && s->has_rtol)
        rtol = s->rtol;
    if (s && s->has_atol)
        atol = s->atol;
    if (t == DLRT_I32)
        rtol = atol = 0;
    double max_abs = 0, max_rel = 0;
    int64_t bad = -1, nbad = 0;
    for (int64_t i = 0; i < want->count; i++) {
        double g = load_elem(got, t, i), w = want->v[i];
        bool ok;
        double err = fabs(g - w);
        if (isnan(w) || isnan(g))
            ok = isnan(w) && isnan(g);
        else if (isinf(w) || isinf(g))
            ok = g == w;
        else {
            ok = err <= atol + rtol * fabs(w);
            max_abs = fmax(max_abs, err);
            if (w != 0)
                max_rel = fmax(max_rel, err / fabs(w));
        }
        if (!ok) {
            nbad++;
            if (bad < 0)
                bad = i;
        }
    }
    printf("  batch %-4d %-16s %8" PRId64 " elements  max abs %s %.3g  max rel %s %.3g"
           "  (rtol %g atol %g)%s%s%s\n",
           batch, name, want->count, vs ? "diff" : "err", max_abs, vs ? "diff" : "err", max_rel,
           rtol, atol, vs ? "  vs " : "", vs ? vs : "", nbad ? "  MISMATCH" : "");
    if (nbad) {
        char at[160] = "[";
        for (int i = 0, len = 1; i < want->rank; i++) {
            int64_t stride = 1;
            for (int j = i + 1; j < want->rank; j++)
                stride *= want->dim[j];
            len += snprintf(at + len, sizeof at - (size_t)len, "%s%" PRId64, i ? ", " : "",
                            bad / stride % want->dim[i]);
        }
        strcat(at, "]");
        fail("output %s at batch %d: %" PRId64 " of %" PRId64 " elements differ%s%s; first at "
             "%s: got %.*g, want %.*g",
             name, batch, nbad, want->count, vs ? " from " : "", vs ? vs : "", at, f64 ? 17 : 9,
             load_elem(got, t, bad), f64 ? 17 : 9, want->v[bad]);
    }
}

/* Outputs of another optimization level. The exec tests run -O0 with
 * --dump FILE (every output of every batch, as computed) and each further
 * level with --against FILE, which compares its outputs with those directly,
 * within the same tolerance as against the reference. The file: a header
 * (magic, the level that wrote it), then one record per output and batch in
 * run order, each followed by the raw elements. */
typedef struct {
    char magic[8];
    int32_t level;
} LevelHeader;

typedef struct {
    int32_t batch, output, dtype;
    int64_t count;
} LevelRecord;

static const char level_magic[8] = "DLCXOUT1";

static FILE *level_open(const char *path, bool write, int level, int *their_level)
{
    FILE *f = fopen(path, write ? "wb" : "rb");
    if (!f)
        fatal("cannot %s %s: %s", write ? "write" : "read", path, strerror(errno));
    LevelHeader h = {{0}, level};
    memcpy(h.magic, level_magic, sizeof h.magic);
    if (write) {
        if (fwrite(&h, sizeof h, 1, f) != 1)
            fatal("cannot write %s", path);
    } else if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, level_magic, 8) != 0) {
        fatal("%s holds no dumped outputs", path);
    }
    *their_level = h.level;
    return f;
}

static void level_dump(FILE *f, int batch, int output, dlrt_dtype t, int64_t count, const void *p)
{
    LevelRecord r;
    memset(&r, 0, sizeof r); /* no stray padding bytes in the file */
    r.batch = batch;
    r.output = output;
    r.dtype = (int32_t)t;
    r.count = count;
    if (fwrite(&r, sizeof r, 1, f) != 1 ||
        fwrite(p, elem_size(t), (size_t)count, f) != (size_t)count)
        fatal("cannot write the dumped outputs");
}

/* Compares output `output` at `batch` (ref: the reference's value, for the
 * dimensions) with the next record of f. */
static void level_compare(FILE *f, const char *vs, int batch, int output, const char *name,
                          dlrt_dtype t, const void *got, const RefTensor *ref)
{
    static bool lost; /* after one record that does not match, the rest cannot */
    LevelRecord r;
    if (lost)
        return;
    if (fread(&r, sizeof r, 1, f) != 1 || r.batch != batch || r.output != output ||
        r.dtype != (int32_t)t || r.count != ref->count) {
        fail("output %s at batch %d: no matching outputs %s (the runs differ in shape or order)",
             name, batch, vs);
        lost = true;
        return;
    }
    size_t bytes = (size_t)r.count * elem_size(t);
    unsigned char *buf = malloc(bytes + 1);
    RefTensor other = *ref;
    other.v = malloc((size_t)r.count * sizeof *other.v + 1);
    if (!buf || !other.v)
        fatal("out of memory");
    if (fread(buf, 1, bytes, f) != bytes)
        fatal("the dumped outputs end early");
    for (int64_t k = 0; k < r.count; k++)
        other.v[k] = load_elem(buf, t, k);
    compare(name, got, t, &other, batch, vs);
    free(other.v);
    free(buf);
}

/* Instances, initialization and checkpoints through the generated API.
 *
 * Everything compares tensors bit for bit: a loaded or reinitialized
 * instance must be the same instance, not a close one. Refused calls must
 * change nothing, so the instances they are tried on start with other
 * parameters than the file holds (a partial write would show). */

static const Graph *hg;       /* the graph, for input ranges */
static const Node **hin_node; /* the graph node of each info input */

/* The first parameter or state of info in which instances a and b differ
 * (bitwise), or NULL. */
static const char *differing_tensor(const dlrt_model_info *info, const void *a, const void *b)
{
    int maxb = info->max_batch;
    for (int k = 0; k < info->num_params + info->num_states; k++) {
        const dlrt_tensor_info *t =
            k < info->num_params ? &info->params[k] : &info->states[k - info->num_params];
        size_t bytes = (size_t)count_at(t, maxb, maxb) * elem_size(t->desc.dtype);
        if (memcmp((const unsigned char *)a + t->offset, (const unsigned char *)b + t->offset,
                   bytes) != 0)
            return t->desc.name;
    }
    return NULL;
}

/* Runs forward on m at `batch` with inputs drawn from rng seed `salt`;
 * returns every output's bytes end to end (malloc'd, *len bytes) or NULL
 * with forward's code in *rc. */
static unsigned char *forward_bytes(const dlrt_model_info *info, void *m, int batch, uint64_t salt,
                                    size_t *len, int *rc)
{
    int maxb = info->max_batch, nfi = info->num_forward_inputs, nout = info->num_outputs;
    const void **ins = calloc((size_t)nfi + 1, sizeof *ins);
    void **outs = calloc((size_t)nout + 1, sizeof *outs);
    size_t total = 0;
    rng_state = salt;
    for (int k = 0; k < nfi; k++) {
        const dlrt_tensor_info *t = &info->inputs[info->forward_inputs[k]];
        int64_t c = count_at(t, maxb, batch);
        void *p = malloc((size_t)c * elem_size(t->desc.dtype) + 1);
        double lo, hi;
        input_range(hg, t, hin_node[info->forward_inputs[k]], &lo, &hi);
        fill_random(p, t->desc.dtype, c, lo, hi);
        ins[k] = p;
    }
    for (int i = 0; i < nout; i++) {
        const dlrt_tensor_info *t = &info->outputs[i];
        size_t bytes = (size_t)count_at(t, maxb, batch) * elem_size(t->desc.dtype);
        outs[i] = malloc(bytes + 1);
        memset(outs[i], 0x5A, bytes);
        total += bytes;
    }
    *rc = info->forward(m, maxb > 0 ? batch : 1, ins, outs);
    unsigned char *all = *rc == 0 ? malloc(total + 1) : NULL;
    size_t at = 0;
    for (int i = 0; all && i < nout; i++) {
        const dlrt_tensor_info *t = &info->outputs[i];
        size_t bytes = (size_t)count_at(t, maxb, batch) * elem_size(t->desc.dtype);
        memcpy(all + at, outs[i], bytes);
        at += bytes;
    }
    for (int k = 0; k < nfi; k++)
        free((void *)ins[k]);
    for (int i = 0; i < nout; i++)
        free(outs[i]);
    free(ins);
    free(outs);
    *len = total;
    return all;
}

/* Whether m and o compute the same output bits; reports a difference. */
static void check_same_forward(const dlrt_model_info *info, void *m, void *o, const char *what)
{
    int batch = info->max_batch > 0 ? info->max_batch : 1;
    size_t la, lb;
    int ra, rb;
    unsigned char *a = forward_bytes(info, m, batch, cfg.seed * 31 + 5, &la, &ra);
    unsigned char *b = forward_bytes(info, o, batch, cfg.seed * 31 + 5, &lb, &rb);
    if (!a || !b)
        fail("%s: forward returned %d and %d", what, ra, rb);
    else if (la != lb || memcmp(a, b, la) != 0)
        fail("%s: forward outputs differ from the original instance's bits", what);
    free(a);
    free(b);
}

static char ckdir[4096];

/* The path of `name` in the checkpoint directory, in one of a few
 * rotating buffers: use it at once. */
static char *ckpath(const char *name)
{
    static char buf[8][4200];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", ckdir, name);
    return p;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        fatal("cannot write %s", path);
}

/* NAME_load(dst, path) returns want; a refused load leaves dst's tensors
 * and step as they were. */
static void expect_load(const dlrt_model_info *info, MODEL *dst, const char *path, int want,
                        const char *what)
{
    unsigned char *before = malloc(info->state_bytes);
    memcpy(before, dst, info->state_bytes);
    int rc = MODEL_FN(_load)(dst, path);
    if (rc != want)
        fail("%s: %s_load returned %d (%s), want %d (%s)", what, info->name, rc, dlrt_strerror(rc),
             want, dlrt_strerror(want));
    const char *changed = differing_tensor(info, before, dst);
    if (rc != 0 && changed)
        fail("%s: the refused load changed %s", what, changed);
    if (rc != 0 && ((dlrt_instance *)(void *)before)->step != ((dlrt_instance *)(void *)dst)->step)
        fail("%s: the refused load changed the step", what);
    free(before);
}

/* A checkpoint of "another model" written by hand: m's tensors with one
 * change (kind), for a load that must answer DLRT_EMISMATCH. */
static void write_other(const dlrt_model_info *info, MODEL *m, const char *path, int kind)
{
    int n = info->num_params + info->num_states;
    dlrt_tensor_desc *descs = calloc((size_t)n + 2, sizeof *descs);
    const void **data = calloc((size_t)n + 2, sizeof *data);
    for (int k = 0; k < n; k++) {
        const dlrt_tensor_info *t =
            k < info->num_params ? &info->params[k] : &info->states[k - info->num_params];
        descs[k] = t->desc;
        data[k] = (const unsigned char *)m + t->offset;
    }
    char renamed[300];
    void *scratch = NULL;
    const char *model = info->name;
    char other_model[300];
    dlrt_tensor_desc *d0 = &descs[0];
    switch (kind) {
    case 0: /* a tensor of another name */
        snprintf(renamed, sizeof renamed, "%s_other", d0->name);
        d0->name = renamed;
        break;
    case 1: /* another shape */
        if (d0->rank == 0) {
            d0->rank = 1;
            d0->shape[0] = 2;
        } else {
            d0->shape[d0->rank - 1]++;
        }
        break;
    case 2: /* another dtype (F32 would load into F16 or BF16: DLRT_CKPT_NARROW) */
        d0->dtype = d0->dtype == DLRT_F64 ? DLRT_F32 : DLRT_F64;
        break;
    case 3: /* one tensor more */
        descs[n] =
            (dlrt_tensor_desc){.name = "extra_tensor", .dtype = DLRT_F32, .rank = 1, .shape = {3}};
        break;
    case 4: /* one tensor fewer: written below with n - 1 */ break;
    case 5: /* metadata naming another model */
        snprintf(other_model, sizeof other_model, "%s_other", info->name);
        model = other_model;
        break;
    }
    if (kind == 1 || kind == 2 || kind == 3) {
        dlrt_tensor_desc *d = kind == 3 ? &descs[n] : d0;
        size_t c = dlrt_dtype_size(d->dtype);
        for (int i = 0; i < d->rank; i++)
            c *= (size_t)d->shape[i];
        scratch = calloc(c + 1, 1);
        data[kind == 3 ? n : 0] = scratch;
    }
    const char *keys[] = {"format", "model", "step"};
    const char *values[] = {"dlc", model, "0"};
    int count = kind == 3 ? n + 1 : kind == 4 ? n - 1 : n;
    int rc = dlrt_checkpoint_save(path, descs, data, count, keys, values, 3);
    if (rc != 0)
        fatal("dlrt_checkpoint_save of another model's checkpoint: %s", dlrt_strerror(rc));
    free(scratch);
    free(data);
    free(descs);
}

static void check_instances(const dlrt_model_info *info)
{
    uint64_t seed = cfg.seed;
    const char *tmp = getenv("TMPDIR");
    snprintf(ckdir, sizeof ckdir, "%s/dlc-ckpt.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(ckdir))
        fatal("cannot make a directory %s: %s", ckdir, strerror(errno));
    if ((size_t)MODEL_FN(_STATE_BYTES) != info->state_bytes)
        fail("%s_STATE_BYTES is %zu, the info's state_bytes %zu", info->name,
             (size_t)MODEL_FN(_STATE_BYTES), info->state_bytes);
    if ((int64_t)MODEL_FN(_NUM_PARAMS) != info->num_param_scalars)
        fail("%s_NUM_PARAMS is %" PRId64 ", the info's %" PRId64, info->name,
             (int64_t)MODEL_FN(_NUM_PARAMS), info->num_param_scalars);

    /* initialization is a function of the seed alone */
    MODEL *a = MODEL_FN(_create)(seed), *b = MODEL_FN(_create)(seed);
    MODEL *c = MODEL_FN(_create)(seed + 1);
    if (!a || !b || !c)
        fatal("%s_create failed", info->name);
    const char *d = differing_tensor(info, a, b);
    if (d)
        fail("two %s_create(%" PRIu64 ") differ in %s", info->name, seed, d);
    bool random_init = false;
    for (int i = 0; i < info->num_params; i++)
        random_init |= info->params[i].init >= DLRT_INIT_UNIFORM &&
                       count_at(&info->params[i], info->max_batch, info->max_batch) > 0;
    if (random_init && !differing_tensor(info, a, c))
        fail("%s_create with seeds %" PRIu64 " and %" PRIu64 " give the same parameters",
             info->name, seed, seed + 1);

    /* in caller-owned memory: the same instance; refused when too small or
     * misaligned, without touching the memory */
    size_t sb = info->state_bytes, room = (sb + 63) / 64 * 64 + 64;
    unsigned char *mem = aligned_alloc(64, room);
    if (!mem)
        fatal("out of memory");
    struct {
        size_t off, size;
        bool null_mem;
        const char *what;
    } bad[] = {
        {0, sb - 1, false, "one byte too few"},
        {8, sb, false, "memory 8 bytes past alignment"},
        {32, sb, false, "memory 32 bytes past alignment"},
        {1, sb, false, "memory 1 byte past alignment"},
        {0, sb, true, "NULL memory"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memset(mem, 0xA5, room);
        int rc =
            MODEL_FN(_init)(NULL, bad[k].null_mem ? NULL : mem + bad[k].off, bad[k].size, seed);
        if (rc != DLRT_EINVAL)
            fail("%s_init with %s returned %d, want DLRT_EINVAL", info->name, bad[k].what, rc);
        for (size_t i = 0; i < room; i++)
            if (mem[i] != 0xA5) {
                fail("%s_init with %s wrote to the memory", info->name, bad[k].what);
                break;
            }
    }
    memset(mem, 0xA5, room);
    if (MODEL_FN(_init)((MODEL *)(void *)(mem + 64), mem, sb, seed) != DLRT_EINVAL)
        fail("%s_init with m neither mem nor NULL was not refused", info->name);
    for (int k = 0; k < 2; k++) {
        memset(mem, 0xA5, room);
        int rc = MODEL_FN(_init)(k ? (MODEL *)(void *)mem : NULL, mem, sb, seed);
        if (rc != 0) {
            fail("%s_init(%s, mem, %s_STATE_BYTES) returned %d (%s)", info->name,
                 k ? "mem" : "NULL", info->name, rc, dlrt_strerror(rc));
            continue;
        }
        if ((d = differing_tensor(info, a, mem)))
            fail("%s_init and %s_create with seed %" PRIu64 " differ in %s", info->name, info->name,
                 seed, d);
        if (k)
            check_same_forward(info, a, mem, "an instance made by NAME_init");
        /* destroy leaves memory it did not allocate alone (ASan reports a
         * bad free) */
        MODEL_FN(_destroy)((MODEL *)(void *)mem);
    }
    free(mem);

    /* checkpoints: a with parameters and states of its own, saved; c (another seed)
     * refuses every bad file unchanged, then loads a's */
    fill_params(info, (unsigned char *)a);
    for (int j = 0; j < info->num_states; j++) {
        /* positive, so running variances stay variances */
        const dlrt_tensor_info *t = &info->states[j];
        fill_random((unsigned char *)a + t->offset, t->desc.dtype,
                    count_at(t, info->max_batch, info->max_batch), 0.5, 2);
    }
    char good[sizeof ckdir + 32];
    snprintf(good, sizeof good, "%s", ckpath("a.safetensors"));
    int rc = MODEL_FN(_save)(a, good);
    if (rc != 0)
        fatal("%s_save: %s", info->name, dlrt_strerror(rc));
    if ((rc = MODEL_FN(_save)(a, good)) != 0)
        fail("%s_save over an existing checkpoint returned %d", info->name, rc);
    bool has_tensors = info->num_params + info->num_states > 0;
    if (has_tensors && !differing_tensor(info, a, c))
        fail("instances with other seeds and parameters have the same tensors");

    size_t len;
    char *bytes = read_file(good, &len);
    if (!bytes || len < 8)
        fatal("cannot read back %s", good);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (unsigned char)bytes[i];
    size_t cuts[] = {0, 7, 8, 8 + (size_t)hlen / 2, 8 + (size_t)hlen, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        if (cuts[k] >= len || (k > 0 && cuts[k] == cuts[k - 1]))
            continue;
        char what[96];
        snprintf(what, sizeof what, "the checkpoint cut to %zu of %zu bytes", cuts[k], len);
        write_bytes(ckpath("cut.safetensors"), bytes, cuts[k]);
        expect_load(info, c, ckpath("cut.safetensors"), DLRT_EFORMAT, what);
    }
    if (len > 8) {
        bytes[8] = '[';
        write_bytes(ckpath("cut.safetensors"), bytes, len);
        expect_load(info, c, ckpath("cut.safetensors"), DLRT_EFORMAT,
                    "a header that is not an object");
    }
    free(bytes);

    static const char *other[] = {"a tensor of another name",  "a tensor of another shape",
                                  "a tensor of another dtype", "an extra tensor",
                                  "a missing tensor",          "another model's name"};
    for (int k = 0; k < 6; k++) {
        if (k != 3 && k != 5 && info->num_params + info->num_states == 0)
            continue;
        write_other(info, a, ckpath("other.safetensors"), k);
        char what[128];
        snprintf(what, sizeof what, "a checkpoint with %s", other[k]);
        expect_load(info, c, ckpath("other.safetensors"), DLRT_EMISMATCH, what);
    }

    expect_load(info, c, ckpath("no-such-file"), DLRT_EIO, "a missing file");
    expect_load(info, c, ckdir, DLRT_EIO, "a directory");
    char nodir[sizeof ckdir + 32];
    snprintf(nodir, sizeof nodir, "%s", ckpath("no-such-dir/a.safetensors"));
    if ((rc = MODEL_FN(_save)(a, nodir)) != DLRT_EIO)
        fail("%s_save into a missing directory returned %d, want DLRT_EIO", info->name, rc);
    if (access(ckpath("no-such-dir"), F_OK) == 0)
        fail("%s_save into a missing directory created it", info->name);
    if ((rc = MODEL_FN(_save)(NULL, good)) != DLRT_EINVAL ||
        (rc = MODEL_FN(_save)(a, NULL)) != DLRT_EINVAL)
        fail("%s_save with a NULL argument returned %d, want DLRT_EINVAL", info->name, rc);
    expect_load(info, c, NULL, DLRT_EINVAL, "a NULL path");
    if ((rc = MODEL_FN(_load)(NULL, good)) != DLRT_EINVAL)
        fail("%s_load of a NULL instance returned %d, want DLRT_EINVAL", info->name, rc);

    expect_load(info, c, good, 0, "the model's own checkpoint");
    if ((d = differing_tensor(info, a, c)))
        fail("after %s_load, %s differs from the saved instance's", info->name, d);
    check_same_forward(info, a, c, "an instance loaded from a checkpoint");

    /* the same tensors as another tool writes them: reverse order, no
     * metadata */
    int n = info->num_params + info->num_states;
    dlrt_tensor_desc *descs = calloc((size_t)n + 1, sizeof *descs);
    const void **data = calloc((size_t)n + 1, sizeof *data);
    for (int k = 0; k < n; k++) {
        const dlrt_tensor_info *t =
            k < info->num_params ? &info->params[k] : &info->states[k - info->num_params];
        descs[n - 1 - k] = t->desc;
        data[n - 1 - k] = (const unsigned char *)a + t->offset;
    }
    if ((rc = dlrt_checkpoint_save(ckpath("plain.safetensors"), descs, data, n, NULL, NULL, 0)))
        fatal("dlrt_checkpoint_save: %s", dlrt_strerror(rc));
    free(descs);
    free(data);
    MODEL_FN(_destroy)(b);
    b = MODEL_FN(_create)(seed + 2);
    expect_load(info, b, ckpath("plain.safetensors"), 0, "a checkpoint without metadata");
    if ((d = differing_tensor(info, a, b)))
        fail("after loading a checkpoint without metadata, %s differs", d);

    /* saving leaves no temporary files behind */
    static const char *mine[] = {"a.safetensors", "cut.safetensors", "other.safetensors",
                                 "plain.safetensors"};
    for (size_t k = 0; k < sizeof mine / sizeof mine[0]; k++)
        unlink(ckpath(mine[k]));
    glob_t left;
    if (glob(ckpath("*"), 0, NULL, &left) == 0) {
        for (size_t k = 0; k < left.gl_pathc; k++) {
            fail("saving left %s behind", left.gl_pathv[k]);
            unlink(left.gl_pathv[k]);
        }
        globfree(&left);
    }
    if (rmdir(ckdir) != 0)
        fail("cannot remove %s: %s", ckdir, strerror(errno));
    MODEL_FN(_destroy)(a);
    MODEL_FN(_destroy)(b);
    MODEL_FN(_destroy)(c);
}

int main(int argc, char **argv)
{
    const char *usage = "usage: %s MODEL.ir MODEL.dl [--level N] [--dump FILE | --against FILE]";
    if (argc < 3)
        fatal(usage, argv[0]);
    const char *dump_path = NULL, *against_path = NULL;
    int level = -1;
    for (int i = 3; i < argc; i++) {
        if (i + 1 == argc)
            fatal(usage, argv[0]);
        if (strcmp(argv[i], "--dump") == 0)
            dump_path = argv[++i];
        else if (strcmp(argv[i], "--against") == 0)
            against_path = argv[++i];
        else if (strcmp(argv[i], "--level") == 0)
            level = (int)parse_num("--level", argv[++i]);
        else
            fatal(usage, argv[0]);
    }
    if (dump_path && against_path)
        fatal(usage, argv[0]);
    read_settings(argv[2], parse_setting);
    int their_level = -1;
    FILE *dump = dump_path ? level_open(dump_path, true, level, &their_level) : NULL;
    FILE *against = against_path ? level_open(against_path, false, level, &their_level) : NULL;
    char vs[32];
    snprintf(vs, sizeof vs, "-O%d", their_level);

    Arena *a = arena_new();
    size_t len;
    char *text = read_file(argv[1], &len);
    if (!text)
        fatal("cannot read %s", argv[1]);
    int file = diag_add_source(argv[1], text, len);
    free(text);
    Graph *g = ir_read(a, file);
    if (!g || diag_errors())
        fatal("cannot read the IR in %s", argv[1]);
    bool typed = true;
    for (int i = 0; i < g->nodes.n; i++)
        typed &= g->nodes.v[i]->dtype != DT_UNKNOWN;
    if (!typed && !pass_shape(g))
        fatal("the IR in %s does not pass the shape check", argv[1]);

    const dlrt_model_info *info = MODEL_FN(_info)();
    int maxb = info->max_batch;
    if (cfg.nbatches == 0) {
        cfg.batches[cfg.nbatches++] = 1;
        if (maxb > 2)
            cfg.batches[cfg.nbatches++] = (maxb / 2) | 1;
        if (maxb > 1)
            cfg.batches[cfg.nbatches++] = maxb;
    }
    if (maxb == 0) {
        cfg.nbatches = 1;
        cfg.batches[0] = 1;
    }
    printf("%s: %d inputs (%d to forward), %d outputs, %d params, %d states, batches", info->name,
           info->num_inputs, info->num_forward_inputs, info->num_outputs, info->num_params,
           info->num_states);
    for (int i = 0; i < cfg.nbatches; i++)
        printf(" %d", cfg.batches[i]);
    printf(", seed %" PRIu64 "\n", cfg.seed);

    /* the interface against the graph */
    if ((maxb == 0) != (g->batch == NULL) || (g->batch && maxb != g->max_batch))
        fail("info max_batch %d, graph %" PRId64, maxb, g->batch ? g->max_batch : 0);
    const Node **in_node = calloc((size_t)info->num_inputs + 1, sizeof *in_node);
    for (int i = 0; i < info->num_inputs; i++) {
        in_node[i] = ir_find_source(g, info->inputs[i].desc.name);
        if (!in_node[i] || in_node[i]->op != OP_INPUT)
            fatal("info input %s is not an input of the graph", info->inputs[i].desc.name);
        check_desc(&info->inputs[i], in_node[i], "input", maxb);
    }
    if (info->num_outputs != g->outputs.n)
        fail("info has %d outputs, the graph %d", info->num_outputs, g->outputs.n);
    for (int i = 0; i < info->num_outputs; i++) {
        const Node *n = graph_output(g, info->outputs[i].desc.name);
        if (!n)
            fatal("info output %s is not an output of the graph", info->outputs[i].desc.name);
        check_desc(&info->outputs[i], n, "output", maxb);
    }
    int gparams = 0;
    for (int i = 0; i < g->nodes.n; i++)
        gparams += g->nodes.v[i]->op == OP_PARAM;
    if (gparams != info->num_params)
        fail("info has %d params, the graph %d", info->num_params, gparams);

    MODEL *m = MODEL_FN(_create)(cfg.seed);
    if (!m)
        fatal("%s_create failed", info->name);
    unsigned char *base = (unsigned char *)m;
    if ((void *)MODEL_FN(_params)(m) != (void *)(base + info->params_offset))
        fail("NAME_params is not the instance base + params_offset");
    rng_state = cfg.seed * 0x2545F4914F6CDD1Du + 7;
    for (int i = 0; i < info->num_params; i++) {
        const dlrt_tensor_info *p = &info->params[i];
        const Node *n = ir_find_source(g, p->desc.name);
        if (!n || n->op != OP_PARAM)
            fatal("info param %s is not a parameter of the graph", p->desc.name);
        check_desc(p, n, "param", maxb);
        if (p->offset < info->params_offset ||
            p->offset + (size_t)count_at(p, maxb, maxb) * elem_size(p->desc.dtype) >
                info->params_offset + info->params_bytes)
            fatal("param %s lies outside the parameter array", p->desc.name);
    }
    if (!cfg.keep_params)
        fill_params(info, base);
    fill_states(info, base);

    int nfi = info->num_forward_inputs, nout = info->num_outputs;
    const void **inputs = calloc((size_t)nfi + 1, sizeof *inputs);
    void **outputs = calloc((size_t)nout + 1, sizeof *outputs);
    void **first = calloc((size_t)nout + 1, sizeof *first);
    unsigned char **in_copy = calloc((size_t)nfi + 1, sizeof *in_copy);
    RefTensor *values = calloc((size_t)g->nodes.n, sizeof *values);

    /* every batch size, then the first one again (the same bits) */
    for (int bi = 0; bi <= cfg.nbatches; bi++) {
        int batch = cfg.batches[bi < cfg.nbatches ? bi : 0];
        bool again = bi == cfg.nbatches;
        if (batch < 1 || (maxb > 0 && batch > maxb))
            fatal("batch %d is outside 1..%d", batch, maxb);
        rng_state = cfg.seed * 0x9E3779B97F4A7C15u + (uint64_t)batch;
        /* every input of the graph gets a value; forward takes some */
        for (int i = 0; i < info->num_inputs; i++) {
            const dlrt_tensor_info *t = &info->inputs[i];
            const Node *n = in_node[i];
            RefTensor *r = &values[n->id];
            ref_tensor_free(r);
            ref_tensor_alloc(r, n, maxb > 0 ? batch : 1);
            double lo, hi;
            input_range(g, t, n, &lo, &hi);
            int64_t c = count_at(t, maxb, batch);
            if (c != r->count)
                fatal("input %s: %" PRId64 " elements by the info, %" PRId64 " by the graph",
                      t->desc.name, c, r->count);
            size_t bytes = (size_t)c * elem_size(t->desc.dtype);
            unsigned char *buf = alloc_guarded(bytes);
            fill_random(buf, t->desc.dtype, c, lo, hi);
            for (int64_t k = 0; k < c; k++)
                r->v[k] = load_elem(buf, t->desc.dtype, k);
            int fi = -1;
            for (int k = 0; k < nfi; k++)
                if (info->forward_inputs[k] == i)
                    fi = k;
            if (fi < 0) {
                free(buf);
                continue;
            }
            inputs[fi] = buf;
            in_copy[fi] = malloc(bytes + 1);
            memcpy(in_copy[fi], buf, bytes);
        }
        for (int i = 0; i < info->num_params; i++) {
            const dlrt_tensor_info *p = &info->params[i];
            const Node *n = ir_find_source(g, p->desc.name);
            RefTensor *r = &values[n->id];
            ref_tensor_free(r);
            ref_tensor_alloc(r, n, 1);
            for (int64_t k = 0; k < r->count; k++)
                r->v[k] = load_elem(base + p->offset, p->desc.dtype, k);
        }
        for (int i = 0; i < info->num_states; i++) {
            const dlrt_tensor_info *st = &info->states[i];
            const Node *n = ir_find_source(g, st->desc.name);
            if (!n || n->op != OP_STATE)
                fatal("info state %s is not a state of the graph", st->desc.name);
            RefTensor *r = &values[n->id];
            ref_tensor_free(r);
            ref_tensor_alloc(r, n, 1);
            for (int64_t k = 0; k < r->count; k++)
                r->v[k] = load_elem(base + st->offset, st->desc.dtype, k);
        }
        for (int i = 0; i < nout; i++) {
            const dlrt_tensor_info *t = &info->outputs[i];
            outputs[i] = alloc_guarded((size_t)count_at(t, maxb, batch) * elem_size(t->desc.dtype));
        }

        int rc = info->forward(m, maxb > 0 ? batch : 1, inputs, outputs);
        if (rc != 0)
            fail("forward at batch %d returned %d (%s)", batch, rc, dlrt_strerror(rc));

        char err[512];
        if (!ref_eval(g, maxb > 0 ? batch : 1, values, false, err, sizeof err))
            fatal("reference: %s", err);

        for (int i = 0; i < nfi; i++) {
            const dlrt_tensor_info *t = &info->inputs[info->forward_inputs[i]];
            size_t bytes = (size_t)count_at(t, maxb, batch) * elem_size(t->desc.dtype);
            if (memcmp(inputs[i], in_copy[i], bytes) != 0 || !guard_intact(inputs[i], bytes))
                fail("forward at batch %d wrote to input %s", batch, t->desc.name);
        }
        for (int i = 0; i < nout && rc == 0; i++) {
            const dlrt_tensor_info *t = &info->outputs[i];
            size_t bytes = (size_t)count_at(t, maxb, batch) * elem_size(t->desc.dtype);
            if (!guard_intact(outputs[i], bytes))
                fail("forward at batch %d wrote past the end of output %s", batch, t->desc.name);
            const Node *n = graph_output(g, t->desc.name);
            if (again) {
                if (memcmp(first[i], outputs[i], bytes) != 0)
                    fail("output %s at batch %d differs from the first run's bits", t->desc.name,
                         batch);
            } else {
                compare(t->desc.name, outputs[i], t->desc.dtype, &values[n->id], batch, NULL);
                if (dump)
                    level_dump(dump, batch, i, t->desc.dtype, values[n->id].count, outputs[i]);
                if (against)
                    level_compare(against, vs, batch, i, t->desc.name, t->desc.dtype, outputs[i],
                                  &values[n->id]);
            }
        }
        /* a batch outside 1..max is refused and changes nothing (the buffers
         * are sized for this batch: a model that accepted max + 1 would
         * overrun them, which the guards or ASan report) */
        for (int i = 0; bi == 0 && i < nout; i++) {
            const dlrt_tensor_info *t = &info->outputs[i];
            size_t bytes = (size_t)count_at(t, maxb, batch) * elem_size(t->desc.dtype);
            first[i] = malloc(bytes + 1);
            memcpy(first[i], outputs[i], bytes);
        }
        for (int k = 0; bi == 0 && rc == 0 && maxb > 0 && k < 2; k++) {
            int wrong = k == 0 ? 0 : maxb + 1;
            int rc2 = info->forward(m, wrong, inputs, outputs);
            if (rc2 != DLRT_EINVAL)
                fail("forward with batch %d returned %d, want DLRT_EINVAL", wrong, rc2);
        }
        for (int i = 0; bi == 0 && rc == 0 && i < nout; i++) {
            const dlrt_tensor_info *t = &info->outputs[i];
            size_t bytes = (size_t)count_at(t, maxb, batch) * elem_size(t->desc.dtype);
            if (memcmp(first[i], outputs[i], bytes) != 0 || !guard_intact(outputs[i], bytes))
                fail("a refused forward call changed output %s", t->desc.name);
        }
        for (int i = 0; i < nfi; i++) {
            free((void *)inputs[i]);
            free(in_copy[i]);
        }
        for (int i = 0; i < nout; i++)
            free(outputs[i]);
        if (again)
            printf("  batch %-4d repeated\n", batch);
    }

    if (dump && fclose(dump) != 0)
        fatal("cannot write %s", dump_path);
    if (against) {
        if (failures == 0 && fgetc(against) != EOF)
            fail("%s holds outputs this run did not compute", against_path);
        fclose(against);
    }

    hg = g;
    hin_node = in_node;
    check_instances(info);

    for (int i = 0; i < nout; i++)
        free(first[i]);
    ref_values_free(g, values);
    free(values);
    free(in_copy);
    free(first);
    free(outputs);
    free(inputs);
    free(in_node);
    MODEL_FN(_destroy)(m);
    diag_reset();
    arena_free(a);
    printf("%s: %s\n", info->name, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

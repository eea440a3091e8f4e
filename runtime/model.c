/*
 * Instances of compiled models: laying out and initializing the instance
 * block, checkpoints, and the batch check generated entry points share.
 *
 * dlrt_model_init validates the whole info against the block before it
 * writes a byte: every parameter and state must be a well-formed tensor of
 * a floating type lying inside its region of the block (parameters of
 * info->param_dtype in [params_offset, +params_bytes), states in
 * [states_offset, +states_bytes), both after the header), and its
 * initializer must accept its arguments (checked by a dry run on one
 * scalar). Only then is the block zeroed and filled: parameter i from
 * stream i of the seed, state j from stream num_params + j, so adding a
 * state never changes how the parameters start.
 *
 * Checkpoints hold the parameters in declaration order, then the states,
 * then the optimizer state, each under its own name, with "format",
 * "model", "step" and "lr" metadata. Loading relies on
 * dlrt_checkpoint_load's validate-first guarantee for the tensors; the
 * metadata callback only records what it sees (and rejects a file that
 * names another model), and step and lr are applied once the load has
 * succeeded. A file without optimizer state is retried without it, so
 * weights from elsewhere (or an inference-only build) load for training,
 * and a training checkpoint loads into an inference-only build; the retry
 * accepts no opt.* tensor when the model has optimizer state, so that a
 * damaged one is an error rather than silently zeroed moments.
 */
#include "dlrt.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define ALIGN 64

/* The bytes of a tensor described by d; 0 with *ok cleared when the desc
 * is malformed or its size overflows. */
static size_t tensor_bytes(const dlrt_tensor_desc *d, int *ok)
{
    size_t bytes = dlrt_dtype_size(d->dtype);
    if (bytes == 0 || d->rank < 0 || d->rank > DLRT_MAX_RANK) {
        *ok = 0;
        return 0;
    }
    for (int i = 0; i < d->rank; i++) {
        int64_t n = d->shape[i];
        if (n < 0 || (n > 0 && (uint64_t)n > SIZE_MAX / bytes)) {
            *ok = 0;
            return 0;
        }
        bytes *= (size_t)n;
    }
    return bytes;
}

/* Whether t is a floating tensor lying inside [lo, lo + len) of a block of
 * `total` bytes, aligned for its type, with an initializer that accepts its
 * arguments. */
static int is_float(dlrt_dtype t)
{
    return t == DLRT_F32 || t == DLRT_F64 || t == DLRT_F16 || t == DLRT_BF16;
}

static int tensor_ok(const dlrt_tensor_info *t, size_t lo, size_t len, size_t total)
{
    int ok = 1;
    size_t bytes = tensor_bytes(&t->desc, &ok);
    if (!ok || !t->desc.name || !is_float(t->desc.dtype))
        return 0;
    if (lo > total || len > total - lo || t->offset < lo || t->offset - lo > len ||
        bytes > len - (t->offset - lo) || t->offset % dlrt_dtype_size(t->desc.dtype) != 0)
        return 0;
    if (t->ninit_args < 0 || t->ninit_args > 4)
        return 0;
    int64_t fan_in, fan_out;
    if (dlrt_init_fans(t->desc.rank, t->desc.shape, &fan_in, &fan_out) != DLRT_OK)
        return 0;
    /* The same kind and arguments on a scalar: dlrt_init_tensor validates
     * them before it writes, so this tells whether the real call would. */
    double probe;
    return dlrt_init_tensor(&probe, DLRT_F64, 0, NULL, t->init, t->init_args, t->ninit_args, 0,
                            0) == DLRT_OK;
}

/* reduce_on_plateau's constants, when there are any, in their ranges */
static int plateau_ok(const dlrt_plateau *p)
{
    return !p || ((p->mode == 0 || p->mode == 1) &&
                  (p->threshold_mode == 0 || p->threshold_mode == 1) && p->factor >= 0 &&
                  p->factor < 1 && p->patience >= 0 && p->patience <= INT32_MAX &&
                  p->cooldown >= 0 && p->cooldown <= INT32_MAX && p->threshold >= 0 &&
                  p->min_lr >= 0 && p->eps >= 0);
}

static int info_ok(const dlrt_model_info *info)
{
    size_t total = info->state_bytes;
    if (total < sizeof(dlrt_instance) || info->num_params < 0 || info->num_states < 0 ||
        (info->num_params > 0 && !info->params) || (info->num_states > 0 && !info->states) ||
        !is_float(info->param_dtype))
        return 0;
    if (info->num_params > 0 && info->params_offset < sizeof(dlrt_instance))
        return 0;
    if (info->num_states > 0 && info->states_offset < sizeof(dlrt_instance))
        return 0;
    for (int i = 0; i < info->num_params; i++) {
        const dlrt_tensor_info *p = &info->params[i];
        if (p->desc.dtype != info->param_dtype ||
            !tensor_ok(p, info->params_offset, info->params_bytes, total))
            return 0;
    }
    for (int j = 0; j < info->num_states; j++)
        if (!tensor_ok(&info->states[j], info->states_offset, info->states_bytes, total))
            return 0;
    if (info->num_opt < 0 ||
        (info->num_opt > 0 && (!info->opt || info->opt_offset < sizeof(dlrt_instance))))
        return 0;
    for (int k = 0; k < info->num_opt; k++) {
        const dlrt_tensor_info *o = &info->opt[k];
        if (o->desc.dtype != info->param_dtype ||
            !tensor_ok(o, info->opt_offset, info->opt_bytes, total))
            return 0;
    }
    if (!plateau_ok(info->plateau))
        return 0;
    if (info->num_objectives < 0 || (info->num_objectives > 0 && !info->objectives))
        return 0;
    for (int k = 0; k < info->num_objectives; k++) {
        const dlrt_objective_info *o = &info->objectives[k];
        size_t at = o->counters;
        /* the first's counters are the header's; the others' a header-sized
         * record of their own, inside the block and clear of the header */
        if (k == 0 ? at != 0
                   : at % ALIGN != 0 || at < sizeof(dlrt_instance) || at > total ||
                         total - at < sizeof(dlrt_instance))
            return 0;
        if (!plateau_ok(o->plateau) || !isfinite(o->lr) || o->num_inputs < 0 ||
            o->num_inputs > info->num_inputs || (o->num_inputs > 0 && !o->inputs))
            return 0;
    }
    return isfinite(info->lr);
}

/* objective k's step, lr and plateau_* fields: the header's for the
 * first (and for a model without objectives), a record's for the others */
static dlrt_instance *counters(void *m, int k)
{
    const dlrt_model_info *info = ((dlrt_instance *)m)->info;
    return k == 0 ? m : (dlrt_instance *)((char *)m + info->objectives[k].counters);
}

static const dlrt_plateau *plateau_of(const dlrt_model_info *info, int k)
{
    return k == 0 ? info->plateau : info->objectives[k].plateau;
}

static void plateau_reset(dlrt_instance *h, const dlrt_plateau *p)
{
    h->plateau_best = p && p->mode == 1 ? -INFINITY : INFINITY;
    h->plateau_bad = 0;
    h->plateau_cooldown = 0;
}

static int init_tensor(char *base, const dlrt_tensor_info *t, uint64_t seed, uint64_t stream)
{
    return dlrt_init_tensor(base + t->offset, t->desc.dtype, t->desc.rank, t->desc.shape, t->init,
                            t->init_args, t->ninit_args, seed, stream);
}

int dlrt_model_init(const dlrt_model_info *info, void *mem, size_t size, uint64_t seed)
{
    if (!info || !mem || (uintptr_t)mem % ALIGN != 0 || size < info->state_bytes || !info_ok(info))
        return DLRT_EINVAL;
    char *base = mem;
    memset(base, 0, info->state_bytes);
    int rc = DLRT_OK;
    for (int i = 0; i < info->num_params && rc == DLRT_OK; i++)
        rc = init_tensor(base, &info->params[i], seed, (uint64_t)i);
    for (int j = 0; j < info->num_states && rc == DLRT_OK; j++)
        rc = init_tensor(base, &info->states[j], seed, (uint64_t)info->num_params + (uint64_t)j);
    if (rc != DLRT_OK) {
        /* info_ok vouched for every call; leave no half-made instance behind */
        memset(base, 0, info->state_bytes);
        return rc;
    }
    dlrt_instance *h = mem;
    h->info = info;
    h->seed = seed;
    h->step = 0;
    h->lr = info->lr;
    plateau_reset(h, info->plateau);
    h->owned = NULL;
    h->cpu_level = dlrt_cpu_level();
    for (int k = 1; k < info->num_objectives; k++) {
        dlrt_instance *o = counters(mem, k);
        o->lr = info->objectives[k].lr;
        plateau_reset(o, info->objectives[k].plateau);
    }
    return DLRT_OK;
}

void *dlrt_model_create(const dlrt_model_info *info, uint64_t seed)
{
    if (!info || info->state_bytes > SIZE_MAX - (ALIGN - 1))
        return NULL;
    size_t size = (info->state_bytes + (ALIGN - 1)) / ALIGN * ALIGN;
    if (size == 0)
        return NULL;
    void *mem = aligned_alloc(ALIGN, size);
    if (!mem)
        return NULL;
    if (dlrt_model_init(info, mem, size, seed) != DLRT_OK) {
        free(mem);
        return NULL;
    }
    ((dlrt_instance *)mem)->owned = mem;
    return mem;
}

/* The hooks of dlrt_model_set_grad_ready: a slot per instance that has
 * one, its 1-based index in the instance's header, so that the header
 * keeps its 64 bytes and generated code tests one int before calling. A
 * slot is claimed by compare-and-swap of its instance pointer; a header
 * whose slot names another instance (a copied block) calls nothing. */
static struct {
    void *m;
    dlrt_grad_ready_fn fn;
    void *ctx;
} hooks[DLRT_GRAD_HOOKS];

int dlrt_model_set_grad_ready(void *m, dlrt_grad_ready_fn fn, void *ctx)
{
    if (!m)
        return DLRT_EINVAL;
    dlrt_instance *h = m;
    int at = -1;
    for (int i = 0; i < DLRT_GRAD_HOOKS && at < 0; i++)
        if (__atomic_load_n(&hooks[i].m, __ATOMIC_ACQUIRE) == m)
            at = i;
    if (!fn) {
        h->grad_ready = 0;
        if (at >= 0) {
            hooks[at].fn = NULL;
            hooks[at].ctx = NULL;
            __atomic_store_n(&hooks[at].m, NULL, __ATOMIC_RELEASE);
        }
        return DLRT_OK;
    }
    for (int i = 0; i < DLRT_GRAD_HOOKS && at < 0; i++) {
        void *none = NULL;
        if (__atomic_compare_exchange_n(&hooks[i].m, &none, m, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            at = i;
    }
    if (at < 0)
        return dlrt_fail(DLRT_ENOMEM, "%d instances have a gradient hook already",
                         (int)DLRT_GRAD_HOOKS);
    hooks[at].fn = fn;
    hooks[at].ctx = ctx;
    h->grad_ready = at + 1;
    return DLRT_OK;
}

void dlrt_model_grad_ready(void *m, int64_t first, int64_t count, const void *grad)
{
    int32_t k = ((const dlrt_instance *)m)->grad_ready - 1;
    if (k >= 0 && k < DLRT_GRAD_HOOKS && hooks[k].m == m && hooks[k].fn)
        hooks[k].fn(hooks[k].ctx, m, first, count, grad);
}

void dlrt_model_destroy(void *m)
{
    if (m && ((dlrt_instance *)m)->grad_ready)
        dlrt_model_set_grad_ready(m, NULL, NULL);
    if (m && ((dlrt_instance *)m)->owned == m)
        free(m);
}

/* The descs and data pointers of every parameter, then every state, then
 * (with opt) every optimizer state tensor of the instance m; *n counts
 * them. DLRT_ENOMEM when out of memory. */
static int gather(const dlrt_instance *h, int opt, dlrt_tensor_desc **descs, void ***data, int *n)
{
    const dlrt_model_info *info = h->info;
    const dlrt_tensor_info *groups[3] = {info->params, info->states, info->opt};
    int counts[3] = {info->num_params, info->num_states, opt ? info->num_opt : 0};
    size_t total = (size_t)counts[0] + (size_t)counts[1] + (size_t)counts[2];
    *descs = malloc((total ? total : 1) * sizeof **descs);
    *data = malloc((total ? total : 1) * sizeof **data);
    if (!*descs || !*data) {
        free(*descs);
        free(*data);
        return DLRT_ENOMEM;
    }
    char *base = (char *)h;
    int k = 0;
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < counts[g]; i++, k++) {
            (*descs)[k] = groups[g][i].desc;
            (*data)[k] = base + groups[g][i].offset;
        }
    *n = k;
    return DLRT_OK;
}

int dlrt_model_save(const void *m, const char *path)
{
    if (!m || !path)
        return DLRT_EINVAL;
    const dlrt_instance *h = m;
    if (!h->info || !h->info->name)
        return DLRT_EINVAL;
    dlrt_tensor_desc *descs;
    void **data;
    int n;
    int rc = gather(h, 1, &descs, &data, &n);
    if (rc != DLRT_OK)
        return rc;
    /* each objective's counters, named "step", "lr", ... for a single
     * unnamed one and "step.OBJ", "lr.OBJ", ... for objective OBJ */
    int nobj = h->info->num_objectives > 0 ? h->info->num_objectives : 1;
    enum { PER = 5, LEN = 48 };
    const char **keys = malloc(sizeof *keys * (size_t)(2 + PER * nobj));
    const char **values = malloc(sizeof *values * (size_t)(2 + PER * nobj));
    char(*text)[LEN] = malloc(sizeof *text * (size_t)(2 * PER * nobj));
    int nkeys = 0;
    if (!keys || !values || !text) {
        rc = dlrt_fail(DLRT_ENOMEM, "out of memory");
        goto done;
    }
    keys[nkeys] = "format", values[nkeys++] = "dlc";
    keys[nkeys] = "model", values[nkeys++] = h->info->name;
    for (int k = 0; k < nobj; k++) {
        const dlrt_instance *c = counters((void *)m, k);
        const char *name = h->info->num_objectives > 0 ? h->info->objectives[k].name : NULL;
        static const char *const base[PER] = {"step", "lr", "plateau_best", "plateau_bad",
                                              "plateau_cooldown"};
        char(*kt)[LEN] = text + 2 * PER * k, (*vt)[LEN] = kt + PER;
        snprintf(vt[0], LEN, "%" PRId64, c->step);
        snprintf(vt[1], LEN, "%.17g", c->lr);
        snprintf(vt[2], LEN, "%.17g", c->plateau_best);
        snprintf(vt[3], LEN, "%" PRId32, c->plateau_bad);
        snprintf(vt[4], LEN, "%" PRId32, c->plateau_cooldown);
        int n_here = plateau_of(h->info, k) ? PER : 2;
        for (int j = 0; j < n_here; j++) {
            if (name)
                snprintf(kt[j], LEN, "%s.%.30s", base[j], name);
            else
                snprintf(kt[j], LEN, "%s", base[j]);
            keys[nkeys] = kt[j], values[nkeys++] = vt[j];
        }
    }
    rc = dlrt_checkpoint_save(path, descs, (const void *const *)data, n, keys, values, nkeys);
done:
    free(keys);
    free(values);
    free(text);
    free(descs);
    free(data);
    return rc;
}

/* What the metadata of a checkpoint being loaded said about one
 * objective's counters. */
typedef struct {
    int has_step, has_lr;
    int64_t step;
    double lr;
    int has_plateau; /* bits: 1 best, 2 bad, 4 cooldown */
    double plateau_best;
    int32_t plateau_bad, plateau_cooldown;
} obj_meta;

/* ... and about the model. */
typedef struct {
    const dlrt_model_info *info;
    obj_meta *obj; /* by objective (one for a model without) */
} load_meta;

/* A decimal int64 >= 0, nothing else: 0, or DLRT_EFORMAT. */
static int parse_count(const char *value, size_t value_len, int64_t *out)
{
    if (value_len == 0 || value_len > 19 || value[0] < '0' || value[0] > '9' ||
        strlen(value) != value_len)
        return DLRT_EFORMAT;
    char *end;
    errno = 0;
    long long s = strtoll(value, &end, 10);
    if (errno || *end)
        return DLRT_EFORMAT;
    *out = (int64_t)s;
    return 0;
}

static int key_is(const char *key, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(key, want, len) == 0;
}

/* The objective a counter's key names, its base name (step, lr, ...)
 * left in *base: "step" for a single unnamed objective, "step.OBJ" for
 * objective OBJ; -1 for a key of no objective of the model. */
static int key_objective(const dlrt_model_info *info, const char *key, size_t len, char *base,
                         size_t size)
{
    const char *dot = memchr(key, '.', len);
    size_t blen = dot ? (size_t)(dot - key) : len;
    if (blen >= size)
        return -1;
    memcpy(base, key, blen);
    base[blen] = 0;
    int nobj = info->num_objectives;
    if (!dot)
        return nobj <= 1 && (nobj == 0 || !info->objectives[0].name) ? 0 : -1;
    for (int k = 0; k < nobj; k++) {
        const char *name = info->objectives[k].name;
        if (name && key_is(dot + 1, len - blen - 1, name))
            return k;
    }
    return -1;
}

static int on_meta(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len)
{
    load_meta *lm = ctx;
    const char *model = lm->info->name;
    if (key_is(key, key_len, "model")) {
        if (value_len != strlen(model) || memcmp(value, model, value_len) != 0)
            return dlrt_fail(DLRT_EMISMATCH, "a checkpoint of model '%.*s', not '%s'",
                             (int)(value_len < 64 ? value_len : 64), value, model);
        return 0;
    }
    char base[24];
    int k = key_objective(lm->info, key, key_len, base, sizeof base);
    if (k < 0)
        return 0;
    obj_meta *om = &lm->obj[k];
    size_t blen = strlen(base);
    if (key_is(base, blen, "step")) {
        if (parse_count(value, value_len, &om->step) != 0)
            return DLRT_EFORMAT;
        om->has_step = 1;
    } else if (key_is(base, blen, "plateau_bad") || key_is(base, blen, "plateau_cooldown")) {
        int64_t v;
        if (parse_count(value, value_len, &v) != 0 || v > INT32_MAX)
            return DLRT_EFORMAT;
        int bad = key_is(base, blen, "plateau_bad");
        *(bad ? &om->plateau_bad : &om->plateau_cooldown) = (int32_t)v;
        om->has_plateau |= bad ? 2 : 4;
    } else if (key_is(base, blen, "plateau_best")) {
        /* "inf" and "-inf" before the first report */
        char *end;
        if (value_len == 0 || strlen(value) != value_len)
            return DLRT_EFORMAT;
        double v = strtod(value, &end);
        if (*end || isnan(v))
            return DLRT_EFORMAT;
        om->has_plateau |= 1;
        om->plateau_best = v;
    } else if (key_is(base, blen, "lr")) {
        char *end;
        if (value_len == 0 || strlen(value) != value_len)
            return DLRT_EFORMAT;
        double v = strtod(value, &end);
        if (*end || !isfinite(v))
            return DLRT_EFORMAT;
        om->has_lr = 1;
        om->lr = v;
    }
    return 0;
}

int dlrt_model_load_ex(void *m, const char *path, unsigned *status)
{
    if (status)
        *status = 0;
    if (!m || !path)
        return DLRT_EINVAL;
    dlrt_instance *h = m;
    const dlrt_model_info *info = h->info;
    if (!info || !info->name)
        return DLRT_EINVAL;
    dlrt_tensor_desc *descs;
    void **data;
    int n;
    int nobj = info->num_objectives > 0 ? info->num_objectives : 1;
    obj_meta *om = calloc((size_t)nobj, sizeof *om);
    if (!om)
        return dlrt_fail(DLRT_ENOMEM, "out of memory");
    load_meta lm = {.info = info, .obj = om};
    /* with the optimizer state first; then, if the file has none (or the
     * model has no room for it), without */
    int rc = gather(h, 1, &descs, &data, &n);
    if (rc == DLRT_OK) {
        rc = dlrt_checkpoint_load(path, descs, data, n, DLRT_CKPT_NARROW, on_meta, &lm);
        free(descs);
        free(data);
    }
    int with_opt = rc == DLRT_OK;
    if (rc == DLRT_EMISMATCH) {
        /* Retried without the optimizer state: a model that has some
         * requires the file to have no opt.* tensor at all (any left is an
         * extra tensor), so damaged optimizer state fails with the first
         * attempt's message, which names the tensor. */
        char first[512];
        snprintf(first, sizeof first, "%s", dlrt_last_error());
        unsigned flags = DLRT_CKPT_NARROW | (info->num_opt > 0 ? 0 : DLRT_CKPT_SKIP_OPT);
        memset(om, 0, sizeof *om * (size_t)nobj);
        int rc2 = gather(h, 0, &descs, &data, &n);
        if (rc2 == DLRT_OK) {
            rc2 = dlrt_checkpoint_load(path, descs, data, n, flags, on_meta, &lm);
            free(descs);
            free(data);
        }
        if (rc2 == DLRT_EMISMATCH)
            dlrt_fail(rc2, "%s", first);
        rc = rc2;
    }
    if (rc != DLRT_OK) {
        free(om);
        return rc;
    }
    if (!with_opt && info->opt_bytes > 0) {
        memset((char *)h + info->opt_offset, 0, info->opt_bytes);
        if (status)
            *status = DLRT_LOAD_OPT_ZEROED;
    }
    if (info->grads_bytes > 0)
        memset((char *)h + info->grads_offset, 0, info->grads_bytes);
    for (int k = 0; k < nobj; k++) {
        dlrt_instance *c = counters(m, k);
        if (om[k].has_step)
            c->step = om[k].step;
        if (om[k].has_lr)
            c->lr = om[k].lr;
        if (om[k].has_plateau == 7) {
            c->plateau_best = om[k].plateau_best;
            c->plateau_bad = om[k].plateau_bad;
            c->plateau_cooldown = om[k].plateau_cooldown;
        } else {
            plateau_reset(c, plateau_of(info, k));
        }
    }
    free(om);
    return DLRT_OK;
}

int dlrt_model_report_metric(void *m, double metric)
{
    return dlrt_model_report_metric_objective(m, 0, metric);
}

int dlrt_model_report_metric_objective(void *m, int objective, double metric)
{
    if (!m)
        return DLRT_EINVAL;
    const dlrt_model_info *info = ((dlrt_instance *)m)->info;
    if (!info || objective < 0 || (objective > 0 && objective >= info->num_objectives))
        return DLRT_EINVAL;
    if (!isfinite(metric))
        return DLRT_ENONFINITE;
    dlrt_instance *h = counters(m, objective);
    const dlrt_plateau *p = plateau_of(info, objective);
    if (!p)
        return DLRT_OK;
    double best = h->plateau_best;
    int better;
    if (p->mode == 0)
        better = p->threshold_mode == 0 ? metric < best * (1 - p->threshold)
                                        : metric < best - p->threshold;
    else
        better = p->threshold_mode == 0 ? metric > best * (1 + p->threshold)
                                        : metric > best + p->threshold;
    if (better) {
        h->plateau_best = metric;
        h->plateau_bad = 0;
    } else if (h->plateau_bad < INT32_MAX) {
        h->plateau_bad++;
    }
    if (h->plateau_cooldown > 0) {
        h->plateau_cooldown--;
        h->plateau_bad = 0;
    }
    if (h->plateau_bad > p->patience) {
        double lr = fmax(h->lr * p->factor, p->min_lr);
        if (h->lr - lr > p->eps)
            h->lr = lr;
        h->plateau_cooldown = (int32_t)p->cooldown;
        h->plateau_bad = 0;
    }
    return DLRT_OK;
}

int dlrt_model_load(void *m, const char *path)
{
    return dlrt_model_load_ex(m, path, NULL);
}

int64_t dlrt_tensor_count(const dlrt_tensor_info *t, int max_batch, int batch)
{
    int64_t c = 1;
    for (int i = 0; i < t->desc.rank; i++) {
        int64_t d = t->desc.shape[i];
        if (t->batch_dims >> i & 1u)
            d = d / max_batch * batch;
        c *= d;
    }
    return c;
}

int dlrt_model_check_batch(const dlrt_model_info *info, int batch)
{
    if (!info || info->max_batch < 0)
        return DLRT_EINVAL;
    if (info->max_batch == 0)
        return batch == 0 || batch == 1 ? DLRT_OK : DLRT_EINVAL;
    return batch >= 1 && batch <= info->max_batch ? DLRT_OK : DLRT_EINVAL;
}

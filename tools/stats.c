/*
 * --stats and --stats=json. The text form streams (a slow pass shows up
 * while it runs); the JSON form is one object, so it gathers the timings
 * and writes everything at the end:
 *   {"model": ..., "times_ms": [{"step": "shape", "ms": 0.4, "peak_mb": 9.1},
 *    ..., {"step": "llvm-opt", "emit": "obj", "ms": 311.9, "peak_mb": 85.8}, ...],
 *    "peak_mb": 85.8, "kernels": {"graph": 604, "emitted": 107},
 *    "generated_products": {"shapes": "784x256 256x10", "count": 2, "max_rows": 12},
 *    "nodes": N, "ops": {"matmul": {"count": 2, "fused": 0}, ...}, (loop bodies' included)
 *    "functions": [{"name": "forward", "steps": ..., "arena_bytes": ...,
 *                   "naive_bytes": ..., "lower_bound_bytes": ...,
 *                   "scratch_buffers": ..., "scratch_bytes": ...}, ...],
 *    "work": {"batch": MAX, "functions": [{"name": "forward", "flops": ...,
 *             "bytes": ..., "flops_b1": ..., "bytes_b1": ..., "steps": [...]},
 *             ..., {"name": "apply_gradients", ...}]}, (codegen/cost.c)
 *    "instance": {"bytes": ..., "params": ..., ...}}
 * Every objective has its evaluate, compute_gradients and apply_gradients
 * there, named as the generated functions: evaluate_disc for `as disc`.
 */
#include <inttypes.h>
#include <string.h>
#include <sys/resource.h>

#include "stats.h"

/* The peak resident memory of the process so far (one getrusage call). */
static double peak_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

void stats_time(Stats *s, const char *what, const char *detail, double ms)
{
    if (s->mode == STATS_OFF)
        return;
    double peak = peak_mb();
    if (s->mode == STATS_TEXT) {
        fprintf(stderr, "%-10s %9.3f ms  peak %7.1f MB", what, ms, peak);
        fprintf(stderr, detail ? " (%s)\n" : "\n", detail);
    } else if (s->ntimes < STATS_MAX_TIMES) {
        s->times[s->ntimes].what = what;
        s->times[s->ntimes].detail = detail;
        s->times[s->ntimes].ms = ms;
        s->times[s->ntimes].peak_mb = peak;
        s->ntimes++;
    }
}

void stats_codegen(Stats *s, const char *kind, const CgStats *cg)
{
    stats_time(s, "llvm-ir", kind, cg->build_ms);
    stats_time(s, "dedup", kind, cg->dedup_ms);
    stats_time(s, "llvm-opt", kind, cg->opt_ms);
    stats_time(s, "llvm-emit", kind, cg->output_ms);
    s->cg = *cg;
    s->have_cg = true;
    if (s->mode == STATS_TEXT)
    {
        fprintf(stderr, "kernels: %d for the plan steps, %d emitted (identical ones merged)\n",
                cg->graph_kernels, cg->kernels);
        if (cg->gemms)
            fprintf(stderr,
                    "products: %d generated in code (K x N: %s), used up to %" PRId64
                    " rows%s, BLAS above\n",
                    cg->gemms, cg->gemm_shapes, cg->gemm_rows,
                    strchr(cg->gemm_shapes, '*') ? " (* at any number)" : "");
    }
}

/* Adds g's nodes and, recursively, its loop bodies' to the per-op counts;
 * returns how many it added. */
static int op_counts_add(const Graph *g, int *count, int *fused)
{
    int total = g->nodes.n;
    for (int i = 0; i < g->nodes.n; i++) {
        count[g->nodes.v[i]->op]++;
        fused[g->nodes.v[i]->op] += g->nodes.v[i]->fused != NULL;
        if (g->nodes.v[i]->body)
            total += op_counts_add(g->nodes.v[i]->body, count, fused);
    }
    return total;
}

/* The op counts of the model with its loop bodies; the number of nodes. */
static int op_counts(const Graph *g, int *count, int *fused)
{
    for (int k = 0; k < OP_COUNT; k++)
        count[k] = fused[k] = 0;
    return op_counts_add(g, count, fused);
}

/* ---- work: flops and bytes per step (codegen/cost.c) ---- */

typedef struct {
    const char *name;
    const MemPlan *plan; /* NULL: apply_gradients */
    const OptPlan *opt;  /* apply_gradients' optimizer recipe */
    const char *step;    /* apply_gradients: its objective's train_step */
} WorkFn;

/* name, or name_OBJ for a named objective (the generated function's
 * suffix, codegen/emit.c) */
static const char *obj_fn(const Graph *g, const char *name, const CgObjective *o)
{
    return o->train->name ? arena_printf(g->arena, "%s_%s", name, o->train->name) : name;
}

/* The generated functions whose work stats reports, in the order of the
 * header: forward, then each objective's evaluate, compute_gradients and
 * apply_gradients; returns how many (*f in g's arena). */
static int work_fns(const Graph *g, const CgPlans *plans, WorkFn **f)
{
    int n = 0;
    *f = arena_alloc(g->arena, sizeof **f * (size_t)(1 + 3 * plans->nobj));
    (*f)[n++] = (WorkFn){"forward", plans->forward, NULL, NULL};
    for (int k = 0; k < plans->nobj; k++) {
        const CgObjective *o = &plans->obj[k];
        (*f)[n++] = (WorkFn){obj_fn(g, "evaluate", o), o->evaluate, NULL, NULL};
        (*f)[n++] = (WorkFn){obj_fn(g, "compute_gradients", o), o->plan, NULL, NULL};
        (*f)[n++] = (WorkFn){obj_fn(g, "apply_gradients", o), NULL, o->opt,
                             obj_fn(g, "train_step", o)};
    }
    return n;
}

/* A function's cost per step at batch b (apply_gradients: one step) and
 * its total; per is NULL for apply_gradients. */
static CgCost work_of(const Graph *g, const WorkFn *f, int64_t b, CgCost **per)
{
    if (!f->plan) {
        *per = NULL;
        return cg_apply_cost(g, f->opt);
    }
    CgCost *c = arena_alloc(g->arena, sizeof *c * (size_t)(f->plan->nsteps + 1));
    cg_plan_cost(g, f->plan, b, c);
    CgCost t = {0, 0};
    for (int i = 0; i < f->plan->nsteps; i++) {
        t.flops += c[i].flops;
        t.bytes += c[i].bytes;
    }
    *per = c;
    return t;
}

static double intensity(CgCost c)
{
    return c.bytes > 0 ? (double)c.flops / (double)c.bytes : 0;
}

static void work_text(const Graph *g, const CgPlans *plans)
{
    WorkFn *fns;
    int nf = work_fns(g, plans, &fns);
    int64_t mb = ir_max_batch(g);
    fprintf(stderr,
            "work at batch %" PRId64 " (flops, a multiply-add is 2; bytes moved, "
            "operands and result once):\n",
            mb);
    CgCost train = {0, 0}, train1 = {0, 0};
    for (int k = 0; k < nf; k++) {
        CgCost *per, *per1;
        CgCost t = work_of(g, &fns[k], mb, &per);
        CgCost t1 = work_of(g, &fns[k], 1, &per1);
        fprintf(stderr, "  %s:\n", fns[k].name);
        for (int i = 0; per && i < fns[k].plan->nsteps; i++) {
            const Node *x = fns[k].plan->steps[i];
            if (per[i].flops == 0 && per[i].bytes == 0)
                continue;
            char sh[256];
            fprintf(stderr,
                    "    %%%-5d %-20s %s%-20s %14" PRId64 " flops %12" PRId64
                    " bytes %8.2f flops/byte\n",
                    x->id, op_info[x->op].text, ir_dtype_name(x->dtype),
                    ir_shape_str(&x->shape, g->batch, sh, sizeof sh), per[i].flops, per[i].bytes,
                    intensity(per[i]));
        }
        fprintf(stderr, "  %s total: %" PRId64 " flops, %" PRId64 " bytes, %.2f flops/byte",
                fns[k].name, t.flops, t.bytes, intensity(t));
        if (g->batch && fns[k].plan)
            fprintf(stderr, " (at batch 1: %" PRId64 " flops, %" PRId64 " bytes)", t1.flops,
                    t1.bytes);
        fputc('\n', stderr);
        /* train_step: compute_gradients (the function before) + apply_gradients */
        if (fns[k].step) {
            train.flops += t.flops, train.bytes += t.bytes;
            train1.flops += t1.flops, train1.bytes += t1.bytes;
            fprintf(stderr, "  %s total: %" PRId64 " flops, %" PRId64 " bytes", fns[k].step,
                    train.flops, train.bytes);
            if (g->batch)
                fprintf(stderr, " (at batch 1: %" PRId64 " flops, %" PRId64 " bytes)",
                        train1.flops, train1.bytes);
            fputc('\n', stderr);
        }
        train = t, train1 = t1;
    }
}

/* "work": {"batch": MAX, "functions": [{"name": ..., "flops": ...,
 * "bytes": ..., "flops_b1": ..., "bytes_b1": ..., "steps": [{"id": ...,
 * "op": ..., "flops": ..., "bytes": ...}, ...]}, ...]} */
static void work_json(FILE *f, const Graph *g, const CgPlans *plans)
{
    WorkFn *fns;
    int nf = work_fns(g, plans, &fns);
    int64_t mb = ir_max_batch(g);
    fprintf(f, ",\n  \"work\": {\"batch\": %" PRId64 ", \"functions\": [", mb);
    for (int k = 0; k < nf; k++) {
        CgCost *per, *per1;
        CgCost t = work_of(g, &fns[k], mb, &per);
        CgCost t1 = work_of(g, &fns[k], 1, &per1);
        fprintf(f,
                "%s\n    {\"name\": \"%s\", \"flops\": %" PRId64 ", \"bytes\": %" PRId64
                ", \"flops_b1\": %" PRId64 ", \"bytes_b1\": %" PRId64 ", \"steps\": [",
                k ? "," : "", fns[k].name, t.flops, t.bytes, t1.flops, t1.bytes);
        const char *sep = "";
        for (int i = 0; per && i < fns[k].plan->nsteps; i++) {
            if (per[i].flops == 0 && per[i].bytes == 0)
                continue;
            const Node *x = fns[k].plan->steps[i];
            fprintf(
                f, "%s{\"id\": %d, \"op\": \"%s\", \"flops\": %" PRId64 ", \"bytes\": %" PRId64 "}",
                sep, x->id, op_info[x->op].text, per[i].flops, per[i].bytes);
            sep = ", ";
        }
        fputs("]}", f);
    }
    fputs("\n  ]}", f);
}

void stats_plans(const Stats *s, const Graph *g, const CgPlans *plans, const Layout *layout)
{
    if (s->mode != STATS_TEXT)
        return;
    int count[OP_COUNT], fused[OP_COUNT];
    fprintf(stderr, "ops: %d nodes\n", op_counts(g, count, fused));
    for (int k = 0; k < OP_COUNT; k++)
        if (count[k])
            fprintf(stderr, "  %-22s %6d  (%d fused)\n", op_info[k].text, count[k], fused[k]);
    pass_memplan_print_stats(stderr, g, plans->forward, "forward");
    for (int k = 0; k < plans->nobj; k++) {
        const CgObjective *o = &plans->obj[k];
        pass_memplan_print_stats(stderr, g, o->evaluate, obj_fn(g, "evaluate", o));
        pass_memplan_print_stats(stderr, g, o->plan, obj_fn(g, "compute_gradients", o));
    }
    fprintf(stderr,
            "instance: %lld bytes (params %lld, grads %lld, optimizer %lld, states %lld, "
            "arena %lld)\n",
            (long long)layout->state_bytes, (long long)layout->params_bytes,
            (long long)layout->grads_bytes, (long long)layout->opt_bytes,
            (long long)layout->states_bytes, (long long)layout->arena_bytes);
    work_text(g, plans);
}

/* A JSON string: the names here are identifiers and op names, but quote
 * what JSON requires anyway. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_plan(FILE *f, const char *name, const MemPlan *p, const char *sep)
{
    int nscratch = 0;
    int64_t scratch = 0;
    for (int i = 0; i < p->nsteps; i++) {
        const Node *x = p->steps[i];
        if (p->scratch_bytes[x->id] > 0 && p->scratch_offset[x->id] >= 0) {
            nscratch++;
            scratch += p->scratch_bytes[x->id];
        }
    }
    fprintf(f,
            "%s\n    {\"name\": \"%s\", \"steps\": %d, \"arena_bytes\": %" PRId64
            ", \"naive_bytes\": %" PRId64 ", \"lower_bound_bytes\": %" PRId64
            ", \"scratch_buffers\": %d, \"scratch_bytes\": %" PRId64 "}",
            sep, name, p->nsteps, p->arena_bytes, p->naive_bytes, p->peak_bytes, nscratch, scratch);
}

void stats_finish(const Stats *s, const Graph *g, const CgPlans *plans, const Layout *layout)
{
    if (s->mode != STATS_JSON)
        return;
    FILE *f = stderr;
    fputs("{\n  \"model\": ", f);
    json_string(f, g->name ? g->name : "");
    fputs(",\n  \"times_ms\": [", f);
    for (int i = 0; i < s->ntimes; i++) {
        fprintf(f, "%s\n    {\"step\": ", i ? "," : "");
        json_string(f, s->times[i].what);
        if (s->times[i].detail) {
            fputs(", \"emit\": ", f);
            json_string(f, s->times[i].detail);
        }
        fprintf(f, ", \"ms\": %.3f, \"peak_mb\": %.1f}", s->times[i].ms, s->times[i].peak_mb);
    }
    fprintf(f, "\n  ],\n  \"peak_mb\": %.1f", peak_mb());
    if (s->have_cg)
    {
        fprintf(f, ",\n  \"kernels\": {\"graph\": %d, \"emitted\": %d}", s->cg.graph_kernels,
                s->cg.kernels);
        fprintf(f, ",\n  \"generated_products\": {\"shapes\": ");
        json_string(f, s->cg.gemm_shapes);
        fprintf(f, ", \"count\": %d, \"max_rows\": %" PRId64 "}", s->cg.gemms, s->cg.gemm_rows);
    }
    int count[OP_COUNT], fused[OP_COUNT];
    fprintf(f, ",\n  \"nodes\": %d,\n  \"ops\": {", op_counts(g, count, fused));
    const char *sep = "";
    for (int k = 0; k < OP_COUNT; k++)
        if (count[k]) {
            fprintf(f, "%s\n    ", sep);
            json_string(f, op_info[k].text);
            fprintf(f, ": {\"count\": %d, \"fused\": %d}", count[k], fused[k]);
            sep = ",";
        }
    fputs("\n  },\n  \"functions\": [", f);
    json_plan(f, "forward", plans->forward, "");
    for (int k = 0; k < plans->nobj; k++) {
        const CgObjective *o = &plans->obj[k];
        json_plan(f, obj_fn(g, "evaluate", o), o->evaluate, ",");
        json_plan(f, obj_fn(g, "compute_gradients", o), o->plan, ",");
    }
    fputs("\n  ]", f);
    work_json(f, g, plans);
    fprintf(f,
            ",\n  \"instance\": {\"bytes\": %" PRId64 ", \"params\": %" PRId64
            ", \"grads\": %" PRId64 ", \"optimizer\": %" PRId64 ", \"states\": %" PRId64
            ", \"arena\": %" PRId64 "}\n}\n",
            layout->state_bytes, layout->params_bytes, layout->grads_bytes, layout->opt_bytes,
            layout->states_bytes, layout->arena_bytes);
}

/*
 * The dlc driver: parses the command line, runs the front end and the
 * pass pipeline, and writes what --emit asks for. Exit status: 0 success,
 * 1 errors in the input model, 2 misuse of the command line or I/O.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "codegen.h"
#include "diag.h"
#include "frontend.h"
#include "ir.h"
#include "output.h"
#include "passes.h"
#include "plans.h"
#include "stats.h"

typedef struct {
    const char *name;
    bool (*run)(Graph *g);
    bool on_request; /* runs only when --dump-ir names it (see below) */
} Pass;

static bool run_simplify(Graph *g)
{
    pass_simplify(g);
    return true;
}
static bool run_fuse(Graph *g)
{
    pass_fuse(g);
    return true;
}

/* The pipeline, in order. "lower" (the front end) comes before all.
 * Autodiff builds the training step's gradients; with --inference-only it
 * runs only when --dump-ir=autodiff asks to see it. */
static const Pass pipeline[] = {
    {"shape", pass_shape, false},
    {"autodiff", pass_autodiff, true},
    {"simplify", run_simplify, false},
    {"fuse", run_fuse, false},
};

static void dump(const char *list, const char *when, const char *pass, const Graph *g)
{
    if (cli_pass_listed(list, pass)) {
        fprintf(stderr, "# IR %s %s\n", when, pass);
        ir_print(stderr, g);
    }
}

/* All of standard input, NUL-terminated; NULL on a read error. */
static char *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, stdin);
        if (ferror(stdin)) {
            free(buf);
            return NULL;
        }
        if (feof(stdin))
            break;
        char *more = realloc(buf, cap *= 2);
        if (!more)
            free(buf);
        buf = more;
    }
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The input as a graph: a .dl file parsed, then lowered (each timed), or
 * textual IR read. */
static Graph *load(Arena *a, const Options *o, Stats *st)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool from_stdin = strcmp(o->input, "-") == 0;
    FePrograms progs;
    bool parsed;
    if (!o->input_ir && !from_stdin) {
        parsed = fe_parse_file(a, o->input, &progs);
    } else {
        size_t len;
        char *text = from_stdin ? read_stdin(&len) : read_file(o->input, &len);
        if (!text) {
            fprintf(stderr, "dlc: error: cannot read '%s': %s\n", o->input, strerror(errno));
            exit(EXIT_USAGE);
        }
        const char *name = from_stdin ? "<stdin>" : o->input;
        if (o->input_ir) {
            Graph *g = ir_read(a, diag_add_source(name, text, len));
            free(text);
            stats_time(st, "parse", NULL, ms_since(&t0));
            return g;
        }
        parsed = fe_parse_text(a, name, text, len, &progs);
        free(text);
    }
    stats_time(st, "parse", NULL, ms_since(&t0));
    if (!parsed)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fe_unroll_loops = o->unroll_loops;
    Graph *g = fe_lower(a, progs.v, progs.n, o->defines.v, o->defines.n);
    stats_time(st, "lower", NULL, ms_since(&t0));
    return g;
}

/* Every input must exist before the front end runs: a missing .dl file is
 * misuse of the command line (exit 2), not an error in a model. */
static void check_input(const Options *o)
{
    if (o->input_ir || strcmp(o->input, "-") == 0)
        return;
    FILE *probe = fopen(o->input, "r");
    if (!probe) {
        fprintf(stderr, "dlc: error: cannot open '%s': %s\n", o->input, strerror(errno));
        exit(EXIT_USAGE);
    }
    fclose(probe);
}

/* --weights=f16|bf16: the parameters, declared f32, stored in half
 * precision; pass_widen then reads them as f32. The model keeps its name,
 * so its f32 checkpoints load, narrowed (DLRT_CKPT_NARROW). */
static bool store_weights(Graph *g, DType t)
{
    for (int i = 0; i < g->nodes.n; i++) {
        Node *p = g->nodes.v[i];
        if (p->op != OP_PARAM)
            continue;
        if (p->dtype != DT_F32) {
            fprintf(stderr,
                    "dlc: error: --weights=%s: parameter '%s' is %s; only f32 "
                    "parameters are stored in half precision\n",
                    ir_dtype_name(t), p->name, ir_dtype_name(p->dtype));
            return false;
        }
        p->dtype = t;
    }
    return true;
}

/* The front end and the pipeline, with ir_verify() and --dump-ir after
 * each. NULL when the model has errors (reported). */
static Graph *run_pipeline(Arena *a, const Options *o, Stats *st)
{
    Graph *g = load(a, o, st);
    if (!g || diag_errors())
        return NULL;
    if (o->weights != DT_UNKNOWN && !store_weights(g, o->weights))
        exit(EXIT_USAGE);
    ir_verify(g);
    dump(o->dump_after, "after", "lower", g);
    struct timespec t0;
    for (int i = 0; i < countof(pipeline); i++) {
        const char *name = pipeline[i].name;
        if (pipeline[i].on_request && o->cg.inference_only &&
            !cli_pass_listed(o->dump_after, name) && !cli_pass_listed(o->dump_before, name))
            continue;
        dump(o->dump_before, "before", name, g);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (!pipeline[i].run(g) || diag_errors())
            return NULL;
        ir_verify(g);
        stats_time(st, name, NULL, ms_since(&t0));
        dump(o->dump_after, "after", name, g);
    }
    return g;
}

/* --emit=dot: the whole graph, or with --dot-function what one generated
 * function computes: its plan's steps, the nodes fused into them, and
 * the sources and constants they read. */
static void print_dot(FILE *f, const Options *o, const Graph *g, const CgPlans *plans)
{
    const MemPlan *p = !o->dot_function                           ? NULL
                       : strcmp(o->dot_function, "forward") == 0  ? plans->forward
                       : strcmp(o->dot_function, "evaluate") == 0 ? plans->evaluate
                                                                  : plans->train;
    if (!o->dot_function) {
        ir_print_dot(f, g);
        return;
    }
    check(p); /* main refused a function the object does not have */
    bool *keep = calloc((size_t)g->nodes.n + 1, 1);
    check(keep);
    for (int i = 0; p && i < p->nsteps; i++)
        keep[p->steps[i]->id] = true;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        if (n->fused && keep[n->fused->id])
            keep[i] = true;
    }
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        for (int j = 0; keep[i] && j < n->nin; j++)
            if (op_info[n->in[j]->op].kind == K_SOURCE)
                keep[n->in[j]->id] = true;
    }
    ir_print_dot_subset(f, g, keep);
    free(keep);
}

/* Running out of memory inside LLVM. LLVM's C API has no way to report a
 * failed allocation to its caller: LLVM prints "LLVM ERROR: out of
 * memory" (or the C++ runtime "std::bad_alloc") and calls abort(). While
 * code generation runs, SIGABRT is caught instead: the temporary outputs
 * are removed and dlc exits with status 2 and a message in its own form,
 * as for its own allocations (out_of_memory). Nothing but a signal
 * handler's safe calls (unlink, write, _exit) is made in it. dlc's own
 * internal errors (die) put the default action back before they abort,
 * and LLVM's other fatal errors are reported as internal errors
 * (llvm_fatal), so what reaches the handler is LLVM aborting on its own,
 * which a release build of LLVM does when an allocation fails; the
 * message says it was LLVM that aborted. */
static void llvm_aborted(int sig)
{
    (void)sig;
    static const char msg[] = "dlc: error: out of memory (LLVM aborted while generating code, "
                              "as it does when an allocation fails)\n";
    out_unlink_pending();
    (void)!write(2, msg, sizeof msg - 1);
    _exit(EXIT_USAGE);
}

static void llvm_fatal(const char *reason)
{
    fprintf(stderr, "dlc: internal error: LLVM: %s\n", reason);
    signal(SIGABRT, SIG_DFL);
    abort();
}

/* Writes one --emit kind to path, through a temporary file; false
 * (reported) when code generation or writing fails. */
static bool write_output(const Options *o, Stats *st, Emit k, const char *path, const Graph *g,
                         const CgPlans *plans, const Layout *layout)
{
    const char *tmp = out_begin(path);
    if (k == EMIT_OBJ || k == EMIT_ASM || k == EMIT_LLVM) {
        CgOutput kind = k == EMIT_OBJ ? CG_OBJ : k == EMIT_ASM ? CG_ASM : CG_LLVM;
        char *err = NULL;
        CgStats cs;
        struct sigaction on_abort = {.sa_handler = llvm_aborted}, before;
        sigemptyset(&on_abort.sa_mask);
        sigaction(SIGABRT, &on_abort, &before);
        cg_set_fatal_handler(llvm_fatal);
        bool ok = cg_emit(g, plans, layout, &o->cg, kind, tmp, &err, &cs);
        sigaction(SIGABRT, &before, NULL);
        if (!ok) {
            fprintf(stderr, "dlc: error: %s\n", err ? err : "code generation failed");
            free(err);
            return false;
        }
        stats_codegen(st, emit_names[k], &cs);
        return out_commit(tmp, path);
    }
    FILE *f = out_fopen(tmp);
    if (k == EMIT_IR)
        ir_print(f, g);
    else if (k == EMIT_HEADER)
        cg_write_header(f, g, plans, layout, &o->cg);
    else
        print_dot(f, o, g, plans);
    return out_fclose(f, path) && out_commit(tmp, path);
}

/* Every output, then the dependency file (-MD, -MF) naming them. */
static bool write_outputs(Arena *a, const Options *o, Stats *st, const Graph *g,
                          const CgPlans *plans, const Layout *layout)
{
    const char *paths[EMIT_COUNT];
    int n = 0;
    for (int k = 0; k < EMIT_COUNT; k++) {
        if (!o->emit[k])
            continue;
        paths[n] = cli_output_path(a, o, (Emit)k);
        if (!write_output(o, st, (Emit)k, paths[n], g, plans, layout))
            return false;
        n += strcmp(paths[n], "-") != 0;
    }
    if (!o->depfile)
        return true;
    const char *dep = o->depfile;
    if (!*dep) { /* -MD: beside the outputs, named by their stem */
        const char *first = n ? paths[0] : NULL;
        if (!first) {
            fputs("dlc: error: -MD: no output file to name the dependency file after "
                  "(use -MF FILE)\n",
                  stderr);
            return false;
        }
        const char *name = strrchr(first, '/') ? strrchr(first, '/') + 1 : first;
        const char *dot = strrchr(name, '.');
        size_t stem = dot && dot != name ? (size_t)(dot - first) : strlen(first);
        dep = arena_printf(a, "%.*s.d", (int)stem, first);
    }
    return out_write_depfile(dep, o->dep_target, paths, n);
}

static int finish(Arena *a, int status)
{
    diag_reset();
    arena_free(a);
    return status;
}

int main(int argc, char **argv)
{
    Arena *a = arena_new();
    Options o = {.cg.opt_level = 2};
    const char *passes[countof(pipeline)];
    for (int i = 0; i < countof(pipeline); i++)
        passes[i] = pipeline[i].name;
    cli_parse(a, argc, argv, passes, countof(pipeline), &o);
    check_input(&o);
    Stats st = {.mode = o.stats};
    Graph *g = run_pipeline(a, &o, &st);
    if (!g)
        return finish(a, EXIT_INPUT);
    if (o.check_only)
        return finish(a, 0);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CgPlans plans = dlc_plan_memory(a, g, o.cg.inference_only);
    Layout *layout = cg_layout(g, &plans);
    stats_time(&st, "memplan", NULL, ms_since(&t0));
    if (o.dot_function && o.emit[EMIT_DOT] && strcmp(o.dot_function, "forward") != 0 &&
        !plans.train) {
        fprintf(stderr, "dlc: error: --dot-function=%s: the object has no training code\n",
                o.dot_function);
        return finish(a, EXIT_USAGE);
    }
    stats_plans(&st, g, &plans, layout);
    if (!write_outputs(a, &o, &st, g, &plans, layout))
        return finish(a, EXIT_USAGE);
    stats_finish(&st, g, &plans, layout);
    return finish(a, 0);
}

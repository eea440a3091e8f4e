/*
 * The dlc driver: parses the command line, runs the front end and the
 * pass pipeline, and writes what --emit asks for. Exit status: 0 success,
 * 1 errors in the input model, 2 misuse of the command line or I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen.h"
#include "frontend.h"
#include "diag.h"
#include "ir.h"
#include "passes.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2 };

typedef enum { EMIT_OBJ, EMIT_ASM, EMIT_LLVM, EMIT_IR, EMIT_HEADER, EMIT_DOT, EMIT_COUNT } Emit;

static const char *const emit_names[EMIT_COUNT] = {"obj", "asm", "llvm", "ir", "header", "dot"};
static const char *const emit_ext[EMIT_COUNT] = {".o", ".s", ".ll", ".ir", ".h", ".dot"};

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

typedef struct {
    bool check_only;
    const char *input;
    const char *output;
    bool emit[EMIT_COUNT];
    bool any_emit;
    const char *dump; /* NULL, a pass name, or "all" */
    Vec(Define) defines;
    bool stats;
    CgOptions cg;
} Options;

static void usage(FILE *f)
{
    fputs("usage: dlc FILE.dl [-o OUT] [options]\n"
          "       dlc check FILE.dl\n"
          "\n"
          "FILE may also be a textual IR file (.ir, see docs/IR.md).\n"
          "\n"
          "options:\n"
          "  -o OUT                 output file ('-' for standard output)\n"
          "  --emit=obj|asm|llvm|ir|header|dot\n"
          "                         what to write (may repeat; default: obj and header)\n"
          "  --dump-ir[=PASS|all]   print the IR after PASS (default: the last) to stderr\n"
          "  --stats                per pass timing, op counts and the memory plan\n"
          "  -O0 -O1 -O2 -O3        optimization level (default: -O2)\n"
          "  --target=TRIPLE        cross-compile for TRIPLE (default: the host)\n"
          "  --mcpu=CPU|native      the CPU to tune and select instructions for\n"
          "  --inference-only       emit no training code\n"
          "  -D NAME=VALUE          override a model-level `let` constant\n"
          "  --version              print version information\n"
          "  --help                 print this help\n"
          "\n"
          "passes: lower",
          f);
    for (int i = 0; i < countof(pipeline); i++)
        fprintf(f, ", %s", pipeline[i].name);
    fputs("\n", f);
}

static _Noreturn void usage_error(const char *fmt, const char *arg)
{
    fputs("dlc: error: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(run 'dlc --help' for usage)\n", stderr);
    exit(EXIT_USAGE);
}

static bool parse_define(Arena *a, const char *text, Define *d)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text)
        return false;
    d->name = arena_strndup(a, text, (size_t)(eq - text));
    for (const char *p = d->name; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (p != d->name && *p >= '0' && *p <= '9')))
            return false;
    const char *v = eq + 1;
    char *end;
    errno = 0;
    d->value = strtod(v, &end);
    if (*v == 0 || *end != 0 || errno == ERANGE)
        return false;
    d->is_int = strpbrk(v, ".eEnN") == NULL;
    return true;
}

static void parse_args(Arena *a, int argc, char **argv, Options *o)
{
    int i = 1;
    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        o->check_only = true;
        i = 2;
    }
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(arg, "--version") == 0) {
            printf("dlc %s (LLVM %s, default target %s)\n", DLC_VERSION, cg_llvm_version(),
                   cg_host_triple());
            exit(0);
        } else if (strcmp(arg, "-o") == 0) {
            if (++i == argc)
                usage_error("%s: missing file name", arg);
            o->output = argv[i];
        } else if (strncmp(arg, "--emit=", 7) == 0) {
            int k = 0;
            while (k < EMIT_COUNT && strcmp(emit_names[k], arg + 7) != 0)
                k++;
            if (k == EMIT_COUNT)
                usage_error("unknown --emit kind '%s' (obj, asm, llvm, ir, header, dot)", arg + 7);
            o->emit[k] = true;
            o->any_emit = true;
        } else if (strcmp(arg, "--stats") == 0) {
            o->stats = true;
        } else if (arg[0] == '-' && arg[1] == 'O' && arg[2] >= '0' && arg[2] <= '3' && !arg[3]) {
            o->cg.opt_level = arg[2] - '0';
        } else if (strncmp(arg, "--target=", 9) == 0) {
            if (!arg[9])
                usage_error("%s: missing target triple", arg);
            o->cg.triple = arg + 9;
        } else if (strncmp(arg, "--mcpu=", 7) == 0) {
            if (!arg[7])
                usage_error("%s: missing CPU name", arg);
            o->cg.cpu = arg + 7;
        } else if (strcmp(arg, "--inference-only") == 0) {
            o->cg.inference_only = true;
        } else if (strcmp(arg, "--dump-ir") == 0) {
            o->dump = pipeline[countof(pipeline) - 1].name;
        } else if (strncmp(arg, "--dump-ir=", 10) == 0) {
            o->dump = arg + 10;
            bool known = strcmp(o->dump, "all") == 0 || strcmp(o->dump, "lower") == 0;
            for (int k = 0; k < countof(pipeline); k++)
                known |= strcmp(o->dump, pipeline[k].name) == 0;
            if (!known)
                usage_error("--dump-ir: unknown pass '%s' (see 'dlc --help')", o->dump);
        } else if (strncmp(arg, "-D", 2) == 0) {
            const char *def = arg + 2;
            if (*def == 0) {
                if (++i == argc)
                    usage_error("%s: missing NAME=VALUE", arg);
                def = argv[i];
            }
            Define d;
            if (!parse_define(a, def, &d))
                usage_error("-D %s: expected NAME=NUMBER", def);
            vec_push(a, &o->defines, d);
        } else if (arg[0] == '-' && arg[1] != 0) {
            usage_error("unknown option '%s'", arg);
        } else if (o->input) {
            usage_error("more than one input file ('%s')", arg);
        } else {
            o->input = arg;
        }
    }
    if (!o->input)
        usage_error("%s", "no input file");
    if (!o->any_emit) {
        o->emit[EMIT_OBJ] = true;
        o->emit[EMIT_HEADER] = true;
    }
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* FILE.dl -> FILE.ext in the current directory, as cc does. */
static const char *derived_path(Arena *a, const Options *o, Emit e)
{
    int nemit = 0;
    for (int k = 0; k < EMIT_COUNT; k++)
        nemit += o->emit[k];
    const char *base = o->output;
    if (base && (nemit == 1 || strcmp(base, "-") == 0))
        return base;
    if (!base) {
        base = strrchr(o->input, '/') ? strrchr(o->input, '/') + 1 : o->input;
    }
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return arena_printf(a, "%.*s%s", (int)stem, base, emit_ext[e]);
}

static FILE *open_output(const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "dlc: error: cannot write '%s': %s\n", path, strerror(errno));
        exit(EXIT_USAGE);
    }
    return f;
}

static void close_output(FILE *f, const char *path)
{
    if (f == stdout) {
        fflush(f);
        return;
    }
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "dlc: error: writing '%s' failed\n", path);
        exit(EXIT_USAGE);
    }
}

static void dump(const Options *o, const char *pass, const Graph *g)
{
    if (o->dump && (strcmp(o->dump, "all") == 0 || strcmp(o->dump, pass) == 0)) {
        fprintf(stderr, "# IR after %s\n", pass);
        ir_print(stderr, g);
    }
}

static Graph *load(Arena *a, const Options *o)
{
    if (!has_suffix(o->input, ".ir"))
        return fe_load(a, o->input, o->defines.v, o->defines.n);
    size_t len;
    char *text = read_file(o->input, &len);
    if (!text) {
        fprintf(stderr, "dlc: error: cannot open '%s': %s\n", o->input, strerror(errno));
        exit(EXIT_USAGE);
    }
    int file = diag_add_source(o->input, text, len);
    free(text);
    return ir_read(a, file);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* --stats: how many nodes of each op, and how many of them are fused. */
static void print_op_counts(const Graph *g)
{
    int count[OP_COUNT] = {0}, fused[OP_COUNT] = {0};
    for (int i = 0; i < g->nodes.n; i++) {
        count[g->nodes.v[i]->op]++;
        fused[g->nodes.v[i]->op] += g->nodes.v[i]->fused != NULL;
    }
    fprintf(stderr, "ops: %d nodes\n", g->nodes.n);
    for (int k = 0; k < OP_COUNT; k++)
        if (count[k])
            fprintf(stderr, "  %-22s %6d  (%d fused)\n", op_info[k].text, count[k], fused[k]);
}

/* Every input must exist before the front end runs: a missing .dl file is
 * misuse of the command line (exit 2), not an error in a model. */
static void check_input(const Options *o)
{
    if (has_suffix(o->input, ".ir"))
        return;
    FILE *probe = fopen(o->input, "r");
    if (!probe) {
        fprintf(stderr, "dlc: error: cannot open '%s': %s\n", o->input, strerror(errno));
        exit(EXIT_USAGE);
    }
    fclose(probe);
}

/* The front end and the pipeline, with ir_verify() and --dump-ir after
 * each. NULL when the model has errors (reported). */
static Graph *run_pipeline(Arena *a, const Options *o)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    Graph *g = load(a, o);
    if (!g || diag_errors())
        return NULL;
    ir_verify(g);
    dump(o, "lower", g);
    if (o->stats)
        fprintf(stderr, "%-10s %9.3f ms\n", "lower", ms_since(&t0));
    for (int i = 0; i < countof(pipeline); i++) {
        if (pipeline[i].on_request && o->cg.inference_only &&
            !(o->dump && strcmp(o->dump, pipeline[i].name) == 0))
            continue;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (!pipeline[i].run(g) || diag_errors())
            return NULL;
        ir_verify(g);
        if (o->stats)
            fprintf(stderr, "%-10s %9.3f ms\n", pipeline[i].name, ms_since(&t0));
        dump(o, pipeline[i].name, g);
    }
    return g;
}

/* One memory plan per generated function (docs/TRAINING.md): forward
 * (the outputs), evaluate (the loss) and the training step (the loss and
 * every gradient), with the optimizer's recipe. */
static CgPlans plan_memory(Arena *a, Graph *g, const Options *o)
{
    CgPlans plans = {0};
    Node **roots = arena_alloc(a, sizeof *roots * (size_t)(g->outputs.n + 1));
    for (int i = 0; i < g->outputs.n; i++)
        roots[i] = g->outputs.v[i].node;
    plans.forward = pass_memplan(g, roots, g->outputs.n);
    if (g->train && !o->cg.inference_only) {
        Train *t = g->train;
        plans.evaluate = pass_memplan(g, &t->loss, 1);
        Node **troots = arena_alloc(a, sizeof *troots * (size_t)(t->grads.n + 1));
        troots[0] = t->loss;
        for (int i = 0; i < t->grads.n; i++)
            troots[i + 1] = t->grads.v[i];
        plans.train = pass_memplan(g, troots, t->grads.n + 1);
        plans.opt = pass_optim(g);
    }
    return plans;
}

/* --stats after planning: op counts, each function's memory plan and the
 * instance's size. */
static void print_plan_stats(const Graph *g, const CgPlans *plans, const Layout *layout)
{
    print_op_counts(g);
    pass_memplan_print_stats(stderr, g, plans->forward, "forward");
    if (plans->evaluate)
        pass_memplan_print_stats(stderr, g, plans->evaluate, "evaluate");
    if (plans->train)
        pass_memplan_print_stats(stderr, g, plans->train, "compute_gradients");
    fprintf(stderr,
            "instance: %lld bytes (params %lld, grads %lld, optimizer %lld, states %lld, "
            "arena %lld)\n",
            (long long)layout->state_bytes, (long long)layout->params_bytes,
            (long long)layout->grads_bytes, (long long)layout->opt_bytes,
            (long long)layout->states_bytes, (long long)layout->arena_bytes);
}

/* Writes one --emit kind; false (reported) when code generation fails. */
static bool write_output(Arena *a, const Options *o, Emit k, const Graph *g,
                         const CgPlans *plans, const Layout *layout)
{
    const char *path = derived_path(a, o, k);
    if (k == EMIT_OBJ || k == EMIT_ASM || k == EMIT_LLVM) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CgOutput kind = k == EMIT_OBJ ? CG_OBJ : k == EMIT_ASM ? CG_ASM : CG_LLVM;
        char *err = NULL;
        if (!cg_emit(g, plans, layout, &o->cg, kind, path, &err)) {
            fprintf(stderr, "dlc: error: %s\n", err ? err : "code generation failed");
            free(err);
            return false;
        }
        if (o->stats)
            fprintf(stderr, "%-10s %9.3f ms (%s)\n", "codegen", ms_since(&t0), emit_names[k]);
        return true;
    }
    FILE *f = open_output(path);
    if (k == EMIT_IR)
        ir_print(f, g);
    else if (k == EMIT_HEADER)
        cg_write_header(f, g, plans, layout);
    else
        ir_print_dot(f, g);
    close_output(f, path);
    return true;
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
    parse_args(a, argc, argv, &o);
    check_input(&o);
    Graph *g = run_pipeline(a, &o);
    if (!g)
        return finish(a, EXIT_INPUT);
    if (o.check_only)
        return finish(a, 0);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CgPlans plans = plan_memory(a, g, &o);
    Layout *layout = cg_layout(g, &plans);
    if (o.stats) {
        fprintf(stderr, "%-10s %9.3f ms\n", "memplan", ms_since(&t0));
        print_plan_stats(g, &plans, layout);
    }
    for (int k = 0; k < EMIT_COUNT; k++)
        if (o.emit[k] && !write_output(a, &o, (Emit)k, g, &plans, layout))
            return finish(a, EXIT_USAGE);
    return finish(a, 0);
}

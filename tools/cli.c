/*
 * The command line. getopt_long gives the GNU conventions: `-oFILE` and
 * `-o FILE`, `--emit=ir` and `--emit ir`, unambiguous abbreviations of
 * long options, `--` to end options, and `-` for standard input. The few
 * options that are not getopt's shape are recognised first: `-O0`..`-O3`
 * and the dependency options `-MD`, `-MF FILE` and `-MT TARGET` of C
 * compilers.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diag.h"

static const char *const *pass_names; /* cli_parse's passes */
static int num_passes;

const char *const emit_names[EMIT_COUNT] = {"obj", "asm", "llvm", "ir", "header", "dot"};
static const char *const emit_ext[EMIT_COUNT] = {".o", ".s", ".ll", ".ir", ".h", ".dot"};

static void usage(FILE *f)
{
    fputs("usage: dlc [options] FILE.dl\n"
          "       dlc check [options] FILE.dl\n"
          "\n"
          "FILE may also be textual IR (.ir, see docs/IR.md), or '-' for standard input.\n"
          "\n"
          "options:\n"
          "  -o OUT                 output file; with several outputs, their stem:\n"
          "                         -o dir/m.o writes dir/m.o and dir/m.h ('-': standard\n"
          "                         output, for a single output)\n"
          "  --emit=obj|asm|llvm|ir|header|dot\n"
          "                         what to write (may repeat; default: obj and header)\n"
          "  --dot-function=forward|evaluate|compute_gradients\n"
          "                         --emit=dot draws only what that function computes\n"
          "  -x dl|ir               the input's language (default: from its name; dl for '-')\n"
          "  -MD                    also write make dependencies to OUT.d\n"
          "  -MF FILE               write make dependencies to FILE\n"
          "  -MT TARGET             the dependencies' target (default: the outputs)\n"
          "  --dump-ir[=PASS,...|all]\n"
          "                         print the IR after each PASS (default: the last) to stderr\n"
          "  --dump-ir-before=PASS,...|all\n"
          "                         print the IR before each PASS to stderr\n"
          "  --stats[=text|json]    per pass timing, op counts, the memory plans and each\n"
          "                         step's flops and bytes, on stderr (json: one object\n"
          "                         at the end)\n"
          "  -O0 -O1 -O2 -O3        optimization level (default: -O2)\n"
          "  --target=TRIPLE        cross-compile for TRIPLE (default: the host)\n"
          "  --mcpu=CPU|native      the CPU to tune and select instructions for (default:\n"
          "                         the target's generic CPU; native: this machine's)\n"
          "  --mcpu=LEVEL,LEVEL...  x86-64 levels (x86-64, x86-64-v2, x86-64-v3, x86-64-v4):\n"
          "                         each in the object, the best the CPU has at run time\n"
          "  --inference-only       emit no training code\n"
          "  --weights=f16|bf16     store the (f32) parameters in half precision, for\n"
          "                         inference (implies --inference-only)\n"
          "  --no-checks            entry points do not check inputs, loss and gradients\n"
          "                         (labels and ids in range, values finite)\n"
          "  --unroll-loops         unroll every for loop instead of keeping loops over\n"
          "                         indices as loops\n"
          "  --part-size=N          a long run function calls its kernels from functions\n"
          "                         of N calls each (default 64; 0: from one function)\n"
          "  --gemm-rows=N          f32 products of at most N rows run in kernels dlc\n"
          "                         generates, BLAS above (default: from the target's\n"
          "                         vectors, 2 to 64; 0: always BLAS)\n"
          "  -D NAME=VALUE          override a model-level `let` constant\n"
          "  --version              print version information\n"
          "  -h, --help             print this help\n"
          "\n"
          "passes: lower",
          f);
    for (int i = 0; i < num_passes; i++)
        fprintf(f, ", %s", pass_names[i]);
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

bool cli_pass_listed(const char *list, const char *pass)
{
    if (!list)
        return false;
    size_t n = strlen(pass);
    for (const char *p = list;; p++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if ((len == 3 && strncmp(p, "all", 3) == 0) || (len == n && strncmp(p, pass, n) == 0))
            return true;
        if (!end)
            return false;
        p = end;
    }
}

/* Every name in a --dump-ir list is "all", "lower" (when after is set:
 * there is nothing before the front end) or a pass. */
static void check_pass_list(const char *opt, const char *list, bool after)
{
    for (const char *p = list;; p++) {
        const char *end = strchr(p, ',');
        int len = end ? (int)(end - p) : (int)strlen(p);
        bool known = (len == 3 && strncmp(p, "all", 3) == 0) ||
                     (after && len == 5 && strncmp(p, "lower", 5) == 0);
        for (int k = 0; k < num_passes; k++)
            known |=
                (int)strlen(pass_names[k]) == len && strncmp(p, pass_names[k], (size_t)len) == 0;
        if (!known) {
            fprintf(stderr, "dlc: error: %s: unknown pass '%.*s' (see 'dlc --help')\n", opt, len,
                    p);
            exit(EXIT_USAGE);
        }
        if (!end)
            return;
        p = end;
    }
}

/* A count option's value, 0 to 1000000; 0 is returned as -1 ("none"),
 * since 0 in CgOptions means "the default". */
static int count_option(const char *arg, const char *option, const char *what)
{
    char *end;
    errno = 0;
    long n = strtol(arg, &end, 10);
    if (!*arg || *end || errno || n < 0 || n > 1000000) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s=%s: expected a count of %s, 0 to 1000000", option, arg, what);
        usage_error("%s", msg);
    }
    return n ? (int)n : -1;
}

enum {
    OPT_EMIT = 256,
    OPT_DUMP,
    OPT_DUMP_BEFORE,
    OPT_STATS,
    OPT_TARGET,
    OPT_MCPU,
    OPT_INFERENCE_ONLY,
    OPT_WEIGHTS,
    OPT_NO_CHECKS,
    OPT_UNROLL_LOOPS,
    OPT_VERSION,
    OPT_DOT_FUNCTION,
    OPT_PART_SIZE,
    OPT_GEMM_ROWS,
};

static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"emit", required_argument, NULL, OPT_EMIT},
    {"dump-ir", optional_argument, NULL, OPT_DUMP},
    {"dump-ir-before", required_argument, NULL, OPT_DUMP_BEFORE},
    {"stats", optional_argument, NULL, OPT_STATS},
    {"target", required_argument, NULL, OPT_TARGET},
    {"mcpu", required_argument, NULL, OPT_MCPU},
    {"inference-only", no_argument, NULL, OPT_INFERENCE_ONLY},
    {"weights", required_argument, NULL, OPT_WEIGHTS},
    {"no-checks", no_argument, NULL, OPT_NO_CHECKS},
    {"unroll-loops", no_argument, NULL, OPT_UNROLL_LOOPS},
    {"dot-function", required_argument, NULL, OPT_DOT_FUNCTION},
    {"part-size", required_argument, NULL, OPT_PART_SIZE},
    {"gemm-rows", required_argument, NULL, OPT_GEMM_ROWS},
    {0, 0, 0, 0},
};

/* -O0..-O3 and -MD, -MF FILE, -MT TARGET, which are not getopt's shape
 * (a letter with a glued value that is itself an option letter). Returns
 * how many arguments at argv[i] it took, 0 when none is of these. */
static int take_compiler_style(Options *o, int argc, char **argv, int i)
{
    const char *arg = argv[i];
    if (arg[0] != '-')
        return 0;
    if (arg[1] == 'O' && arg[2] >= '0' && arg[2] <= '3' && !arg[3]) {
        o->cg.opt_level = arg[2] - '0';
        return 1;
    }
    if (arg[1] == 'O')
        usage_error("'%s': the optimization levels are -O0, -O1, -O2 and -O3", arg);
    if (arg[1] != 'M')
        return 0;
    if (strcmp(arg, "-MD") == 0) {
        if (!o->depfile)
            o->depfile = "";
        return 1;
    }
    if ((arg[2] == 'F' || arg[2] == 'T') && !arg[3]) {
        if (i + 1 == argc)
            usage_error("%s: missing argument", arg);
        if (arg[2] == 'F')
            o->depfile = argv[i + 1];
        else
            o->dep_target = argv[i + 1];
        return 2;
    }
    if ((arg[2] == 'F' || arg[2] == 'T') && arg[3]) {
        if (arg[2] == 'F')
            o->depfile = arg + 3;
        else
            o->dep_target = arg + 3;
        return 1;
    }
    usage_error("unknown option '%s' (dependency files: -MD, -MF FILE, -MT TARGET)", arg);
}

static void take_option(Arena *a, Options *o, int c, const char *arg, bool *any_emit)
{
    switch (c) {
    case 'h': usage(stdout); exit(0);
    case OPT_VERSION:
        printf("dlc %s (LLVM %s, default target %s)\n", DLC_VERSION, cg_llvm_version(),
               cg_host_triple());
        exit(0);
    case 'o':
        if (!*arg)
            usage_error("%s", "-o: missing file name");
        o->output = arg;
        break;
    case OPT_EMIT: {
        int k = 0;
        while (k < EMIT_COUNT && strcmp(emit_names[k], arg) != 0)
            k++;
        if (k == EMIT_COUNT)
            usage_error("unknown --emit kind '%s' (obj, asm, llvm, ir, header, dot)", arg);
        o->emit[k] = true;
        *any_emit = true;
        break;
    }
    case 'x':
        if (strcmp(arg, "dl") != 0 && strcmp(arg, "ir") != 0)
            usage_error("-x %s: the input languages are dl and ir", arg);
        o->input_ir = strcmp(arg, "ir") == 0;
        break;
    case OPT_STATS:
        if (arg && strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0)
            usage_error("--stats=%s: the forms are text and json", arg);
        o->stats = arg && strcmp(arg, "json") == 0 ? STATS_JSON : STATS_TEXT;
        break;
    case OPT_TARGET:
        if (!*arg)
            usage_error("%s", "--target: missing target triple");
        o->cg.triple = arg;
        break;
    case OPT_MCPU:
        if (!*arg)
            usage_error("%s", "--mcpu: missing CPU name");
        o->cg.cpu = arg;
        break;
    case OPT_DOT_FUNCTION:
        if (strcmp(arg, "forward") != 0 && strcmp(arg, "evaluate") != 0 &&
            strcmp(arg, "compute_gradients") != 0)
            usage_error("--dot-function=%s: the functions are forward, evaluate and "
                        "compute_gradients",
                        arg);
        o->dot_function = arg;
        break;
    case OPT_INFERENCE_ONLY: o->cg.inference_only = true; break;
    case OPT_WEIGHTS:
        o->weights = ir_dtype_parse(arg);
        if (!ir_dtype_is_half(o->weights))
            usage_error("--weights=%s: the forms are f16 and bf16", arg);
        o->cg.inference_only = true;
        break;
    case OPT_NO_CHECKS: o->cg.no_checks = true; break;
    case OPT_UNROLL_LOOPS: o->unroll_loops = true; break;
    case OPT_PART_SIZE: o->cg.part_size = count_option(arg, "--part-size", "kernel calls"); break;
    case OPT_GEMM_ROWS: o->cg.gemm_rows = count_option(arg, "--gemm-rows", "rows"); break;
    case OPT_DUMP:
        o->dump_after = arg ? arg : pass_names[num_passes - 1];
        check_pass_list("--dump-ir", o->dump_after, true);
        break;
    case OPT_DUMP_BEFORE:
        o->dump_before = arg;
        check_pass_list("--dump-ir-before", o->dump_before, false);
        break;
    case 'D': {
        Define d;
        if (!parse_define(a, arg, &d))
            usage_error("-D %s: expected NAME=NUMBER", arg);
        vec_push(a, &o->defines, d);
        break;
    }
    case ':': usage_error("%s: missing argument", arg);
    default: usage_error("unknown option '%s'", arg);
    }
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "-c" for getopt's optopt (an unknown or incomplete short option). */
static const char *short_name(Arena *a, int c)
{
    return arena_printf(a, "-%c", c);
}

static int count_emits(const Options *o)
{
    int n = 0;
    for (int k = 0; k < EMIT_COUNT; k++)
        n += o->emit[k];
    return n;
}

void cli_parse(Arena *a, int argc, char **argv, const char *const *passes, int npasses, Options *o)
{
    pass_names = passes;
    num_passes = npasses;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        o->check_only = true;
        first = 2;
    }
    /* getopt_long permutes operands behind options; it starts at optind. */
    bool any_emit = false;
    char **args = arena_alloc(a, sizeof *args * (size_t)(argc + 1));
    int nargs = 0;
    args[nargs++] = argv[0];
    for (int i = first; i < argc;) {
        if (strcmp(argv[i], "--") == 0) { /* the rest are operands */
            while (i < argc)
                args[nargs++] = argv[i++];
            break;
        }
        int took = take_compiler_style(o, argc, argv, i);
        if (took == 0)
            args[nargs++] = argv[i++];
        i += took;
    }
    opterr = 0; /* our messages, not getopt's */
    optind = 1;
    int c;
    while ((c = getopt_long(nargs, args, ":ho:x:D:", long_options, NULL)) != -1) {
        const char *arg = optarg;
        if (c == '?' || c == ':') /* the option at fault: a short one's letter, or the word */
            arg = optopt > 0 && optopt < 256 ? short_name(a, optopt) : args[optind - 1];
        take_option(a, o, c, arg, &any_emit);
    }
    for (int i = optind; i < nargs; i++) {
        if (o->input)
            usage_error("more than one input file ('%s')", args[i]);
        o->input = args[i];
    }
    if (!o->input)
        usage_error("%s", "no input file");
    if (!o->input_ir && has_suffix(o->input, ".ir"))
        o->input_ir = true;
    if (!any_emit) {
        o->emit[EMIT_OBJ] = true;
        o->emit[EMIT_HEADER] = true;
    }
    if (o->output && strcmp(o->output, "-") == 0 && count_emits(o) > 1 && !o->check_only)
        usage_error("%s", "-o -: standard output takes one output; choose it with --emit");
    if (o->depfile && !*o->depfile && !o->output && strcmp(o->input, "-") == 0)
        usage_error("%s", "-MD: reading standard input, name the dependency file with -MF");
}

const char *cli_output_path(Arena *a, const Options *o, Emit e)
{
    const char *base = o->output;
    if (base && (count_emits(o) == 1 || strcmp(base, "-") == 0))
        return base;
    if (!base) {
        base = strcmp(o->input, "-") == 0 ? "stdin" : o->input;
        base = strrchr(base, '/') ? strrchr(base, '/') + 1 : base; /* in the current directory */
    }
    const char *name = strrchr(base, '/') ? strrchr(base, '/') + 1 : base;
    const char *dot = strrchr(name, '.');
    size_t stem = dot && dot != name ? (size_t)(dot - base) : strlen(base);
    return arena_printf(a, "%.*s%s", (int)stem, base, emit_ext[e]);
}

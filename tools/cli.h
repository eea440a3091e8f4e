/*
 * The dlc command line (GNU conventions through getopt_long): what to
 * read, what to write, and how. Parsing exits with status 2 and a message
 * on misuse; it never touches a file.
 */
#ifndef DLC_CLI_H
#define DLC_CLI_H

#include <stdbool.h>

#include "codegen.h"
#include "frontend.h"
#include "stats.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2 };

typedef enum { EMIT_OBJ, EMIT_ASM, EMIT_LLVM, EMIT_IR, EMIT_HEADER, EMIT_DOT, EMIT_COUNT } Emit;

extern const char *const emit_names[EMIT_COUNT];

typedef struct {
    bool check_only;    /* `dlc check FILE` */
    const char *input;  /* a path, or "-" for standard input */
    bool input_ir;      /* textual IR (.ir, or -x ir), not .dl */
    const char *output; /* -o; NULL: derived from the input's name */
    bool emit[EMIT_COUNT];
    const char *dump_after;  /* comma-separated pass names or "all"; NULL: none */
    const char *dump_before; /* the same for --dump-ir-before */
    const char *depfile;     /* -MD / -MF: where to write make dependencies */
    const char *dep_target;  /* -MT: the rule's target; NULL: the outputs */
    Vec(Define) defines;
    StatsMode stats;          /* --stats, --stats=json */
    const char *dot_function; /* --dot-function: forward, evaluate, compute_gradients */
    bool unroll_loops;        /* --unroll-loops */
    DType weights;            /* --weights: DT_F16 or DT_BF16; DT_UNKNOWN: as declared */
    CgOptions cg;
} Options;

/* passes: the pipeline's pass names after the front end ("lower"), in
 * order, which --dump-ir and --help name (dlc.c holds the pipeline). */
void cli_parse(Arena *a, int argc, char **argv, const char *const *passes, int npasses, Options *o);

/* Whether pass is named in list (see dump_after). */
bool cli_pass_listed(const char *list, const char *pass);

/* The file of an output: -o when it names that file, else the stem of -o
 * or of the input with the kind's extension (`-o dir/m.o` writes dir/m.o
 * and dir/m.h, as cc -o names its files); "-" is standard output. */
const char *cli_output_path(Arena *a, const Options *o, Emit e);

#endif

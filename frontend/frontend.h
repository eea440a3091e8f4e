/*
 * The front end: .dl text -> tokens (Flex) -> AST (Bison) -> graph IR.
 * Errors in the user's text are reported through diag; these functions
 * never exit and never crash on any input.
 */
#ifndef DLC_FRONTEND_H
#define DLC_FRONTEND_H

#include "ir.h"
#include "ast.h"

/* Parses a registered source file (diag_add_source). Returns the program,
 * possibly partial; diag_errors() tells whether there were syntax errors. */
Program *fe_parse(Arena *a, int file);

/* A -D NAME=VALUE override of a model-level `let`. */
typedef struct {
    const char *name;
    double value;
    bool is_int;
} Define;

/* dlc --unroll-loops: unroll every for loop, even one that could be an IR
 * loop (docs/LANGUAGE.md, Loops). Off by default. */
extern bool fe_unroll_loops;

/* Reads, registers and parses `path`, then every file it imports (paths
 * relative to the importing file; each file once; cycles are fine), and
 * lowers the model to a graph: defs expanded inline, loops unrolled (or
 * kept as IR loops where their iterations differ only in indices),
 * constants folded, parameters named by their paths (SPEC 1.2). Returns
 * NULL after reporting errors. */
Graph *fe_load(Arena *a, const char *path, const Define *defs, int ndefs);

/* The same from text already in memory (tests, the fuzzer); imports are
 * resolved relative to the current directory. */
Graph *fe_load_text(Arena *a, const char *path, const char *text, size_t len,
                    const Define *defs, int ndefs);

/* fe_load in its two halves (dlc --stats times them apart): the parsed
 * programs of a file and of every file it imports, the model's file first;
 * false after reporting errors. fe_parse_text parses text in memory, with
 * imports relative to the current directory. Then fe_lower. */
typedef struct {
    Program **v;
    int n;
} FePrograms;
bool fe_parse_file(Arena *a, const char *path, FePrograms *out);
bool fe_parse_text(Arena *a, const char *path, const char *text, size_t len, FePrograms *out);

/* Lowers parsed programs: progs[0] holds the model, the others only
 * contribute defs. */
Graph *fe_lower(Arena *a, Program *const *progs, int nprogs, const Define *defs, int ndefs);

#endif

/*
 * Diagnostics for mistakes in the user's model, clang style:
 *
 *   model.dl:12:9: error: matmul: inner dimensions differ (784 vs 256)
 *       h = x @ w;
 *           ^~~~~
 *
 * Every source text the compiler reads is registered here so that any pass
 * can point at a line. State is global to the compilation and cleared by
 * diag_reset (the fuzzer runs many compilations in one process).
 */
#ifndef DLC_DIAG_H
#define DLC_DIAG_H

#include <stdio.h>

#include "util.h"

/* A place in a registered source file. line and col count from 1; len is
 * the number of columns to underline (0 or 1 prints a lone caret). A Loc
 * with line 0 is "nowhere" (e.g. a node built by a pass with no origin). */
typedef struct {
    int file;
    int line, col, len;
} Loc;

enum { DIAG_MAX_ERRORS = 20 };

void diag_reset(void);
void diag_set_output(FILE *f);          /* default stderr */
int diag_add_source(const char *path, const char *text, size_t len); /* file id */
const char *diag_file_path(int file);
const char *diag_source_text(int file, size_t *len);
int diag_num_files(void);

void diag_error(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_warning(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_note(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error with no source position: "dlc: error: ...". */
void diag_error_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int diag_errors(void);                  /* errors reported since diag_reset */

/* The closest of `n` candidates to `word`, or NULL when none is close. */
const char *diag_suggest(const char *word, const char *const *cands, int n);

#endif

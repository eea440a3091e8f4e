/*
 * Output files appear whole or not at all: each is written to a temporary
 * file beside it and renamed over it once complete. Temporaries still
 * pending when dlc exits (an error, a crash of code generation reported
 * through exit) are removed.
 */
#ifndef DLC_OUTPUT_H
#define DLC_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

/* A temporary file's path beside path (created, empty), to write and then
 * out_commit; path itself when it is "-" (standard output) or exists and
 * is not a regular file (/dev/null, a pipe). Exits with status 2 and a
 * message when the directory cannot be written. */
const char *out_begin(const char *path);

/* Renames tmp over path; false with a message on failure. Nothing when
 * out_begin returned path itself. */
bool out_commit(const char *tmp, const char *path);

/* Removes the temporaries still pending, and nothing else: safe in a
 * signal handler (unlink only). */
void out_unlink_pending(void);

/* fopen(tmp, "w"), or stdout for "-"; exits with status 2 on failure. */
FILE *out_fopen(const char *tmp);

/* fclose (or fflush for stdout), false with a message when a write failed. */
bool out_fclose(FILE *f, const char *path);

/* Make's dependency rule "targets: the model's source files": every file
 * the front end read (the input and its imports), as registered with diag.
 * The targets are rule_target as given (-MT), or else the paths targets. */
bool out_write_depfile(const char *path, const char *rule_target, const char *const *targets,
                       int ntargets);

#endif

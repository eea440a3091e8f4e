/* cli.h — the demos' command-line numbers: an option's value parsed in full
 * and checked against its range, or a message naming the program, the
 * option and the value, and exit status 2 (misuse of the command line);
 * and the report of a failed runtime call (cli_fail). */
#ifndef DLC_EXAMPLES_CLI_H
#define DLC_EXAMPLES_CLI_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "dlrt.h"

static inline long cli_number(const char *prog, const char *flag, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants an integer in %ld..%ld, not '%s'\n", prog, flag, lo, hi, s);
        exit(2);
    }
    return v;
}

static inline double cli_real(const char *prog, const char *flag, const char *s, double lo,
                              double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: %s wants a number in %g..%g, not '%s'\n", prog, flag, lo, hi, s);
        exit(2);
    }
    return v;
}

/* Reports that what failed with rc, and the runtime's detail of it;
 * returns the program's exit status, 1. */
static inline int cli_fail(const char *prog, const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, dlrt_strerror(rc));
    if (*dlrt_last_error())
        fprintf(stderr, "  %s\n", dlrt_last_error());
    return 1;
}

#endif

/*
 * --stats: the compilation's figures, as text on stderr as they come (the
 * wall time of each phase with the peak memory so far, op counts, each
 * function's memory plan, the instance, the kernels), or with --stats=json
 * as one JSON object on stderr at the end, for scripts.
 */
#ifndef DLC_STATS_H
#define DLC_STATS_H

#include <stdio.h>

#include "codegen.h"

typedef enum { STATS_OFF, STATS_TEXT, STATS_JSON } StatsMode;

enum { STATS_MAX_TIMES = 32 };

typedef struct {
    StatsMode mode;
    int ntimes;
    struct {
        const char *what;   /* "lower", a pass, "memplan", or a codegen phase */
        const char *detail; /* codegen phases: the --emit kind; else NULL */
        double ms;
        double peak_mb; /* the process's peak resident memory so far */
    } times[STATS_MAX_TIMES];
    CgStats cg; /* of the last cg_emit */
    bool have_cg;
} Stats;

/* One step took ms: printed (text) or kept (json). */
void stats_time(Stats *s, const char *what, const char *detail, double ms);

/* Code generation's phases and kernels (cg_emit's figures) for --emit=kind. */
void stats_codegen(Stats *s, const char *kind, const CgStats *cg);

/* After planning: op counts, the memory plans and the instance (text). */
void stats_plans(const Stats *s, const Graph *g, const CgPlans *plans, const Layout *layout);

/* At the end: the JSON object (json). */
void stats_finish(const Stats *s, const Graph *g, const CgPlans *plans, const Layout *layout);

#endif

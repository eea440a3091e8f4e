/*
 * --stats: the compilation's figures, as text on stderr as they come (pass
 * timings, op counts, each function's memory plan, the instance), or with
 * --stats=json as one JSON object on stderr at the end, for scripts.
 */
#ifndef DLC_STATS_H
#define DLC_STATS_H

#include <stdio.h>

#include "codegen.h"

typedef enum { STATS_OFF, STATS_TEXT, STATS_JSON } StatsMode;

enum { STATS_MAX_TIMES = 16 };

typedef struct {
    StatsMode mode;
    int ntimes;
    struct {
        const char *what;   /* a pass, "memplan", or "codegen" */
        const char *detail; /* codegen: the --emit kind; else NULL */
        double ms;
    } times[STATS_MAX_TIMES];
} Stats;

/* One step took ms: printed (text) or kept (json). */
void stats_time(Stats *s, const char *what, const char *detail, double ms);

/* After planning: op counts, the memory plans and the instance (text). */
void stats_plans(const Stats *s, const Graph *g, const CgPlans *plans, const Layout *layout);

/* At the end: the JSON object (json). */
void stats_finish(const Stats *s, const Graph *g, const CgPlans *plans, const Layout *layout);

#endif

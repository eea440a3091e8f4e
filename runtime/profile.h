/* Internal to libdlrt: DLRT_PROFILE_LOOPS, a profile of the pool's loops
 * (profile.c). */
#ifndef DLRT_PROFILE_H
#define DLRT_PROFILE_H

#include <stdint.h>

#include "dlrt.h"

/* Whether DLRT_PROFILE_LOOPS is set (read once). */
int dlrt_profile_on(void);

/* A loop of fn's ntasks ran from start to end (CLOCK_MONOTONIC ns) on a
 * pool of threads; the calling thread ran its own share of the tasks
 * until mine (== end when it ran them all: inline). */
void dlrt_profile_loop(dlrt_task_fn fn, int64_t ntasks, int threads, int64_t start, int64_t mine,
                       int64_t end);

#endif

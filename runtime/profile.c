/*
 * DLRT_PROFILE_LOOPS=FILE (or "-" for standard error): a profile of the
 * thread pool's loops, written when the process exits. Per task function
 * -- one per parallel step of a model -- the loops it ran, their tasks,
 * their wall time, how long the calling thread then waited for the
 * others after its own tasks, and how long it ran alone since the loop
 * before (serial steps, the application between calls). perf charges a
 * wait to the spin loop or the kernel; this names the step that waited.
 * Functions are printed as addresses in their object file;
 * bench/loops.sh runs a program with the profile and names them.
 * Meant for one application thread; loops of others are counted too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "profile.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows by function: found through an open-addressed table of twice the
 * rows (a linear search cost up to a row's comparisons a loop, inside
 * the times it measures). */
enum { MAX_FNS = 1024, SLOTS = 2 * MAX_FNS };

typedef struct {
    dlrt_task_fn fn;
    int64_t loops, tasks, wall, wait, before;
} Row;

static struct {
    pthread_once_t once;
    pthread_mutex_t m;
    const char *path;
    Row row[MAX_FNS];
    short slot[SLOTS]; /* row index + 1, 0 for none */
    int n, dropped, threads;
    int64_t last_end;
} prof = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, NULL, {{0}}, {0}, 0, 0, 0, 0};

/* row indices, heaviest first (the rows stay where the table finds them) */
static int by_wall(const void *a, const void *b)
{
    const Row *x = &prof.row[*(const int *)a], *y = &prof.row[*(const int *)b];
    return (x->wall + x->before < y->wall + y->before) -
           (x->wall + x->before > y->wall + y->before);
}

static void put_fn(FILE *f, dlrt_task_fn fn)
{
    Dl_info info;
    void *p;
    memcpy(&p, &fn, sizeof p); /* a function's address, as dladdr takes it */
    if (dladdr(p, &info) && info.dli_fname && info.dli_fbase)
        fprintf(f, "%s+0x%lx", info.dli_fname,
                (unsigned long)((const char *)p - (const char *)info.dli_fbase));
    else
        fprintf(f, "%p", p);
}

static void write_profile(void)
{
    FILE *f = strcmp(prof.path, "-") == 0 ? stderr : fopen(prof.path, "w");
    if (!f)
        return;
    pthread_mutex_lock(&prof.m);
    static int order[MAX_FNS];
    for (int i = 0; i < prof.n; i++)
        order[i] = i;
    qsort(order, (size_t)prof.n, sizeof order[0], by_wall);
    int64_t wall = 0, before = 0, wait = 0;
    for (int i = 0; i < prof.n; i++) {
        wall += prof.row[i].wall;
        before += prof.row[i].before;
        wait += prof.row[i].wait;
    }
    fprintf(f,
            "# dlrt loop profile, %d threads: loops %.1f ms (the caller waiting %.1f ms), "
            "alone between them %.1f ms\n",
            prof.threads, wall / 1e6, wait / 1e6, before / 1e6);
    fprintf(f, "# %9s %9s %10s %9s %9s %9s  function\n", "loops", "tasks/loop", "wall ms",
            "us/loop", "wait ms", "before ms");
    for (int i = 0; i < prof.n; i++) {
        const Row *r = &prof.row[order[i]];
        fprintf(f, "  %9lld %9.1f %10.2f %9.2f %9.2f %9.2f  ", (long long)r->loops,
                (double)r->tasks / (double)r->loops, r->wall / 1e6,
                r->wall / 1e3 / (double)r->loops, r->wait / 1e6, r->before / 1e6);
        put_fn(f, r->fn);
        fputc('\n', f);
    }
    if (prof.dropped)
        fprintf(f, "# %d loops of functions past the first %d not counted\n", prof.dropped,
                MAX_FNS);
    pthread_mutex_unlock(&prof.m);
    if (f != stderr)
        fclose(f);
}

static void init(void)
{
    const char *p = getenv("DLRT_PROFILE_LOOPS");
    if (p && *p && atexit(write_profile) == 0)
        prof.path = p;
}

int dlrt_profile_on(void)
{
    pthread_once(&prof.once, init);
    return prof.path != NULL;
}

void dlrt_profile_loop(dlrt_task_fn fn, int64_t ntasks, int threads, int64_t start, int64_t mine,
                       int64_t end)
{
    pthread_mutex_lock(&prof.m);
    prof.threads = threads;
    uintptr_t key;
    memcpy(&key, &fn, sizeof key);
    unsigned h = (unsigned)((key >> 4) * 0x9E3779B1u) % SLOTS;
    while (prof.slot[h] && prof.row[prof.slot[h] - 1].fn != fn)
        h = (h + 1) % SLOTS;
    if (!prof.slot[h] && prof.n == MAX_FNS) {
        prof.dropped++;
    } else {
        if (!prof.slot[h]) {
            prof.row[prof.n] = (Row){.fn = fn};
            prof.slot[h] = (short)++prof.n;
        }
        Row *r = &prof.row[prof.slot[h] - 1];
        r->loops++;
        r->tasks += ntasks;
        r->wall += end - start;
        r->wait += end - mine;
        if (prof.last_end && start > prof.last_end)
            r->before += start - prof.last_end;
    }
    prof.last_end = end;
    pthread_mutex_unlock(&prof.m);
}

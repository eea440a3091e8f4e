/*
 * harness_util.h: what the per-model test harnesses (tests/exec,
 * tests/gradcheck) share, so that both report, parse their settings and
 * draw their random values the same way. Header-only: each harness is one
 * translation unit built by its lit test's RUN lines, and the gradient-check
 * harness links only the runtime, so this depends on nothing but libc and
 * dlrt.h.
 *
 * Define HARNESS_TAG before including it: the word of the comment lines
 * that hold the settings ("# TAG: key=value ...") and the prefix of the
 * errors about them. The including harness defines MODEL (the model's
 * name) for MODEL_FN. Every function here is used by both harnesses, so
 * that plain static ones trip no unused-function warning.
 */
#ifndef TESTS_HARNESS_UTIL_H
#define TESTS_HARNESS_UTIL_H

#ifndef HARNESS_TAG
#error "define HARNESS_TAG (e.g. \"EXEC\") before including harness_util.h"
#endif

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlrt.h>

/* MODEL_FN(_create) is the generated model's NAME_create. */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define MODEL_FN(suffix) CAT(MODEL, suffix)

/* Reporting: a failed check is counted and the run goes on, so that one
 * log shows every failure; the exit status says whether there were any. */

static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputs("\n", stdout);
    va_end(ap);
    failures++;
}

/* A broken setup rather than a failed check: exit status 2. */
static _Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("harness: error: ", stdout);
    vprintf(fmt, ap);
    fputs("\n", stdout);
    va_end(ap);
    exit(2);
}

/* Settings */

/* The number v of setting key; anything else is fatal. */
static double parse_num(const char *key, const char *v)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end)
        fatal(HARNESS_TAG ": %s=%s is not a number", key, v);
    return d;
}

/* "A,B": two numbers and nothing else. */
static bool parse_pair(const char *v, double *a, double *b)
{
    char *end;
    *a = strtod(v, &end);
    if (end == v || *end != ',')
        return false;
    const char *w = end + 1;
    *b = strtod(w, &end);
    return end != w && *end == 0;
}

/* Hands every key=value word of the "# HARNESS_TAG:" lines of the file at
 * path to setting(), in order; line_start is true for the first word of each
 * line, where the words that apply to one tensor (input=NAME ...) end. */
static void read_settings(const char *path,
                          void (*setting)(const char *key, char *value, bool line_start))
{
    FILE *f = fopen(path, "r");
    if (!f)
        fatal("cannot read %s", path);
    const char *tag = "# " HARNESS_TAG ":";
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        if (strncmp(line, tag, strlen(tag)) != 0)
            continue;
        char *save;
        bool start = true;
        for (char *w = strtok_r(line + strlen(tag), " \t\r\n", &save); w;
             w = strtok_r(NULL, " \t\r\n", &save), start = false) {
            char *eq = strchr(w, '=');
            if (!eq)
                fatal(HARNESS_TAG ": expected key=value, got '%s'", w);
            *eq = 0;
            setting(w, eq + 1, start);
        }
    }
    free(line);
    fclose(f);
}

/* Random numbers: splitmix64, independent of the runtime's RNG, so that a
 * change there does not move the points the tests sample. */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double rng_uniform(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(rng_next() >> 11) * 0x1.0p-53);
}

/* Tensors, as the model's info describes them */

static size_t elem_size(dlrt_dtype t)
{
    return dlrt_dtype_size(t);
}

/* Elements of tensor t at a batch size (the runtime's count) */
static int64_t count_at(const dlrt_tensor_info *t, int max_batch, int batch)
{
    return dlrt_tensor_count(t, max_batch, batch);
}

#endif

/*
 * The training log: CSV rows of step, epoch, split, loss, accuracy,
 * learning rate, rate and elapsed time (dlrt_data.h). Train rows average
 * the steps since the previous one, so the file stays small and the curve
 * smooth whatever the step count; every row is flushed at once, so a plot
 * drawn during training sees it.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "dlrt.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "error.h"

static const char header[] = "step,epoch,split,loss,accuracy,lr,rate,elapsed\n";

int dlrt_log_open(dlrt_log *log, const char *path, int every, unsigned flags, dlrt_clock_fn clock,
                  void *clock_ctx)
{
    dlrt_error_clear();
    if (!log || !path || every < 1)
        return DLRT_EINVAL;
    memset(log, 0, sizeof *log);
    FILE *f = fopen(path, flags & DLRT_LOG_APPEND ? "a" : "w");
    if (!f)
        return dlrt_fail(DLRT_EIO, "%s: cannot write: %s", path, strerror(errno));
    log->f = f;
    log->clock = clock ? clock : dlrt_clock_monotonic;
    log->clock_ctx = clock_ctx;
    log->every = every;
    log->start = log->since = log->clock(log->clock_ctx);
    if (ftell(f) == 0 && fputs(header, f) < 0)
        return dlrt_fail(DLRT_EIO, "%s: write error: %s", path, strerror(errno));
    fflush(f);
    return DLRT_OK;
}

/* A number cell: empty for NAN, else %.*g. */
static void cell(FILE *f, double v, int digits)
{
    fputc(',', f);
    if (!isnan(v))
        fprintf(f, "%.*g", digits, v);
}

static int row(dlrt_log *log, int64_t step, double epoch, const char *split, double loss,
               double accuracy, double lr, double rate)
{
    FILE *f = log->f;
    fprintf(f, "%lld", (long long)step);
    cell(f, epoch, 6);
    fprintf(f, ",%s", split);
    cell(f, loss, 6);
    cell(f, accuracy, 6);
    cell(f, lr, 6);
    cell(f, rate, 6);
    cell(f, log->clock(log->clock_ctx) - log->start, 6);
    fputc('\n', f);
    return fflush(f) == 0 && !ferror(f) ? DLRT_OK : DLRT_EIO;
}

int dlrt_log_step(dlrt_log *log, int64_t step, double epoch, double loss, int64_t samples,
                  double lr)
{
    if (!log || !log->f)
        return DLRT_EINVAL;
    log->loss_sum += loss;
    log->steps++;
    log->samples += samples > 0 ? samples : 0;
    if (log->steps < log->every)
        return DLRT_OK;
    double now = log->clock(log->clock_ctx);
    double rate = now > log->since ? (double)log->samples / (now - log->since) : NAN;
    int rc = row(log, step, epoch, "train", log->loss_sum / (double)log->steps, NAN, lr, rate);
    log->since = now;
    log->loss_sum = 0;
    log->steps = log->samples = 0;
    return rc;
}

int dlrt_log_eval(dlrt_log *log, int64_t step, double epoch, const char *split, double loss,
                  double accuracy)
{
    if (!log || !log->f || !split || !*split || strpbrk(split, ",\n\""))
        return DLRT_EINVAL;
    return row(log, step, epoch, split, loss, accuracy, NAN, NAN);
}

int dlrt_log_close(dlrt_log *log)
{
    if (!log || !log->f)
        return DLRT_EINVAL;
    int bad = ferror(log->f) | fclose(log->f);
    log->f = NULL;
    return bad ? DLRT_EIO : DLRT_OK;
}

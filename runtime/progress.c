/*
 * A one-line progress bar for training loops.
 *
 * Everything shown is computed from the state at the last update, read
 * through an injectable clock, so dlrt_progress_render is a pure function
 * that tests can check to the character. On a terminal the line is redrawn
 * in place ("\r", the line, then ESC[K to erase leftovers of a longer
 * previous line) at most every 0.1 s; elsewhere one full line is printed
 * per tenth of the run so CI logs stay short and readable. On a terminal
 * the line fits its width (re-read at each redraw): a narrow terminal gets
 * a shorter bar, then no bar, rate or loss, instead of wrapped lines.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, fileno */
#endif
#include "dlrt.h"

#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define MIN_BAR_WIDTH 10
#define EMA_BETA 0.98
#define REDRAW_SECONDS 0.1
#define PLAIN_SECONDS 10.0 /* non-terminal cadence when the total is unknown */

double dlrt_clock_monotonic(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The terminal's width, 0 when unknown. */
static int terminal_width(FILE *out)
{
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

void dlrt_progress_init(dlrt_progress *p, FILE *out, dlrt_clock_fn clock, void *clock_ctx)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->out = out ? out : stderr;
    p->tty = isatty(fileno(p->out));
    p->clock = clock ? clock : dlrt_clock_monotonic;
    p->clock_ctx = clock_ctx;
    p->unit = "samples";
    p->loss_decay = 1;
    p->width = p->tty ? terminal_width(p->out) : 0;
}

void dlrt_progress_begin(dlrt_progress *p, int64_t total, const char *label)
{
    if (!p || !p->out)
        return;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total > 0 ? total : 0;
    p->step = p->samples = 0;
    p->start = p->now = p->clock(p->clock_ctx);
    p->last_draw = p->start;
    p->loss_raw = 0;
    p->loss_decay = 1;
    p->last_tenth = 0;
    p->drawn = 0;
}

/* m:ss, or h:mm:ss from an hour on. */
static void fmt_time(char *buf, size_t len, double t)
{
    long long s = t > 0 && t < 1e12 ? (long long)(t + 0.5) : 0; /* also NaN from odd clocks */
    if (s >= 3600)
        snprintf(buf, len, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, len, "%lld:%02lld", s / 60, s % 60);
}

/* What a line shows; parts are dropped in turn to fit a narrow terminal. */
typedef struct {
    int bar_width; /* 0: no bar */
    int rate, loss;
} Parts;

static int render_parts(const dlrt_progress *p, int final, Parts parts, char *buf, size_t len)
{
    char bar[BAR_WIDTH + 4], rate[48] = "", loss[40] = "", tail[48] = "", t[24];
    double elapsed = p->now - p->start;
    bar[0] = 0;
    if (p->total > 0 && parts.bar_width > 0) {
        int64_t step = p->step < p->total ? (p->step > 0 ? p->step : 0) : p->total;
        int w = parts.bar_width, filled = (int)(w * step / p->total);
        bar[0] = '[';
        for (int i = 0; i < w; i++)
            bar[1 + i] = i < filled ? '=' : i == filled ? '>' : ' ';
        bar[w + 1] = ']';
        bar[w + 2] = ' ';
        bar[w + 3] = 0;
    }
    if (parts.loss && p->loss_decay < 1)
        snprintf(loss, sizeof loss, "  loss %.4f", p->loss_raw / (1 - p->loss_decay));
    if (parts.rate && elapsed > 0 && p->samples > 0)
        snprintf(rate, sizeof rate, "  %.0f %.16s/s", p->samples / elapsed,
                 p->unit ? p->unit : "samples");
    if (final) {
        fmt_time(t, sizeof t, elapsed);
        snprintf(tail, sizeof tail, "  elapsed %s", t);
    } else if (p->total > 0 && p->step > 0 && p->step < p->total) {
        fmt_time(t, sizeof t, elapsed / p->step * (p->total - p->step));
        snprintf(tail, sizeof tail, "  ETA %s", t);
    }
    const char *sep = p->label[0] ? " " : "";
    if (p->total > 0) {
        /* Pad the count to the width of the total so the line does not jitter. */
        int w = snprintf(NULL, 0, "%lld", (long long)p->total);
        return snprintf(buf, len, "%s%s%s%*lld/%lld%s%s%s", p->label, sep, bar, w,
                        (long long)p->step, (long long)p->total, loss, rate, tail);
    }
    return snprintf(buf, len, "%s%sstep %lld%s%s%s", p->label, sep, (long long)p->step, loss, rate,
                    tail);
}

int dlrt_progress_render(const dlrt_progress *p, int final, char *buf, size_t len)
{
    if (!p || (!buf && len))
        return DLRT_EINVAL;
    Parts parts = {BAR_WIDTH, 1, 1};
    int n = render_parts(p, final, parts, NULL, 0);
    if (p->width > 0 && n > p->width) { /* narrow the bar first, then drop parts */
        int shrink = n - p->width;
        parts.bar_width = BAR_WIDTH - shrink >= MIN_BAR_WIDTH ? BAR_WIDTH - shrink : 0;
        n = render_parts(p, final, parts, NULL, 0);
        if (n > p->width)
            parts.rate = 0;
        n = render_parts(p, final, parts, NULL, 0);
        if (n > p->width)
            parts.loss = 0;
        n = render_parts(p, final, parts, NULL, 0);
    }
    int full = render_parts(p, final, parts, buf, len);
    if (p->width > 0 && full > p->width) { /* cut: the label alone is too long */
        if (buf && len > (size_t)p->width)
            buf[p->width] = 0;
        return p->width;
    }
    return full;
}

static void draw(dlrt_progress *p, int final)
{
    char line[256];
    if (p->tty) {
        int w = terminal_width(p->out);
        p->width = w > 1 ? w - 1 : p->width; /* the last column would wrap on some terminals */
    }
    dlrt_progress_render(p, final, line, sizeof line);
    if (p->tty)
        fprintf(p->out, "\r%s\033[K%s", line, final ? "\n" : "");
    else
        fprintf(p->out, "%s\n", line);
    fflush(p->out);
    p->last_draw = p->now;
    p->drawn = p->tty && !final;
}

void dlrt_progress_update(dlrt_progress *p, int64_t step, double loss, int64_t samples)
{
    if (!p || !p->out || !p->clock)
        return;
    p->now = p->clock(p->clock_ctx);
    p->step = step;
    if (samples > 0)
        p->samples += samples;
    p->loss_raw = EMA_BETA * p->loss_raw + (1 - EMA_BETA) * loss;
    p->loss_decay *= EMA_BETA;
    if (p->tty) {
        if (!p->drawn || p->now - p->last_draw >= REDRAW_SECONDS ||
            (p->total > 0 && step >= p->total))
            draw(p, 0);
    } else if (p->total > 0) {
        int64_t tenth = step >= p->total ? 10 : step > 0 ? 10 * step / p->total : 0;
        /* end() prints the 100% line. */
        if (tenth > p->last_tenth && tenth < 10) {
            p->last_tenth = (int)tenth;
            draw(p, 0);
        }
    } else if (p->now - p->last_draw >= PLAIN_SECONDS) {
        draw(p, 0);
    }
}

void dlrt_progress_end(dlrt_progress *p)
{
    if (!p || !p->out || !p->clock)
        return;
    p->now = p->clock(p->clock_ctx);
    draw(p, 1);
}

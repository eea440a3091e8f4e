/* libdlrt's training log (CSV rows, checked to the character with an
 * injected clock) and the progress bar fitted to a terminal's width. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checklib.h"
#include "dlrt.h"

static double fake_clock(void *ctx)
{
    return *(double *)ctx;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

SUITE("runtime-log");
GROUP(core, NULL, NULL);

TEST(core, log_rows)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/dlrt-log-%d.csv", (int)getpid());
    double now = 10;
    dlrt_log log;
    ck_assert_int_eq(dlrt_log_open(&log, path, 2, 0, fake_clock, &now), DLRT_OK);
    /* two steps of 64 samples in 0.5 s: mean loss 0.75, 256 samples/s */
    now = 10.25;
    ck_assert_int_eq(dlrt_log_step(&log, 1, 0.5, 1.0, 64, 0.1), DLRT_OK);
    now = 10.5;
    ck_assert_int_eq(dlrt_log_step(&log, 2, 1.0, 0.5, 64, 0.1), DLRT_OK);
    ck_assert_int_eq(dlrt_log_eval(&log, 2, 1.0, "test", 0.25, 91.5), DLRT_OK);
    ck_assert_int_eq(dlrt_log_eval(&log, 2, 1.0, "valid", NAN, 90), DLRT_OK);
    now = 11;
    ck_assert_int_eq(dlrt_log_step(&log, 3, 1.5, 2.0, 32, 0.05), DLRT_OK); /* not yet a row */
    ck_assert_int_eq(dlrt_log_eval(&log, 3, 1.5, "a,b", 1, 1), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_log_close(&log), DLRT_OK);
    ck_assert_str_eq(read_all(path), "step,epoch,split,loss,accuracy,lr,rate,elapsed\n"
                                     "2,1,train,0.75,,0.1,256,0.5\n"
                                     "2,1,test,0.25,91.5,,,0.5\n"
                                     "2,1,valid,,90,,,0.5\n");
    /* a resumed run appends rows, not a second header */
    now = 0;
    ck_assert_int_eq(dlrt_log_open(&log, path, 1, DLRT_LOG_APPEND, fake_clock, &now), DLRT_OK);
    now = 2;
    ck_assert_int_eq(dlrt_log_step(&log, 4, 2, 0.125, 10, 0.01), DLRT_OK);
    ck_assert_int_eq(dlrt_log_close(&log), DLRT_OK);
    ck_assert_str_eq(read_all(path), "step,epoch,split,loss,accuracy,lr,rate,elapsed\n"
                                     "2,1,train,0.75,,0.1,256,0.5\n"
                                     "2,1,test,0.25,91.5,,,0.5\n"
                                     "2,1,valid,,90,,,0.5\n"
                                     "4,2,train,0.125,,0.01,5,2\n");
    unlink(path);
    ck_assert_int_eq(dlrt_log_open(&log, "/nonexistent/dir/log.csv", 1, 0, NULL, NULL), DLRT_EIO);
    ck_assert_str_eq(dlrt_last_error(),
                     "/nonexistent/dir/log.csv: cannot write: No such file or directory");
    ck_assert_int_eq(dlrt_log_open(&log, path, 0, 0, NULL, NULL), DLRT_EINVAL);
}
END_TEST

/* The line of a run half done: 469/938 steps, loss 0.25, 64 samples a step
 * in 46.9 s. */
static void half_done(dlrt_progress *p, double *now)
{
    dlrt_progress_init(p, stderr, fake_clock, now);
    p->tty = 0;
    dlrt_progress_begin(p, 938, "epoch 1/3");
    for (int s = 1; s <= 469; s++) {
        *now += 0.1;
        dlrt_progress_update(p, s, 0.25, 64);
    }
}

TEST(core, progress_fits_width)
{
    double now = 0;
    dlrt_progress p;
    half_done(&p, &now);
    char line[256];
    const char *full = "epoch 1/3 [===============>              ] 469/938  loss 0.2500  640 "
                       "samples/s  ETA 0:47";
    p.width = 0;
    ck_assert_int_eq(dlrt_progress_render(&p, 0, line, sizeof line), (int)strlen(full));
    ck_assert_str_eq(line, full);
    /* 79 columns: the bar gives up what is missing */
    p.width = 79;
    dlrt_progress_render(&p, 0, line, sizeof line);
    ck_assert_str_eq(line, "epoch 1/3 [==========>          ] 469/938  loss 0.2500  640 samples/s  "
                           "ETA 0:47");
    ck_assert_int_le((int)strlen(line), 79);
    /* narrower: no bar, then no rate, then no loss */
    p.width = 60;
    dlrt_progress_render(&p, 0, line, sizeof line);
    ck_assert_str_eq(line, "epoch 1/3 469/938  loss 0.2500  640 samples/s  ETA 0:47");
    p.width = 40;
    dlrt_progress_render(&p, 0, line, sizeof line);
    ck_assert_str_eq(line, "epoch 1/3 469/938  loss 0.2500  ETA 0:47");
    p.width = 30;
    dlrt_progress_render(&p, 0, line, sizeof line);
    ck_assert_str_eq(line, "epoch 1/3 469/938  ETA 0:47");
    p.width = 12;
    ck_assert_int_eq(dlrt_progress_render(&p, 0, line, sizeof line), 12);
    ck_assert_str_eq(line, "epoch 1/3 46");
}
END_TEST

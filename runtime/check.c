/*
 * The messages of the input checks that generated code runs (dlc without
 * --no-checks; docs/API.md). Generated code scans an input, the loss or a
 * gradient itself, vectorized and without a call; only when that scan
 * finds a bad element does it call one of these, which find the first
 * one again and say which it is in dlrt_last_error().
 *
 * No stdio: the messages are built by hand. (On a target without an OS
 * generated code returns the codes without calling these: the message is
 * thread-local, which such targets lack.)
 */
#include "dlrt.h"
#include "error.h"

#include <math.h>
#include <string.h>

typedef struct {
    char s[256];
    size_t n;
} msg;

static void put(msg *m, const char *s)
{
    size_t k = strlen(s);
    if (k > sizeof m->s - 1 - m->n)
        k = sizeof m->s - 1 - m->n;
    memcpy(m->s + m->n, s, k);
    m->n += k;
    m->s[m->n] = 0;
}

static void put_int(msg *m, int64_t v)
{
    char buf[24], *p = buf + sizeof buf;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    *--p = 0;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    put(m, p);
}

/* "WHAT: element [s, e]" (row: elements per sample), "WHAT: element i",
 * or "WHAT" alone for a scalar (the loss) */
static void put_where(msg *m, const char *what, int64_t i, int64_t n, int64_t row)
{
    put(m, what);
    if (n == 1 && row == 0)
        return;
    put(m, ": element ");
    if (row == 1) {
        put(m, "[");
        put_int(m, i);
        put(m, "]");
    } else if (row > 0 && row < n) {
        put(m, "[");
        put_int(m, i / row);
        put(m, ", ");
        put_int(m, i % row);
        put(m, "] (sample ");
        put_int(m, i / row);
        put(m, ")");
    } else {
        put_int(m, i);
    }
}

int dlrt_check_nonfinite(const char *what, dlrt_dtype t, const void *x, const void *y, int64_t n,
                         int64_t row)
{
    for (int64_t i = 0; i < n; i++) {
        /* x + y in the tensor's own type, as it would be stored */
        double v;
        if (t == DLRT_F64) {
            v = ((const double *)x)[i] + (y ? ((const double *)y)[i] : 0.0);
        } else {
            float f = ((const float *)x)[i] + (y ? ((const float *)y)[i] : 0.0f);
            v = f;
        }
        if (isfinite(v))
            continue;
        msg m = {{0}, 0};
        put_where(&m, what, i, n, row);
        put(&m, isnan(v) ? " is NaN" : v > 0 ? " is +inf" : " is -inf");
        return dlrt_fail_text(DLRT_ENONFINITE, m.s);
    }
    return dlrt_fail_text(DLRT_ENONFINITE, what);
}

int dlrt_check_index(const char *what, const int32_t *x, int64_t n, int64_t row, int64_t hi)
{
    return dlrt_check_index_ignoring(what, x, n, row, hi, INT64_MIN); /* no i32 */
}

int dlrt_check_index_ignoring(const char *what, const int32_t *x, int64_t n, int64_t row,
                              int64_t hi, int64_t ignore)
{
    for (int64_t i = 0; i < n; i++) {
        if ((x[i] >= 0 && x[i] < hi) || x[i] == ignore)
            continue;
        msg m = {{0}, 0};
        put_where(&m, what, i, n, row);
        put(&m, " is ");
        put_int(&m, x[i]);
        put(&m, ", outside 0..");
        put_int(&m, hi - 1);
        return dlrt_fail_text(DLRT_ERANGE, m.s);
    }
    return dlrt_fail_text(DLRT_ERANGE, what);
}

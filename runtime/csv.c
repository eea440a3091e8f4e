/*
 * CSV files of numbers into a float matrix.
 *
 * The whole text is held in memory and scanned once, line by line. Each
 * field is checked against a strict decimal grammar
 *     number = [+-] (digits [. digits*] | . digits) [(e|E) [+-] digits]
 * before it is converted, so "1.5abc", "", "0x10" and "nan" are errors
 * that name their line and column instead of silently becoming 0. The
 * conversion uses strtod on a copy whose '.' is replaced by the current
 * locale's decimal point, which keeps the result locale-independent without
 * the non-portable strtod_l.
 */
#include "dlrt.h"
#include "file.h"

#include <float.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *p, *end;
    const char *line_start;
    int64_t line;
    char *err;
    size_t errlen;
} Scan;

static int col_of(const Scan *s, const char *at)
{
    return (int)(at - s->line_start) + 1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}
static int is_eol(const Scan *s, const char *q)
{
    return q == s->end || *q == '\n' || *q == '\r';
}
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *skip_blanks(const Scan *s, const char *q)
{
    while (q < s->end && is_blank(*q))
        q++;
    return q;
}

/* Moves past the line end at q (\n, \r\n or a lone \r) and starts a line. */
static void next_line(Scan *s, const char *q)
{
    if (q < s->end && *q == '\r')
        q++;
    if (q < s->end && *q == '\n')
        q++;
    s->p = s->line_start = q;
    s->line++;
}

/* The end of the field that starts at q: the next comma or line end. */
static const char *field_end(const Scan *s, const char *q)
{
    while (!is_eol(s, q) && *q != ',')
        q++;
    return q;
}

static int bad_field(Scan *s, const char *q, const char *what)
{
    const char *e = field_end(s, q);
    while (e > q && is_blank(e[-1]))
        e--;
    int n = (int)(e - q);
    if (n == 0)
        dlrt_seterr(s->err, s->errlen, "%s:%lld:%d: empty field", s->name, (long long)s->line,
                    col_of(s, q));
    else
        dlrt_seterr(s->err, s->errlen, "%s:%lld:%d: %s, found '%.*s'%s", s->name,
                    (long long)s->line, col_of(s, q), what, n > 32 ? 32 : n, q,
                    n > 32 ? "..." : "");
    return DLRT_EFORMAT;
}

/* Parses one number at s->p (after leading blanks) into *v. */
static int parse_number(Scan *s, float *v)
{
    const char *q = skip_blanks(s, s->p), *start = q;
    if (q < s->end && (*q == '+' || *q == '-'))
        q++;
    int digits = 0;
    while (q < s->end && is_digit(*q))
        q++, digits++;
    if (q < s->end && *q == '.') {
        q++;
        while (q < s->end && is_digit(*q))
            q++, digits++;
    }
    if (!digits)
        return bad_field(s, start, "expected a number");
    if (q < s->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < s->end && (*q == '+' || *q == '-'))
            q++;
        if (q == s->end || !is_digit(*q))
            return bad_field(s, start, "malformed exponent");
        while (q < s->end && is_digit(*q))
            q++;
    }
    const char *after = skip_blanks(s, q);
    if (!is_eol(s, after) && *after != ',')
        return bad_field(s, start, "expected a number");

    char buf[512];
    size_t n = (size_t)(q - start);
    if (n >= sizeof buf) {
        dlrt_seterr(s->err, s->errlen, "%s:%lld:%d: number longer than %zu characters", s->name,
                    (long long)s->line, col_of(s, start), sizeof buf - 1);
        return DLRT_EFORMAT;
    }
    memcpy(buf, start, n);
    buf[n] = 0;
    char dp = localeconv()->decimal_point[0];
    if (dp != '.' && dp != 0) {
        char *dot = strchr(buf, '.');
        if (dot)
            *dot = dp;
    }
    double d = strtod(buf, NULL);
    if (d > FLT_MAX || d < -FLT_MAX) {
        dlrt_seterr(s->err, s->errlen, "%s:%lld:%d: %s is out of the float range", s->name,
                    (long long)s->line, col_of(s, start), buf);
        return DLRT_ERANGE;
    }
    *v = (float)d;
    s->p = after;
    return DLRT_OK;
}

/* True when the line at s->p holds only blanks; then skips it. */
static int skip_blank_line(Scan *s)
{
    const char *q = skip_blanks(s, s->p);
    if (q < s->end && !is_eol(s, q))
        return 0;
    next_line(s, q);
    return 1;
}

static int parse_header(Scan *s, dlrt_csv *c)
{
    size_t cap = 0;
    for (;;) {
        const char *q = skip_blanks(s, s->p), *e = field_end(s, q);
        const char *t = e;
        while (t > q && is_blank(t[-1]))
            t--;
        if ((size_t)c->cols == cap) {
            cap = cap ? 2 * cap : 8;
            char **names = realloc(c->names, cap * sizeof *names);
            if (!names)
                return DLRT_ENOMEM;
            c->names = names;
        }
        char *nm = malloc((size_t)(t - q) + 1);
        if (!nm)
            return DLRT_ENOMEM;
        memcpy(nm, q, (size_t)(t - q));
        nm[t - q] = 0;
        c->names[c->cols++] = nm;
        if (is_eol(s, e)) {
            next_line(s, e);
            return DLRT_OK;
        }
        s->p = e + 1;
    }
}

void dlrt_csv_free(dlrt_csv *c)
{
    if (!c)
        return;
    if (c->names)
        for (int64_t i = 0; i < c->cols; i++)
            free(c->names[i]);
    free(c->names);
    free(c->data);
    free(c);
}

int dlrt_csv_parse(const char *text, size_t len, int has_header, const char *name, dlrt_csv **out,
                   char *err, size_t errlen)
{
    if (!out || (!text && len))
        return DLRT_EINVAL;
    *out = NULL;
    Scan s = {name ? name : "<csv>", text, text + len, text, 1, err, errlen};
    dlrt_csv *c = calloc(1, sizeof *c);
    if (!c)
        return DLRT_ENOMEM;
    int rc = DLRT_OK;
    size_t cap = 0, n = 0; /* floats allocated and stored */

    /* Spreadsheets often start UTF-8 files with a byte order mark. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        s.p = s.line_start = text + 3;

    while (s.p < s.end && skip_blank_line(&s))
        ;
    if (has_header) {
        if (s.p == s.end) {
            dlrt_seterr(err, errlen, "%s: no header line", s.name);
            rc = DLRT_EFORMAT;
            goto fail;
        }
        if ((rc = parse_header(&s, c)) < 0)
            goto fail;
    }
    while (s.p < s.end) {
        if (skip_blank_line(&s))
            continue;
        int64_t fields = 0;
        for (;;) {
            if (c->cols && fields == c->cols) {
                dlrt_seterr(err, errlen, "%s:%lld:%d: more than %lld fields in a record", s.name,
                            (long long)s.line, col_of(&s, s.p), (long long)c->cols);
                rc = DLRT_EFORMAT;
                goto fail;
            }
            if (n == cap) {
                if (cap > SIZE_MAX / 2 / sizeof(float)) {
                    rc = DLRT_ENOMEM;
                    goto fail;
                }
                cap = cap ? 2 * cap : 1024;
                float *d = realloc(c->data, cap * sizeof *d);
                if (!d) {
                    rc = DLRT_ENOMEM;
                    goto fail;
                }
                c->data = d;
            }
            if ((rc = parse_number(&s, &c->data[n])) < 0)
                goto fail;
            n++;
            fields++;
            if (is_eol(&s, s.p))
                break;
            s.p++; /* the comma */
        }
        if (!c->cols)
            c->cols = fields;
        else if (fields != c->cols) {
            dlrt_seterr(err, errlen, "%s:%lld:%d: record has %lld fields, expected %lld", s.name,
                        (long long)s.line, col_of(&s, s.p), (long long)fields, (long long)c->cols);
            rc = DLRT_EFORMAT;
            goto fail;
        }
        c->rows++;
        next_line(&s, s.p);
    }
    if (!c->data && !(c->data = malloc(1))) {
        rc = DLRT_ENOMEM;
        goto fail;
    }
    *out = c;
    return DLRT_OK;
fail:
    if (rc == DLRT_ENOMEM)
        dlrt_seterr(err, errlen, "%s: out of memory", s.name);
    dlrt_csv_free(c);
    return rc;
}

int dlrt_csv_load(const char *path, int has_header, dlrt_csv **out, char *err, size_t errlen)
{
    if (!path || !out)
        return DLRT_EINVAL;
    *out = NULL;
    unsigned char *text;
    size_t len;
    int rc = dlrt_read_file(path, &text, &len, err, errlen);
    if (rc == DLRT_OK)
        rc = dlrt_csv_parse((const char *)text, len, has_header, path, out, err, errlen);
    free(text);
    return rc;
}

int64_t dlrt_csv_column(const dlrt_csv *c, const char *name)
{
    if (!c || !name || !c->names)
        return DLRT_EINVAL;
    for (int64_t i = 0; i < c->cols; i++)
        if (strcmp(c->names[i], name) == 0)
            return i;
    return DLRT_EINVAL;
}

/* Drops column col from the matrix and the names, in place. */
static void remove_column(dlrt_csv *c, int64_t col)
{
    int64_t w = c->cols;
    float *d = c->data;
    for (int64_t r = 0; r < c->rows; r++) {
        const float *src = c->data + r * w;
        for (int64_t j = 0; j < w; j++)
            if (j != col)
                *d++ = src[j];
    }
    if (c->names) {
        free(c->names[col]);
        memmove(c->names + col, c->names + col + 1, (size_t)(w - col - 1) * sizeof *c->names);
    }
    c->cols--;
}

int dlrt_csv_take_column(dlrt_csv *c, int64_t col, float *out)
{
    if (!c || col < 0 || col >= c->cols || (!out && c->rows))
        return DLRT_EINVAL;
    for (int64_t r = 0; r < c->rows; r++)
        out[r] = c->data[r * c->cols + col];
    remove_column(c, col);
    return DLRT_OK;
}

int dlrt_csv_take_labels(dlrt_csv *c, int64_t col, int32_t *out, char *err, size_t errlen)
{
    if (!c || col < 0 || col >= c->cols || (!out && c->rows))
        return DLRT_EINVAL;
    for (int64_t r = 0; r < c->rows; r++) {
        float v = c->data[r * c->cols + col];
        /* floats at or beyond 2^31 cannot be an int32 label. */
        if (!(v >= -2147483648.0f && v < 2147483648.0f) || v != (float)(int64_t)v) {
            dlrt_seterr(err, errlen, "record %lld, column %lld: %g is not an integer label",
                        (long long)r + 1, (long long)col + 1, (double)v);
            return DLRT_ERANGE;
        }
    }
    for (int64_t r = 0; r < c->rows; r++)
        out[r] = (int32_t)c->data[r * c->cols + col];
    remove_column(c, col);
    return DLRT_OK;
}

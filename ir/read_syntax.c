/*
 * The textual IR reader's tokens and shared syntax (read_syntax.h): the
 * scanner, the token helpers, and attributes, types and locations. The
 * scanner never reads past the end, every number is range-checked, and
 * every loop advances: a fuzzer feeds it anything.
 */
#include "read_syntax.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ----------------------------------------------------------- */

static Loc tok_loc(const Reader *r, const Tok *t)
{
    return (Loc){r->file, t->line, t->col, t->len > 0 ? t->len : 1};
}

bool rd_fail(Reader *r, const Tok *t, const char *fmt, ...)
{
    if (r->failed)
        return false;
    r->failed = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_error(tok_loc(r, t), "%s", msg);
    return false;
}

const char *rd_tok_desc(const Tok *t, char *buf, size_t size)
{
    switch (t->k) {
    case T_EOF: return "end of file";
    case T_NL: return "end of line";
    default: {
        int n = t->len > 40 ? 40 : t->len;
        snprintf(buf, size, "'%.*s%s'", n, t->p, t->len > 40 ? "..." : "");
        for (char *q = buf; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                *q = '?';
        return buf;
    }
    }
}

/* ---- scanner ---------------------------------------------------------- */

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static int hexval(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool bad(Tok *t, const char *msg)
{
    t->k = T_BAD;
    t->msg = msg;
    return false;
}

/* Digits of a non-negative decimal into *out; false on overflow. A leading
 * '-' has been consumed by the caller and is applied here so that INT64_MIN
 * can be written. */
static bool parse_int(const char *p, const char *e, bool neg, int64_t *out)
{
    uint64_t v = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < e; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

static bool scan_string(Reader *r, Tok *t)
{
    StrBuf b = {0};
    const char *p = r->p + 1;
    for (;;) {
        if (p >= r->end || *p == '\n') {
            r->p = p;
            t->len = (int)(p - t->p);
            sb_free(&b);
            return bad(t, "missing terminating '\"' character");
        }
        char c = *p;
        if (c == '"')
            break;
        if (c == 0) {
            r->p = p + 1;
            t->len = (int)(p - t->p) + 1;
            sb_free(&b);
            return bad(t, "null character in string");
        }
        if (c != '\\') {
            sb_putc(&b, c);
            p++;
            continue;
        }
        char e = p + 1 < r->end ? p[1] : 0;
        const char *esc = NULL;
        switch (e) {
        case '"': sb_putc(&b, '"'); p += 2; break;
        case '\\': sb_putc(&b, '\\'); p += 2; break;
        case 'n': sb_putc(&b, '\n'); p += 2; break;
        case 't': sb_putc(&b, '\t'); p += 2; break;
        case 'r': sb_putc(&b, '\r'); p += 2; break;
        case 'x': {
            int h1 = p + 2 < r->end ? hexval(p[2]) : -1;
            int h2 = p + 3 < r->end ? hexval(p[3]) : -1;
            if (h1 < 0 || h2 < 0)
                esc = "\\x needs two hexadecimal digits";
            else if (h1 == 0 && h2 == 0)
                esc = "null character in string";
            else
                sb_putc(&b, (char)(h1 * 16 + h2));
            p += 4;
            break;
        }
        default: esc = "unknown escape sequence in string"; p += 2; break;
        }
        if (esc) {
            /* point at the escape itself */
            const char *at = p - (e == 'x' ? 4 : 2);
            t->col += (int)(at - t->p);
            t->p = at;
            t->len = 2;
            r->p = p < r->end ? p : r->end;
            sb_free(&b);
            return bad(t, esc);
        }
    }
    r->p = p + 1;
    t->len = (int)(r->p - t->p);
    t->k = T_STR;
    t->s = arena_strndup(r->a, b.s ? b.s : "", b.len);
    sb_free(&b);
    return true;
}

static bool scan_number(Reader *r, Tok *t)
{
    const char *p = r->p;
    bool neg = *p == '-';
    if (neg)
        p++;
    const char *digits = p;
    while (p < r->end && is_digit(*p))
        p++;
    const char *dend = p;
    int isfloat = 0; /* -1: junk follows the digits */
    if (p + 1 < r->end && *p == '.' && is_digit(p[1])) {
        isfloat = 1;
        for (p++; p < r->end && is_digit(*p);)
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        if (q < r->end && (*q == '+' || *q == '-'))
            q++;
        if (q < r->end && is_digit(*q)) {
            isfloat = 1;
            for (p = q; p < r->end && is_digit(*p);)
                p++;
        }
    }
    while (p < r->end && (is_alpha(*p) || is_digit(*p) || *p == '.'))
        p++, isfloat = -1;
    r->p = p;
    t->len = (int)(p - t->p);
    if (isfloat == -1)
        return bad(t, "invalid number");
    if (!isfloat) {
        t->k = T_INT;
        if (!parse_int(digits, dend, neg, &t->i))
            return bad(t, "integer out of range");
        return true;
    }
    char buf[512];
    if (t->len >= (int)sizeof buf)
        return bad(t, "number too long");
    memcpy(buf, t->p, (size_t)t->len);
    buf[t->len] = 0;
    errno = 0;
    t->f = strtod(buf, NULL);
    if (errno == ERANGE && isinf(t->f))
        return bad(t, "floating-point number out of range");
    t->k = T_FLOAT;
    return true;
}

static Tok scan(Reader *r)
{
    for (;;) {
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r'))
            r->p++;
        if (r->p < r->end && *r->p == '#')
            while (r->p < r->end && *r->p != '\n')
                r->p++;
        else
            break;
    }
    Tok t = {.p = r->p, .len = 1, .line = r->line, .col = (int)(r->p - r->bol) + 1};
    if (r->p >= r->end) {
        t.k = T_EOF;
        t.len = 0;
        return t;
    }
    char c = *r->p;
    if (c == '\n') {
        t.k = T_NL;
        r->p++;
        r->line++;
        r->bol = r->p;
        return t;
    }
    if (is_alpha(c)) {
        while (r->p < r->end && (is_alpha(*r->p) || is_digit(*r->p)))
            r->p++;
        t.k = T_IDENT;
        t.len = (int)(r->p - t.p);
        return t;
    }
    if (is_digit(c) || (c == '-' && r->p + 1 < r->end && is_digit(r->p[1]))) {
        scan_number(r, &t);
        return t;
    }
    if (c == '"') {
        scan_string(r, &t);
        return t;
    }
    if (c == '%') {
        const char *p = r->p + 1;
        while (p < r->end && is_digit(*p))
            p++;
        r->p = p;
        t.len = (int)(p - t.p);
        if (t.len == 1) {
            bad(&t, "expected a value number after '%'");
            return t;
        }
        t.k = T_VAL;
        if (!parse_int(t.p + 1, p, false, &t.i) || t.i > INT_MAX)
            bad(&t, "value number out of range");
        return t;
    }
    if (c == '<' && r->p + 1 < r->end && r->p[1] == '=') {
        r->p += 2;
        t.k = T_LE;
        t.len = 2;
        return t;
    }
    r->p++;
    if (c && strchr("=,()[]{}:@*+-?", c)) {
        t.k = T_PUNCT;
        return t;
    }
    bad(&t, (unsigned char)c < 0x20 || (unsigned char)c >= 0x7f ? "unexpected byte"
                                                                : "unexpected character");
    return t;
}

Tok *rd_peek(Reader *r)
{
    if (!r->peeked) {
        r->tok = scan(r);
        r->peeked = true;
    }
    return &r->tok;
}

Tok rd_next(Reader *r)
{
    Tok t = *rd_peek(r);
    r->peeked = false;
    return t;
}

/* ---- parser helpers --------------------------------------------------- */

/* A token the scanner rejected is reported as soon as the parser meets it. */
bool rd_check_bad(Reader *r, const Tok *t)
{
    if (t->k != T_BAD)
        return true;
    if (strcmp(t->msg, "unexpected character") == 0 || strcmp(t->msg, "unexpected byte") == 0) {
        unsigned char c = (unsigned char)*t->p;
        if (c >= 0x20 && c < 0x7f)
            return rd_fail(r, t, "unexpected character '%c'", c);
        return rd_fail(r, t, "unexpected byte 0x%02x", c);
    }
    return rd_fail(r, t, "%s", t->msg);
}

bool rd_is_punct(const Tok *t, char c) { return t->k == T_PUNCT && *t->p == c; }

bool rd_is_word(const Tok *t, const char *w)
{
    return t->k == T_IDENT && (size_t)t->len == strlen(w) && memcmp(t->p, w, (size_t)t->len) == 0;
}

bool rd_expect_punct(Reader *r, char c, Tok *out)
{
    Tok t = rd_next(r);
    if (!rd_check_bad(r, &t))
        return false;
    if (!rd_is_punct(&t, c)) {
        char buf[64];
        return rd_fail(r, &t, "expected '%c', found %s", c, rd_tok_desc(&t, buf, sizeof buf));
    }
    if (out)
        *out = t;
    return true;
}

bool rd_expect_word(Reader *r, const char *w)
{
    Tok t = rd_next(r);
    if (!rd_check_bad(r, &t))
        return false;
    if (!rd_is_word(&t, w)) {
        char buf[64];
        return rd_fail(r, &t, "expected '%s', found %s", w, rd_tok_desc(&t, buf, sizeof buf));
    }
    return true;
}

bool rd_expect_kind(Reader *r, TokKind k, const char *what, Tok *out)
{
    *out = rd_next(r);
    if (!rd_check_bad(r, out))
        return false;
    if (out->k != k) {
        char buf[64];
        return rd_fail(r, out, "expected %s, found %s", what, rd_tok_desc(out, buf, sizeof buf));
    }
    return true;
}

bool rd_expect_eol(Reader *r)
{
    Tok *t = rd_peek(r);
    if (!rd_check_bad(r, t))
        return false;
    if (t->k == T_EOF)
        return true;
    if (t->k != T_NL) {
        char buf[64];
        return rd_fail(r, t, "expected end of line, found %s", rd_tok_desc(t, buf, sizeof buf));
    }
    rd_next(r);
    return true;
}

void rd_skip_blank_lines(Reader *r)
{
    while (rd_peek(r)->k == T_NL)
        rd_next(r);
}

char *rd_tok_str(Reader *r, const Tok *t) { return arena_strndup(r->a, t->p, (size_t)t->len); }

/* A non-negative int that fits an int (locations, file indices). */
bool rd_expect_small(Reader *r, const char *what, int *out)
{
    Tok t;
    if (!rd_expect_kind(r, T_INT, what, &t))
        return false;
    if (t.i < 0 || t.i > INT_MAX)
        return rd_fail(r, &t, "%s out of range", what);
    *out = (int)t.i;
    return true;
}

/* float = FLOAT | INT | "inf" | "-" "inf" | "nan" */
bool rd_parse_float(Reader *r, const char *what, double *out)
{
    Tok t = rd_next(r);
    if (!rd_check_bad(r, &t))
        return false;
    bool neg = false;
    Tok first = t;
    if (rd_is_punct(&t, '-')) {
        neg = true;
        t = rd_next(r);
        if (!rd_check_bad(r, &t))
            return false;
        if (!rd_is_word(&t, "inf")) {
            char buf[64];
            return rd_fail(r, &t, "expected 'inf' after '-', found %s",
                           rd_tok_desc(&t, buf, sizeof buf));
        }
    }
    if (t.k == T_FLOAT)
        *out = t.f;
    else if (t.k == T_INT)
        *out = (double)t.i;
    else if (rd_is_word(&t, "inf"))
        *out = neg ? -INFINITY : INFINITY;
    else if (rd_is_word(&t, "nan"))
        *out = NAN;
    else {
        char buf[64];
        return rd_fail(r, &first, "%s wants a float, found %s", what,
                       rd_tok_desc(&first, buf, sizeof buf));
    }
    return true;
}

/* dim = INT | "none" | BATCH | BATCH "*" INT, as ir_dim_str prints them */
static bool parse_dim(Reader *r, const char *what, bool in_type, Dim *out, Tok *where)
{
    Tok t = rd_next(r);
    *where = t;
    if (!rd_check_bad(r, &t))
        return false;
    char buf[64];
    if (t.k == T_INT) {
        if (t.i == IR_NONE)
            return rd_fail(r, &t, "integer out of range in %s (write 'none' for an omitted bound)",
                           what);
        *out = (Dim){t.i, false};
    } else if (!in_type && rd_is_word(&t, "none")) {
        *out = (Dim){IR_NONE, false};
    } else if (t.k == T_IDENT) {
        const char *b = r->g->batch;
        if (!b || (size_t)t.len != strlen(b) || memcmp(t.p, b, (size_t)t.len) != 0) {
            if (!b)
                return rd_fail(r, &t, "unknown dimension %s: the model declares no batch symbol",
                               rd_tok_desc(&t, buf, sizeof buf));
            return rd_fail(r, &t, "unknown dimension %s; the batch symbol is '%s'",
                           rd_tok_desc(&t, buf, sizeof buf), b);
        }
        *out = (Dim){1, true};
        if (rd_is_punct(rd_peek(r), '*')) {
            rd_next(r);
            Tok k;
            if (!rd_expect_kind(r, T_INT, "an integer after '*'", &k))
                return false;
            if (k.i == IR_NONE)
                return rd_fail(r, &k, "integer out of range");
            out->n = k.i;
            where->len = (int)(k.p + k.len - t.p);
        }
    } else {
        return rd_fail(r, &t, "expected a dimension in %s, found %s", what,
                       rd_tok_desc(&t, buf, sizeof buf));
    }
    return true;
}

/* The value of one attribute, read as the schema's kind says. */
static bool parse_attr_value(Reader *r, const AttrSpec *sp, const char *what, Attr *at, Tok *vt)
{
    *vt = *rd_peek(r);
    if (!rd_check_bad(r, vt))
        return false;
    char buf[64];
    Tok t;
    switch (sp->kind) {
    case AK_INT:
        t = rd_next(r);
        if (t.k != T_INT)
            return rd_fail(r, &t, "%s wants an int, found %s", what,
                           rd_tok_desc(&t, buf, sizeof buf));
        at->kind = AK_INT;
        at->i = t.i;
        return true;
    case AK_FLOAT:
        at->kind = AK_FLOAT;
        return rd_parse_float(r, what, &at->f);
    case AK_BOOL:
        t = rd_next(r);
        if (!rd_is_word(&t, "true") && !rd_is_word(&t, "false"))
            return rd_fail(r, &t, "%s wants true or false, found %s", what,
                           rd_tok_desc(&t, buf, sizeof buf));
        at->kind = AK_BOOL;
        at->b = rd_is_word(&t, "true");
        return true;
    case AK_STR:
    case AK_ENUM:
        t = rd_next(r);
        if (t.k != T_STR)
            return rd_fail(r, &t, "%s wants a string, found %s", what,
                           rd_tok_desc(&t, buf, sizeof buf));
        at->kind = AK_STR;
        at->s = t.s;
        if (sp->kind == AK_ENUM) {
            for (int i = 0; i < sp->nchoices; i++)
                if (strcmp(sp->choices[i], t.s) == 0)
                    return true;
            StrBuf b = {0};
            for (int i = 0; i < sp->nchoices; i++)
                sb_printf(&b, "%s'%s'", i ? ", " : "", sp->choices[i]);
            rd_fail(r, &t, "%s must be one of %s, not \"%s\"", what, b.s ? b.s : "", t.s);
            sb_free(&b);
            return false;
        }
        return true;
    case AK_INTS:
    case AK_FLOATS: {
        bool ints = sp->kind == AK_INTS;
        if (ints && sp->nchoices > 0 && rd_peek(r)->k == T_STR) {
            /* one of the words that stand for the list (ints{a|b}) */
            t = rd_next(r);
            at->kind = AK_STR;
            at->s = t.s;
            for (int i = 0; i < sp->nchoices; i++)
                if (strcmp(sp->choices[i], t.s) == 0)
                    return true;
            return rd_fail(r, &t,
                           "%s must be a list of ints or one of the words of its schema, "
                           "not \"%s\"",
                           what, t.s);
        }
        t = rd_next(r);
        if (!rd_check_bad(r, &t))
            return false;
        if (!rd_is_punct(&t, '['))
            return rd_fail(r, &t, "%s wants a list of %s in [ ], found %s", what,
                           ints ? "ints" : "floats", rd_tok_desc(&t, buf, sizeof buf));
        Vec(Dim) dv = {0};
        Vec(double) fv = {0};
        if (!rd_is_punct(rd_peek(r), ']')) {
            for (;;) {
                if (ints) {
                    Dim d;
                    Tok w;
                    if (!parse_dim(r, what, false, &d, &w))
                        return false;
                    vec_push(r->a, &dv, d);
                } else {
                    double f;
                    if (!rd_parse_float(r, what, &f))
                        return false;
                    vec_push(r->a, &fv, f);
                }
                if (!rd_is_punct(rd_peek(r), ','))
                    break;
                rd_next(r);
            }
        }
        if (!rd_expect_punct(r, ']', NULL))
            return false;
        at->kind = sp->kind;
        if (ints) {
            at->ints.v = dv.v;
            at->ints.n = dv.n;
        } else {
            at->floats.v = fv.v;
            at->floats.n = fv.n;
        }
        return true;
    }
    }
    return false;
}

static const char *schema_suggest(const AttrSchema *s, const char *name)
{
    const char *cands[64];
    int n = s->n < 64 ? s->n : 64;
    for (int i = 0; i < n; i++)
        cands[i] = s->v[i].name;
    return diag_suggest(name, cands, n);
}

/*
 * attrs = [ "{" [ attr { "," attr } ] "}" ]      attr = NAME "=" value
 * `owner` names the op or builtin in messages ("conv2d", "optimizer adam").
 * Missing attributes with defaults are filled in; a missing required one is
 * reported at `head`.
 */
bool rd_parse_attrs(Reader *r, const AttrSchema *s, const char *owner, Op op, const Tok *head,
                    AttrList *l)
{
    if (rd_is_punct(rd_peek(r), '{')) {
        rd_next(r);
        if (!rd_is_punct(rd_peek(r), '}')) {
            for (;;) {
                Tok nt;
                if (!rd_expect_kind(r, T_IDENT, "an attribute name", &nt))
                    return false;
                char *name = rd_tok_str(r, &nt);
                int k = ir_schema_find(s, name);
                if (k < 0) {
                    const char *sug = schema_suggest(s, name);
                    if (s->n == 0)
                        return rd_fail(r, &nt, "%s takes no attributes", owner);
                    if (sug)
                        return rd_fail(r, &nt, "'%s' is not an attribute of %s; did you mean '%s'?",
                                       name, owner, sug);
                    return rd_fail(r, &nt, "'%s' is not an attribute of %s", name, owner);
                }
                if (ir_attrs_get(l, name))
                    return rd_fail(r, &nt, "attribute '%s' given twice", name);
                if (!rd_expect_punct(r, '=', NULL))
                    return false;
                char what[160];
                snprintf(what, sizeof what, "attribute '%s' of %s", name, owner);
                Attr at = {.name = name};
                Tok vt;
                if (!parse_attr_value(r, &s->v[k], what, &at, &vt))
                    return false;
                if ((op == OP_PARAM || op == OP_STATE) && strcmp(name, "init") == 0 &&
                    ir_builtin_lookup(init_info, INIT_COUNT, at.s) < 0) {
                    const char *cands[INIT_COUNT];
                    for (int i = 0; i < INIT_COUNT; i++)
                        cands[i] = init_info[i].text;
                    const char *sug = diag_suggest(at.s, cands, INIT_COUNT);
                    if (sug)
                        return rd_fail(r, &vt, "unknown initializer \"%s\"; did you mean '%s'?",
                                       at.s, sug);
                    return rd_fail(r, &vt, "unknown initializer \"%s\"", at.s);
                }
                ir_attrs_set(r->a, l, at);
                if (!rd_is_punct(rd_peek(r), ','))
                    break;
                rd_next(r);
            }
        }
        if (!rd_expect_punct(r, '}', NULL))
            return false;
    }
    for (int i = 0; i < s->n; i++) {
        const AttrSpec *sp = &s->v[i];
        if (ir_attrs_get(l, sp->name))
            continue;
        if (sp->has_default)
            ir_attrs_set(r->a, l, sp->def);
        else if (!sp->optional)
            return rd_fail(r, head, "%s needs attribute '%s'", owner, sp->name);
    }
    return true;
}

/* loc = [ "@" INT ":" INT ":" INT [ "+" INT ] ]; the first INT indexes the
 * file table, the length defaults to 1. */
bool rd_parse_loc(Reader *r, Loc *l)
{
    *l = (Loc){0};
    if (!rd_is_punct(rd_peek(r), '@'))
        return true;
    rd_next(r);
    Tok ft = *rd_peek(r);
    int fi = 0, line = 0, col = 0, len = 1;
    if (!rd_expect_small(r, "a file index", &fi))
        return false;
    if (fi >= r->files.n)
        return rd_fail(r, &ft, "file %d is not in the file table", fi);
    Tok lt;
    if (!rd_expect_punct(r, ':', NULL))
        return false;
    lt = *rd_peek(r);
    if (!rd_expect_small(r, "a line number", &line))
        return false;
    if (line == 0)
        return rd_fail(r, &lt, "line numbers start at 1");
    if (!rd_expect_punct(r, ':', NULL) || !rd_expect_small(r, "a column number", &col))
        return false;
    if (rd_is_punct(rd_peek(r), '+')) {
        rd_next(r);
        if (!rd_expect_small(r, "a length", &len))
            return false;
    }
    *l = (Loc){r->files.v[fi], line, col, len};
    return true;
}

/* type = "?" | DTYPE "[" [ dim { "," dim } ] "]" */
bool rd_parse_type(Reader *r, Node *n)
{
    Tok t = rd_next(r);
    if (!rd_check_bad(r, &t))
        return false;
    if (rd_is_punct(&t, '?')) {
        n->dtype = DT_UNKNOWN;
        return true;
    }
    char buf[64];
    if (t.k != T_IDENT)
        return rd_fail(r, &t, "expected a type such as f32[B, 10] or '?', found %s",
                       rd_tok_desc(&t, buf, sizeof buf));
    char *name = rd_tok_str(r, &t);
    DType dt = ir_dtype_parse(name);
    if (dt == DT_UNKNOWN)
        return rd_fail(r, &t, "unknown element type '%s' (f32, f64, i32, f16 or bf16)", name);
    n->dtype = dt;
    n->shape.rank = 0;
    if (!rd_expect_punct(r, '[', NULL))
        return false;
    if (!rd_is_punct(rd_peek(r), ']')) {
        for (;;) {
            Dim d;
            Tok w;
            if (!parse_dim(r, "a shape", true, &d, &w))
                return false;
            if (n->shape.rank == IR_MAX_RANK)
                return rd_fail(r, &w, "rank exceeds the maximum of %d", IR_MAX_RANK);
            if (d.n < 0 || (d.batch && d.n < 1))
                return rd_fail(r, &w, "invalid dimension %s", rd_tok_desc(&w, buf, sizeof buf));
            n->shape.d[n->shape.rank++] = d;
            if (!rd_is_punct(rd_peek(r), ','))
                break;
            rd_next(r);
        }
    }
    return rd_expect_punct(r, ']', NULL);
}
/*
 * The textual IR reader: the inverse of ir_print (docs/IR.md has the
 * grammar). A hand-written scanner feeds a recursive-descent parser, one
 * statement per line. Everything the text says is checked against the op
 * table, the attribute schemas and optim.def as it is read, so a graph this
 * returns passes ir_verify; the first mistake is reported through diag at
 * its line and column in the .ir file and the reader returns NULL. The
 * input may be anything (a fuzzer runs this): every loop advances, every
 * number is range-checked, and nothing recurses.
 */
#include "ir.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { IR_VERSION = 1, MAX_SOURCE_BYTES = 64 << 20 };

typedef enum { T_EOF, T_NL, T_IDENT, T_INT, T_FLOAT, T_STR, T_VAL, T_PUNCT, T_LE, T_BAD } TokKind;

typedef struct {
    TokKind k;
    const char *p; /* the token's text in the source */
    int len;
    int line, col;
    int64_t i;     /* T_INT, T_VAL */
    double f;      /* T_FLOAT */
    const char *s; /* T_STR, decoded */
    const char *msg; /* T_BAD: what is wrong */
} Tok;

typedef struct {
    int64_t id; /* the number written after % */
    Node *n;
} ValDef;

/* A `fused %N` suffix, resolved once every value is defined. */
typedef struct {
    Node *n;
    Tok t;
} FusedRef;

typedef struct {
    Arena *a;
    int file;
    const char *p, *end, *bol; /* cursor, end of text, beginning of line */
    int line;
    Tok tok;
    bool peeked;
    bool failed;
    Graph *g;
    Vec(int) files;  /* file table index -> diag file id */
    Vec(ValDef) vals; /* increasing ids */
    Vec(FusedRef) fused;
} Reader;

/* ---- errors ----------------------------------------------------------- */

static Loc tok_loc(const Reader *r, const Tok *t)
{
    return (Loc){r->file, t->line, t->col, t->len > 0 ? t->len : 1};
}

static bool fail(Reader *r, const Tok *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(Reader *r, const Tok *t, const char *fmt, ...)
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

/* How a token reads in a message: "'matmul'", "end of line". */
static const char *tok_desc(const Tok *t, char *buf, size_t size)
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

static Tok *peek(Reader *r)
{
    if (!r->peeked) {
        r->tok = scan(r);
        r->peeked = true;
    }
    return &r->tok;
}

static Tok next(Reader *r)
{
    Tok t = *peek(r);
    r->peeked = false;
    return t;
}

/* ---- parser helpers --------------------------------------------------- */

/* A token the scanner rejected is reported as soon as the parser meets it. */
static bool check_bad(Reader *r, const Tok *t)
{
    if (t->k != T_BAD)
        return true;
    if (strcmp(t->msg, "unexpected character") == 0 || strcmp(t->msg, "unexpected byte") == 0) {
        unsigned char c = (unsigned char)*t->p;
        if (c >= 0x20 && c < 0x7f)
            return fail(r, t, "unexpected character '%c'", c);
        return fail(r, t, "unexpected byte 0x%02x", c);
    }
    return fail(r, t, "%s", t->msg);
}

static bool is_punct(const Tok *t, char c) { return t->k == T_PUNCT && *t->p == c; }

static bool is_word(const Tok *t, const char *w)
{
    return t->k == T_IDENT && (size_t)t->len == strlen(w) && memcmp(t->p, w, (size_t)t->len) == 0;
}

static bool expect_punct(Reader *r, char c, Tok *out)
{
    Tok t = next(r);
    if (!check_bad(r, &t))
        return false;
    if (!is_punct(&t, c)) {
        char buf[64];
        return fail(r, &t, "expected '%c', found %s", c, tok_desc(&t, buf, sizeof buf));
    }
    if (out)
        *out = t;
    return true;
}

static bool expect_word(Reader *r, const char *w)
{
    Tok t = next(r);
    if (!check_bad(r, &t))
        return false;
    if (!is_word(&t, w)) {
        char buf[64];
        return fail(r, &t, "expected '%s', found %s", w, tok_desc(&t, buf, sizeof buf));
    }
    return true;
}

static bool expect_kind(Reader *r, TokKind k, const char *what, Tok *out)
{
    *out = next(r);
    if (!check_bad(r, out))
        return false;
    if (out->k != k) {
        char buf[64];
        return fail(r, out, "expected %s, found %s", what, tok_desc(out, buf, sizeof buf));
    }
    return true;
}

static bool expect_eol(Reader *r)
{
    Tok *t = peek(r);
    if (!check_bad(r, t))
        return false;
    if (t->k == T_EOF)
        return true;
    if (t->k != T_NL) {
        char buf[64];
        return fail(r, t, "expected end of line, found %s", tok_desc(t, buf, sizeof buf));
    }
    next(r);
    return true;
}

static void skip_blank_lines(Reader *r)
{
    while (peek(r)->k == T_NL)
        next(r);
}

static char *tok_str(Reader *r, const Tok *t) { return arena_strndup(r->a, t->p, (size_t)t->len); }

/* A non-negative int that fits an int (locations, file indices). */
static bool expect_small(Reader *r, const char *what, int *out)
{
    Tok t;
    if (!expect_kind(r, T_INT, what, &t))
        return false;
    if (t.i < 0 || t.i > INT_MAX)
        return fail(r, &t, "%s out of range", what);
    *out = (int)t.i;
    return true;
}

/* ---- values ----------------------------------------------------------- */

static Node *lookup_val(Reader *r, const Tok *t)
{
    int lo = 0, hi = r->vals.n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (r->vals.v[mid].id == t->i)
            return r->vals.v[mid].n;
        if (r->vals.v[mid].id < t->i)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    fail(r, t, "use of undefined value %%%" PRId64, t->i);
    return NULL;
}

static Node *expect_use(Reader *r)
{
    Tok t;
    if (!expect_kind(r, T_VAL, "a value such as %3", &t))
        return NULL;
    return lookup_val(r, &t);
}

/* float = FLOAT | INT | "inf" | "-" "inf" | "nan" */
static bool parse_float(Reader *r, const char *what, double *out)
{
    Tok t = next(r);
    if (!check_bad(r, &t))
        return false;
    bool neg = false;
    Tok first = t;
    if (is_punct(&t, '-')) {
        neg = true;
        t = next(r);
        if (!check_bad(r, &t))
            return false;
        if (!is_word(&t, "inf")) {
            char buf[64];
            return fail(r, &t, "expected 'inf' after '-', found %s", tok_desc(&t, buf, sizeof buf));
        }
    }
    if (t.k == T_FLOAT)
        *out = t.f;
    else if (t.k == T_INT)
        *out = (double)t.i;
    else if (is_word(&t, "inf"))
        *out = neg ? -INFINITY : INFINITY;
    else if (is_word(&t, "nan"))
        *out = NAN;
    else {
        char buf[64];
        return fail(r, &first, "%s wants a float, found %s", what, tok_desc(&first, buf, sizeof buf));
    }
    return true;
}

/* dim = INT | "none" | BATCH | BATCH "*" INT, as ir_dim_str prints them */
static bool parse_dim(Reader *r, const char *what, bool in_type, Dim *out, Tok *where)
{
    Tok t = next(r);
    *where = t;
    if (!check_bad(r, &t))
        return false;
    char buf[64];
    if (t.k == T_INT) {
        if (t.i == IR_NONE)
            return fail(r, &t, "integer out of range in %s (write 'none' for an omitted bound)", what);
        *out = (Dim){t.i, false};
    } else if (!in_type && is_word(&t, "none")) {
        *out = (Dim){IR_NONE, false};
    } else if (t.k == T_IDENT) {
        const char *b = r->g->batch;
        if (!b || (size_t)t.len != strlen(b) || memcmp(t.p, b, (size_t)t.len) != 0) {
            if (!b)
                return fail(r, &t, "unknown dimension %s: the model declares no batch symbol",
                            tok_desc(&t, buf, sizeof buf));
            return fail(r, &t, "unknown dimension %s; the batch symbol is '%s'",
                        tok_desc(&t, buf, sizeof buf), b);
        }
        *out = (Dim){1, true};
        if (is_punct(peek(r), '*')) {
            next(r);
            Tok k;
            if (!expect_kind(r, T_INT, "an integer after '*'", &k))
                return false;
            if (k.i == IR_NONE)
                return fail(r, &k, "integer out of range");
            out->n = k.i;
            where->len = (int)(k.p + k.len - t.p);
        }
    } else {
        return fail(r, &t, "expected a dimension in %s, found %s", what,
                    tok_desc(&t, buf, sizeof buf));
    }
    return true;
}

/* The value of one attribute, read as the schema's kind says. */
static bool parse_attr_value(Reader *r, const AttrSpec *sp, const char *what, Attr *at, Tok *vt)
{
    *vt = *peek(r);
    if (!check_bad(r, vt))
        return false;
    char buf[64];
    Tok t;
    switch (sp->kind) {
    case AK_INT:
        t = next(r);
        if (t.k != T_INT)
            return fail(r, &t, "%s wants an int, found %s", what, tok_desc(&t, buf, sizeof buf));
        at->kind = AK_INT;
        at->i = t.i;
        return true;
    case AK_FLOAT:
        at->kind = AK_FLOAT;
        return parse_float(r, what, &at->f);
    case AK_BOOL:
        t = next(r);
        if (!is_word(&t, "true") && !is_word(&t, "false"))
            return fail(r, &t, "%s wants true or false, found %s", what,
                        tok_desc(&t, buf, sizeof buf));
        at->kind = AK_BOOL;
        at->b = is_word(&t, "true");
        return true;
    case AK_STR:
    case AK_ENUM:
        t = next(r);
        if (t.k != T_STR)
            return fail(r, &t, "%s wants a string, found %s", what, tok_desc(&t, buf, sizeof buf));
        at->kind = AK_STR;
        at->s = t.s;
        if (sp->kind == AK_ENUM) {
            for (int i = 0; i < sp->nchoices; i++)
                if (strcmp(sp->choices[i], t.s) == 0)
                    return true;
            StrBuf b = {0};
            for (int i = 0; i < sp->nchoices; i++)
                sb_printf(&b, "%s'%s'", i ? ", " : "", sp->choices[i]);
            fail(r, &t, "%s must be one of %s, not \"%s\"", what, b.s ? b.s : "", t.s);
            sb_free(&b);
            return false;
        }
        return true;
    case AK_INTS:
    case AK_FLOATS: {
        bool ints = sp->kind == AK_INTS;
        if (ints && sp->nchoices > 0 && peek(r)->k == T_STR) {
            /* one of the words that stand for the list (ints{a|b}) */
            t = next(r);
            at->kind = AK_STR;
            at->s = t.s;
            for (int i = 0; i < sp->nchoices; i++)
                if (strcmp(sp->choices[i], t.s) == 0)
                    return true;
            return fail(r, &t,
                        "%s must be a list of ints or one of the words of its schema, "
                        "not \"%s\"",
                        what, t.s);
        }
        t = next(r);
        if (!check_bad(r, &t))
            return false;
        if (!is_punct(&t, '['))
            return fail(r, &t, "%s wants a list of %s in [ ], found %s", what,
                        ints ? "ints" : "floats", tok_desc(&t, buf, sizeof buf));
        Vec(Dim) dv = {0};
        Vec(double) fv = {0};
        if (!is_punct(peek(r), ']')) {
            for (;;) {
                if (ints) {
                    Dim d;
                    Tok w;
                    if (!parse_dim(r, what, false, &d, &w))
                        return false;
                    vec_push(r->a, &dv, d);
                } else {
                    double f;
                    if (!parse_float(r, what, &f))
                        return false;
                    vec_push(r->a, &fv, f);
                }
                if (!is_punct(peek(r), ','))
                    break;
                next(r);
            }
        }
        if (!expect_punct(r, ']', NULL))
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
static bool parse_attrs(Reader *r, const AttrSchema *s, const char *owner, Op op, const Tok *head,
                        AttrList *l)
{
    if (is_punct(peek(r), '{')) {
        next(r);
        if (!is_punct(peek(r), '}')) {
            for (;;) {
                Tok nt;
                if (!expect_kind(r, T_IDENT, "an attribute name", &nt))
                    return false;
                char *name = tok_str(r, &nt);
                int k = ir_schema_find(s, name);
                if (k < 0) {
                    const char *sug = schema_suggest(s, name);
                    if (s->n == 0)
                        return fail(r, &nt, "%s takes no attributes", owner);
                    if (sug)
                        return fail(r, &nt, "'%s' is not an attribute of %s; did you mean '%s'?",
                                    name, owner, sug);
                    return fail(r, &nt, "'%s' is not an attribute of %s", name, owner);
                }
                if (ir_attrs_get(l, name))
                    return fail(r, &nt, "attribute '%s' given twice", name);
                if (!expect_punct(r, '=', NULL))
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
                        return fail(r, &vt, "unknown initializer \"%s\"; did you mean '%s'?", at.s,
                                    sug);
                    return fail(r, &vt, "unknown initializer \"%s\"", at.s);
                }
                ir_attrs_set(r->a, l, at);
                if (!is_punct(peek(r), ','))
                    break;
                next(r);
            }
        }
        if (!expect_punct(r, '}', NULL))
            return false;
    }
    for (int i = 0; i < s->n; i++) {
        const AttrSpec *sp = &s->v[i];
        if (ir_attrs_get(l, sp->name))
            continue;
        if (sp->has_default)
            ir_attrs_set(r->a, l, sp->def);
        else if (!sp->optional)
            return fail(r, head, "%s needs attribute '%s'", owner, sp->name);
    }
    return true;
}

/* loc = [ "@" INT ":" INT ":" INT [ "+" INT ] ]; the first INT indexes the
 * file table, the length defaults to 1. */
static bool parse_loc(Reader *r, Loc *l)
{
    *l = (Loc){0};
    if (!is_punct(peek(r), '@'))
        return true;
    next(r);
    Tok ft = *peek(r);
    int fi = 0, line = 0, col = 0, len = 1;
    if (!expect_small(r, "a file index", &fi))
        return false;
    if (fi >= r->files.n)
        return fail(r, &ft, "file %d is not in the file table", fi);
    Tok lt;
    if (!expect_punct(r, ':', NULL))
        return false;
    lt = *peek(r);
    if (!expect_small(r, "a line number", &line))
        return false;
    if (line == 0)
        return fail(r, &lt, "line numbers start at 1");
    if (!expect_punct(r, ':', NULL) || !expect_small(r, "a column number", &col))
        return false;
    if (is_punct(peek(r), '+')) {
        next(r);
        if (!expect_small(r, "a length", &len))
            return false;
    }
    *l = (Loc){r->files.v[fi], line, col, len};
    return true;
}

/* type = "?" | DTYPE "[" [ dim { "," dim } ] "]" */
static bool parse_type(Reader *r, Node *n)
{
    Tok t = next(r);
    if (!check_bad(r, &t))
        return false;
    if (is_punct(&t, '?')) {
        n->dtype = DT_UNKNOWN;
        return true;
    }
    char buf[64];
    if (t.k != T_IDENT)
        return fail(r, &t, "expected a type such as f32[B, 10] or '?', found %s",
                    tok_desc(&t, buf, sizeof buf));
    char *name = tok_str(r, &t);
    DType dt = ir_dtype_parse(name);
    if (dt == DT_UNKNOWN)
        return fail(r, &t, "unknown element type '%s' (f32, f64 or i32)", name);
    n->dtype = dt;
    n->shape.rank = 0;
    if (!expect_punct(r, '[', NULL))
        return false;
    if (!is_punct(peek(r), ']')) {
        for (;;) {
            Dim d;
            Tok w;
            if (!parse_dim(r, "a shape", true, &d, &w))
                return false;
            if (n->shape.rank == IR_MAX_RANK)
                return fail(r, &w, "rank exceeds the maximum of %d", IR_MAX_RANK);
            if (d.n < 0 || (d.batch && d.n < 1))
                return fail(r, &w, "invalid dimension %s", tok_desc(&w, buf, sizeof buf));
            n->shape.d[n->shape.rank++] = d;
            if (!is_punct(peek(r), ','))
                break;
            next(r);
        }
    }
    return expect_punct(r, ']', NULL);
}

static const Node *find_named(const Graph *g, const char *name)
{
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->name && strcmp(g->nodes.v[i]->name, name) == 0)
            return g->nodes.v[i];
    return NULL;
}

/* Optimizer and schedule schemas, parsed once and kept like ir_op_schema's. */
static const AttrSchema *optim_schema(int k)
{
    static const AttrSchema *cache[OPTIM_COUNT];
    if (!cache[k])
        cache[k] = ir_schema_parse(optim_info[k].attrs);
    return cache[k];
}

static const AttrSchema *sched_schema(int k)
{
    static const AttrSchema *cache[SCHED_COUNT];
    if (!cache[k])
        cache[k] = ir_schema_parse(sched_info[k].attrs);
    return cache[k];
}

/* ---- statements ------------------------------------------------------- */

/* node = VAL "=" OP [ STRING ] [ "(" [ VAL { "," VAL } ] ")" ] attrs ":" type loc */
static bool parse_node(Reader *r)
{
    Tok vt = next(r);
    if (vt.i < 0)
        return fail(r, &vt, "value number out of range");
    if (r->vals.n > 0) {
        int64_t last = r->vals.v[r->vals.n - 1].id;
        if (vt.i <= last) {
            for (int i = 0; i < r->vals.n; i++)
                if (r->vals.v[i].id == vt.i)
                    return fail(r, &vt, "redefinition of value %%%" PRId64, vt.i);
            return fail(r, &vt, "value numbers must increase: %%%" PRId64 " after %%%" PRId64,
                        vt.i, last);
        }
    }
    if (!expect_punct(r, '=', NULL))
        return false;
    Tok ot;
    if (!expect_kind(r, T_IDENT, "an op name", &ot))
        return false;
    char *optext = tok_str(r, &ot);
    Op op = ir_op_lookup(optext);
    if (op == OP_COUNT) {
        const char *cands[OP_COUNT];
        for (int i = 0; i < OP_COUNT; i++)
            cands[i] = op_info[i].text;
        const char *sug = diag_suggest(optext, cands, OP_COUNT);
        if (sug)
            return fail(r, &ot, "unknown op '%s'; did you mean '%s'?", optext, sug);
        return fail(r, &ot, "unknown op '%s'", optext);
    }
    const OpInfo *oi = &op_info[op];

    const char *name = NULL;
    Tok nt = {0};
    if (peek(r)->k == T_STR) {
        nt = next(r);
        name = nt.s;
        if (find_named(r->g, name))
            return fail(r, &nt, "redefinition of \"%s\"", name);
    } else if (op == OP_INPUT || op == OP_PARAM || op == OP_STATE) {
        Tok *t = peek(r);
        if (!check_bad(r, t))
            return false;
        return fail(r, t, "%s needs a name", oi->text);
    }

    Vec(Node *) in = {0};
    if (is_punct(peek(r), '(')) {
        Tok open = next(r);
        if (!is_punct(peek(r), ')')) {
            for (;;) {
                Node *x = expect_use(r);
                if (!x)
                    return false;
                vec_push(r->a, &in, x);
                if (!is_punct(peek(r), ','))
                    break;
                next(r);
            }
        }
        if (!expect_punct(r, ')', NULL))
            return false;
        if (oi->arity >= 0 && in.n != oi->arity)
            return fail(r, &open, "%s takes %d input%s, found %d", oi->text, oi->arity,
                        oi->arity == 1 ? "" : "s", in.n);
    }
    if (oi->arity > 0 && in.n == 0)
        return fail(r, &ot, "%s takes %d input%s, found 0", oi->text, oi->arity,
                    oi->arity == 1 ? "" : "s");
    if (oi->arity < 0 && in.n == 0)
        return fail(r, &ot, "%s takes at least one input", oi->text);

    Node *n = ir_node_new(r->g, op, in.v, in.n, (Loc){0});
    n->name = name;
    ValDef vd = {vt.i, n};
    vec_push(r->a, &r->vals, vd);

    if (!parse_attrs(r, ir_op_schema(op), oi->text, op, &ot, &n->attrs))
        return false;
    if (!expect_punct(r, ':', NULL))
        return false;
    Tok tt = *peek(r);
    if (!parse_type(r, n))
        return false;
    /* States (batch-norm statistics) are typed by pass_shape from their user. */
    if (n->dtype == DT_UNKNOWN && (op == OP_INPUT || op == OP_PARAM))
        return fail(r, &tt, "%s \"%s\" needs a type", oi->text, name);
    if (!parse_loc(r, &n->loc))
        return false;
    if (is_word(peek(r), "fused")) {
        next(r);
        FusedRef f = {n, {0}};
        if (!expect_kind(r, T_VAL, "a value such as %3 after 'fused'", &f.t))
            return false;
        if (oi->kind == K_SOURCE)
            return fail(r, &f.t, "%s cannot be fused into another node", oi->text);
        vec_push(r->a, &r->fused, f);
    }
    return expect_eol(r);
}

/* Fusion targets point forward: they are checked once all nodes exist. A
 * group's root is not fused itself (docs/IR.md). */
static bool resolve_fused(Reader *r)
{
    for (int i = 0; i < r->fused.n; i++) {
        FusedRef *f = &r->fused.v[i];
        Node *x = lookup_val(r, &f->t);
        if (!x)
            return false;
        if (x->id <= f->n->id)
            return fail(r, &f->t, "a node can only be fused into a later node");
        f->n->fused = x;
    }
    for (int i = 0; i < r->fused.n; i++) {
        FusedRef *f = &r->fused.v[i];
        if (f->n->fused->fused)
            return fail(r, &f->t, "%%%" PRId64 " is itself fused into another node; name the root",
                        f->t.i);
    }
    return true;
}

/* output = "output" STRING "=" VAL loc */
static bool parse_output(Reader *r)
{
    next(r);
    Tok nt;
    if (!expect_kind(r, T_STR, "the output's name in quotes", &nt))
        return false;
    for (int i = 0; i < r->g->outputs.n; i++)
        if (strcmp(r->g->outputs.v[i].name, nt.s) == 0)
            return fail(r, &nt, "output \"%s\" defined twice", nt.s);
    if (!expect_punct(r, '=', NULL))
        return false;
    Node *x = expect_use(r);
    if (!x)
        return false;
    Loc l;
    if (!parse_loc(r, &l))
        return false;
    ir_output(r->g, nt.s, x, l);
    return expect_eol(r);
}

static bool lookup_builtin(Reader *r, const BuiltinInfo *tab, int n, const char *kind,
                           const Tok *t, int *out)
{
    char *name = tok_str(r, t);
    *out = ir_builtin_lookup(tab, n, name);
    if (*out >= 0)
        return true;
    const char *cands[32];
    int nc = n < 32 ? n : 32;
    for (int i = 0; i < nc; i++)
        cands[i] = tab[i].text;
    const char *sug = diag_suggest(name, cands, nc);
    if (sug)
        return fail(r, t, "unknown %s '%s'; did you mean '%s'?", kind, name, sug);
    return fail(r, t, "unknown %s '%s'", kind, name);
}

/*
 * train = "train" VAL "with" OPTIM attrs
 *         { "clip_value" "=" float | "clip_norm" "=" float
 *           | "schedule" "=" SCHED attrs } loc
 */
static bool parse_train(Reader *r)
{
    Tok head = next(r);
    if (r->g->train)
        return fail(r, &head, "more than one train statement");
    Train *t = arena_alloc(r->a, sizeof *t);
    t->sched = SCHED_CONSTANT;
    t->loss = expect_use(r);
    if (!t->loss || !expect_word(r, "with"))
        return false;
    Tok ot;
    int k;
    if (!expect_kind(r, T_IDENT, "an optimizer name", &ot) ||
        !lookup_builtin(r, optim_info, OPTIM_COUNT, "optimizer", &ot, &k))
        return false;
    t->optim = (Optim)k;
    char owner[64];
    snprintf(owner, sizeof owner, "optimizer %s", optim_info[k].text);
    if (!parse_attrs(r, optim_schema(k), owner, OP_COUNT, &ot,
                     &t->optim_args))
        return false;
    bool seen_sched = false;
    for (;;) {
        Tok *p = peek(r);
        if (is_word(p, "clip_value")) {
            Tok ct = next(r);
            if (t->has_clip_value)
                return fail(r, &ct, "clip_value given twice");
            if (!expect_punct(r, '=', NULL) || !parse_float(r, "clip_value", &t->clip_value))
                return false;
            t->has_clip_value = true;
        } else if (is_word(p, "clip_norm")) {
            Tok ct = next(r);
            if (t->has_clip)
                return fail(r, &ct, "clip_norm given twice");
            if (!expect_punct(r, '=', NULL) || !parse_float(r, "clip_norm", &t->clip_norm))
                return false;
            t->has_clip = true;
        } else if (is_word(p, "schedule")) {
            Tok st = next(r);
            if (seen_sched)
                return fail(r, &st, "schedule given twice");
            seen_sched = true;
            if (!expect_punct(r, '=', NULL))
                return false;
            if (!expect_kind(r, T_IDENT, "a schedule name", &st) ||
                !lookup_builtin(r, sched_info, SCHED_COUNT, "schedule", &st, &k))
                return false;
            t->sched = (Sched)k;
            snprintf(owner, sizeof owner, "schedule %s", sched_info[k].text);
            if (!parse_attrs(r, sched_schema(k), owner, OP_COUNT,
                             &st, &t->sched_args))
                return false;
        } else {
            break;
        }
    }
    if (!parse_loc(r, &t->loc))
        return false;
    r->g->train = t;
    return expect_eol(r);
}

/* grad = "grad" STRING "=" VAL: after the train statement, the gradient of
 * the loss with respect to the named trainable parameter (Train.grads). */
static bool parse_grad(Reader *r)
{
    Tok head = next(r);
    Train *t = r->g->train;
    if (!t)
        return fail(r, &head, "'grad' before the train statement");
    Tok nt;
    if (!expect_kind(r, T_STR, "a parameter's name in quotes", &nt))
        return false;
    const Node *p = find_named(r->g, nt.s);
    if (!p || p->op != OP_PARAM)
        return fail(r, &nt, "no parameter named \"%s\"", nt.s);
    if (attr_frozen(p))
        return fail(r, &nt, "parameter \"%s\" is frozen and has no gradient", nt.s);
    for (int i = 0; i < t->params.n; i++)
        if (t->params.v[i] == p)
            return fail(r, &nt, "gradient of \"%s\" given twice", nt.s);
    if (t->params.n > 0 && t->params.v[t->params.n - 1]->id > p->id)
        return fail(r, &nt, "gradients must follow the parameters' order");
    if (!expect_punct(r, '=', NULL))
        return false;
    Tok vt = *peek(r);
    Node *x = expect_use(r);
    if (!x)
        return false;
    if (x->dtype != DT_UNKNOWN && p->dtype != DT_UNKNOWN &&
        (x->dtype != p->dtype || !ir_shape_eq(&x->shape, &p->shape)))
        return fail(r, &vt, "the gradient of \"%s\" must have the parameter's type", nt.s);
    vec_push(r->a, &t->params, (Node *)p);
    vec_push(r->a, &t->grads, x);
    return expect_eol(r);
}

/* Gradients, when given, cover every trainable parameter. */
static bool check_grads(Reader *r, const Tok *end)
{
    const Train *t = r->g->train;
    if (!t || t->params.n == 0)
        return true;
    for (int i = 0; i < r->g->nodes.n; i++) {
        const Node *p = r->g->nodes.v[i];
        if (p->op != OP_PARAM || attr_frozen(p))
            continue;
        bool found = false;
        for (int j = 0; j < t->params.n && !found; j++)
            found = t->params.v[j] == p;
        if (!found)
            return fail(r, end, "no gradient given for parameter \"%s\"", p->name);
    }
    return true;
}

/* file = "file" INT STRING: registers the path with diag (reading the file
 * when it exists, so carets work) or reuses an id already registered. */
static bool parse_file(Reader *r)
{
    next(r);
    Tok it = *peek(r);
    int idx = 0;
    if (!expect_small(r, "a file index", &idx))
        return false;
    if (idx != r->files.n)
        return fail(r, &it, "expected file index %d, found %d", r->files.n, idx);
    Tok pt;
    if (!expect_kind(r, T_STR, "a path in quotes", &pt))
        return false;
    if (!expect_eol(r))
        return false;
    /* Reuse a registered file only past the previous entry's id: the table
     * must map onto increasing ids, the order ir_print lists files in. */
    int id = -1;
    int first = r->files.n ? r->files.v[r->files.n - 1] + 1 : 0;
    for (int i = first; i < diag_num_files() && id < 0; i++)
        if (strcmp(diag_file_path(i), pt.s) == 0)
            id = i;
    if (id < 0) {
        struct stat st;
        char *text = NULL;
        size_t len = 0;
        if (stat(pt.s, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= MAX_SOURCE_BYTES)
            text = read_file(pt.s, &len);
        id = diag_add_source(pt.s, text ? text : "", text ? len : 0);
        free(text);
    }
    vec_push(r->a, &r->files, id);
    return true;
}

/* model = "model" ( NAME | STRING ) [ "batch" NAME "<=" INT ] loc */
static bool parse_model(Reader *r)
{
    Tok nt = next(r);
    if (!check_bad(r, &nt))
        return false;
    char buf[64];
    if (nt.k != T_IDENT && nt.k != T_STR)
        return fail(r, &nt, "expected the model's name, found %s", tok_desc(&nt, buf, sizeof buf));
    r->g = ir_graph_new(r->a, nt.k == T_STR ? nt.s : tok_str(r, &nt));
    if (is_word(peek(r), "batch")) {
        next(r);
        Tok bt, mt;
        if (!expect_kind(r, T_IDENT, "the batch symbol", &bt))
            return false;
        if (is_word(&bt, "none"))
            return fail(r, &bt, "'none' cannot name the batch symbol");
        Tok le = next(r);
        if (!check_bad(r, &le))
            return false;
        if (le.k != T_LE)
            return fail(r, &le, "expected '<=', found %s", tok_desc(&le, buf, sizeof buf));
        if (!expect_kind(r, T_INT, "the maximum batch size", &mt))
            return false;
        if (mt.i < 1)
            return fail(r, &mt, "the maximum batch size must be positive");
        r->g->batch = tok_str(r, &bt);
        r->g->max_batch = mt.i;
    }
    if (!parse_loc(r, &r->g->loc))
        return false;
    return expect_eol(r);
}

/* ir = "dlc-ir" INT NL { file NL } model NL { stmt NL } "end" NL */
static bool parse_ir(Reader *r)
{
    skip_blank_lines(r);
    Tok t = next(r);
    if (!check_bad(r, &t))
        return false;
    Tok dash = *peek(r);
    if (!is_word(&t, "dlc") || !is_punct(&dash, '-') || dash.p != t.p + 3) {
        return fail(r, &t, "expected 'dlc-ir VERSION' on the first line");
    }
    next(r);
    Tok ir = next(r);
    if (!is_word(&ir, "ir") || ir.p != dash.p + 1)
        return fail(r, &t, "expected 'dlc-ir VERSION' on the first line");
    Tok vt;
    if (!expect_kind(r, T_INT, "the format version", &vt))
        return false;
    if (vt.i != IR_VERSION)
        return fail(r, &vt, "unsupported IR version %" PRId64 " (this dlc reads version %d)", vt.i,
                    IR_VERSION);
    if (!expect_eol(r))
        return false;
    for (;;) {
        skip_blank_lines(r);
        if (!is_word(peek(r), "file"))
            break;
        if (!parse_file(r))
            return false;
    }
    if (!expect_word(r, "model") || !parse_model(r))
        return false;
    for (;;) {
        skip_blank_lines(r);
        Tok *p = peek(r);
        if (!check_bad(r, p))
            return false;
        bool ok;
        if (p->k == T_VAL)
            ok = parse_node(r);
        else if (is_word(p, "output"))
            ok = parse_output(r);
        else if (is_word(p, "train"))
            ok = parse_train(r);
        else if (is_word(p, "grad"))
            ok = parse_grad(r);
        else if (is_word(p, "end")) {
            if (!resolve_fused(r) || !check_grads(r, p))
                return false;
            break;
        }
        else {
            char buf[64];
            return fail(r, p, "expected a node, 'output', 'train' or 'end', found %s",
                        tok_desc(p, buf, sizeof buf));
        }
        if (!ok)
            return false;
    }
    next(r);
    if (!expect_eol(r))
        return false;
    skip_blank_lines(r);
    Tok *e = peek(r);
    if (!check_bad(r, e))
        return false;
    if (e->k != T_EOF) {
        char buf[64];
        return fail(r, e, "expected end of file after 'end', found %s", tok_desc(e, buf, sizeof buf));
    }
    return true;
}

Graph *ir_read(Arena *a, int file)
{
    size_t len = 0;
    const char *text = diag_source_text(file, &len);
    if (!text) {
        diag_error_plain("ir_read: no source file %d", file);
        return NULL;
    }
    Reader r = {.a = a, .file = file, .p = text, .end = text + len, .bol = text, .line = 1};
    if (!parse_ir(&r))
        return NULL;
    ir_verify(r.g);
    return r.g;
}

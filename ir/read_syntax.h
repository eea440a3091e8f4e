/*
 * Private to the textual IR reader (ir/read.c, ir/read_syntax.c): the
 * token, the reader's state, and the syntax both files use: tokens,
 * attributes, types and locations (read_syntax.c); statements, values and
 * loop bodies are read.c's. Every rd_ function that returns bool reports
 * its failure through rd_fail (the first error wins) and returns false.
 */
#ifndef DLC_IR_READ_SYNTAX_H
#define DLC_IR_READ_SYNTAX_H

#include <stddef.h>

#include "ir.h"

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
    int depth; /* loop bodies open around the statement being read */
} Reader;

/* Errors: the first is reported at t through diag; later ones are dropped. */
bool rd_fail(Reader *r, const Tok *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* How a token reads in a message: "'matmul'", "end of line". */
const char *rd_tok_desc(const Tok *t, char *buf, size_t size);

/* Tokens: peek looks ahead one, next consumes it. */
Tok *rd_peek(Reader *r);
Tok rd_next(Reader *r);
bool rd_check_bad(Reader *r, const Tok *t);
bool rd_is_punct(const Tok *t, char c);
bool rd_is_word(const Tok *t, const char *w);
bool rd_expect_punct(Reader *r, char c, Tok *out);
bool rd_expect_word(Reader *r, const char *w);
bool rd_expect_kind(Reader *r, TokKind k, const char *what, Tok *out);
bool rd_expect_eol(Reader *r);
void rd_skip_blank_lines(Reader *r);
char *rd_tok_str(Reader *r, const Tok *t);
bool rd_expect_small(Reader *r, const char *what, int *out);

/* Values */
bool rd_parse_float(Reader *r, const char *what, double *out);
bool rd_parse_attrs(Reader *r, const AttrSchema *s, const char *owner, Op op, const Tok *head,
                    AttrList *l);
bool rd_parse_loc(Reader *r, Loc *l);
bool rd_parse_type(Reader *r, Node *n);

#endif

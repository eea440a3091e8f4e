/*
 * The .dl grammar (SPEC 1): a pure, reentrant Bison parser that builds the
 * AST of ast.h in the caller's arena. All parser state lives in FeParser
 * (no globals: the fuzzer runs many parses in one process). Locations carry
 * the file id; each AST node gets the span of the tokens it was built from.
 *
 * Syntax errors are reported in plain words ("expected ';' after 'x'") by
 * yyreport_syntax_error, which rephrases Bison's expected-token set; error
 * recovery resynchronizes at ';' and '}' so that independent mistakes are
 * all reported in one run. Nesting is bounded twice: the parser stack by
 * YYMAXDEPTH (deep parentheses, brackets, blocks) and expression trees by
 * FE_MAX_EXPR_DEPTH (long operator chains), so that later recursive passes
 * cannot overflow the C stack.
 */

%define api.pure full
%define parse.error custom
%define parse.lac full
%locations
%define api.location.type {FeLoc}
%lex-param {yyscan_t scanner}
%parse-param {yyscan_t scanner} {FeParser *ps}
%initial-action { @$ = (FeLoc){ps->file, 1, 1, 1, 1}; }

%code top {
/* Bison's yynerrs is set and never read in a pure parser; clang says so. */
#if defined __clang__
#pragma clang diagnostic ignored "-Wunused-but-set-variable"
#endif
}

%code requires {
#include <stdbool.h>
#include <stdint.h>

#include "ast.h"
#include "util.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* A token or rule span; last_column is one past the last character. */
typedef struct {
    int file;
    int first_line, first_column;
    int last_line, last_column;
} FeLoc;

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                            \
    do {                                                                       \
        if (N) {                                                               \
            (Cur).file = YYRHSLOC(Rhs, 1).file;                                \
            (Cur).first_line = YYRHSLOC(Rhs, 1).first_line;                    \
            (Cur).first_column = YYRHSLOC(Rhs, 1).first_column;                \
            (Cur).last_line = YYRHSLOC(Rhs, N).last_line;                      \
            (Cur).last_column = YYRHSLOC(Rhs, N).last_column;                  \
        } else {                                                               \
            (Cur).file = YYRHSLOC(Rhs, 0).file;                                \
            (Cur).first_line = (Cur).last_line = YYRHSLOC(Rhs, 0).last_line;   \
            (Cur).first_column = (Cur).last_column = YYRHSLOC(Rhs, 0).last_column; \
        }                                                                      \
    } while (0)

typedef Vec(Expr *) FeExprVec;
typedef Vec(Arg) FeArgVec;
typedef Vec(Stmt *) FeStmtVec;
typedef Vec(SliceItem) FeItemVec;
/* The parameter list of a def (names, where they are written, default
 * values or NULL), or the names of an unpacking (no defaults). */
typedef struct {
    Vec(const char *) names;
    Vec(Loc) locs;
    Vec(Expr *) defaults;
} FeParams;

typedef struct FeParser FeParser;

/* Upper bound on the depth of one expression tree. */
enum { FE_MAX_EXPR_DEPTH = 1000 };
}

%code provides {
/* A token the scanner returned, kept for error messages. */
typedef struct {
    int kind; /* yytoken_kind_t; 0 before the first token */
    int line, col, end_col;
    char text[32]; /* NUL-terminated, truncated with "..." */
} FeTok;

/* Everything one parse needs; the scanner reaches it as yyextra. */
struct FeParser {
    Arena *arena;
    int file;
    int line, col; /* where the scanner's next character is */
    FeTok tok, prev; /* the last token returned and the one before */
    /* After "expected ';'" at a line end, yylex delivers a ';' and then
     * the lookahead again, so the next line parses as its own statement. */
    int inject;      /* 2: ';' next, 1: the saved token next, 0: scan */
    int last_kind;   /* the last token yylex returned, with its value */
    YYSTYPE last_val;
    FeLoc last_loc;
    /* A syntax error right after a lexical one is its echo, not news. */
    int ntokens;          /* tokens scanned so far */
    int lex_error_at;     /* ntokens when the scanner last reported; -1: never */
    Vec(Def *) defs;
    Vec(Model *) models;
    Vec(Import) imports;
};


int fe_scan(YYSTYPE *lval, FeLoc *lloc, yyscan_t scanner);
}

%code {
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* From the scanner; lexer.h is not included because it declares a yylex
 * of its own, which here is the wrapper below. */
FeParser *yyget_extra(yyscan_t scanner);

/* Parentheses, brackets and blocks may nest about this deep. */
#define YYMAXDEPTH 2000
#define YYINITDEPTH 200

static void yyerror(FeLoc *loc, yyscan_t scanner, FeParser *ps, const char *msg);

static int yylex(YYSTYPE *lval, FeLoc *lloc, yyscan_t scanner)
{
    FeParser *ps = yyget_extra(scanner);
    if (ps->inject == 2) {
        ps->inject = 1;
        *lloc = (FeLoc){ps->file, ps->prev.line, ps->prev.end_col, ps->prev.line,
                        ps->prev.end_col};
        return ';';
    }
    if (ps->inject == 1) {
        ps->inject = 0;
        *lval = ps->last_val;
        *lloc = ps->last_loc;
        return ps->last_kind;
    }
    ps->last_kind = fe_scan(lval, lloc, scanner);
    ps->ntokens++;
    ps->last_val = *lval;
    ps->last_loc = *lloc;
    return ps->last_kind;
}

static Loc loc_of(FeLoc l)
{
    int len = l.last_line == l.first_line ? l.last_column - l.first_column : 1;
    return (Loc){l.file, l.first_line, l.first_column, len > 0 ? len : 1};
}

/* Expressions are allocated with their tree depth in front, so a parent's
 * depth is one more than its deepest child without a walk. */
typedef struct {
    int depth;
    Expr e;
} ExprBox;

static int depth_of(const Expr *e)
{
    return e ? ((const ExprBox *)(const void *)((const char *)e - offsetof(ExprBox, e)))->depth
             : 0;
}

static Expr *expr_new(FeParser *ps, ExprKind kind, FeLoc l, int child_depth)
{
    ExprBox *b = arena_alloc(ps->arena, sizeof *b);
    b->depth = child_depth + 1;
    b->e.kind = kind;
    b->e.loc = loc_of(l);
    /* Reported once, where the limit is crossed; enclosing nodes stay quiet. */
    if (b->depth == FE_MAX_EXPR_DEPTH + 1)
        diag_error(b->e.loc, "expression nested too deeply (more than %d levels)",
                   FE_MAX_EXPR_DEPTH);
    return &b->e;
}

static int max_int(int a, int b) { return a > b ? a : b; }

static Expr *bin_new(FeParser *ps, char op, Expr *lhs, Expr *rhs, FeLoc l, FeLoc opl)
{
    Expr *e = expr_new(ps, E_BIN, l, max_int(depth_of(lhs), depth_of(rhs)));
    e->bin.op = op;
    e->bin.op_loc = loc_of(opl);
    e->bin.lhs = lhs;
    e->bin.rhs = rhs;
    return e;
}

static bool is_comparison(const Expr *e)
{
    return e->kind == E_BIN && strchr("<>lgen", e->bin.op);
}

/* A comparison; lhs_l spans lhs with any parentheses around it, so that
 * (a < b) < c is allowed and a < b < c is not. */
static Expr *cmp_new(FeParser *ps, char op, Expr *lhs, Expr *rhs, FeLoc l, FeLoc opl, FeLoc lhs_l)
{
    Loc ll = loc_of(lhs_l);
    if (lhs && is_comparison(lhs) && lhs->loc.col == ll.col && lhs->loc.line == ll.line &&
        lhs->loc.len == ll.len)
        diag_error(loc_of(opl),
                   "comparisons cannot be chained; write (a < b) & (b < c) or (a < b) < c");
    return bin_new(ps, op, lhs, rhs, l, opl);
}

static int items_depth(const FeItemVec *v)
{
    int d = 0;
    for (int i = 0; i < v->n; i++) {
        const SliceItem *it = &v->v[i];
        d = max_int(d, max_int(depth_of(it->index), depth_of(it->start)));
        d = max_int(d, max_int(depth_of(it->stop), depth_of(it->step)));
    }
    return d;
}

static SliceItem range_item(Expr *start, Expr *stop, Expr *step, FeLoc l)
{
    return (SliceItem){.is_range = true, .start = start, .stop = stop, .step = step,
                       .loc = loc_of(l)};
}

static Stmt *stmt_new(FeParser *ps, StmtKind kind, FeLoc first, const char *name, FeLoc name_l)
{
    Stmt *s = arena_alloc(ps->arena, sizeof *s);
    s->kind = kind;
    s->loc = loc_of(first);
    s->name = name;
    s->name_loc = loc_of(name_l);
    return s;
}

/* NAMES = value; where first (when not NULL) precedes the names of rest. */
static Stmt *unpack_new(FeParser *ps, FeLoc at, const char *first, FeLoc first_l,
                        const FeParams *rest, Expr *value)
{
    int n = rest->names.n + (first != NULL);
    Stmt *s = stmt_new(ps, S_UNPACK, at, first ? first : rest->names.v[0],
                       first ? first_l : at);
    s->names = arena_alloc(ps->arena, sizeof *s->names * (size_t)n);
    s->name_locs = arena_alloc(ps->arena, sizeof *s->name_locs * (size_t)n);
    int k = 0;
    if (first) {
        s->names[k] = first;
        s->name_locs[k++] = loc_of(first_l);
    }
    for (int i = 0; i < rest->names.n; i++) {
        s->names[k] = rest->names.v[i];
        s->name_locs[k++] = rest->locs.v[i];
    }
    s->nnames = n;
    s->name = s->names[0];
    s->name_loc = s->name_locs[0];
    s->value = value;
    return s;
}

/* Initializers and optimizers are written as calls: zeros(), adam(lr = 1e-3). */
static Expr *want_call(Expr *e, const char *what)
{
    if (e && e->kind != E_CALL) {
        diag_error(e->loc, "%s must be a call, such as %s", what,
                   strcmp(what, "optimizer") == 0 ? "adam(lr = 1e-3)" : "zeros() or normal(0, 0.1)");
        return NULL;
    }
    return e;
}

#define NEW_VEC(T) ((T *)arena_alloc(ps->arena, sizeof(T)))
}

%union {
    const char *str;
    struct {
        double value;
        bool is_int;
        int64_t ival;
    } num;
    DType dtype;
    Expr *expr;
    Stmt *stmt;
    TypeExpr *type;
    SliceItem item;
    Arg arg;
    bool flag;
    FeExprVec *exprs;
    FeArgVec *args;
    FeStmtVec *stmts;
    FeItemVec *items;
    FeParams *params;
}

%token <str> IDENT "identifier"
%token <str> PATH "parameter path"
%token <num> NUM "number"
%token <str> STRING "string literal"
%token <dtype> TYPENAME "type (f32, f64, i32, f16 or bf16)"
%token DOTDOT "'..'"
%token LE "'<='"
%token GE "'>='"
%token EQEQ "'=='"
%token NE "'!='"
%token FLOORDIV "'//'"
/* Declared for the order in which error messages list them. */
%token ',' ':' ')' ']' '}'
%token KW_MODEL "'model'" KW_DEF "'def'" KW_RETURN "'return'" KW_BATCH "'batch'"
%token KW_LET "'let'" KW_INPUT "'input'" KW_PARAM "'param'" KW_FROZEN "'frozen'"
%token KW_OUTPUT "'output'" KW_TRAIN "'train'" KW_WITH "'with'" KW_FOR "'for'"
%token KW_IN "'in'" KW_IMPORT "'import'" KW_TRUE "'true'" KW_FALSE "'false'"
%token KW_IF "'if'" KW_ELSE "'else'" KW_AS "'as'"

%type <stmts> block stmts
%type <stmt> stmt if_stmt
%type <stmts> else_opt
%type <type> type
%type <exprs> dims exprs
%type <expr> expr conj cmp sum term mexpr unary postfix primary expr_opt param_init
%type <args> args args_opt train_opts
%type <arg> arg
%type <items> slice_items
%type <item> slice_item
%type <params> names def_params def_params_opt def_param
%type <flag> frozen_opt

%%

/* program = (def | model | import)* */
program:
    %empty
  | program item
  | program error ';'
  | program error '}'
  ;

/* def = "def" NAME "(" def_params? ")" block */
item:
    KW_DEF IDENT '(' def_params_opt ')' block {
        Def *d = arena_alloc(ps->arena, sizeof *d);
        d->name = $2;
        d->loc = loc_of(@2);
        d->params = $4->names.v;
        d->param_locs = $4->locs.v;
        d->defaults = $4->defaults.v;
        d->nparams = $4->names.n;
        d->body = $6->v;
        d->nbody = $6->n;
        vec_push(ps->arena, &ps->defs, d);
    }
  | KW_MODEL IDENT block {
        Model *m = arena_alloc(ps->arena, sizeof *m);
        m->name = $2;
        m->loc = loc_of(@2);
        m->body = $3->v;
        m->nbody = $3->n;
        vec_push(ps->arena, &ps->models, m);
    }
  | KW_IMPORT STRING ';' {
        vec_push(ps->arena, &ps->imports, ((Import){$2, loc_of(@2)}));
    }
  ;

/* def_params = def_param ("," def_param)*, def_param = NAME ("=" expr)?:
 * as in Python, a parameter with a default makes those after it take one */
def_params_opt:
    %empty { $$ = NEW_VEC(FeParams); }
  | def_params
  ;

def_params:
    def_param
  | def_params ',' def_param {
        $$ = $1;
        int n = $1->names.n;
        if ($1->defaults.v[n - 1] && !$3->defaults.v[0])
            diag_error(loc_of(@3), "parameter '%s' without a default follows one with a default",
                       $3->names.v[0]);
        vec_push(ps->arena, &$$->names, $3->names.v[0]);
        vec_push(ps->arena, &$$->locs, $3->locs.v[0]);
        vec_push(ps->arena, &$$->defaults, $3->defaults.v[0]);
    }
  ;

def_param:
    IDENT {
        $$ = NEW_VEC(FeParams);
        vec_push(ps->arena, &$$->names, $1);
        vec_push(ps->arena, &$$->locs, loc_of(@1));
        vec_push(ps->arena, &$$->defaults, (Expr *)NULL);
    }
  | IDENT '=' expr {
        $$ = NEW_VEC(FeParams);
        vec_push(ps->arena, &$$->names, $1);
        vec_push(ps->arena, &$$->locs, loc_of(@1));
        vec_push(ps->arena, &$$->defaults, $3);
    }
  ;

names:
    IDENT {
        $$ = NEW_VEC(FeParams);
        vec_push(ps->arena, &$$->names, $1);
        vec_push(ps->arena, &$$->locs, loc_of(@1));
    }
  | names ',' IDENT {
        $$ = $1;
        vec_push(ps->arena, &$$->names, $3);
        vec_push(ps->arena, &$$->locs, loc_of(@3));
    }
  ;

block:
    '{' stmts '}' { $$ = $2; }
  | '{' stmts error '}' { $$ = $2; }
  ;

stmts:
    %empty { $$ = NEW_VEC(FeStmtVec); }
  | stmts stmt { $$ = $1; vec_push(ps->arena, $$, $2); }
  | stmts error ';' { $$ = $1; }
  ;

stmt:
    KW_BATCH IDENT LE expr ';' {
        $$ = stmt_new(ps, S_BATCH, @1, $2, @2);
        $$->value = $4;
    }
  | KW_LET IDENT '=' expr ';' {
        $$ = stmt_new(ps, S_LET, @1, $2, @2);
        $$->value = $4;
    }
  | KW_INPUT IDENT ':' type ';' {
        $$ = stmt_new(ps, S_INPUT, @1, $2, @2);
        $$->type = $4;
    }
  | KW_PARAM IDENT ':' type param_init frozen_opt ';' {
        $$ = stmt_new(ps, S_PARAM, @1, $2, @2);
        $$->type = $4;
        $$->value = want_call($5, "a parameter initializer");
        $$->frozen = $6;
    }
  | IDENT '=' expr ';' {
        $$ = stmt_new(ps, S_ASSIGN, @1, $1, @1);
        $$->value = $3;
    }
  | IDENT '[' slice_items ']' '=' expr ';' {
        $$ = stmt_new(ps, S_SLICE_ASSIGN, @1, $1, @1);
        $$->items = $3->v;
        $$->nitems = $3->n;
        $$->value = $6;
    }
  | KW_OUTPUT IDENT '=' expr ';' {
        $$ = stmt_new(ps, S_OUTPUT, @1, $2, @2);
        $$->value = $4;
    }
  | KW_OUTPUT IDENT ';' { $$ = stmt_new(ps, S_OUTPUT, @1, $2, @2); }
  | KW_TRAIN IDENT KW_WITH expr train_opts ';' {
        $$ = stmt_new(ps, S_TRAIN, @1, $2, @2);
        $$->value = want_call($4, "optimizer");
        $$->opts = $5->v;
        $$->nopts = $5->n;
    }
  | KW_TRAIN IDENT KW_WITH expr train_opts KW_AS IDENT ';' {
        $$ = stmt_new(ps, S_TRAIN, @1, $2, @2);
        $$->value = want_call($4, "optimizer");
        $$->opts = $5->v;
        $$->nopts = $5->n;
        $$->objective = $7;
        $$->objective_loc = loc_of(@7);
    }
  | KW_FOR IDENT KW_IN expr DOTDOT expr block {
        $$ = stmt_new(ps, S_FOR, @1, $2, @2);
        $$->lo = $4;
        $$->hi = $6;
        $$->body = $7->v;
        $$->nbody = $7->n;
    }
  /* for c in [16, 32, 64] { ... }: over a list's elements */
  | KW_FOR IDENT KW_IN expr block {
        $$ = stmt_new(ps, S_FOR, @1, $2, @2);
        $$->lo = $4;
        $$->body = $5->v;
        $$->nbody = $5->n;
    }
  | KW_RETURN expr ';' {
        $$ = stmt_new(ps, S_RETURN, @1, NULL, @1);
        $$->value = $2;
    }
  /* h, c = layer(x);  (h, c) = layer(x); */
  | IDENT ',' names '=' expr ';' {
        $$ = unpack_new(ps, @1, $1, @1, $3, $5);
    }
  | '(' names ')' '=' expr ';' {
        $$ = unpack_new(ps, @1, NULL, @1, $2, $5);
    }
  | if_stmt
  | PATH '=' expr ';' {
        diag_error(loc_of(@1), "cannot assign to '%s'; a parameter path can only be read", $1);
        $$ = NULL;
    }
  ;

/* if_stmt = "if" expr block ("else" (block | if_stmt))? */
if_stmt:
    KW_IF expr block else_opt {
        $$ = stmt_new(ps, S_IF, @1, "if", @1);
        $$->value = $2;
        $$->body = $3->v;
        $$->nbody = $3->n;
        $$->orelse = $4 ? $4->v : NULL;
        $$->norelse = $4 ? $4->n : 0;
    }
  ;

else_opt:
    %empty { $$ = NULL; }
  | KW_ELSE block { $$ = $2; }
  | KW_ELSE if_stmt { $$ = NEW_VEC(FeStmtVec); vec_push(ps->arena, $$, $2); }
  ;

param_init:
    %empty { $$ = NULL; }
  | '=' expr { $$ = $2; }
  ;

frozen_opt:
    %empty { $$ = false; }
  | KW_FROZEN { $$ = true; }
  ;

/* train NAME with OPT(...) (, NAME = expr)* (as NAME)? */
train_opts:
    %empty { $$ = NEW_VEC(FeArgVec); }
  | train_opts ',' IDENT '=' expr {
        $$ = $1;
        vec_push(ps->arena, $$, ((Arg){$3, loc_of(@3), $5}));
    }
  ;

/* type = TYPENAME ("[" dims? "]")? */
type:
    TYPENAME {
        $$ = arena_alloc(ps->arena, sizeof *$$);
        $$->dtype = $1;
        $$->loc = loc_of(@$);
    }
  | TYPENAME '[' ']' {
        $$ = arena_alloc(ps->arena, sizeof *$$);
        $$->dtype = $1;
        $$->loc = loc_of(@$);
    }
  | TYPENAME '[' dims ']' {
        $$ = arena_alloc(ps->arena, sizeof *$$);
        $$->dtype = $1;
        $$->dims = $3->v;
        $$->ndims = $3->n;
        $$->loc = loc_of(@$);
    }
  ;

dims:
    expr { $$ = NEW_VEC(FeExprVec); vec_push(ps->arena, $$, $1); }
  | dims ',' expr { $$ = $1; vec_push(ps->arena, $$, $3); }
  ;

/* expr = conj ("|" conj)*: the loosest, as in C; a mask is written
 * (x > 0) & (y < 1) or, C's way, x > 0 & y < 1 */
expr:
    conj
  | expr '|' conj { $$ = bin_new(ps, '|', $1, $3, @$, @2); }
  ;

/* conj = cmp ("&" cmp)* */
conj:
    cmp
  | conj '&' cmp { $$ = bin_new(ps, '&', $1, $3, @$, @2); }
  ;

/* cmp = sum (("<" | ">" | "<=" | ">=" | "==" | "!=") sum)?; a chain
 * a < b < c means different things in C and Python, so it is an error */
cmp:
    sum
  | cmp '<' sum { $$ = cmp_new(ps, '<', $1, $3, @$, @2, @1); }
  | cmp '>' sum { $$ = cmp_new(ps, '>', $1, $3, @$, @2, @1); }
  | cmp LE sum { $$ = cmp_new(ps, 'l', $1, $3, @$, @2, @1); }
  | cmp GE sum { $$ = cmp_new(ps, 'g', $1, $3, @$, @2, @1); }
  | cmp EQEQ sum { $$ = cmp_new(ps, 'e', $1, $3, @$, @2, @1); }
  | cmp NE sum { $$ = cmp_new(ps, 'n', $1, $3, @$, @2, @1); }
  ;

/* sum = term (("+" | "-") term)* */
sum:
    term
  | sum '+' term { $$ = bin_new(ps, '+', $1, $3, @$, @2); }
  | sum '-' term { $$ = bin_new(ps, '-', $1, $3, @$, @2); }
  ;

/* term = mexpr (("*" | "/" | "//" | "%") mexpr)*: Python's precedence */
term:
    mexpr
  | term '*' mexpr { $$ = bin_new(ps, '*', $1, $3, @$, @2); }
  | term '/' mexpr { $$ = bin_new(ps, '/', $1, $3, @$, @2); }
  | term FLOORDIV mexpr { $$ = bin_new(ps, 'f', $1, $3, @$, @2); }
  | term '%' mexpr { $$ = bin_new(ps, '%', $1, $3, @$, @2); }
  ;

/* mexpr = unary ("@" unary)* */
mexpr:
    unary
  | mexpr '@' unary { $$ = bin_new(ps, '@', $1, $3, @$, @2); }
  ;

/* unary = ("-" | "!") unary | postfix */
unary:
    postfix
  | '-' unary {
        $$ = expr_new(ps, E_NEG, @$, depth_of($2));
        $$->operand = $2;
    }
  | '!' unary {
        $$ = expr_new(ps, E_NOT, @$, depth_of($2));
        $$->operand = $2;
    }
  ;

/* postfix = primary ("[" slice_items "]")* */
postfix:
    primary
  | postfix '[' slice_items ']' {
        $$ = expr_new(ps, E_INDEX, @$, max_int(depth_of($1), items_depth($3)));
        $$->index.base = $1;
        $$->index.items = $3->v;
        $$->index.nitems = $3->n;
    }
  ;

primary:
    NUM {
        $$ = expr_new(ps, E_NUM, @$, 0);
        $$->num.value = $1.value;
        $$->num.is_int = $1.is_int;
        $$->num.ival = $1.ival;
    }
  | STRING { $$ = expr_new(ps, E_STR, @$, 0); $$->str = $1; }
  /* a type name is its name as a string: cast(x, f64), zeros(..., dtype = i32) */
  | TYPENAME { $$ = expr_new(ps, E_STR, @$, 0); $$->str = ir_dtype_name($1); }
  | KW_TRUE { $$ = expr_new(ps, E_BOOL, @$, 0); $$->boolean = true; }
  | KW_FALSE { $$ = expr_new(ps, E_BOOL, @$, 0); $$->boolean = false; }
  | IDENT { $$ = expr_new(ps, E_NAME, @$, 0); $$->name = $1; }
  | IDENT '(' args_opt ')' {
        int d = 0;
        for (int i = 0; i < $3->n; i++)
            d = max_int(d, depth_of($3->v[i].value));
        $$ = expr_new(ps, E_CALL, @$, d);
        $$->call.callee = $1;
        $$->call.callee_loc = loc_of(@1);
        $$->call.args = $3->v;
        $$->call.nargs = $3->n;
    }
  | PATH { $$ = expr_new(ps, E_PATH, @$, 0); $$->name = $1; }
  | '(' expr ')' { $$ = $2; }
  | '(' expr ',' exprs ')' {
        int d = depth_of($2);
        for (int i = 0; i < $4->n; i++)
            d = max_int(d, depth_of($4->v[i]));
        $$ = expr_new(ps, E_TUPLE, @$, d);
        $$->list.n = $4->n + 1;
        $$->list.elems = arena_alloc(ps->arena, sizeof(Expr *) * (size_t)$$->list.n);
        $$->list.elems[0] = $2;
        for (int i = 0; i < $4->n; i++)
            $$->list.elems[i + 1] = $4->v[i];
    }
  | '[' ']' { $$ = expr_new(ps, E_LIST, @$, 0); }
  | '[' exprs ']' {
        int d = 0;
        for (int i = 0; i < $2->n; i++)
            d = max_int(d, depth_of($2->v[i]));
        $$ = expr_new(ps, E_LIST, @$, d);
        $$->list.elems = $2->v;
        $$->list.n = $2->n;
    }
  ;

exprs:
    expr { $$ = NEW_VEC(FeExprVec); vec_push(ps->arena, $$, $1); }
  | exprs ',' expr { $$ = $1; vec_push(ps->arena, $$, $3); }
  ;

/* args = arg ("," arg)*, positional ones first */
args_opt:
    %empty { $$ = NEW_VEC(FeArgVec); }
  | args
  ;

args:
    arg { $$ = NEW_VEC(FeArgVec); vec_push(ps->arena, $$, $1); }
  | args ',' arg {
        $$ = $1;
        const Arg *last = &$1->v[$1->n - 1];
        if (!$3.name && last->name)
            diag_error($3.value->loc, "positional argument after named argument '%s'",
                       last->name);
        else
            vec_push(ps->arena, $$, $3);
    }
  ;

arg:
    expr { $$ = (Arg){NULL, $1->loc, $1}; }
  | IDENT '=' expr { $$ = (Arg){$1, loc_of(@1), $3}; }
  ;

/* slice_item = expr | expr? ":" expr? (":" expr?)? */
slice_items:
    slice_item { $$ = NEW_VEC(FeItemVec); vec_push(ps->arena, $$, $1); }
  | slice_items ',' slice_item { $$ = $1; vec_push(ps->arena, $$, $3); }
  ;

slice_item:
    expr { $$ = (SliceItem){.index = $1, .loc = $1->loc}; }
  | expr_opt ':' expr_opt { $$ = range_item($1, $3, NULL, @$); }
  | expr_opt ':' expr_opt ':' expr_opt { $$ = range_item($1, $3, $5, @$); }
  ;

expr_opt:
    %empty { $$ = NULL; }
  | expr
  ;

%%

/* Bison calls this for stack exhaustion; syntax errors go through
 * yyreport_syntax_error below. */
static void yyerror(FeLoc *loc, yyscan_t scanner, FeParser *ps, const char *msg)
{
    (void)scanner;
    (void)ps;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(loc_of(*loc), "input nested too deeply (parentheses, brackets or blocks)");
    else
        diag_error(loc_of(*loc), "%s", msg);
}

static bool starts_expr(yysymbol_kind_t k)
{
    switch (k) {
    case YYSYMBOL_IDENT: case YYSYMBOL_PATH: case YYSYMBOL_NUM: case YYSYMBOL_STRING: case YYSYMBOL_KW_TRUE:
    case YYSYMBOL_KW_FALSE: case YYSYMBOL_TYPENAME:
        return true;
    default: {
        const char *n = yysymbol_name(k);
        return !strcmp(n, "'('") || !strcmp(n, "'['") || !strcmp(n, "'-'") || !strcmp(n, "'!'");
    }
    }
}

/* Tokens that could extend an expression already complete (or turn a
 * call argument into `name = value`). */
static bool continues_expr(yysymbol_kind_t k)
{
    static const char *const ops[] = {"'+'",  "'-'",  "'*'",  "'/'", "'//'", "'%'",
                                      "'@'",  "'['",  "'('",  "'='", "'<'",  "'>'",
                                      "'<='", "'>='", "'=='", "'!='", "'&'",  "'|'"};
    for (int i = 0; i < countof(ops); i++)
        if (!strcmp(yysymbol_name(k), ops[i]))
            return true;
    return false;
}

static void tok_desc(char *buf, size_t size, const FeTok *t)
{
    if (t->kind == YYEOF)
        snprintf(buf, size, "end of file");
    else if (t->kind == STRING)
        snprintf(buf, size, "string literal");
    else
        snprintf(buf, size, "'%s'", t->text);
}

/* Rephrases Bison's view ("unexpected X, expecting A or B") the way a C
 * compiler would: expression and statement starters collapse into
 * "expression" and "statement", operators that could continue a finished
 * expression are left out, and a missing ';' is reported right after the
 * previous token when the next one is on a later line. */
static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, FeParser *ps)
{
    (void)scanner;
    if (ps->lex_error_at >= 0 && ps->ntokens - ps->lex_error_at <= 2)
        return 0;
    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
    if (n < 0)
        return n;
    bool any_expr = false, any_stmt = false, semi = false, model = false, close_brace = false;
    for (int i = 0; i < n; i++) {
        any_expr |= exp[i] == YYSYMBOL_NUM;
        semi |= !strcmp(yysymbol_name(exp[i]), "';'");
        close_brace |= !strcmp(yysymbol_name(exp[i]), "'}'");
        model |= exp[i] == YYSYMBOL_KW_MODEL;
        any_stmt |= exp[i] == YYSYMBOL_KW_LET;
    }
    const FeTok *la = &ps->tok;
    const char *want[YYNTOKENS];
    int nwant = 0;
    if (semi) {
        want[nwant++] = "';'";
    } else if (any_stmt) {
        /* At the start of a statement: a missing '}' matters only at the end. */
        want[nwant++] = la->kind == YYEOF && close_brace ? "'}'" : "statement";
    } else {
        if (any_expr)
            want[nwant++] = "expression";
        int nrest = 0;
        for (int i = 0; i < n; i++)
            nrest += !continues_expr(exp[i]) && exp[i] != YYSYMBOL_YYEOF;
        for (int i = 0; i < n; i++) {
            if (exp[i] == YYSYMBOL_YYEOF || (any_expr && starts_expr(exp[i])) ||
                (!any_expr && nrest > 0 && continues_expr(exp[i])))
                continue;
            want[nwant++] = yysymbol_name(exp[i]);
        }
    }

    char la_desc[64], prev_desc[64];
    tok_desc(la_desc, sizeof la_desc, la);
    tok_desc(prev_desc, sizeof prev_desc, &ps->prev);
    Loc at = {ps->file, la->line, la->col, la->end_col - la->col};
    if (at.len < 1)
        at.len = 1;

    if (la->kind == '}' && model && !close_brace) {
        diag_error(at, "extraneous closing brace ('}')");
        return 0;
    }
    if (nwant == 0 || nwant > 4) {
        diag_error(at, "unexpected %s", la_desc);
        return 0;
    }
    StrBuf list = {0};
    for (int i = 0; i < nwant; i++) {
        if (i > 0)
            sb_puts(&list, i == nwant - 1 ? " or " : ", ");
        sb_puts(&list, want[i]);
    }
    bool after_prev = ps->prev.kind != 0 && (la->kind == YYEOF || la->line > ps->prev.line);
    if (after_prev) {
        Loc end = {ps->file, ps->prev.line, ps->prev.end_col, 1};
        if (la->kind == YYEOF) {
            diag_error(end, "expected %s at end of file", list.s);
        } else {
            diag_error(end, "expected %s after %s", list.s, prev_desc);
            if (semi)
                ps->inject = 2;
        }
    } else if (la->kind == YYEOF) {
        diag_error(at, "expected %s at end of file", list.s);
    } else {
        diag_error(at, "expected %s before %s", list.s, la_desc);
    }
    sb_free(&list);
    return 0;
}

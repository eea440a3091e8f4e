/*
 * The abstract syntax tree of a .dl file, as the parser builds it and the
 * lowering consumes it. Nothing here is evaluated yet: constants, calls
 * and loops are resolved by lower.c. Every node keeps its source position.
 */
#ifndef DLC_AST_H
#define DLC_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "ir.h"

typedef struct Expr Expr;
typedef struct Stmt Stmt;

typedef enum {
    E_NUM,   /* 42, 0.5, 1e-3 */
    E_STR,   /* "tanh" (escapes already decoded) */
    E_BOOL,  /* true, false */
    E_NAME,  /* x */
    E_BIN,   /* a + b, a - b, a * b, a / b, a // b, a % b, a @ b, comparisons, a & b, a | b */
    E_NEG,   /* -a */
    E_NOT,   /* !a */
    E_CALL,  /* f(a, b, name = c) */
    E_INDEX, /* x[:, t, 2:5] */
    E_LIST,  /* [a, b] */
    E_TUPLE, /* (a, b): a def's several results */
    E_PATH,  /* fc1.w: a parameter made by an earlier statement */
} ExprKind;

/* One argument of a call: positional when name is NULL. */
typedef struct {
    const char *name;
    Loc name_loc;
    Expr *value;
} Arg;

/* One item between the brackets of x[...]: either a single index (the
 * dimension disappears) or a range start:stop[:step] with optional parts. */
typedef struct {
    bool is_range;
    Expr *index;              /* !is_range */
    Expr *start, *stop, *step; /* is_range; each may be NULL */
    Loc loc;
} SliceItem;

struct Expr {
    ExprKind kind;
    Loc loc;
    union {
        struct {
            double value;
            bool is_int;  /* written without '.', 'e' or 'E' */
            int64_t ival; /* when is_int */
        } num;
        const char *str;  /* E_STR */
        bool boolean;     /* E_BOOL */
        const char *name; /* E_NAME; E_PATH: the whole path, "fc1.w" */
        struct {
            /* '+', '-', '*', '/', 'f' (//), '%', '@', '&', '|', and the comparisons
             * '<', '>', 'l' (<=), 'g' (>=), 'e' (==), 'n' (!=) */
            char op;
            Expr *lhs, *rhs;
            Loc op_loc; /* the operator token: where errors about it point */
        } bin;
        Expr *operand; /* E_NEG, E_NOT */
        struct {
            const char *callee;
            Loc callee_loc;
            Arg *args;
            int nargs;
        } call;
        struct {
            Expr *base;
            SliceItem *items;
            int nitems;
        } index;
        struct {
            Expr **elems;
            int n;
        } list; /* E_LIST, E_TUPLE */
    };
};

/* f32[B, 784]; f32[] and a bare f32 are scalars. */
typedef struct {
    DType dtype;
    Expr **dims;
    int ndims;
    Loc loc;
} TypeExpr;

typedef enum {
    S_BATCH,        /* batch B <= 256; */
    S_LET,          /* let H = 256; */
    S_INPUT,        /* input x: f32[B, 784]; */
    S_PARAM,        /* param w: f32[4, 4] = normal(0, 0.1) frozen; */
    S_ASSIGN,       /* h = relu(x); */
    S_SLICE_ASSIGN, /* ys[:, t, :] = h; */
    S_OUTPUT,       /* output probs = softmax(z);  or  output probs; */
    S_TRAIN,        /* train loss with adam(lr = 1e-3), clip_norm = 1 as main; */
    S_FOR,          /* for i in 0..T { ... } */
    S_RETURN,       /* return x; */
    S_UNPACK,       /* h, c = layer(x);  or  (h, c) = layer(x); */
    S_IF,           /* if use_1x1 { ... } else { ... } */
} StmtKind;

struct Stmt {
    StmtKind kind;
    Loc loc;           /* the statement's first token */
    const char *name;  /* bound or declared name; the loop variable of S_FOR */
    Loc name_loc;
    Expr *value;       /* S_BATCH: the bound N; S_LET, S_ASSIGN, S_SLICE_ASSIGN,
                          S_RETURN, S_UNPACK: the expression; S_OUTPUT: the
                          expression or NULL; S_PARAM: the initializer call or
                          NULL; S_TRAIN: the optimizer call; S_IF: the
                          condition */
    TypeExpr *type;    /* S_INPUT, S_PARAM */
    bool frozen;       /* S_PARAM */
    SliceItem *items;  /* S_SLICE_ASSIGN */
    int nitems;
    Arg *opts;         /* S_TRAIN: clip_norm = ..., schedule = ..., params = [...] */
    int nopts;
    const char *objective; /* S_TRAIN: `as NAME`, or NULL */
    Loc objective_loc;
    Expr *lo, *hi;     /* S_FOR: lo..hi, hi exclusive; hi NULL: over the list lo */
    Stmt **body;       /* S_FOR; S_IF: the statements run when the condition holds */
    int nbody;
    Stmt **orelse;     /* S_IF: the else branch (an `else if` is one S_IF), or NULL */
    int norelse;
    const char **names; /* S_UNPACK: the bound names in order, "_" for one dropped */
    Loc *name_locs;
    int nnames;
};

typedef struct {
    const char *name;
    Loc loc;
    const char **params;
    Loc *param_locs;
    Expr **defaults; /* by parameter: its default value, or NULL */
    int nparams;
    Stmt **body;
    int nbody;
} Def;

typedef struct {
    const char *name;
    Loc loc;
    Stmt **body;
    int nbody;
} Model;

typedef struct {
    const char *path; /* as written, unescaped */
    Loc loc;
} Import;

/* One parsed file. */
typedef struct {
    int file; /* diag file id */
    Def **defs;
    int ndefs;
    Model **models; /* all models found; the language wants exactly one */
    int nmodels;
    Import *imports;
    int nimports;
} Program;

#endif

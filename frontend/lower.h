/*
 * The lowering's private interface, shared by frontend/lower*.c (lower.c's
 * file comment lists them and how they depend on each other); nothing
 * else includes it. See lower.c for how the lowering works.
 */
#ifndef DLC_FRONTEND_LOWER_H
#define DLC_FRONTEND_LOWER_H

#include "frontend.h"

enum {
    MAX_CALL_DEPTH = 64,
    MAX_NODES = 1000000,
    MAX_BATCH = 65536,
    LOOP_MIN_TRIPS = 4, /* shorter loops are unrolled: no loop to run */
};
/* Statements executed, loop iterations and def calls: bounds the time spent
 * unrolling even when bodies make no nodes; MAX_BYTES bounds the memory. */
static const long MAX_WORK = 10000000;
static const size_t MAX_BYTES = (size_t)1 << 29;

/* V_INDEX: the index of a for loop being compiled as an IR loop (lower.c,
 * compile_loop), plus the constant in .i; usable only in indices. */
/* V_TUPLE: a def's several results, `return (h, c);`; it can only be
 * returned, passed to a def, or unpacked (`h, c = layer(x);`). */
typedef enum { V_POISON, V_TENSOR, V_NUM, V_DIM, V_STR, V_BOOL, V_LIST, V_INDEX, V_TUPLE } VKind;

typedef struct Value Value;
struct Value {
    VKind kind;
    Loc loc;     /* the expression that produced it (for const nodes, errors) */
    Node *node;  /* V_TENSOR */
    bool is_int; /* V_NUM */
    int64_t i;   /* V_NUM when is_int */
    double f;    /* V_NUM, always set */
    Dim dim;     /* V_DIM: dim.n * B */
    const char *str;
    bool b;
    Value *elems; /* V_LIST, V_TUPLE */
    int n;
};

typedef enum { B_VALUE, B_INPUT, B_PARAM, B_LET, B_LOOP, B_BATCH } BindKind;

typedef struct {
    const char *name;
    BindKind kind;
    Value v;
    Loc loc;          /* declaration or first binding */
    const Stmt *stmt; /* the declaring statement: a loop may run it again */
    bool undeclared;  /* a poison bound at a use of an undeclared name */
} Binding;

/* A parameter, state or input made in a frame, named relative to it. */
typedef struct {
    Node *node;
    const char *rel;
    Loc loc;
} Named;

/* Strings -> index, open addressing in the arena. */
typedef struct {
    const char **keys;
    int *vals;
    int cap, n;
} NameSet;

/* One def call made by the statement being executed. */
typedef struct {
    const char *def;
    Loc loc; /* the callee token: orders DEF_K */
    Named *named;
    int nnamed;
    int first_node, end_node; /* the graph nodes the call built: [first, end) */
} CallRec;

typedef struct {
    const Def *def; /* NULL in the model */
    Vec(Binding) scope;
    NameSet bound; /* name -> index in scope; -1 once out of scope */
    Vec(Named) named;
    NameSet names; /* rel -> index in named */
    Vec(int64_t) loops;
    Vec(CallRec) calls;
    bool returned;
    Value ret;
} Frame;

typedef struct {
    const Def *def;
    bool bad; /* structurally invalid: not expanded, already reported */
} DefEntry;

typedef struct {
    Node *seq, *in; /* the placeholder of the sequence, the body's slice input */
    int axis;
    int64_t off;
} TrialScan;

typedef struct {
    int bind; /* scope index of the stacked name */
    int axis;
    int64_t off;
    Node *value;
} TrialStack;

typedef struct LoopTrial LoopTrial;

/* A for loop's body being traced as an IR loop body (lower_loop.c). */
struct LoopTrial {
    bool failed;
    Graph *body;
    int nscope;  /* the frame's bindings when the trace began */
    Node **ph;   /* by scope index: the placeholder of a tensor binding */
    Value *old;  /* by scope index: the value before the trace */
    bool index_seen;
    int index_axis;
    int64_t index_off;
    Vec(TrialScan) scans;
    Vec(TrialStack) stacks;
};

typedef struct L L;
struct L {
    Arena *a;
    Graph *g;
    LoopTrial *trial; /* a for loop's body being traced as an IR loop body */
    const Define *defines;
    int ndefines;
    bool *define_used;
    Vec(DefEntry) defs;
    NameSet def_names;
    Vec(Loc) reported;
    const Def *stack[MAX_CALL_DEPTH];
    int depth;
    long work;
    bool stop;
    int errors_at_start;
    size_t bytes_at_start;
    Frame *model;
    const Model *model_ast;
    bool have_batch;
    Loc batch_loc;
    Vec(Output) outputs;
    /* fe_call_def, set by fe_lower: expressions call defs through it, so
     * that lower_expr.c does not depend on the statements a def runs */
    Value (*call_def)(L *l, Frame *f, const DefEntry *de, const Expr *e);
    /* fe_eval_index, set by fe_lower: lower_expr.c indexes through it, so
     * that it does not depend on lower_index.c, which evaluates items */
    Value (*eval_index)(L *l, Frame *f, const Expr *e);
};

typedef struct {
    const char *name; /* NULL when positional */
    Loc name_loc;
    Value v;
} EArg;

static const Value poison = {.kind = V_POISON};

static inline Value num_int(int64_t i, Loc loc)
{
    return (Value){.kind = V_NUM, .loc = loc, .is_int = true, .i = i, .f = (double)i};
}

static inline Value num_float(double f, Loc loc)
{
    return (Value){.kind = V_NUM, .loc = loc, .f = f};
}

static inline Value tensor(Node *n, Loc loc)
{
    return (Value){.kind = V_TENSOR, .loc = loc, .node = n};
}

/* lower.c: diagnostics, name sets, frames, bindings, parameter names. */
bool __attribute__((format(printf, 3, 4))) fe_err(L *l, Loc loc, const char *fmt, ...);
const char *fe_vdesc(Value v, char *buf, size_t size);
const char *fe_suggest(L *l, const char *word, const char *const *cands, int n);
bool fe_trial_fail(L *l);
/* The scope index whose placeholder is x in trace t, or -1. */
int fe_placeholder_of(const LoopTrial *t, const Node *x);
/* fe_slice_attrs met the loop index at item *axis (+ *off); false when it
 * did not. Clears what it read. */
bool fe_loop_index_item(L *l, int *axis, int64_t *off);
void fe_loop_note_index(L *l, int axis, int64_t off);
int fe_ns_get(const NameSet *s, const char *key);
void fe_ns_put(Arena *a, NameSet *s, const char *key, int val);
bool fe_spend(L *l, Loc loc);
Frame *fe_frame_new(L *l, const Def *d);
Binding *fe_lookup(Frame *f, const char *name);
/* Names are unique in a scope: bind only what fe_lookup does not find. */
void fe_scope_push(L *l, Frame *f, Binding b);
bool fe_bind(L *l, Frame *f, const char *name, BindKind kind, Value v, Loc loc, const Stmt *st);
const char *fe_loop_name(L *l, Frame *f, const char *name);
void fe_add_named(L *l, Frame *f, Node *n, const char *rel, Loc loc);
void fe_name_calls(L *l, Frame *f, const char *name, Loc loc);

/* lower_expr.c: values, expressions, attributes. */
Node *fe_as_node(L *l, Value v, const char *what);
Value fe_eval(L *l, Frame *f, const Expr *e);
Value fe_eval_name(L *l, Frame *f, const Expr *e);
bool fe_int_const(L *l, Value v, const char *what, int64_t *out);
/* Whether x holds only 0 and 1: a comparison, or & / | of such. */
bool fe_is_truth(const Node *x);
EArg *fe_eval_args(L *l, Frame *f, const Arg *args, int n);
int fe_builtin_call(L *l, Frame *f, const Expr *e, const BuiltinInfo *table, int n,
                    const char *what, AttrList *out);
const AttrSchema *fe_builtin_schema(const BuiltinInfo *table, int i);

/* lower_recurrent.c: rnn/lstm/gru with lengths or bidirectional; the
 * tuple of a return_state op's hidden states and final states. */
Value fe_recurrent_call(L *l, Op op, Node **in, int nin, AttrList attrs, Node *lengths,
                        bool bidir, Loc loc);
Value fe_recurrent_results(L *l, Node *y, Loc loc);

/* lower_index.c: x[items] (the expression e); the slice attributes of
 * x[items] or NAME[items] = v on n (NULL: only check the items). */
Value fe_eval_index(L *l, Frame *f, const Expr *e);
bool fe_slice_attrs(L *l, Frame *f, Node *n, const SliceItem *items, int nitems, Loc loc);
/* Only the item at axis is given: the rest are whole (":"). */
bool fe_only_index(const SliceItem *items, int nitems, int axis);

/* lower_train.c: train statements and the objectives' checks. */
void fe_exec_train(L *l, Frame *f, const Stmt *st);
void fe_check_objectives(L *l);

/* lower_loop.c: ys[items at the index] = v inside a trace (false: not at
 * the index, an ordinary slice assignment); the loop node from a finished
 * trace over iterations first..end-1 (false: none, nothing changed). */
bool fe_trial_stack(L *l, Frame *f, Binding *b, const Stmt *st, Value v);
bool fe_trial_finish(L *l, Frame *f, LoopTrial *t, int64_t first, int64_t end, Loc loc);

/* lower_stmt.c: statements; the structure checks of a def or the model
 * (in_if: body is a branch of an if). */
void fe_exec_block(L *l, Frame *f, Stmt *const *body, int n);
bool fe_check_body(L *l, Stmt *const *body, int n, const Def *d, bool in_loop, bool in_if);

/* lower_def.c: a def call, expanded inline. */
Value fe_call_def(L *l, Frame *f, const DefEntry *de, const Expr *e);

#endif

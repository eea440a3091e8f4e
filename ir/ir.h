/*
 * The graph IR. A Graph is a list of Nodes in topological order (every
 * input precedes its users), plus the model's outputs and its training
 * objective. Nodes carry an op from the op table (ops.def), their inputs,
 * named attributes, and -- once pass_shape has run -- an element type and
 * a shape. Everything lives in the compilation's arena.
 *
 * Dimensions are integers or integer multiples of the batch symbol (B,
 * B*T): a Dim {n, batch} means n, or n*B when batch is set.
 */
#ifndef DLC_IR_H
#define DLC_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "util.h"

/* DT_F16 and DT_BF16 are storage types: only cast reads or writes them
 * (pass_widen; docs/LANGUAGE.md, "Half-precision storage"). */
typedef enum { DT_UNKNOWN, DT_F32, DT_F64, DT_I32, DT_F16, DT_BF16, DT_COUNT } DType;

enum { IR_MAX_RANK = 8 };

/* An omitted slice bound in an ints attribute; printed as "none". */
#define IR_NONE INT64_MIN

typedef struct {
    int64_t n;
    bool batch; /* n * B */
} Dim;

typedef struct {
    int rank;
    Dim d[IR_MAX_RANK];
} Shape;

typedef enum {
#define OP(name, ...) OP_##name,
#include "ops.def"
#undef OP
    OP_COUNT
} Op;

typedef enum {
    K_SOURCE,  /* no inputs: input, param, state, const */
    K_ELTWISE, /* one output element per (broadcast) input element */
    K_ROWWISE, /* softmax-like: normalized along one axis */
    K_GEMM,    /* matrix products */
    K_REDUCE,  /* reductions over axes */
    K_SHAPE,   /* data movement: reshape, slice, concat, ... */
    K_SELECT,  /* indexing and index-built constants: gather, tril, arange, eye */
    K_CONV,
    K_POOL,
    K_NORM,
    K_SEQ,     /* embedding, recurrent cells, attention */
    K_LOSS,
    K_LOOP,    /* loop and its results (structured control flow) */
    K_COUNT
} OpKind;

enum {
    OPF_DIFF = 1 << 0,       /* differentiable w.r.t. its floating inputs */
    OPF_FLOAT = 1 << 1,      /* tensor inputs (but labels, ids) must be f32/f64 */
    OPF_MODE = 1 << 2,       /* differs between training and inference */
    OPF_RANDOM = 1 << 3,     /* draws from the instance's RNG in training */
    OPF_INTERNAL = 1 << 4,   /* built by the frontend; not callable by name */
    OPF_RUNSTATS = 1 << 5,   /* the last two inputs are running statistics */
    OPF_REPLAY = 1 << 6,     /* reuses its forward's draws: training step only */
    OPF_TRAIN_CODE = 1 << 7, /* OPF_MODE op whose training mode codegen emits */
    OPF_INDEX = 1 << 8,      /* an i32 input holds indices an input must keep in
                                range (ir_index_operand; the input checks) */
    OPF_BIAS = 1 << 9,       /* a call may pass a bias [O] (`bias = b`, or a tensor
                                after the op's tensors), which the frontend adds
                                per output channel (dimension 1) */
};

typedef struct {
    const char *text;  /* name in source and textual IR */
    int arity;         /* tensor inputs, -1 = variadic */
    OpKind kind;
    unsigned flags;    /* OPF_* */
    const char *attrs; /* attribute schema, see ops.def */
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

Op ir_op_lookup(const char *text); /* OP_COUNT when unknown */

/* Attributes. Enum attributes ({a|b}) are stored as AK_STR. */
typedef enum { AK_INT, AK_FLOAT, AK_BOOL, AK_STR, AK_INTS, AK_FLOATS, AK_ENUM } AttrKind;

typedef struct {
    Dim *v; /* elements may carry the batch factor, or be IR_NONE */
    int n;
} AttrInts;

typedef struct {
    double *v;
    int n;
} AttrFloats;

typedef struct {
    const char *name;
    AttrKind kind;
    union {
        int64_t i;
        double f;
        bool b;
        const char *s;
        AttrInts ints;
        AttrFloats floats;
    };
} Attr;

typedef struct {
    Attr *v;
    int n;
} AttrList;

/* One parsed entry of an attribute schema. */
typedef struct {
    const char *name;
    AttrKind kind;           /* AK_ENUM for {a|b}; AK_INTS for ints{a|b} */
    bool optional;           /* "?": may be absent, no default */
    bool has_default;
    Attr def;                /* the default, when has_default */
    const char *choices[8];  /* AK_ENUM; for AK_INTS the words that may stand
                                for the list (a string until the shape rule
                                resolves it) */
    int nchoices;
} AttrSpec;

typedef struct {
    AttrSpec *v;
    int n;
} AttrSchema;

/* Parsed schemas, built once and kept for the life of the process. */
const AttrSchema *ir_op_schema(Op op);
const AttrSchema *ir_schema_parse(const char *text);
int ir_schema_find(const AttrSchema *s, const char *name); /* index or -1 */

/* Optimizers, schedules and initializers (optim.def). */
typedef enum {
#define OPTIM(name, ...) OPTIM_##name,
#include "optim.def"
#undef OPTIM
    OPTIM_COUNT
} Optim;

typedef enum {
#define SCHED(name, ...) SCHED_##name,
#include "optim.def"
#undef SCHED
    SCHED_COUNT
} Sched;

typedef enum {
#define INIT(name, ...) INIT_##name,
#include "optim.def"
#undef INIT
    INIT_COUNT
} Init;

typedef struct {
    const char *text;
    const char *attrs;
} BuiltinInfo;

extern const BuiltinInfo optim_info[OPTIM_COUNT];
extern const BuiltinInfo sched_info[SCHED_COUNT];
extern const BuiltinInfo init_info[INIT_COUNT];
int ir_builtin_lookup(const BuiltinInfo *table, int n, const char *text); /* -1 */

typedef struct Node Node;
struct Node {
    Op op;
    int id;          /* index in Graph.nodes; kept dense by ir_graph_compact */
    DType dtype;     /* DT_UNKNOWN until pass_shape */
    Shape shape;     /* valid when dtype != DT_UNKNOWN */
    Node **in;
    int nin;
    AttrList attrs;
    const char *name; /* input, param and state names; NULL otherwise */
    Loc loc;          /* where the user wrote it; line 0 for none */
    Node *fused;      /* pass_fuse: the node whose kernel computes this one
                         (never materialized on its own); NULL otherwise */
    const char *scope;    /* the def calls that built it, as parameter paths
                             name them ("block1.fc"); NULL in the model */
    const Node *grad_of;  /* pass_autodiff: the node whose gradient rule
                             built this one; NULL otherwise (--emit=dot) */
    struct Graph *body;   /* OP_LOOP: the graph run at every iteration
                             (docs/IR.md, Loops); NULL otherwise */
};

typedef struct {
    const char *name;
    Node *node;
    Loc loc;
} Output;

/* One `params = [...]` prefix of a train statement: a parameter path or
 * the start of one at a `.` ("gen" covers "gen" and "gen.fc1.w"). */
typedef struct {
    const char *path;
    Loc loc;
} ParamPrefix;

/* `train LOSS with OPT(...), clip_value = V, clip_norm = C, schedule = S(...),
 * params = [P, ...] as NAME`: one objective (docs/LANGUAGE.md, Several
 * objectives). */
typedef struct Train Train;
struct Train {
    Node *loss;
    Loc loc;
    const char *name;  /* `as NAME`; NULL for a model's single unnamed objective */
    Vec(ParamPrefix) prefixes; /* `params = [...]`; empty: no narrowing */
    Train *next;       /* the model's next objective, in source order */
    Optim optim;
    AttrList optim_args; /* every argument, defaults filled in */
    bool has_clip;
    double clip_norm;
    bool has_clip_value;
    double clip_value;   /* elementwise clipping to [-clip_value, clip_value] */
    Sched sched;         /* SCHED_CONSTANT when none is given */
    AttrList sched_args;
    /* Filled by pass_autodiff (empty before): the objective's parameters
     * in graph order, and in grads[i] the node holding the gradient of the
     * loss with respect to params[i], of the same element type and shape.
     * A single unnamed objective has every trainable (not frozen)
     * parameter that its prefixes match, a zeros node as the gradient of
     * one the loss does not depend on; a named objective has only the
     * matched ones the loss reaches through ops that pass gradients. */
    Vec(Node *) params;
    Vec(Node *) grads;
};

typedef struct Graph Graph;
struct Graph {
    Arena *arena;
    const char *name;  /* the model's name */
    Loc loc;
    const char *batch; /* the batch symbol's name; NULL when no batch */
    int64_t max_batch;
    Vec(Node *) nodes;
    Vec(Output) outputs;
    Train *train;      /* the first objective (Train.next the others); NULL
                          without a train statement */
};

/* Building. Nodes are appended; inputs must already be in the graph. */
Graph *ir_graph_new(Arena *a, const char *name);
Node *ir_node_new(Graph *g, Op op, Node *const *in, int nin, Loc loc);
Node *ir_input(Graph *g, const char *name, DType t, Shape s, Loc loc);
Node *ir_param(Graph *g, const char *name, DType t, Shape s, Init init,
               const double *args, int nargs, bool frozen, Loc loc);
Node *ir_state(Graph *g, const char *name, DType t, Shape s, Init init, Loc loc);
Node *ir_const(Graph *g, double value, Loc loc);
Node *ir_unary(Graph *g, Op op, Node *x, Loc loc);
Node *ir_binary(Graph *g, Op op, Node *a, Node *b, Loc loc);
void ir_output(Graph *g, const char *name, Node *n, Loc loc);
Node *ir_find_source(const Graph *g, const char *name); /* input/param/state */
/* Whether parameter path name lies under prefix: equal to it or going on
 * with a '.' ("gen" covers "gen.fc1.w", not "generator.w"). */
bool ir_path_under(const char *name, const char *prefix);
/* Whether objective t's `params` prefixes take parameter p (all do when
 * it has none). */
bool ir_train_takes(const Train *t, const Node *p);
int ir_train_count(const Graph *g); /* the objectives */
/* The batch size that tensors are sized for: max_batch, 1 without a batch. */
int64_t ir_max_batch(const Graph *g);
/* d's extent at that batch */
int64_t ir_dim_max(const Graph *g, Dim d);
/* Of a shaped OPF_INDEX node: which input holds its indices and their
 * bound, values in 0..hi-1. By the op's kind: K_SEQ (embedding) ids in
 * input 0, rows of the table in input 1; K_LOSS (a class loss) labels in
 * input 1, the class dimension of the scores in input 0 (dimension 1, or
 * 0 for one unbatched sample, and not for cross_entropy's float soft
 * targets); K_SELECT (gather) indices in input 1, the size of x (input 0)
 * along the axis, never the batch; the lengths of the packed recurrent
 * ops and reverse_sequence, last, 0..T (hi = T + 1). False for other
 * nodes. */
bool ir_index_operand(const Node *n, int *operand, int64_t *hi);
/* Recurrent ops (rnn, lstm, gru and their backward ops): the cell
 * (OP_RNN, OP_LSTM or OP_GRU), or OP_COUNT for another op. */
Op ir_recurrent_cell(Op op);
/* Whether a recurrent op is a packed one (rnn_packed, ..., with lengths). */
bool ir_recurrent_packed(Op op);
/* The final-state rows after a recurrent op's T hidden states (in its
 * result, or in y and dy of a backward op): 0, or with return_state (and
 * always for the packed ops) h_n and, for lstm, c_n. */
int ir_recurrent_state_rows(const Node *n);
/* Whether op is a recurrent backward op (rnn_grad, ..., gru_packed_grad). */
bool ir_recurrent_backward(Op op);
/* The reserve of a recurrent layer (docs/IR.md, Recurrent layers): an
 * lstm's or gru's value that its own backward op reads carries, after its
 * [B, T + S, H] elements, a row of G*H + H per sample and step -- the
 * activated gates, then the LSTM's cell state or the GRU's recurrent n
 * side -- which the backward reads instead of rebuilding them. Returns
 * that row's elements, or 0 (rnn, or no backward op of g reads n). */
int64_t ir_recurrent_reserve(const Graph *g, const Node *n);
/* Whether the backward op d reads its layer's reserve: its y is the
 * layer (an lstm or gru, packed as d is) and its operands the layer's. */
bool ir_recurrent_grad_reserved(const Node *d);

/* Loops (docs/IR.md, Loops). A body shares its loop's arena and batch. */
Graph *ir_body_new(const Graph *outer);
/* The body's inputs (its OP_INPUT nodes in graph order), in the arena. */
Node **ir_body_inputs(const Graph *body, int *count);
/* Loop inputs: [0, carried) carried initial values, then `stacked`
 * stacked results' initial values, then `scanned` sequences, then the
 * values the body reads unchanged (see ops.def). */
typedef struct {
    int64_t trips;
    int carried, stacked, scanned, invariant, saved;
} LoopParts;
LoopParts ir_loop_parts(const Node *loop);
/* The type of result k of a typed loop: a carried or stacked result's
 * initial value's, or saved body output k's with a leading [trips]. */
void ir_loop_result_type(const Node *loop, int k, DType *t, Shape *s);
/* Appends to g a copy of n (op, attributes, type, name, location) reading
 * in; a loop's body is copied deeply, so the copy can change alone. */
Node *ir_node_copy(Graph *g, const Node *n, Node *const *in);
Graph *ir_body_copy(const Graph *body);
/* What is wrong with a loop's counts against its inputs, scan lists and
 * body (inputs, outputs, no train, params or states), or NULL. ir_verify
 * and the reader share it: a count added to the loop is checked here. */
const char *ir_loop_problem(const Node *loop);

/* Attributes: setters replace an attribute of the same name;
 * ir_attrs_without is a new list of l's but name (l may be shared). */
void ir_attrs_set(Arena *a, AttrList *l, Attr at);
AttrList ir_attrs_without(Arena *a, AttrList l, const char *name);
const Attr *ir_attrs_get(const AttrList *l, const char *name);
void ir_set_int(Graph *g, Node *n, const char *name, int64_t v);
void ir_set_float(Graph *g, Node *n, const char *name, double v);
void ir_set_bool(Graph *g, Node *n, const char *name, bool v);
void ir_set_str(Graph *g, Node *n, const char *name, const char *v);
void ir_set_ints(Graph *g, Node *n, const char *name, const Dim *v, int nv);
void ir_set_floats(Graph *g, Node *n, const char *name, const double *v, int nv);
const Attr *ir_attr(const Node *n, const char *name); /* NULL when absent */
/* Getters by name for attributes the schema guarantees; die otherwise.
 * Passes use the typed accessors below, which call these. */
int64_t ir_attr_int(const Node *n, const char *name);
double ir_attr_float(const Node *n, const char *name);
bool ir_attr_bool(const Node *n, const char *name);
const char *ir_attr_str(const Node *n, const char *name);
AttrInts ir_attr_ints(const Node *n, const char *name);
AttrFloats ir_attr_floats(const Node *n, const char *name);
/* Whether n has the attribute; dies when it has it as another kind. */
bool ir_attr_has(const Node *n, const char *name, AttrKind kind);
/* Adds every schema default that is missing from l. */
void ir_attrs_fill_defaults(Arena *a, AttrList *l, const AttrSchema *s);

/* Typed accessors, three per row of attrs.def (see there):
 *   T    attr_NAME(const Node *n)         the value; dies when absent
 *   bool attr_has_NAME(const Node *n)     present (optional attributes)
 *   void attr_set_NAME(Graph *g, Node *n, T v)   (lists: const T *v, int nv)
 * and the key attr_key_NAME (AttrKey below).
 * A misspelt name is an undeclared function and a wrong kind a type error,
 * at compile time; reads by string are left to code that walks schemas
 * (the reader, the printer, the frontend's argument matching).
 *
 * Why a second list, not accessors made from ops.def itself: the schemas
 * are strings (the reader, the frontend and the optimizer table parse
 * them at run time, with defaults, enum choices and optional marks) and
 * the preprocessor cannot split a string. Rewriting every schema as
 * macros would spread one attribute's kind over each op that has it;
 * attrs.def states it once per attribute, and test_optable checks both
 * lists against each other. */
/* Per kind: the value's C type, the getter, the setter, its parameters. */
#define IR_ATTR_T_INT int64_t
#define IR_ATTR_T_FLOAT double
#define IR_ATTR_T_BOOL bool
#define IR_ATTR_T_STR const char *
#define IR_ATTR_T_ENUM const char *
#define IR_ATTR_T_INTS AttrInts
#define IR_ATTR_T_FLOATS AttrFloats
#define IR_ATTR_GET_INT ir_attr_int
#define IR_ATTR_GET_FLOAT ir_attr_float
#define IR_ATTR_GET_BOOL ir_attr_bool
#define IR_ATTR_GET_STR ir_attr_str
#define IR_ATTR_GET_ENUM ir_attr_str
#define IR_ATTR_GET_INTS ir_attr_ints
#define IR_ATTR_GET_FLOATS ir_attr_floats
#define IR_ATTR_SET_INT ir_set_int
#define IR_ATTR_SET_FLOAT ir_set_float
#define IR_ATTR_SET_BOOL ir_set_bool
#define IR_ATTR_SET_STR ir_set_str
#define IR_ATTR_SET_ENUM ir_set_str
#define IR_ATTR_SET_INTS ir_set_ints
#define IR_ATTR_SET_FLOATS ir_set_floats
#define IR_ATTR_ARGS_INT v
#define IR_ATTR_ARGS_FLOAT v
#define IR_ATTR_ARGS_BOOL v
#define IR_ATTR_ARGS_STR v
#define IR_ATTR_ARGS_ENUM v
#define IR_ATTR_ARGS_INTS v, nv
#define IR_ATTR_ARGS_FLOATS v, nv
#define IR_ATTR_PARAMS_INT int64_t v
#define IR_ATTR_PARAMS_FLOAT double v
#define IR_ATTR_PARAMS_BOOL bool v
#define IR_ATTR_PARAMS_STR const char *v
#define IR_ATTR_PARAMS_ENUM const char *v
#define IR_ATTR_PARAMS_INTS const Dim *v, int nv
#define IR_ATTR_PARAMS_FLOATS const double *v, int nv
#define ATTR(name, text, kind)                                                                     \
    static inline IR_ATTR_T_##kind attr_##name(const Node *n)                                      \
    {                                                                                              \
        return IR_ATTR_GET_##kind(n, #text);                                                       \
    }                                                                                              \
    static inline bool attr_has_##name(const Node *n)                                              \
    {                                                                                              \
        return ir_attr_has(n, #text, AK_##kind);                                                   \
    }                                                                                              \
    static inline void attr_set_##name(Graph *g, Node *n, IR_ATTR_PARAMS_##kind)                   \
    {                                                                                              \
        IR_ATTR_SET_##kind(g, n, #text, IR_ATTR_ARGS_##kind);                                      \
    }
#include "attrs.def"
#undef ATTR

/* An attribute as a value, for helpers that read or write any attribute of
 * a kind and name it in messages: attr_key_NAME for each row of attrs.def. */
typedef struct {
    const char *text;
    AttrKind kind;
} AttrKey;

#define ATTR(name, text, kind) extern const AttrKey attr_key_##name;
#include "attrs.def"
#undef ATTR

/* Whether matmul n reads operand i (0: a, 1: b) with its last two
 * dimensions swapped (transpose_a, transpose_b; absent is false). */
static inline bool ir_matmul_trans(const Node *n, int i)
{
    return i == 0 ? attr_has_transpose_a(n) && attr_transpose_a(n)
                  : attr_has_transpose_b(n) && attr_transpose_b(n);
}

/* matmul n's inner dimension: a's last, or its second last when a is read
 * transposed. */
static inline Dim ir_matmul_inner(const Node *n)
{
    const Shape *a = &n->in[0]->shape;
    return a->d[a->rank - 1 - (ir_matmul_trans(n, 0) ? 1 : 0)];
}

/* A convolution's padding attribute, nsp values (one per spatial
 * dimension) or, when a dimension is padded asymmetrically, 2*nsp values
 * ([begin, end] per dimension): the padding before spatial dimension i, or
 * after it when end is set. */
static inline int64_t ir_pad(AttrInts p, int nsp, int i, bool end)
{
    return p.n == 2 * nsp ? p.v[2 * i + (end ? 1 : 0)].n : p.v[i].n;
}

/* Shapes and types. */
const char *ir_dtype_name(DType t); /* "f32", "f64", "i32", "?" */
DType ir_dtype_parse(const char *s); /* DT_UNKNOWN when not a type name */
bool ir_dtype_is_float(DType t); /* f32, f64: the types ops compute in */
bool ir_dtype_is_half(DType t);  /* f16, bf16 */
Shape ir_shape_of(int rank, const int64_t *dims); /* no batch dims */
bool ir_dim_eq(Dim a, Dim b);
bool ir_shape_eq(const Shape *a, const Shape *b);
/* "[B, 784]"; batch is the symbol's name (NULL prints "B"). Into buf. */
const char *ir_shape_str(const Shape *s, const char *batch, char *buf, size_t size);
const char *ir_dim_str(Dim d, const char *batch, char *buf, size_t size);

/* Whole graphs. */
void ir_graph_compact(Graph *g);   /* renumber ids densely after removals */
void ir_verify(const Graph *g);    /* dies on a malformed graph (a dlc bug) */

/* Text: docs/IR.md describes the format. The reader reports syntax errors
 * through diag (file is a diag file id) and returns NULL on error. */
void ir_print(FILE *f, const Graph *g);
Graph *ir_read(Arena *a, int file);
void ir_print_dot(FILE *f, const Graph *g);
/* Only the nodes whose keep[id] is set (one generated function's). */
void ir_print_dot_subset(FILE *f, const Graph *g, const bool *keep);

#endif

/*
 * Lowering, the expression half (frontend/lower.c has the statements): the
 * value of an expression in a frame. Arithmetic on numbers and on multiples
 * of the batch symbol folds to a number; arithmetic touching a tensor, an
 * index and an op call append nodes. Call arguments become attributes by
 * an op's or a builtin's schema (positional in schema order, named, then
 * the defaults), with the argument ranges PyTorch accepts for optimizers,
 * schedules and initializers. A call of a def goes back up, through
 * L.call_def, to lower_def.c, which expands it; an index, through
 * L.eval_index, to lower_index.c.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"

/* ---- values ------------------------------------------------------------------ */

static bool is_poisoned(Value v)
{
    if (v.kind == V_POISON)
        return true;
    if (v.kind == V_LIST || v.kind == V_TUPLE)
        for (int i = 0; i < v.n; i++)
            if (is_poisoned(v.elems[i]))
                return true;
    return false;
}

/* A number or a tensor as a tensor; numbers become a fresh const node at
 * their use site. NULL (after an error unless poisoned) otherwise. */
Node *fe_as_node(L *l, Value v, const char *what)
{
    char buf[64];
    switch (v.kind) {
    case V_TENSOR: return v.node;
    case V_NUM: return ir_const(l->g, v.f, v.loc);
    case V_POISON: return NULL;
    case V_DIM:
        fe_err(l, v.loc, "%s: the batch size cannot be used as a tensor", what);
        return NULL;
    default:
        fe_err(l, v.loc, "%s: expected a tensor or a number, got %s", what,
               fe_vdesc(v, buf, sizeof buf));
        return NULL;
    }
}
/* ---- constant folding ----------------------------------------------------- */

static const char *const batch_msg =
    "the batch size can only be multiplied or divided by constants";

/* Python's a // b and a % b on floats: the quotient rounded toward -inf
 * and the remainder with the divisor's sign, from fmod so that
 * q * b + r == a holds as nearly as doubles allow (CPython's float_divmod). */
static void floor_divmod(double a, double b, double *q, double *r)
{
    double m = fmod(a, b), d = (a - m) / b;
    if (m != 0 && (b < 0) != (m < 0)) {
        m += b;
        d -= 1;
    } else if (m == 0) {
        m = copysign(0.0, b);
    }
    double fd = d != 0 ? floor(d) : copysign(0.0, a / b);
    if (d != 0 && d - fd > 0.5)
        fd += 1;
    *q = fd;
    *r = m;
}

static Value fold(L *l, char op, Value a, Value b, Loc loc)
{
    char b1[64], b2[64];
    const char *text = op == 'f' ? "//" : (const char[]){op, 0};
    if (a.kind == V_INDEX || b.kind == V_INDEX) {
        /* t + k, k + t, t - k: the index of another step */
        Value t = a.kind == V_INDEX ? a : b, k = a.kind == V_INDEX ? b : a;
        if (k.kind == V_NUM && k.is_int && (op == '+' || (op == '-' && a.kind == V_INDEX)) &&
            llabs(k.i) < ((int64_t)1 << 40)) {
            t.i += op == '+' ? k.i : -k.i;
            t.loc = loc;
            return t;
        }
        fe_err(l, loc, "invalid operands to '%s' (%s and %s)", text, fe_vdesc(a, b1, sizeof b1),
               fe_vdesc(b, b2, sizeof b2));
        return poison;
    }
    if (a.kind == V_DIM || b.kind == V_DIM) {
        Value d = a.kind == V_DIM ? a : b, o = a.kind == V_DIM ? b : a;
        if (o.kind == V_NUM && o.is_int && op == '*') {
            int64_t n;
            if (mul_overflows_i64(d.dim.n, o.i, &n)) {
                fe_err(l, loc, "integer overflow in constant expression");
                return poison;
            }
            return (Value){.kind = V_DIM, .loc = loc, .dim = {n, true}};
        }
        /* B // k is B / k: only an exact division keeps a multiple of B */
        if (a.kind == V_DIM && b.kind == V_NUM && b.is_int && (op == '/' || op == 'f')) {
            if (b.i == 0 || d.dim.n % b.i != 0) {
                char db[64];
                fe_err(l, loc, "%s is not divisible by %" PRId64,
                       ir_dim_str(d.dim, l->g->batch, db, sizeof db), b.i);
                return poison;
            }
            return (Value){.kind = V_DIM, .loc = loc, .dim = {d.dim.n / b.i, true}};
        }
        fe_err(l, loc, "%s", batch_msg);
        return poison;
    }
    if (a.kind != V_NUM || b.kind != V_NUM) {
        fe_err(l, loc, "invalid operands to '%s' (%s and %s)", text, fe_vdesc(a, b1, sizeof b1),
               fe_vdesc(b, b2, sizeof b2));
        return poison;
    }
    if (op == '@') {
        fe_err(l, loc, "'@' needs tensor operands, not numbers");
        return poison;
    }
    if (op == '/' && b.f == 0) {
        fe_err(l, loc, "division by zero in constant expression");
        return poison;
    }
    if ((op == 'f' || op == '%') && b.f == 0) {
        fe_err(l, b.loc, "%s by zero in constant expression", op == 'f' ? "division" : "modulo");
        return poison;
    }
    if (a.is_int && b.is_int) {
        int64_t r;
        bool ovf = false;
        switch (op) {
        case '+': ovf = add_overflows_i64(a.i, b.i, &r); break;
        case '-': ovf = b.i == INT64_MIN || add_overflows_i64(a.i, -b.i, &r); break;
        case '*': ovf = mul_overflows_i64(a.i, b.i, &r); break;
        case 'f':
        case '%':
            /* C truncates toward zero; Python floors (and -1 is special:
             * INT64_MIN / -1 overflows, INT64_MIN % -1 is undefined in C) */
            if (b.i == -1) {
                ovf = op == 'f' && a.i == INT64_MIN;
                r = op == 'f' && !ovf ? -a.i : 0;
            } else {
                int64_t q = a.i / b.i, m = a.i % b.i;
                if (m != 0 && (m < 0) != (b.i < 0)) {
                    q--;
                    m += b.i;
                }
                r = op == 'f' ? q : m;
            }
            break;
        default:
            if (a.i == INT64_MIN && b.i == -1)
                ovf = true;
            else if (a.i % b.i == 0)
                r = a.i / b.i;
            else
                return num_float((double)a.i / (double)b.i, loc);
            break;
        }
        if (ovf) {
            fe_err(l, loc, "integer overflow in constant expression");
            return poison;
        }
        return num_int(r, loc);
    }
    if (op == 'f' || op == '%') {
        double q, m;
        floor_divmod(a.f, b.f, &q, &m);
        return num_float(op == 'f' ? q : m, loc);
    }
    double r = op == '+' ? a.f + b.f : op == '-' ? a.f - b.f : op == '*' ? a.f * b.f : a.f / b.f;
    return num_float(r, loc);
}

/* ---- expressions ------------------------------------------------------------ */
static Value call(L *l, Frame *f, const Expr *e);

static bool loc_before(Loc a, Loc b)
{
    return a.file == b.file && (a.line < b.line || (a.line == b.line && a.col < b.col));
}

/* A statement of the model, after `use`, that declares or binds `name`:
 * for "used before its declaration" instead of "undeclared". */
static const Stmt *declared_after(Stmt *const *body, int n, const char *name, Loc use)
{
    for (int i = 0; i < n; i++) {
        const Stmt *st = body[i];
        if (!st)
            continue;
        if (st->kind == S_FOR || st->kind == S_IF) {
            const Stmt *s2 = declared_after(st->body, st->nbody, name, use);
            if (!s2 && st->kind == S_IF)
                s2 = declared_after(st->orelse, st->norelse, name, use);
            if (s2)
                return s2;
            continue;
        }
        for (int k = 0; st->kind == S_UNPACK && k < st->nnames; k++)
            if (strcmp(st->names[k], name) == 0 && loc_before(use, st->name_locs[k]))
                return st;
        bool binds = st->kind == S_INPUT || st->kind == S_PARAM || st->kind == S_LET ||
                     st->kind == S_ASSIGN || (st->kind == S_OUTPUT && st->value);
        if (binds && st->name && strcmp(st->name, name) == 0 && loc_before(use, st->name_loc))
            return st;
    }
    return NULL;
}

Value fe_eval_name(L *l, Frame *f, const Expr *e)
{
    Binding *b = fe_lookup(f, e->name);
    if (b) {
        Value v = b->v;
        v.loc = e->loc;
        return v;
    }
    const char **cands = arena_alloc(l->a, (size_t)f->scope.n * sizeof *cands + 1);
    for (int i = 0; i < f->scope.n; i++)
        cands[i] = f->scope.v[i].name;
    const Stmt *later = f == l->model && l->model_ast
                            ? declared_after(l->model_ast->body, l->model_ast->nbody, e->name, e->loc)
                            : NULL;
    bool shown;
    if (later) {
        shown = fe_err(l, e->loc, "use of '%s' before its declaration", e->name);
        if (shown)
            diag_note(later->name_loc, "'%s' is declared here", e->name);
    } else {
        shown = fe_err(l, e->loc, "use of undeclared name '%s'%s", e->name,
                       fe_suggest(l, e->name, cands, f->scope.n));
    }
    if (shown && !later && f != l->model && l->model) {
        Binding *mb = fe_lookup(l->model, e->name);
        if (mb)
            diag_note(mb->loc,
                      "'%s' is defined in the model; a def sees only its arguments and "
                      "its own names, so pass it as an argument",
                      e->name);
    }
    /* Bind the poison so that later uses stay quiet; a later declaration
     * replaces it silently. */
    fe_bind(l, f, e->name, B_VALUE, poison, e->loc, NULL);
    Binding *pb = fe_lookup(f, e->name);
    if (pb)
        pb->undeclared = true;
    return poison;
}

/* fc1.w: a parameter or state that an earlier statement of this frame
 * made, by its path relative to the frame (docs/LANGUAGE.md, Parameter
 * paths). */
static Value eval_path(L *l, Frame *f, const Expr *e)
{
    int k = fe_ns_get(&f->names, e->name);
    if (k >= 0)
        return tensor(f->named.v[k].node, e->loc);
    const char **cands = arena_alloc(l->a, (size_t)f->named.n * sizeof *cands + 1);
    for (int i = 0; i < f->named.n; i++)
        cands[i] = f->named.v[i].rel;
    const char *hint = fe_suggest(l, e->name, cands, f->named.n);
    if (!fe_err(l, e->loc, "no parameter '%s'%s", e->name, hint) || *hint)
        return poison;
    /* no close name: say what the first part of the path made */
    size_t plen = strcspn(e->name, ".");
    StrBuf b = {0};
    int shown = 0, more = 0, first = -1;
    for (int i = 0; i < f->named.n; i++) {
        const char *r = f->named.v[i].rel;
        if (strncmp(r, e->name, plen) != 0 || r[plen] != '.')
            continue;
        if (first < 0)
            first = i;
        if (shown < 6)
            sb_printf(&b, "%s'%s'", shown ? ", " : "", r);
        else
            more++;
        shown++;
    }
    const char *head = arena_strndup(l->a, e->name, plen);
    Binding *pb = fe_lookup(f, head);
    const Stmt *later = f == l->model && l->model_ast
                            ? declared_after(l->model_ast->body, l->model_ast->nbody, head, e->loc)
                            : NULL;
    if (later)
        diag_note(later->name_loc,
                  "'%s' is bound here, later; a path can be read only after the statement that "
                  "makes its parameters",
                  head);
    else if (shown)
        diag_note(f->named.v[first].loc, "the parameters under '%.*s' are %s%s", (int)plen, e->name,
                  b.s, more ? arena_printf(l->a, " and %d more", more) : "");
    else if (pb && pb->loc.line > 0 && pb->v.kind != V_POISON)
        diag_note(pb->loc, "'%.*s' is bound here, by a statement that made no parameters",
                  (int)plen, e->name);
    else if (f != l->model && l->model && fe_ns_get(&l->model->names, e->name) >= 0)
        diag_note(l->model->named.v[fe_ns_get(&l->model->names, e->name)].loc,
                  "'%s' is a parameter of the model; a def sees only its arguments and its own "
                  "names, so pass it as an argument",
                  e->name);
    sb_free(&b);
    return poison;
}

/* The operator's text and op of E_BIN's code (ast.h). */
static const char *bin_text(char op)
{
    switch (op) {
    case 'l': return "<=";
    case 'g': return ">=";
    case 'e': return "==";
    case 'n': return "!=";
    case '+': return "+";
    case '-': return "-";
    case '*': return "*";
    case '/': return "/";
    case 'f': return "//";
    case '%': return "%";
    case '@': return "@";
    case '<': return "<";
    case '>': return ">";
    case '&': return "&";
    default: return "|";
    }
}

static Op bin_op(char op)
{
    switch (op) {
    case '+': return OP_ADD;
    case '-': return OP_SUB;
    case '*': return OP_MUL;
    case '/': return OP_DIV;
    case 'f': return OP_FLOOR_DIVIDE;
    case '%': return OP_REMAINDER;
    case '@': return OP_MATMUL;
    case '<': return OP_LT;
    case '>': return OP_GT;
    case 'l': return OP_LE;
    case 'g': return OP_GE;
    case 'e': return OP_EQ;
    case 'n': return OP_NE;
    default: return OP_COUNT; /* & and |: built from comparisons */
    }
}

/* Comparisons and the logical operators on numbers fold to 1 or 0. */
static bool fold_logic(char op, double a, double b, int64_t *out)
{
    switch (op) {
    case '<': *out = a < b; return true;
    case '>': *out = a > b; return true;
    case 'l': *out = a <= b; return true;
    case 'g': *out = a >= b; return true;
    case 'e': *out = a == b; return true;
    case 'n': *out = a != b; return true;
    case '&': *out = a != 0 && b != 0; return true;
    case '|': *out = a != 0 || b != 0; return true;
    default: return false;
    }
}

bool fe_is_truth(const Node *x)
{
    switch (x->op) {
    case OP_GT:
    case OP_GE:
    case OP_LT:
    case OP_LE:
    case OP_EQ:
    case OP_NE: return true;
    case OP_MUL:
    case OP_MAXIMUM: return fe_is_truth(x->in[0]) && fe_is_truth(x->in[1]);
    default: return false;
    }
}

/* x as 0/1: nonzero is true (NaN too, as in C). */
static Node *truth(L *l, Node *x, Loc loc)
{
    return fe_is_truth(x) ? x : ir_binary(l->g, OP_NE, x, ir_const(l->g, 0, loc), loc);
}

static Value eval_bin(L *l, Frame *f, const Expr *e)
{
    Value a = fe_eval(l, f, e->bin.lhs), b = fe_eval(l, f, e->bin.rhs);
    if (a.kind == V_POISON || b.kind == V_POISON)
        return poison;
    char op = e->bin.op;
    int64_t r;
    if (a.kind == V_NUM && b.kind == V_NUM && fold_logic(op, a.f, b.f, &r))
        return num_int(r, e->loc);
    char what[32];
    snprintf(what, sizeof what, "'%s'", bin_text(op));
    if (a.kind != V_TENSOR && b.kind != V_TENSOR) {
        if (strchr("+-*/f%@", op))
            return fold(l, op, a, b, e->loc);
        char b1[64], b2[64];
        fe_err(l, e->loc, "invalid operands to %s (%s and %s)", what, fe_vdesc(a, b1, sizeof b1),
               fe_vdesc(b, b2, sizeof b2));
        return poison;
    }
    Node *x = fe_as_node(l, a, what), *y = fe_as_node(l, b, what);
    if (!x || !y)
        return poison;
    Loc at = e->bin.op_loc;
    if (op == '&' || op == '|')
        return tensor(
            ir_binary(l->g, op == '&' ? OP_MUL : OP_MAXIMUM, truth(l, x, at), truth(l, y, at), at),
            e->loc);
    return tensor(ir_binary(l->g, bin_op(op), x, y, at), e->loc);
}

/* !x: 1 where x is 0, else 0 */
static Value eval_not(L *l, Frame *f, const Expr *e)
{
    Value v = fe_eval(l, f, e->operand);
    char buf[64];
    switch (v.kind) {
    case V_POISON: return poison;
    case V_NUM: return num_int(v.f == 0, e->loc);
    case V_TENSOR:
        return tensor(ir_binary(l->g, OP_EQ, v.node, ir_const(l->g, 0, e->loc), e->loc), e->loc);
    default:
        fe_err(l, e->loc, "invalid operand to '!' (%s)", fe_vdesc(v, buf, sizeof buf));
        return poison;
    }
}

static Value eval_neg(L *l, Frame *f, const Expr *e)
{
    Value v = fe_eval(l, f, e->operand);
    char buf[64];
    switch (v.kind) {
    case V_POISON: return poison;
    case V_NUM:
        if (v.is_int) {
            if (v.i == INT64_MIN) {
                fe_err(l, e->loc, "integer overflow in constant expression");
                return poison;
            }
            return num_int(-v.i, e->loc);
        }
        return num_float(-v.f, e->loc);
    case V_TENSOR: return tensor(ir_unary(l->g, OP_NEG, v.node, e->loc), e->loc);
    case V_DIM: fe_err(l, e->loc, "%s", batch_msg); return poison;
    default: fe_err(l, e->loc, "cannot negate %s", fe_vdesc(v, buf, sizeof buf)); return poison;
    }
}

/* An integer constant (slice bounds, loop bounds). */
bool fe_int_const(L *l, Value v, const char *what, int64_t *out)
{
    char buf[64];
    if (v.kind == V_POISON)
        return false;
    if (v.kind == V_NUM && v.is_int) {
        *out = v.i;
        return true;
    }
    fe_err(l, v.loc, "%s must be an integer constant (got %s)", what, fe_vdesc(v, buf, sizeof buf));
    return false;
}

Value fe_eval(L *l, Frame *f, const Expr *e)
{
    if (!e || l->stop)
        return poison;
    switch (e->kind) {
    case E_NUM:
        return e->num.is_int ? num_int(e->num.ival, e->loc) : num_float(e->num.value, e->loc);
    case E_STR: return (Value){.kind = V_STR, .loc = e->loc, .str = e->str ? e->str : ""};
    case E_BOOL: return (Value){.kind = V_BOOL, .loc = e->loc, .b = e->boolean};
    case E_NAME: return e->name ? fe_eval_name(l, f, e) : poison;
    case E_BIN: return eval_bin(l, f, e);
    case E_NEG: return eval_neg(l, f, e);
    case E_NOT: return eval_not(l, f, e);
    case E_CALL: return e->call.callee ? call(l, f, e) : poison;
    case E_INDEX: return l->eval_index(l, f, e);
    case E_LIST:
    case E_TUPLE: {
        Value v = {.kind = e->kind == E_LIST ? V_LIST : V_TUPLE, .loc = e->loc, .n = e->list.n};
        v.elems = arena_alloc(l->a, (size_t)e->list.n * sizeof *v.elems + 1);
        for (int i = 0; i < e->list.n; i++) {
            v.elems[i] = fe_eval(l, f, e->list.elems[i]);
            /* flat, so that unpacking binds names and nothing else */
            if (v.elems[i].kind == V_TUPLE && e->kind == E_TUPLE) {
                fe_err(l, e->list.elems[i]->loc, "tuples cannot be nested");
                v.elems[i] = poison;
            }
        }
        return v;
    }
    case E_PATH: return e->name ? eval_path(l, f, e) : poison;
    }
    return poison;
}

/* ---- attributes --------------------------------------------------------------- */

EArg *fe_eval_args(L *l, Frame *f, const Arg *args, int n)
{
    EArg *r = arena_alloc(l->a, (size_t)n * sizeof *r + 1);
    for (int i = 0; i < n; i++) {
        r[i].name = args[i].name;
        r[i].name_loc = args[i].name_loc;
        r[i].v = fe_eval(l, f, args[i].value);
        if (!args[i].value)
            r[i].v.kind = V_POISON;
    }
    return r;
}

/* An int, float, bool or string attribute from v (sp's kind). */
static bool to_scalar(L *l, const char *who, const AttrSpec *sp, Value v, Attr *out)
{
    char buf[64];
    const char *got = fe_vdesc(v, buf, sizeof buf);
    switch (sp->kind) {
    case AK_INT:
        if (v.kind == V_NUM && v.is_int) {
            out->i = v.i;
            return true;
        }
        fe_err(l, v.loc, "%s: '%s' must be an integer (got %s)", who, sp->name, got);
        return false;
    case AK_FLOAT:
        if (v.kind == V_NUM) {
            out->f = v.f;
            return true;
        }
        fe_err(l, v.loc, "%s: '%s' must be a number (got %s)", who, sp->name, got);
        return false;
    case AK_BOOL:
        if (v.kind == V_BOOL) {
            out->b = v.b;
            return true;
        }
        fe_err(l, v.loc, "%s: '%s' must be true or false (got %s)", who, sp->name, got);
        return false;
    case AK_STR:
        if (v.kind == V_STR) {
            out->s = v.str;
            return true;
        }
        fe_err(l, v.loc, "%s: '%s' must be a string (got %s)", who, sp->name, got);
        return false;
    default: die("to_scalar: attribute kind %d is not a scalar", (int)sp->kind);
    }
}

/* One of sp's choices, stored as a string; the error lists them. */
static bool to_enum(L *l, const char *who, const AttrSpec *sp, Value v, Attr *out)
{
    out->kind = AK_STR;
    if (v.kind == V_STR)
        for (int i = 0; i < sp->nchoices; i++)
            if (strcmp(sp->choices[i], v.str) == 0) {
                out->s = v.str;
                return true;
            }
    char buf[64];
    StrBuf b = {0};
    for (int i = 0; i < sp->nchoices; i++)
        sb_printf(&b, "%s\"%s\"", i ? (i + 1 == sp->nchoices ? " or " : ", ") : "", sp->choices[i]);
    fe_err(l, v.loc, "%s: '%s' must be %s (got %s)%s", who, sp->name, b.s ? b.s : "",
           fe_vdesc(v, buf, sizeof buf),
           v.kind == V_STR ? fe_suggest(l, v.str, sp->choices, sp->nchoices) : "");
    sb_free(&b);
    return false;
}

/* ints: a list of integers or one integer; batch dimensions only in a
 * shape. */
static bool to_ints(L *l, const char *who, const AttrSpec *sp, Value v, Attr *out)
{
    if (v.kind == V_STR && sp->nchoices > 0) /* padding = "same" */
        return to_enum(l, who, sp, v, out);
    bool shape = strcmp(sp->name, "shape") == 0;
    int n = v.kind == V_LIST ? v.n : 1;
    const Value *el = v.kind == V_LIST ? v.elems : &v;
    Dim *d = arena_alloc(l->a, (size_t)n * sizeof *d + 1);
    for (int i = 0; i < n; i++) {
        if (el[i].kind == V_NUM && el[i].is_int) {
            d[i] = (Dim){el[i].i, false};
        } else if (el[i].kind == V_DIM && shape) {
            d[i] = el[i].dim;
        } else {
            char buf[64];
            const char *g = fe_vdesc(el[i], buf, sizeof buf);
            if (el[i].kind == V_DIM)
                fe_err(l, el[i].loc,
                       "%s: '%s' must be integers; the batch size is only "
                       "allowed in shapes",
                       who, sp->name);
            else if (v.kind == V_LIST)
                fe_err(l, el[i].loc, "%s: '%s' must be a list of integers (got %s)", who, sp->name,
                       g);
            else
                fe_err(l, v.loc, "%s: '%s' must be an integer or a list of integers (got %s)", who,
                       sp->name, g);
            return false;
        }
    }
    out->ints.v = d;
    out->ints.n = n;
    return true;
}

/* floats: a list of numbers or one number. */
static bool to_floats(L *l, const char *who, const AttrSpec *sp, Value v, Attr *out)
{
    int n = v.kind == V_LIST ? v.n : 1;
    const Value *el = v.kind == V_LIST ? v.elems : &v;
    double *d = arena_alloc(l->a, (size_t)n * sizeof *d + 1);
    for (int i = 0; i < n; i++) {
        if (el[i].kind != V_NUM) {
            char buf[64];
            fe_err(l, el[i].loc, "%s: '%s' must be a number or a list of numbers (got %s)", who,
                   sp->name, fe_vdesc(el[i], buf, sizeof buf));
            return false;
        }
        d[i] = el[i].f;
    }
    out->floats.v = d;
    out->floats.n = n;
    return true;
}

/* Converts v to an attribute of sp's kind; who names the op or builtin. */
static bool to_attr(L *l, const char *who, const AttrSpec *sp, Value v, Attr *out)
{
    *out = (Attr){.name = sp->name, .kind = sp->kind};
    switch (sp->kind) {
    case AK_ENUM: return to_enum(l, who, sp, v, out);
    case AK_INTS: return to_ints(l, who, sp, v, out);
    case AK_FLOATS: return to_floats(l, who, sp, v, out);
    default: return to_scalar(l, who, sp, v, out);
    }
}

/* The ranges PyTorch accepts for optimizer, schedule and initializer
 * arguments, by argument name (the same name means the same thing in every
 * table of ir/optim.def). */
static bool builtin_arg_in_range(L *l, const char *who, const Attr *at, Loc loc)
{
    static const struct {
        const char *name;
        double lo;
        bool lo_open;
        double hi; /* exclusive unless hi_closed; INFINITY for none */
        bool hi_closed;
    } rules[] = {
        {"lr", 0, false, INFINITY, false},        {"momentum", 0, false, INFINITY, false},
        {"weight_decay", 0, false, INFINITY, false}, {"eps", 0, false, INFINITY, false},
        {"alpha", 0, false, INFINITY, false},     {"beta1", 0, false, 1, false},
        {"beta2", 0, false, 1, false},            {"gamma", 0, true, INFINITY, false},
        {"min_lr", 0, false, INFINITY, false},    {"base_lr", 0, false, INFINITY, false},
        {"max_lr", 0, false, INFINITY, false},    {"every", 1, false, INFINITY, false},
        {"total", 1, false, INFINITY, false},     {"warmup", 0, false, INFINITY, false},
        {"step_size", 1, false, INFINITY, false}, {"std", 0, false, INFINITY, false},
        {"gain", 0, false, INFINITY, false},      {"dampening", 0, false, INFINITY, false},
        {"l1", 0, false, INFINITY, false},        {"factor", 0, false, 1, false},
        {"patience", 0, false, INFINITY, false}, {"threshold", 0, false, INFINITY, false},
        {"cooldown", 0, false, INFINITY, false}, {"start_factor", 0, true, 1, true},
        {"end_factor", 0, false, 1, true}, {"pct_start", 0, true, 1, false},
        {"div_factor", 0, true, INFINITY, false}, {"final_div_factor", 0, true, INFINITY, false},
        {"d_model", 1, false, INFINITY, false},  {"T_0", 1, false, INFINITY, false},
        {"T_mult", 1, false, INFINITY, false},
    };
    double v;
    if (at->kind == AK_FLOAT)
        v = at->f;
    else if (at->kind == AK_INT)
        v = (double)at->i;
    else
        return true;
    for (int i = 0; i < countof(rules); i++) {
        if (strcmp(rules[i].name, at->name) != 0)
            continue;
        bool ok = isfinite(v) && (rules[i].lo_open ? v > rules[i].lo : v >= rules[i].lo) &&
                  (rules[i].hi_closed ? v <= rules[i].hi : v < rules[i].hi);
        if (!ok) {
            char range[64];
            if (rules[i].hi < INFINITY)
                snprintf(range, sizeof range, "in %c%g, %g%c", rules[i].lo_open ? '(' : '[',
                         rules[i].lo, rules[i].hi, rules[i].hi_closed ? ']' : ')');
            else
                snprintf(range, sizeof range, "%s %g", rules[i].lo_open ? ">" : ">=",
                         rules[i].lo);
            fe_err(l, loc, "%s: '%s' must be %s (got %g)", who, at->name, range, v);
        }
        return ok;
    }
    return true;
}

/* Fills `out` from the arguments after the first `skip` positional ones:
 * positional in schema order, named by name, then the schema's defaults.
 * noun is "attribute" for ops, "argument" for builtins. */
static bool match_attrs(L *l, const char *who, const char *noun, const AttrSchema *s,
                        const EArg *args, int nargs, int skip, Loc callee, AttrList *out)
{
    bool ok = true;
    int pos = 0;
    for (int i = 0; i < nargs; i++) {
        const EArg *a = &args[i];
        int k;
        Loc at = a->name ? a->name_loc : a->v.loc;
        if (!a->name) {
            if (pos++ < skip)
                continue;
            k = pos - 1 - skip;
            if (k >= s->n) {
                if (s->n == 0)
                    fe_err(l, at, "%s takes no %ss", who, noun);
                else
                    fe_err(l, at, "too many arguments to %s (at most %d after the tensors)", who,
                           s->n);
                ok = false;
                continue;
            }
        } else {
            k = ir_schema_find(s, a->name);
            if (k < 0) {
                const char **c = arena_alloc(l->a, (size_t)s->n * sizeof *c + 1);
                for (int j = 0; j < s->n; j++)
                    c[j] = s->v[j].name;
                fe_err(l, at, "%s has no %s '%s'%s", who, noun, a->name,
                       fe_suggest(l, a->name, c, s->n));
                ok = false;
                continue;
            }
        }
        const AttrSpec *sp = &s->v[k];
        if (ir_attrs_get(out, sp->name)) {
            fe_err(l, at, "%s: '%s' is given twice", who, sp->name);
            ok = false;
            continue;
        }
        if (is_poisoned(a->v)) {
            ok = false;
            continue;
        }
        Attr at2;
        if (!to_attr(l, who, sp, a->v, &at2)) {
            ok = false;
            continue;
        }
        if (strcmp(noun, "argument") == 0 && !builtin_arg_in_range(l, who, &at2, a->v.loc)) {
            ok = false;
            continue;
        }
        ir_attrs_set(l->a, out, at2);
    }
    if (!ok)
        return false;
    for (int k = 0; k < s->n; k++)
        if (!s->v[k].has_default && !s->v[k].optional && !ir_attrs_get(out, s->v[k].name)) {
            fe_err(l, callee, "%s: missing %s '%s'", who, noun, s->v[k].name);
            ok = false;
        }
    ir_attrs_fill_defaults(l->a, out, s);
    /* Schema order, so that equivalent calls print the same IR. */
    AttrList sorted = {arena_alloc(l->a, (size_t)out->n * sizeof(Attr) + 1), 0};
    for (int k = 0; k < s->n; k++) {
        const Attr *at = ir_attrs_get(out, s->v[k].name);
        if (at)
            sorted.v[sorted.n++] = *at;
    }
    check(sorted.n == out->n);
    *out = sorted;
    return ok;
}

/* Builtin tables' schemas, parsed once (ir_op_schema does the same for ops). */
const AttrSchema *fe_builtin_schema(const BuiltinInfo *table, int i)
{
    static const AttrSchema *optim[OPTIM_COUNT], *sched[SCHED_COUNT], *init[INIT_COUNT];
    const AttrSchema **slot = table == optim_info   ? &optim[i]
                              : table == sched_info ? &sched[i]
                                                    : &init[i];
    if (!*slot)
        *slot = ir_schema_parse(table[i].attrs);
    return *slot;
}

static const char *const *builtin_names(L *l, const BuiltinInfo *table, int n)
{
    const char **c = arena_alloc(l->a, (size_t)n * sizeof *c);
    for (int i = 0; i < n; i++)
        c[i] = table[i].text;
    return c;
}

/* OPT(args), SCHED(args), INIT(args): the table index and its attributes. */
int fe_builtin_call(L *l, Frame *f, const Expr *e, const BuiltinInfo *table, int n,
                    const char *what, AttrList *out)
{
    if (!e)
        return -1;
    const char *name = e->kind == E_CALL ? e->call.callee : e->kind == E_NAME ? e->name : NULL;
    if (!name) {
        fe_err(l, e->loc, "expected %s call", what);
        return -1;
    }
    Loc callee = e->kind == E_CALL ? e->call.callee_loc : e->loc;
    int i = ir_builtin_lookup(table, n, name);
    EArg *args = e->kind == E_CALL ? fe_eval_args(l, f, e->call.args, e->call.nargs) : NULL;
    if (i < 0) {
        fe_err(l, callee, "unknown %s '%s'%s", what, name,
               fe_suggest(l, name, builtin_names(l, table, n), n));
        return -1;
    }
    int nargs = e->kind == E_CALL ? e->call.nargs : 0;
    if (!match_attrs(l, name, "argument", fe_builtin_schema(table, i), args, nargs, 0, callee, out))
        return -1;
    return i;
}

/* ---- calls ---------------------------------------------------------------------- */
static const char *const *call_candidates(L *l, int *n)
{
    const char **c = arena_alloc(l->a, (size_t)(l->defs.n + OP_COUNT) * sizeof *c);
    int k = 0;
    for (int i = 0; i < l->defs.n; i++)
        c[k++] = l->defs.v[i].def->name;
    for (int i = 0; i < OP_COUNT; i++)
        if (!(op_info[i].flags & OPF_INTERNAL))
            c[k++] = op_info[i].text;
    *n = k;
    return c;
}
/* batch_norm's running statistics: state nodes named in the current frame. */
static void add_runstats(L *l, Frame *f, Node **in, Loc loc)
{
    const char *mean = "running_mean", *var = "running_var";
    for (int k = 1; fe_ns_get(&f->names, mean) >= 0 || fe_ns_get(&f->names, var) >= 0; k++) {
        mean = arena_printf(l->a, "running_mean_%d", k);
        var = arena_printf(l->a, "running_var_%d", k);
    }
    Shape none = {0};
    in[0] = ir_state(l->g, mean, DT_UNKNOWN, none, INIT_ZEROS, loc);
    in[1] = ir_state(l->g, var, DT_UNKNOWN, none, INIT_ONES, loc);
    fe_add_named(l, f, in[0], mean, loc);
    fe_add_named(l, f, in[1], var, loc);
}

/* attention(q, k, v, mask = m) is the op attention_masked(q, k, v, m),
 * rnn(..., lengths = n) rnn_packed(..., n) (lstm, gru likewise): takes
 * the named tensor argument `name` out of args (NULL when there is none). */
static Node *take_tensor_arg(L *l, const char *op, const char *name, EArg *args, int *nargs,
                             bool *ok)
{
    for (int i = 0; i < *nargs; i++) {
        if (!args[i].name || strcmp(args[i].name, name) != 0)
            continue;
        Node *m = fe_as_node(l, args[i].v, arena_printf(l->a, "%s, %s", op, name));
        *ok &= m != NULL;
        for (int j = i + 1; j < *nargs; j++)
            args[j - 1] = args[j];
        (*nargs)--;
        return m;
    }
    return NULL;
}

/* Takes an OPF_BIAS op's bias out of args (`bias = b`, or a tensor right
 * after the op's want tensors: PyTorch's F.conv2d(x, w, b), while
 * conv2d(x, w, 2) stays stride = 2); *bias is NULL when there is none. */
static bool take_bias(L *l, const char *who, EArg *args, int *nargs, int want, Value *bias)
{
    *bias = (Value){.kind = V_POISON};
    bool found = false;
    int pos = 0, k = 0;
    for (int i = 0; i < *nargs; i++) {
        EArg a = args[i];
        bool named = a.name && strcmp(a.name, "bias") == 0;
        bool positional = !a.name && pos++ == want && a.v.kind == V_TENSOR;
        if (named || positional) {
            if (found) {
                fe_err(l, named ? a.name_loc : a.v.loc, "%s: 'bias' is given twice", who);
                return false;
            }
            found = true;
            *bias = a.v;
            continue;
        }
        args[k++] = a;
    }
    *nargs = k;
    return true;
}

/* y + bias per output channel: bias [O] seen as [O, 1, ...] against y
 * [N, O, ...] (a bias of another shape fails the add's broadcast). */
static Node *add_bias(L *l, const OpInfo *oi, Node *y, Value bias, int nsp, Loc loc)
{
    Node *b = fe_as_node(l, bias, arena_printf(l->a, "%s, bias", oi->text));
    if (!b)
        return NULL;
    if ((b->op == OP_INPUT || b->op == OP_PARAM) && b->shape.rank != 1) {
        char buf[128];
        fe_err(l, bias.loc, "%s: bias must be a vector of the output channels, got %s", oi->text,
               ir_shape_str(&b->shape, l->g->batch ? l->g->batch : "B", buf, sizeof buf));
        return NULL;
    }
    Dim d[IR_MAX_RANK] = {{-1, false}};
    for (int i = 1; i <= nsp; i++)
        d[i] = (Dim){1, false};
    Node *r = ir_node_new(l->g, OP_RESHAPE, &b, 1, bias.loc);
    attr_set_shape(l->g, r, d, nsp + 1);
    return ir_binary(l->g, OP_ADD, y, r, loc);
}

/* Takes the named bool argument `name` out of args into *v (false when
 * absent); false after an error. */
static bool take_bool_arg(L *l, const char *op, const char *name, EArg *args, int *nargs, bool *v)
{
    *v = false;
    for (int i = 0; i < *nargs; i++) {
        if (!args[i].name || strcmp(args[i].name, name) != 0)
            continue;
        Value a = args[i].v;
        for (int j = i + 1; j < *nargs; j++)
            args[j - 1] = args[j];
        (*nargs)--;
        if (a.kind == V_POISON)
            return false;
        if (a.kind != V_BOOL) {
            char buf[64];
            fe_err(l, a.loc, "%s: '%s' must be true or false (got %s)", op, name,
                   fe_vdesc(a, buf, sizeof buf));
            return false;
        }
        *v = a.b;
        return true;
    }
    return true;
}

static Value call_op(L *l, Frame *f, Op op, const Expr *e)
{
    const OpInfo *oi = &op_info[op];
    Loc callee = e->call.callee_loc;
    EArg *args = fe_eval_args(l, f, e->call.args, e->call.nargs);
    int nargs = e->call.nargs;
    bool named_ok = true; /* the named arguments taken out below */
    Node *mask = op == OP_ATTENTION ? take_tensor_arg(l, oi->text, "mask", args, &nargs, &named_ok)
                                    : NULL;
    bool recurrent = ir_recurrent_cell(op) != OP_COUNT, bidir = false;
    Node *lengths = recurrent ? take_tensor_arg(l, oi->text, "lengths", args, &nargs, &named_ok)
                              : NULL;
    if (recurrent)
        named_ok &= take_bool_arg(l, oi->text, "bidirectional", args, &nargs, &bidir);
    bool runstats = oi->flags & OPF_RUNSTATS;
    int want = oi->arity < 0 ? 1 : runstats ? oi->arity - 2 : oi->arity;
    Value bias = {.kind = V_POISON};
    if ((oi->flags & OPF_BIAS) && !take_bias(l, oi->text, args, &nargs, want, &bias))
        return poison;
    int npos = 0;
    for (int i = 0; i < nargs; i++)
        npos += !args[i].name;
    if (npos < want) {
        fe_err(l, callee, "%s expects %d tensor argument%s, got %d", oi->text, want,
               want == 1 ? "" : "s", npos);
        return poison;
    }
    Vec(Node *) in = {0};
    bool ok = true;
    char buf[64], what[80];
    for (int i = 0; i < want; i++) {
        Value v = args[i].v;
        if (oi->arity < 0) {
            if (v.kind == V_POISON) {
                ok = false;
            } else if (v.kind != V_LIST || v.n == 0) {
                fe_err(l, v.loc,
                       "%s: the first argument must be a non-empty list of tensors "
                       "(got %s)",
                       oi->text, v.kind == V_LIST ? "an empty list" : fe_vdesc(v, buf, sizeof buf));
                ok = false;
            } else {
                for (int j = 0; j < v.n; j++) {
                    snprintf(what, sizeof what, "%s, element %d", oi->text, j + 1);
                    Node *x = fe_as_node(l, v.elems[j], what);
                    if (x)
                        vec_push(l->a, &in, x);
                    else
                        ok = false;
                }
            }
            continue;
        }
        snprintf(what, sizeof what, "%s, argument %d", oi->text, i + 1);
        Node *x = fe_as_node(l, v, what);
        if (x)
            vec_push(l->a, &in, x);
        else
            ok = false;
    }
    AttrList attrs = {0};
    if (!match_attrs(l, oi->text, "attribute", ir_op_schema(op), args, nargs, want, callee,
                     &attrs) ||
        !ok || !named_ok)
        return poison;
    if (lengths || bidir)
        return fe_recurrent_call(l, op, in.v, in.n, attrs, lengths, bidir, callee);
    if (mask) {
        /* as 0/1 in f32 (exact), so the op reads no i32 tensor: i32 inputs
         * of such ops are indices (OPF_INDEX), a mask is not */
        Node *t = ir_binary(l->g, OP_NE, mask, ir_const(l->g, 0, callee), callee);
        Node *m = ir_unary(l->g, OP_CAST, t, callee);
        attr_set_to(l->g, m, "f32");
        vec_push(l->a, &in, m);
        op = OP_ATTENTION_MASKED;
    }
    if (runstats) {
        Node *st[2];
        add_runstats(l, f, st, callee);
        vec_push(l->a, &in, st[0]);
        vec_push(l->a, &in, st[1]);
    }
    Node *n = ir_node_new(l->g, op, in.v, in.n, callee);
    n->attrs = attrs;
    if (bias.kind != V_POISON) {
        /* the weight's rank: 2 + the spatial dimensions */
        int nsp = op == OP_CONV1D || op == OP_CONV_TRANSPOSE1D ? 1 : op == OP_CONV3D ? 3 : 2;
        n = add_bias(l, oi, n, bias, nsp, callee);
        if (!n)
            return poison;
    }
    if (recurrent && ir_recurrent_state_rows(n))
        return fe_recurrent_results(l, n, callee);
    return tensor(n, callee);
}

static Value call(L *l, Frame *f, const Expr *e)
{
    const char *name = e->call.callee;
    int d = fe_ns_get(&l->def_names, name);
    if (d >= 0)
        return l->call_def(l, f, &l->defs.v[d], e);
    Op op = ir_op_lookup(name);
    if (op != OP_COUNT && !(op_info[op].flags & OPF_INTERNAL))
        return call_op(l, f, op, e);
    int n;
    const char *const *c = call_candidates(l, &n);
    fe_err(l, e->call.callee_loc, "unknown function '%s'%s", name, fe_suggest(l, name, c, n));
    /* Still look at the arguments, for their own errors. */
    fe_eval_args(l, f, e->call.args, e->call.nargs);
    return poison;
}

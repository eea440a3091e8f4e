/*
 * The .dl lexer and parser (frontend/lexer.l, parser.y): every construct of
 * SPEC 1 parses to the expected AST (kinds, names, operator structure,
 * locations), every class of syntax error is reported at the right
 * line:col with a clear message, and no input makes the parser crash.
 * Diagnostics are captured in memory (testlib.h).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "testlib.h"

static Arena *arena;

static void setup(void)
{
    tl_diag_capture();
    arena = arena_new();
}

static void teardown(void)
{
    tl_diag_release();
    arena_free(arena);
}

static Program *parse_n(const char *text, size_t len)
{
    int f = diag_add_source("t.dl", text, len);
    Program *p = fe_parse(arena, f);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->file, f);
    return p;
}

static Program *parse(const char *text)
{
    return parse_n(text, strlen(text));
}

/* Parses text that must be free of errors. */
static Program *parse_ok(const char *text)
{
    Program *p = parse(text);
    ck_assert_msg(diag_errors() == 0, "unexpected diagnostics:\n%s", tl_diags());
    return p;
}

/* The body of the only model. */
static Stmt **model_body(Program *p, int n)
{
    ck_assert_int_eq(p->nmodels, 1);
    ck_assert_int_eq(p->models[0]->nbody, n);
    return p->models[0]->body;
}

/* The value of `x = EXPR;` in a one-statement model. */
static Expr *parse_expr(const char *expr)
{
    char *src = arena_printf(arena, "model m { x = %s; }", expr);
    Stmt **body = model_body(parse_ok(src), 1);
    ck_assert_int_eq(body[0]->kind, S_ASSIGN);
    return body[0]->value;
}

static void expect_diag(const char *text)
{
    const char *d = tl_diags();
    ck_assert_msg(strstr(d, text), "expected \"%s\" in diagnostics:\n%s", text, *d ? d : "(none)");
}

/* Parses src and checks that the first diagnostic starts with `first`. */
static void expect_first_error(const char *src, const char *first)
{
    parse(src);
    ck_assert_int_ge(diag_errors(), 1);
    ck_assert_msg(strncmp(tl_diags(), first, strlen(first)) == 0,
                  "expected first diagnostic \"%s\", got:\n%s", first, tl_diags());
}

static void check_name(const Expr *e, const char *name)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->kind, E_NAME);
    ck_assert_str_eq(e->name, name);
}

static void check_int(const Expr *e, int64_t v)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->kind, E_NUM);
    ck_assert(e->num.is_int);
    ck_assert_int_eq(e->num.ival, v);
    ck_assert(e->num.value == (double)v);
}

static const Expr *check_bin(const Expr *e, char op)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->kind, E_BIN);
    ck_assert_int_eq(e->bin.op, op);
    return e;
}

/* ---- constructs ---------------------------------------------------------- */

static const char mlp[] = "# mnist_mlp.dl\n"
                          "def dense(x, n_in, n_out) {\n"
                          "    param w: f32[n_in, n_out] = kaiming_uniform();\n"
                          "    param b: f32[n_out]       = zeros();\n"
                          "    return x @ w + b;\n"
                          "}\n"
                          "\n"
                          "model mnist_mlp {\n"
                          "    batch B <= 256;                  # run-time batch size\n"
                          "    let H = 256;\n"
                          "    input x: f32[B, 784];\n"
                          "    input y: i32[B];\n"
                          "    fc1 = dense(x, 784, H);\n"
                          "    h = relu(fc1);\n"
                          "    fc2 = dense(h, H, 10);\n"
                          "    output probs = softmax(fc2);\n"
                          "    loss = cross_entropy(fc2, y);\n"
                          "    train loss with adam(lr = 1e-3);\n"
                          "}\n";

SUITE("parser");
GROUP(constructs, setup, teardown);
GROUP(errors, setup, teardown);

TEST(constructs, spec_example)
{
    Program *p = parse_ok(mlp);
    ck_assert_int_eq(p->ndefs, 1);
    ck_assert_int_eq(p->nimports, 0);
    const Def *d = p->defs[0];
    ck_assert_str_eq(d->name, "dense");
    ck_assert_int_eq(d->loc.line, 2);
    ck_assert_int_eq(d->loc.col, 5);
    ck_assert_int_eq(d->nparams, 3);
    ck_assert_str_eq(d->params[0], "x");
    ck_assert_str_eq(d->params[2], "n_out");
    ck_assert_int_eq(d->param_locs[1].col, 14);
    ck_assert_int_eq(d->param_locs[1].len, 4);
    ck_assert_int_eq(d->nbody, 3);
    ck_assert_int_eq(d->body[0]->kind, S_PARAM);
    ck_assert_int_eq(d->body[2]->kind, S_RETURN);
    /* return x @ w + b: the sum of a product */
    const Expr *r = check_bin(d->body[2]->value, '+');
    check_bin(r->bin.lhs, '@');
    check_name(r->bin.rhs, "b");
    ck_assert_int_eq(r->loc.line, 5);
    ck_assert_int_eq(r->loc.col, 12);
    ck_assert_int_eq(r->loc.len, 9);

    Stmt **s = model_body(p, 10);
    ck_assert_str_eq(p->models[0]->name, "mnist_mlp");
    StmtKind kinds[] = {S_BATCH,  S_LET,    S_INPUT,  S_INPUT,  S_ASSIGN,
                        S_ASSIGN, S_ASSIGN, S_OUTPUT, S_ASSIGN, S_TRAIN};
    const char *names[] = {"B", "H", "x", "y", "fc1", "h", "fc2", "probs", "loss", "loss"};
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(s[i]->kind, kinds[i]);
        ck_assert_str_eq(s[i]->name, names[i]);
        ck_assert_int_eq(s[i]->loc.line, 9 + i);
        ck_assert_int_eq(s[i]->loc.col, 5);
    }
    check_int(s[0]->value, 256);
    ck_assert_int_eq(s[0]->name_loc.col, 11);
    ck_assert_int_eq(s[2]->type->dtype, DT_F32);
    ck_assert_int_eq(s[2]->type->ndims, 2);
    check_name(s[2]->type->dims[0], "B");
    check_int(s[2]->type->dims[1], 784);
    ck_assert_int_eq(s[3]->type->dtype, DT_I32);
    const Expr *call = s[4]->value;
    ck_assert_int_eq(call->kind, E_CALL);
    ck_assert_str_eq(call->call.callee, "dense");
    ck_assert_int_eq(call->call.callee_loc.col, 11);
    ck_assert_int_eq(call->call.callee_loc.len, 5);
    ck_assert_int_eq(call->call.nargs, 3);
    ck_assert_ptr_null(call->call.args[0].name);
    check_name(call->call.args[0].value, "x");
    check_int(call->call.args[1].value, 784);
    /* train loss with adam(lr = 1e-3) */
    const Expr *opt = s[9]->value;
    ck_assert_int_eq(opt->kind, E_CALL);
    ck_assert_str_eq(opt->call.callee, "adam");
    ck_assert_int_eq(opt->call.nargs, 1);
    ck_assert_str_eq(opt->call.args[0].name, "lr");
    ck_assert_int_eq(opt->call.args[0].name_loc.col, 26);
    ck_assert(!opt->call.args[0].value->num.is_int);
    ck_assert_double_eq_tol(opt->call.args[0].value->num.value, 1e-3, 1e-15);
    ck_assert_int_eq(s[9]->nopts, 0);
}
END_TEST

TEST(constructs, precedence)
{
    /* a + b * c @ d  ==  a + (b * (c @ d)) */
    const Expr *e = check_bin(parse_expr("a + b * c @ d"), '+');
    check_name(e->bin.lhs, "a");
    const Expr *m = check_bin(e->bin.rhs, '*');
    check_name(m->bin.lhs, "b");
    const Expr *mm = check_bin(m->bin.rhs, '@');
    check_name(mm->bin.lhs, "c");
    check_name(mm->bin.rhs, "d");

    /* left associativity: (a - b) - c and (a / b) * c and (a @ b) @ c */
    e = check_bin(parse_expr("a - b - c"), '-');
    check_name(e->bin.rhs, "c");
    check_name(check_bin(e->bin.lhs, '-')->bin.lhs, "a");
    e = check_bin(parse_expr("a / b * c"), '*');
    check_bin(e->bin.lhs, '/');
    e = check_bin(parse_expr("a @ b @ c"), '@');
    check_bin(e->bin.lhs, '@');

    /* unary minus binds tighter than @: -a @ b == (-a) @ b */
    e = check_bin(parse_expr("-a @ b"), '@');
    ck_assert_int_eq(e->bin.lhs->kind, E_NEG);
    check_name(e->bin.lhs->operand, "a");
    /* ...and looser than indexing: -x[0] == -(x[0]) */
    e = parse_expr("--x[0]");
    ck_assert_int_eq(e->kind, E_NEG);
    ck_assert_int_eq(e->operand->kind, E_NEG);
    ck_assert_int_eq(e->operand->operand->kind, E_INDEX);

    /* parentheses group */
    e = check_bin(parse_expr("(a + b) * c"), '*');
    check_bin(e->bin.lhs, '+');
    ck_assert_int_eq(e->loc.col, 15);
    ck_assert_int_eq(e->loc.len, 11);

    /* a - -1 */
    e = check_bin(parse_expr("a - -1"), '-');
    ck_assert_int_eq(e->bin.rhs->kind, E_NEG);
    check_int(e->bin.rhs->operand, 1);
}
END_TEST

/* Comparisons and the logical operators, C's precedence:
 * a | b & c < d + e == a | ((b & (c < (d + e))) */
TEST(constructs, comparisons)
{
    const Expr *e = check_bin(parse_expr("a | b & c < d + e"), '|');
    check_name(e->bin.lhs, "a");
    const Expr *c = check_bin(e->bin.rhs, '&');
    check_name(c->bin.lhs, "b");
    const Expr *lt = check_bin(c->bin.rhs, '<');
    check_bin(lt->bin.rhs, '+');
    /* each comparison has its code; ! binds like unary minus */
    check_bin(parse_expr("a <= b"), 'l');
    check_bin(parse_expr("a >= b"), 'g');
    check_bin(parse_expr("a == b"), 'e');
    check_bin(parse_expr("a != b"), 'n');
    check_bin(parse_expr("a > b"), '>');
    e = check_bin(parse_expr("!a == b"), 'e');
    ck_assert_int_eq(e->bin.lhs->kind, E_NOT);
    /* & and | are left-associative */
    e = check_bin(parse_expr("a & b & c"), '&');
    check_bin(e->bin.lhs, '&');
    /* (a < b) < c is allowed; a < b < c is not */
    check_bin(check_bin(parse_expr("(a < b) < c"), '<')->bin.lhs, '<');
    /* a type name is a string */
    e = parse_expr("f64");
    ck_assert_int_eq(e->kind, E_STR);
    ck_assert_str_eq(e->str, "f64");
    expect_first_error("model m { x = a < b <= c; }", "t.dl:1:21: error: comparisons cannot be "
                                                      "chained");
}
END_TEST

TEST(constructs, numbers)
{
    check_int(parse_expr("42"), 42);
    check_int(parse_expr("0"), 0);
    check_int(parse_expr("9223372036854775807"), INT64_MAX);
    const Expr *e = parse_expr("0.5");
    ck_assert(!e->num.is_int);
    ck_assert_double_eq(e->num.value, 0.5);
    e = parse_expr("1e-3");
    ck_assert(!e->num.is_int);
    ck_assert_double_eq_tol(e->num.value, 1e-3, 1e-18);
    e = parse_expr("2.5e+2");
    ck_assert(!e->num.is_int);
    ck_assert_double_eq(e->num.value, 250.0);
    e = parse_expr("3E2");
    ck_assert(!e->num.is_int);
    ck_assert_double_eq(e->num.value, 300.0);
    ck_assert_int_eq(e->loc.col, 15);
    ck_assert_int_eq(e->loc.len, 3);
}
END_TEST

TEST(constructs, strings_and_bools)
{
    const Expr *e = parse_expr("\"a\\n\\t\\\\\\\"\\'\\x41\\101z\"");
    ck_assert_int_eq(e->kind, E_STR);
    ck_assert_str_eq(e->str, "a\n\t\\\"'AAz");
    ck_assert_int_eq(e->loc.len, 22);
    e = parse_expr("\"\"");
    ck_assert_str_eq(e->str, "");
    e = parse_expr("\"x\\0y\"");
    ck_assert_str_eq(e->str, "x");
    e = parse_expr("\"caf\xc3\xa9 # not a comment\"");
    ck_assert_str_eq(e->str, "caf\xc3\xa9 # not a comment");
    e = parse_expr("true");
    ck_assert_int_eq(e->kind, E_BOOL);
    ck_assert(e->boolean);
    e = parse_expr("false");
    ck_assert_int_eq(e->kind, E_BOOL);
    ck_assert(!e->boolean);
}
END_TEST

TEST(constructs, calls_and_lists)
{
    const Expr *e = parse_expr("conv2d(x, w, stride = [2, 2], padding = 1)");
    ck_assert_int_eq(e->kind, E_CALL);
    ck_assert_int_eq(e->call.nargs, 4);
    ck_assert_ptr_null(e->call.args[1].name);
    ck_assert_str_eq(e->call.args[2].name, "stride");
    const Expr *l = e->call.args[2].value;
    ck_assert_int_eq(l->kind, E_LIST);
    ck_assert_int_eq(l->list.n, 2);
    check_int(l->list.elems[1], 2);
    ck_assert_str_eq(e->call.args[3].name, "padding");

    e = parse_expr("zeros()");
    ck_assert_int_eq(e->kind, E_CALL);
    ck_assert_int_eq(e->call.nargs, 0);
    e = parse_expr("[]");
    ck_assert_int_eq(e->kind, E_LIST);
    ck_assert_int_eq(e->list.n, 0);
    e = parse_expr("reshape(x, [-1, H * 2])");
    l = e->call.args[1].value;
    ck_assert_int_eq(l->list.elems[0]->kind, E_NEG);
    check_bin(l->list.elems[1], '*');
    /* nested calls, and a call result indexed */
    e = parse_expr("f(g(h(1)))[0]");
    ck_assert_int_eq(e->kind, E_INDEX);
    ck_assert_int_eq(e->index.base->kind, E_CALL);
    ck_assert_str_eq(e->index.base->call.args[0].value->call.callee, "g");
}
END_TEST

TEST(constructs, slices)
{
    const Expr *e = parse_expr("x[:, t, 2:5, ::2, 1:, :3, 1:2:3, -1]");
    ck_assert_int_eq(e->kind, E_INDEX);
    check_name(e->index.base, "x");
    ck_assert_int_eq(e->index.nitems, 8);
    const SliceItem *it = e->index.items;
    ck_assert(it[0].is_range);
    ck_assert(!it[0].start && !it[0].stop && !it[0].step);
    ck_assert(!it[1].is_range);
    check_name(it[1].index, "t");
    ck_assert(it[2].is_range);
    check_int(it[2].start, 2);
    check_int(it[2].stop, 5);
    ck_assert_ptr_null(it[2].step);
    ck_assert(it[3].is_range && !it[3].start && !it[3].stop);
    check_int(it[3].step, 2);
    check_int(it[4].start, 1);
    ck_assert_ptr_null(it[4].stop);
    ck_assert_ptr_null(it[5].start);
    check_int(it[5].stop, 3);
    check_int(it[6].start, 1);
    check_int(it[6].stop, 2);
    check_int(it[6].step, 3);
    ck_assert(!it[7].is_range);
    ck_assert_int_eq(it[7].index->kind, E_NEG);
    /* item locations: "2:5" starts at column 23 of "model m { x = x[:, t, 2:5, ..." */
    ck_assert_int_eq(it[2].loc.col, 23);
    ck_assert_int_eq(it[2].loc.len, 3);
    /* chained indexing */
    e = parse_expr("x[0][1:]");
    ck_assert_int_eq(e->kind, E_INDEX);
    ck_assert_int_eq(e->index.base->kind, E_INDEX);
}
END_TEST

TEST(constructs, tuples_if_paths)
{
    Stmt **s = model_body(parse_ok("model m {\n"
                                   "  h, _, c = f(x);\n"
                                   "  (a, b) = (x, y + 1);\n"
                                   "  if k > 1 { y = fc1.w; } else if k { y = h.0.1.w; } else { }\n"
                                   "  for i in a..b { }\n"
                                   "}\n"),
                          4);
    ck_assert_int_eq(s[0]->kind, S_UNPACK);
    ck_assert_int_eq(s[0]->nnames, 3);
    ck_assert_str_eq(s[0]->names[0], "h");
    ck_assert_str_eq(s[0]->names[1], "_");
    ck_assert_str_eq(s[0]->names[2], "c");
    ck_assert_int_eq(s[0]->name_locs[2].col, 9);
    ck_assert_int_eq(s[0]->value->kind, E_CALL);

    ck_assert_int_eq(s[1]->kind, S_UNPACK);
    ck_assert_int_eq(s[1]->nnames, 2);
    ck_assert_str_eq(s[1]->names[1], "b");
    ck_assert_int_eq(s[1]->value->kind, E_TUPLE);
    ck_assert_int_eq(s[1]->value->list.n, 2);
    check_name(s[1]->value->list.elems[0], "x");
    check_bin(s[1]->value->list.elems[1], '+');

    ck_assert_int_eq(s[2]->kind, S_IF);
    check_bin(s[2]->value, '>');
    ck_assert_int_eq(s[2]->nbody, 1);
    ck_assert_int_eq(s[2]->body[0]->value->kind, E_PATH);
    ck_assert_str_eq(s[2]->body[0]->value->name, "fc1.w");
    /* else if: one nested if in the else branch */
    ck_assert_int_eq(s[2]->norelse, 1);
    const Stmt *e = s[2]->orelse[0];
    ck_assert_int_eq(e->kind, S_IF);
    check_name(e->value, "k");
    /* a path is one token: the 0.1 in it is not a number */
    ck_assert_str_eq(e->body[0]->value->name, "h.0.1.w");
    ck_assert_int_eq(e->norelse, 0);

    /* a..b is still a range, not a path */
    ck_assert_int_eq(s[3]->kind, S_FOR);
    check_name(s[3]->lo, "a");
    check_name(s[3]->hi, "b");
    /* (x) is x, not a tuple */
    check_name(parse_expr("(x)"), "x");
    expect_first_error("model m {\n  fc1.w = x;\n}",
                       "t.dl:2:3: error: cannot assign to 'fc1.w'; a parameter path can only be read");
}
END_TEST

TEST(constructs, statements)
{
    Stmt **s = model_body(parse_ok("model m {\n"
                                   "  param w: f32[4, H*2] = normal(0, 0.1) frozen;\n"
                                   "  param b: f64[];\n"
                                   "  param c: f32 frozen;\n"
                                   "  input z: f32;\n"
                                   "  ys[:, t, :] = h;\n"
                                   "  output probs;\n"
                                   "  output q = -z;\n"
                                   "  train loss with sgd(lr = 0.1, momentum = 0.9), clip_norm = 1,"
                                   " schedule = cosine(100, min_lr = 0);\n"
                                   "  let r = B*T/4;\n"
                                   "}\n"),
                          9);
    ck_assert_int_eq(s[0]->kind, S_PARAM);
    ck_assert(s[0]->frozen);
    ck_assert_int_eq(s[0]->type->ndims, 2);
    check_bin(s[0]->type->dims[1], '*');
    ck_assert_int_eq(s[0]->type->loc.col, 12);
    ck_assert_int_eq(s[0]->type->loc.len, 11);
    ck_assert_str_eq(s[0]->value->call.callee, "normal");
    ck_assert_int_eq(s[1]->type->dtype, DT_F64);
    ck_assert_int_eq(s[1]->type->ndims, 0);
    ck_assert_ptr_null(s[1]->value);
    ck_assert(!s[1]->frozen);
    ck_assert(s[2]->frozen);
    ck_assert_ptr_null(s[2]->value);
    ck_assert_int_eq(s[2]->type->ndims, 0);
    ck_assert_int_eq(s[3]->kind, S_INPUT);
    ck_assert_int_eq(s[3]->type->ndims, 0);

    ck_assert_int_eq(s[4]->kind, S_SLICE_ASSIGN);
    ck_assert_str_eq(s[4]->name, "ys");
    ck_assert_int_eq(s[4]->nitems, 3);
    ck_assert(s[4]->items[0].is_range);
    ck_assert(!s[4]->items[1].is_range);
    check_name(s[4]->value, "h");

    ck_assert_int_eq(s[5]->kind, S_OUTPUT);
    ck_assert_ptr_null(s[5]->value);
    ck_assert_int_eq(s[6]->kind, S_OUTPUT);
    ck_assert_int_eq(s[6]->value->kind, E_NEG);

    ck_assert_int_eq(s[7]->kind, S_TRAIN);
    ck_assert_str_eq(s[7]->name, "loss");
    ck_assert_str_eq(s[7]->value->call.callee, "sgd");
    ck_assert_int_eq(s[7]->value->call.nargs, 2);
    ck_assert_int_eq(s[7]->nopts, 2);
    ck_assert_str_eq(s[7]->opts[0].name, "clip_norm");
    check_int(s[7]->opts[0].value, 1);
    ck_assert_str_eq(s[7]->opts[1].name, "schedule");
    ck_assert_str_eq(s[7]->opts[1].value->call.callee, "cosine");
    ck_assert_str_eq(s[7]->opts[1].value->call.args[1].name, "min_lr");

    /* B*T/4 == (B*T)/4 */
    const Expr *e = check_bin(s[8]->value, '/');
    check_bin(e->bin.lhs, '*');
}
END_TEST

TEST(constructs, for_loops)
{
    Stmt **s = model_body(parse_ok("model m {\n"
                                   "  for t in 0..T {\n"
                                   "    for j in 1..3 { h = h + 1; }\n"
                                   "    y = h;\n"
                                   "  }\n"
                                   "  for k in 0..2*N {}\n"
                                   "}\n"),
                          2);
    ck_assert_int_eq(s[0]->kind, S_FOR);
    ck_assert_str_eq(s[0]->name, "t");
    ck_assert_int_eq(s[0]->name_loc.col, 7);
    check_int(s[0]->lo, 0);
    check_name(s[0]->hi, "T");
    ck_assert_int_eq(s[0]->nbody, 2);
    const Stmt *inner = s[0]->body[0];
    ck_assert_int_eq(inner->kind, S_FOR);
    check_int(inner->lo, 1);
    check_int(inner->hi, 3);
    ck_assert_int_eq(inner->nbody, 1);
    ck_assert_int_eq(inner->loc.line, 3);
    ck_assert_int_eq(inner->loc.col, 5);
    ck_assert_int_eq(s[0]->body[1]->kind, S_ASSIGN);
    ck_assert_int_eq(s[1]->nbody, 0);
    check_bin(s[1]->hi, '*');
}
END_TEST

TEST(constructs, files_imports_models)
{
    Program *p = parse_ok("import \"lib/blocks.dl\";\n"
                          "import \"a\\\\b.dl\";\n"
                          "def f() { return 1; }\n"
                          "model a {}\n"
                          "def g(x) { y = x; return y; }\n"
                          "model b { output x; }\n");
    ck_assert_int_eq(p->nimports, 2);
    ck_assert_str_eq(p->imports[0].path, "lib/blocks.dl");
    ck_assert_int_eq(p->imports[0].loc.line, 1);
    ck_assert_int_eq(p->imports[0].loc.col, 8);
    ck_assert_str_eq(p->imports[1].path, "a\\b.dl");
    ck_assert_int_eq(p->ndefs, 2);
    ck_assert_int_eq(p->defs[0]->nparams, 0);
    ck_assert_str_eq(p->defs[1]->name, "g");
    ck_assert_int_eq(p->defs[1]->nbody, 2);
    ck_assert_int_eq(p->nmodels, 2);
    ck_assert_str_eq(p->models[0]->name, "a");
    ck_assert_int_eq(p->models[0]->nbody, 0);
    ck_assert_str_eq(p->models[1]->name, "b");
    ck_assert_int_eq(p->models[1]->loc.line, 6);
}
END_TEST

TEST(constructs, empty_and_trivia)
{
    Program *p = parse_ok("");
    ck_assert_int_eq(p->nmodels + p->ndefs + p->nimports, 0);
    p = parse_ok("# only a comment");
    ck_assert_int_eq(p->nmodels, 0);
    p = parse_ok("  \n\t\r\n# c\n");
    ck_assert_int_eq(p->nmodels, 0);
    /* \r\n counts one line; a tab is one column */
    Stmt **s = model_body(parse_ok("model m {\r\n\tx = 1;\r\n\r\n\t\ty = 2; # done\r\n}\r\n"), 2);
    ck_assert_int_eq(s[0]->loc.line, 2);
    ck_assert_int_eq(s[0]->loc.col, 2);
    ck_assert_int_eq(s[1]->loc.line, 4);
    ck_assert_int_eq(s[1]->loc.col, 3);
    ck_assert_int_eq(s[1]->value->loc.col, 7);
}
END_TEST

/* ---- errors -------------------------------------------------------------- */

TEST(errors, err_missing_semi_line_end)
{
    /* reported just after the last token of the statement, like clang */
    expect_first_error("model m {\n  x = a + b\n  y = c;\n}\n",
                       "t.dl:2:12: error: expected ';' after 'b'\n");
    /* the next statement still parses: it is not swallowed by recovery */
    ck_assert_int_eq(diag_errors(), 1);
}
END_TEST

TEST(errors, err_missing_semi_same_line)
{
    expect_first_error("model m { x = a y = c; }", "t.dl:1:17: error: expected ';' before 'y'");
    expect_diag("    model m { x = a y = c; }\n                    ^\n");
}
END_TEST

TEST(errors, err_unbalanced_paren)
{
    expect_first_error("model m {\n  x = (a + b;\n}\n",
                       "t.dl:2:13: error: expected ',' or ')' before ';'");
}
END_TEST

TEST(errors, err_unbalanced_bracket)
{
    expect_first_error("model m { x = [a, b; }",
                       "t.dl:1:20: error: expected ',' or ']' before ';'");
    parse("model m { x = y[1:2; }");
    expect_diag("t.dl:1:20: error: expected ',', ':' or ']' before ';'");
    parse("model m { x = f(a, b; }");
    expect_diag("t.dl:1:21: error: expected ',' or ')' before ';'");
}
END_TEST

TEST(errors, err_missing_close_brace)
{
    expect_first_error("model m {\n  x = 1;\n", "t.dl:2:9: error: expected '}' at end of file");
    ck_assert_int_eq(diag_errors(), 1);
}
END_TEST

TEST(errors, err_stray_close_brace)
{
    expect_first_error("model m { x = 1; }\n}\nmodel n {}\n",
                       "t.dl:2:1: error: extraneous closing brace ('}')");
    ck_assert_int_eq(diag_errors(), 1);
}
END_TEST

TEST(errors, err_invalid_character)
{
    Program *p = parse("model m {\n  x = a + $ b;\n}\n");
    expect_diag("t.dl:2:11: error: invalid character '$'\n");
    ck_assert_int_eq(p->nmodels, 1);
    /* "x = a $ b": the missing operator is an echo of the '$' and not reported */
    parse("model m { x = a $ b; y = 1 2; }");
    expect_diag("t.dl:1:17: error: invalid character '$'\n");
    expect_diag("t.dl:1:28: error: expected ';' before '2'\n");
    ck_assert_int_eq(diag_errors(), 3);
    teardown();
    setup();
    parse("model m { x = 1; } \xe2\x82\xac");
    expect_diag("t.dl:1:20: error: invalid character '\\xe2' (non-ASCII text is allowed only in "
                "strings and comments)");
    ck_assert_int_eq(diag_errors(), 1);
}
END_TEST

TEST(errors, err_unterminated_string)
{
    expect_first_error("model m {\n  x = f(\"abc);\n}\n",
                       "t.dl:2:9: error: missing terminating '\"' character");
    /* the missing ')' that follows is an echo of the string and not reported */
    ck_assert_int_eq(diag_errors(), 1);
    parse("import \"x.dl");
    expect_diag("t.dl:1:8: error: missing terminating '\"' character");
    ck_assert_int_eq(diag_errors(), 2);
}
END_TEST

TEST(errors, err_bad_escape)
{
    expect_first_error("model m { x = \"a\\qb\"; }",
                       "t.dl:1:17: error: unknown escape sequence '\\q'");
    ck_assert_int_eq(diag_errors(), 1);
    parse("model m { x = \"\\xg\"; }");
    expect_diag("t.dl:1:16: error: \\x used with no following hex digits");
}
END_TEST

TEST(errors, err_integer_too_large)
{
    expect_first_error("model m {\n  let H = 9223372036854775808;\n}\n",
                       "t.dl:2:11: error: integer literal is too large");
    expect_diag("          ^~~~~~~~~~~~~~~~~~~\n");
    ck_assert_int_eq(diag_errors(), 1);
}
END_TEST

TEST(errors, err_float_overflow)
{
    expect_first_error("model m { x = 1e999 * 2.5e400; }",
                       "t.dl:1:15: error: floating-point literal is too large for f64");
    expect_diag("t.dl:1:23: error: floating-point literal is too large for f64");
    ck_assert_int_eq(diag_errors(), 2);
    /* underflow to zero is fine */
    teardown();
    setup();
    Expr *e = parse_expr("1e-400");
    ck_assert_double_eq(e->num.value, 0.0);
}
END_TEST

TEST(errors, err_number_suffix)
{
    expect_first_error("model m { x = 12abc; }",
                       "t.dl:1:15: error: invalid suffix on number '12abc'");
    ck_assert_int_eq(diag_errors(), 1);
}
END_TEST

TEST(errors, err_positional_after_named)
{
    Program *p = parse("model m { x = f(a, b = 1, c); }");
    expect_diag("t.dl:1:27: error: positional argument after named argument 'b'");
    ck_assert_int_eq(diag_errors(), 1);
    ck_assert_int_eq(model_body(p, 1)[0]->value->call.nargs, 2);
}
END_TEST

TEST(errors, err_missing_type)
{
    expect_first_error("model m { input x: ; }",
                       "t.dl:1:20: error: expected type (f32, f64, i32, f16 or bf16) before ';'");
    parse("model m { input x; }");
    expect_diag("t.dl:1:18: error: expected ':' before ';'");
    parse("model m { input x: f8[3]; }");
    expect_diag("t.dl:1:20: error: expected type (f32, f64, i32, f16 or bf16) before 'f8'");
}
END_TEST

TEST(errors, err_for_without_range)
{
    expect_first_error("model m {\n  for i in 0 3 { }\n}\n",
                       "t.dl:2:14: error: expected '..' or '{' before '3'");
    parse("model m { for i in 0..3 x = 1; }");
    expect_diag("t.dl:1:25: error: expected '{' before 'x'");
    parse("model m { for i 0..3 {} }");
    expect_diag("t.dl:1:17: error: expected 'in' before '0'");
}
END_TEST

TEST(errors, err_expected_expression)
{
    expect_first_error("model m { x = ; }", "t.dl:1:15: error: expected expression before ';'");
    parse("model m { x = a + * b; }");
    expect_diag("t.dl:1:19: error: expected expression before '*'");
    parse("model m { x = (a + b; ] }");
    expect_diag("t.dl:1:21: error: expected ',' or ')' before ';'");
}
END_TEST

TEST(errors, err_expected_statement)
{
    expect_first_error("model m { 3 = x; }", "t.dl:1:11: error: expected statement before '3'");
    parse("model m { let in = 1; }");
    expect_diag("t.dl:1:15: error: expected identifier before 'in'");
    parse("x = 1;");
    expect_diag("t.dl:1:1: error: expected 'model', 'def' or 'import' before 'x'");
}
END_TEST

TEST(errors, err_not_a_call)
{
    expect_first_error("model m { param w: f32[3] = 0.5; }",
                       "t.dl:1:29: error: a parameter initializer must be a call");
    parse("model m { train loss with adam; }");
    expect_diag("t.dl:1:27: error: optimizer must be a call, such as adam(lr = 1e-3)");
}
END_TEST

TEST(errors, err_nul_byte)
{
    static const char src[] = "model m {\n  x\0 = 1;\n}\n\0";
    Program *p = parse_n(src, sizeof src - 1);
    expect_diag("t.dl:2:4: error: invalid character '\\x00'\n");
    expect_diag("t.dl:4:1: error: invalid character '\\x00'\n");
    ck_assert_int_eq(diag_errors(), 2);
    ck_assert_int_eq(model_body(p, 1)[0]->kind, S_ASSIGN);
}
END_TEST

TEST(errors, err_deep_nesting)
{
    static const char opens[] = "([-{";
    for (int k = 0; k < 4; k++) {
        size_t n = 100000;
        char *src = malloc(n + 64);
        int len = sprintf(src, "model m { %s", opens[k] == '{' ? "" : "x = ");
        for (size_t i = 0; i < n; i++)
            src[len++] = opens[k] == '{' ? "for i in 0..1 {"[i % 15] : opens[k];
        strcpy(src + len, "a; }");
        parse(src);
        free(src);
        expect_diag("error: input nested too deeply (parentheses, brackets or blocks)");
        ck_assert_int_eq(diag_errors(), 1);
        teardown();
        setup();
    }
}
END_TEST

TEST(errors, err_long_chain)
{
    /* not deep for the parser, but a tree later passes would recurse into */
    StrBuf b = {0};
    sb_puts(&b, "model m { x = a");
    for (int i = 0; i < 3000; i++)
        sb_puts(&b, " + a");
    sb_puts(&b, "; y = a * 2; }");
    char *src = sb_take(&b);
    parse(src);
    free(src);
    expect_diag("t.dl:1:15: error: expression nested too deeply (more than 1000 levels)");
    ck_assert_int_eq(diag_errors(), 1);
}
END_TEST

TEST(errors, err_recovery_reports_each)
{
    Program *p = parse("def f(x) {\n"
                       "  y = x +;\n"
                       "  return y;\n"
                       "}\n"
                       "model m {\n"
                       "  input x f32[3];\n"
                       "  h = relu(x;\n"
                       "  output h;\n"
                       "  z = 1 2;\n"
                       "}\n"
                       "model n { a = ; }\n");
    ck_assert_int_eq(diag_errors(), 5);
    expect_diag("t.dl:2:10: error: expected expression before ';'");
    expect_diag("t.dl:6:11: error: expected ':' before 'f32'");
    expect_diag("t.dl:7:13: error: expected ',' or ')' before ';'");
    expect_diag("t.dl:9:9: error: expected ';' before '2'");
    expect_diag("t.dl:11:15: error: expected expression before ';'");
    /* the good statements survive */
    ck_assert_int_eq(p->ndefs, 1);
    ck_assert_int_eq(p->defs[0]->nbody, 1);
    ck_assert_int_eq(p->nmodels, 2);
    ck_assert_int_eq(p->models[0]->nbody, 1);
    ck_assert_int_eq(p->models[0]->body[0]->kind, S_OUTPUT);
}
END_TEST

/* Every prefix of a valid program, and bytes from a fixed-seed generator:
 * the parser must come back with a Program each time (ASan watches). */
TEST(errors, never_crashes)
{
    /* Only prefixes that stop between top-level items are complete. */
    size_t n = strlen(mlp);
    size_t def = (size_t)(strstr(mlp, "def") - mlp);
    size_t def_end = (size_t)(strstr(mlp, "}\n\nmodel") - mlp);
    size_t model = (size_t)(strstr(mlp, "model") - mlp);
    for (size_t i = 0; i <= n; i++) {
        parse_n(mlp, i);
        bool complete = i <= def || (i > def_end && i <= model) || i >= n - 1;
        ck_assert_msg((diag_errors() == 0) == complete, "prefix of %zu bytes:\n%s", i, tl_diags());
        teardown();
        setup();
    }
    uint64_t state = 0x9e3779b97f4a7c15u;
    static const char *const toks[] = {
        "model", "m",   "{",  "}",  "(", ")",  "[",  "]",   ";",   ",",   ":",   "..",
        "<=",    "=",   "+",  "-",  "@", "x",  "1",  "2.5", "\"s", "def", "for", "in",
        "param", "f32", "\n", "\\", "<", ">=", "==", "!=",  "!",   "&",   "|"};
    for (int round = 0; round < 400; round++) {
        char buf[512];
        size_t len = 0;
        for (int i = 0; i < 60 && len < sizeof buf - 16; i++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            if (round % 2) {
                buf[len++] = (char)(state >> 56);
            } else {
                const char *t = toks[(state >> 33) % countof(toks)];
                len += (size_t)sprintf(buf + len, "%s ", t);
            }
        }
        parse_n(buf, len);
        teardown();
        setup();
    }
}
END_TEST

/*
 * The op table as the checklist: every op of ir/ops.def has what an op
 * needs, and each test below names the ops that lack it.
 *
 *   shape test      OP_NAME in tests/unit/test_shape*.c, or a call NAME( in
 *                   a golden or diagnostic test (tests/golden, tests/diag)
 *   reference       ref_supports(op) (tests/exec/ref.c's table)
 *   kernel          cg_op_has_kernel(op) (codegen/dispatch.c)
 *   model           a call NAME( in a model that runs: a .dl or .ir file
 *                   of tests/exec, tests/gradcheck or examples/
 *   gradient rule   OPF_DIFF exactly when the grad column is not grad_none
 *   index operand   OPF_INDEX on every op that a model hands i32 indices
 *                   to be turned into floats (a differentiable op that is
 *                   not an elementwise conversion), and ir_index_operand
 *                   naming that input: the input checks (codegen/check.c)
 *                   find what to range-check through it
 *
 * Exemptions come from the table, never from names: the sources (K_SOURCE)
 * are declarations, not calls, and hold values rather than compute them.
 * The OPF_REPLAY ops need the training step's draws: the reference
 * (inference mode) does not make them, and only a training function runs
 * them, so their models are the training tests of their forward ops
 * (tests/train, tests/stochastic), which this test cannot see through
 * autodiff. The slices and the other backward primitives (OPF_INTERNAL)
 * have no call syntax in .dl: the model check takes OP_NAME in the unit
 * tests of the passes that build them (test_autodiff.c, test_shape*.c) as
 * well as NAME( in a .ir model.
 *
 * Also the attribute list (ir/attrs.def) against the schemas: every schema
 * attribute has a row of its name and kind, every row is used by a schema.
 *
 * Files are read under $DLC_SOURCE_DIR (CTest sets it).
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checklib.h"
#include "codegen.h"
#include "diag.h"
#include "frontend.h"
#include "grad.h"
#include "ir.h"
#include "passes.h"
#include "ref.h"

static const char *const op_enum[OP_COUNT] = {
#define OP(name, ...) "OP_" #name,
#include "ops.def"
#undef OP
};

SUITE("optable");
GROUP(checklist, NULL, NULL);

static const GradRule grad_rule[OP_COUNT] = {
#define OP(name, text, arity, kind, flags, attrs, shape, grad) grad,
#include "ops.def"
#undef OP
};

/* ---- the tree's files as one string per question --------------------- */

typedef struct {
    char *s;
    size_t n, cap;
} Text;

static void text_add(Text *t, const char *p, size_t n)
{
    if (t->n + n + 2 > t->cap) {
        t->cap = (t->n + n + 2) * 2;
        t->s = realloc(t->s, t->cap);
        ck_assert_ptr_nonnull(t->s);
    }
    memcpy(t->s + t->n, p, n);
    t->n += n;
    t->s[t->n++] = '\n';
    t->s[t->n] = '\0';
}

static const char *source_dir(void)
{
    const char *d = getenv("DLC_SOURCE_DIR");
    ck_assert_msg(d && *d, "DLC_SOURCE_DIR is not set (ctest sets it)");
    return d;
}

static void add_file(Text *t, const char *path)
{
    size_t n;
    unsigned char *p = read_bytes(path, &n);
    text_add(t, (const char *)p, n);
    free(p);
}

/* Adds the files matching pattern (relative to the source tree). */
static void add_models(Text *t, const char *pattern)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", source_dir(), pattern);
    glob_t gl;
    int r = glob(path, 0, NULL, &gl);
    ck_assert_msg(r == 0 || r == GLOB_NOMATCH, "cannot list %s", path);
    for (size_t i = 0; r == 0 && i < gl.gl_pathc; i++)
        add_file(t, gl.gl_pathv[i]);
    if (r == 0)
        globfree(&gl);
}

static void add_source(Text *t, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", source_dir(), rel);
    add_file(t, path);
}

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* word as a whole identifier in t, followed by '(' when call is set */
static bool mentions(const Text *t, const char *word, bool call)
{
    size_t k = strlen(word);
    for (const char *p = t->s; t->s && (p = strstr(p, word)); p++) {
        if (p > t->s && ident_char(p[-1]))
            continue;
        if (call ? p[k] == '(' : !ident_char(p[k]))
            return true;
    }
    return false;
}

/* ---- the checks ------------------------------------------------------- */

/* Fails naming every op for which lacks(op) holds, with what is missing. */
#define EXPECT_NONE(what, lacks)                                                                   \
    do {                                                                                           \
        char missing_[4096] = "";                                                                  \
        int n_ = 0;                                                                                \
        for (int op = 0; op < OP_COUNT; op++)                                                      \
            if (lacks) {                                                                           \
                size_t l_ = strlen(missing_);                                                      \
                snprintf(missing_ + l_, sizeof missing_ - l_, " %s", op_info[op].text);            \
                n_++;                                                                              \
            }                                                                                      \
        ck_assert_msg(n_ == 0, "%d op(s) without %s:%s", n_, what, missing_);                      \
    } while (0)

TEST(checklist, every_op_has_a_shape_test)
{
    Text unit = {0}, lit = {0};
    add_models(&unit, "tests/unit/test_shape*.c");
    add_models(&lit, "tests/golden/*.[di][lr]");
    add_models(&lit, "tests/diag/*.[di][lr]");
    EXPECT_NONE("a shape test (OP_NAME in test_shape*.c, or NAME( in tests/golden or tests/diag)",
                op_info[op].kind != K_SOURCE && !mentions(&unit, op_enum[op], false) &&
                    !mentions(&lit, op_info[op].text, true));
    free(unit.s);
    free(lit.s);
}
END_TEST

TEST(checklist, every_op_has_a_reference_case)
{
    EXPECT_NONE("a case in the reference interpreter (tests/exec/ref.c, rules[])",
                op_info[op].kind != K_SOURCE && !(op_info[op].flags & OPF_REPLAY) &&
                    !ref_supports((Op)op));
}
END_TEST

TEST(checklist, every_op_has_a_kernel)
{
    EXPECT_NONE("a kernel (cg_op_has_kernel)",
                op_info[op].kind != K_SOURCE && !cg_op_has_kernel((Op)op));
}
END_TEST

TEST(checklist, every_op_runs_in_a_model)
{
    Text models = {0}, unit = {0};
    add_models(&models, "tests/exec/*.[di][lr]");
    add_models(&models, "tests/gradcheck/*.[di][lr]");
    add_models(&models, "examples/*.[di][lr]");
    add_models(&models, "examples/*/*.[di][lr]");
    add_source(&unit, "tests/unit/test_autodiff.c");
    add_models(&unit, "tests/unit/test_shape*.c");
    EXPECT_NONE("an execution or gradient-check model (NAME( in a .dl/.ir of tests/exec, "
                "tests/gradcheck or examples; OP_NAME in test_autodiff.c or test_shape*.c for "
                "internal ops)",
                op_info[op].kind != K_SOURCE && !(op_info[op].flags & OPF_REPLAY) &&
                    !mentions(&models, op_info[op].text, true) &&
                    !(op_info[op].flags & OPF_INTERNAL && mentions(&unit, op_enum[op], false)));
    free(models.s);
    free(unit.s);
}
END_TEST

TEST(checklist, gradient_rule_matches_the_diff_flag)
{
    EXPECT_NONE("a gradient rule matching OPF_DIFF (differentiable: a rule; otherwise grad_none)",
                !(op_info[op].flags & OPF_DIFF) != (grad_rule[op] == grad_none));
}
END_TEST

/* Every model of the tree that shapes: which ops read i32 values into
 * floats at which input, against OPF_INDEX and ir_index_operand. */
static void index_uses(const char *pattern, bool *seen, char *wrong, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", source_dir(), pattern);
    glob_t gl;
    int r = glob(path, 0, NULL, &gl);
    ck_assert_msg(r == 0 || r == GLOB_NOMATCH, "cannot list %s", path);
    for (size_t f = 0; r == 0 && f < gl.gl_pathc; f++) {
        Arena *a = arena_new();
        diag_reset();
        Graph *g = fe_load(a, gl.gl_pathv[f], NULL, 0);
        if (g && diag_errors() == 0 && pass_shape(g) && diag_errors() == 0)
            for (int i = 0; i < g->nodes.n; i++) {
                const Node *n = g->nodes.v[i];
                unsigned fl = op_info[n->op].flags;
                if (!(fl & OPF_DIFF) || op_info[n->op].kind == K_ELTWISE ||
                    (n->dtype != DT_F32 && n->dtype != DT_F64))
                    continue;
                for (int k = 0; k < n->nin; k++) {
                    int at;
                    int64_t hi;
                    if (n->in[k]->dtype != DT_I32 || n->in[k]->op == OP_LOOP)
                        continue; /* a loop's value is its results' token */
                    if (ir_index_operand(n, &at, &hi) && at == k && hi > 0) {
                        seen[n->op] = true;
                        continue;
                    }
                    size_t l = strlen(wrong);
                    snprintf(wrong + l, size - l, " %s (input %d, %s)", op_info[n->op].text, k,
                             gl.gl_pathv[f] + strlen(source_dir()) + 1);
                }
            }
        arena_free(a);
    }
    if (r == 0)
        globfree(&gl);
    diag_reset();
}

TEST(checklist, index_taking_ops_are_flagged)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    diag_set_output(sink);
    bool seen[OP_COUNT] = {0};
    char wrong[4096] = "";
    static const char *const models[] = {"tests/exec/*.dl", "tests/gradcheck/*.dl",
                                         "tests/train/*.dl", "examples/*/*.dl"};
    for (size_t i = 0; i < countof(models); i++)
        index_uses(models[i], seen, wrong, sizeof wrong);
    diag_set_output(stderr);
    ck_assert_msg(!*wrong,
                  "i32 indices read by ops without OPF_INDEX or whose ir_index_operand names "
                  "another input:%s",
                  wrong);
    EXPECT_NONE("a model that hands it i32 indices at the input ir_index_operand names "
                "(OPF_INDEX)",
                (op_info[op].flags & OPF_INDEX) && !seen[op]);
}
END_TEST

/* ---- attrs.def against the schemas ----------------------------------- */

typedef struct {
    const char *text;
    AttrKind kind;
} Row;

static const Row rows[] = {
#define ATTR(name, text, kind) {#text, AK_##kind},
#include "attrs.def"
#undef ATTR
};

static const char *const kind_name[] = {"int", "float", "bool", "str", "ints", "floats", "enum"};

TEST(checklist, every_schema_attribute_has_an_accessor)
{
    bool used[countof(rows)] = {0};
    for (int op = 0; op < OP_COUNT; op++) {
        const AttrSchema *s = ir_op_schema((Op)op);
        for (int i = 0; i < s->n; i++) {
            int r = 0;
            while (r < (int)countof(rows) &&
                   (strcmp(rows[r].text, s->v[i].name) != 0 || rows[r].kind != s->v[i].kind))
                r++;
            ck_assert_msg(r < (int)countof(rows),
                          "%s: attribute '%s' (%s) has no row in ir/attrs.def", op_info[op].text,
                          s->v[i].name, kind_name[s->v[i].kind]);
            used[r] = true;
        }
    }
    for (int r = 0; r < (int)countof(rows); r++)
        ck_assert_msg(used[r], "ir/attrs.def: '%s' (%s) is in no schema of ops.def", rows[r].text,
                      kind_name[rows[r].kind]);
}
END_TEST

/*
 * Helpers for the compiler's unit tests (testlib.h): graphs built from type
 * strings, diagnostics captured in an open_memstream buffer, printers
 * written to strings.
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Graph *tl_graph_new(Arena *a, int64_t max_batch)
{
    Graph *g = ir_graph_new(a, "m");
    g->batch = "B";
    g->max_batch = max_batch;
    return g;
}

/* "f32[B, 784]", "i32[]", "f64[B*3, 4]" */
Shape tl_type(const char *spec, DType *t)
{
    char name[8] = {0};
    const char *br = strchr(spec, '[');
    ck_assert_ptr_nonnull(br);
    ck_assert_uint_lt((size_t)(br - spec), sizeof name);
    memcpy(name, spec, (size_t)(br - spec));
    *t = ir_dtype_parse(name);
    ck_assert_int_ne(*t, DT_UNKNOWN);
    Shape s = {0};
    const char *p = br + 1;
    while (*p && *p != ']') {
        while (*p == ' ' || *p == ',')
            p++;
        Dim d = {1, false};
        if (*p == 'B') {
            d.batch = true;
            p++;
            if (*p == '*')
                d.n = strtoll(p + 1, (char **)&p, 10);
        } else {
            d.n = strtoll(p, (char **)&p, 10);
        }
        ck_assert_int_lt(s.rank, IR_MAX_RANK);
        s.d[s.rank++] = d;
        while (*p == ' ' || *p == ',')
            p++;
    }
    return s;
}

Node *tl_typed(Node *n, const char *spec)
{
    n->shape = tl_type(spec, &n->dtype);
    return n;
}

Node *tl_input(Graph *g, const char *spec)
{
    DType t;
    Shape s = tl_type(spec, &t);
    return ir_input(g, arena_printf(g->arena, "x%d", g->nodes.n), t, s, (Loc){0});
}

Node *tl_param(Graph *g, const char *spec)
{
    DType t;
    Shape s = tl_type(spec, &t);
    return ir_param(g, arena_printf(g->arena, "p%d", g->nodes.n), t, s, INIT_ZEROS, NULL, 0, false,
                    (Loc){0});
}

Node *tl_defaults(Graph *g, Node *n)
{
    ir_attrs_fill_defaults(g->arena, &n->attrs, ir_op_schema(n->op));
    return n;
}

Node *tl_node(Graph *g, Op op, Node *const *in, int nin)
{
    return tl_defaults(g, ir_node_new(g, op, in, nin, (Loc){0}));
}

void tl_set_ints(Graph *g, Node *n, const char *name, const int64_t *v, int nv)
{
    Dim d[16];
    ck_assert_int_le(nv, 16);
    for (int i = 0; i < nv; i++) {
        if (v[i] > INT64_MIN && v[i] <= INT64_MIN + 1000)
            d[i] = (Dim){v[i] - TL_BD(0), true};
        else
            d[i] = (Dim){v[i], false};
    }
    ir_set_ints(g, n, name, d, nv);
}

static char *diag_buf;
static size_t diag_len;
static FILE *diag_out;

void tl_diag_capture(void)
{
    diag_reset();
    diag_out = open_memstream(&diag_buf, &diag_len);
    ck_assert_ptr_nonnull(diag_out);
    diag_set_output(diag_out);
}

void tl_diag_release(void)
{
    diag_set_output(NULL);
    fclose(diag_out);
    diag_out = NULL;
    free(diag_buf);
    diag_buf = NULL;
    diag_reset();
}

const char *tl_diags(void)
{
    fflush(diag_out);
    return diag_buf ? diag_buf : "";
}

char *tl_print(void (*print)(FILE *, const Graph *), const Graph *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    print(f, g);
    fclose(f);
    return buf;
}

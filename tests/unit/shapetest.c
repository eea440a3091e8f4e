/* The shape tests' helpers (shapetest.h). */
#include "shapetest.h"

#include <stdarg.h>

Arena *A;
Graph *G;

void teardown(void)
{
    tl_diag_release();
    arena_free(A);
    A = NULL;
}

void fresh(void)
{
    if (A)
        teardown();
    A = arena_new();
    G = tl_graph_new(A, 256);
    tl_diag_capture();
}

Node *C(double v) { return ir_const(G, v, (Loc){0}); }

Node *node(Op op, ...)
{
    Node *in[16];
    int nin = 0;
    va_list ap;
    va_start(ap, op);
    for (Node *x; (x = va_arg(ap, Node *));)
        in[nin++] = x;
    va_end(ap);
    return tl_node(G, op, in, nin);
}

const char *ty(const Node *n)
{
    static char buf[256];
    char s[200];
    snprintf(buf, sizeof buf, "%s%s", ir_dtype_name(n->dtype), ir_shape_str(&n->shape, "B", s,
                                                                            sizeof s));
    return buf;
}

const char *ints(const Node *n, const char *name)
{
    static char buf[256];
    const Attr *a = ir_attr(n, name);
    if (!a)
        return "absent";
    ck_assert_int_eq(a->kind, AK_INTS);
    size_t k = 0;
    buf[k++] = '[';
    for (int i = 0; i < a->ints.n; i++) {
        char d[64];
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "",
                              ir_dim_str(a->ints.v[i], "B", d, sizeof d));
    }
    snprintf(buf + k, sizeof buf - k, "]");
    return buf;
}

int count_errors(void)
{
    int c = 0;
    for (const char *p = tl_diags(); (p = strstr(p, "error:")); p++)
        c++;
    return c;
}

/*
 * Half-precision storage (docs/LANGUAGE.md): f16 and bf16 tensors are
 * only stored, never computed on. Every op but cast that reads an f16 or
 * bf16 value (a parameter, an input, or a cast to one of them) reads it
 * widened, exactly, to f32 by a cast this pass inserts, one per value and
 * placed right before its first reader, so the nodes stay in topological
 * order. It runs first in pass_shape, on declared types alone: before the
 * shape rules nothing else can be half.
 */
#include "passes.h"

static bool half_value(const Node *n)
{
    if (n->op == OP_CAST)
        return attr_has_to(n) && ir_dtype_is_half(ir_dtype_parse(attr_to(n)));
    return (n->op == OP_INPUT || n->op == OP_PARAM) && ir_dtype_is_half(n->dtype);
}

void pass_widen(Graph *g)
{
    int nn = g->nodes.n;
    Node **old = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nn + 1));
    /* indexed by a value's new id (it is renumbered before its readers),
     * which the casts inserted before it raise up to 2 nn: a table of nn
     * was written past its end once half parameters were declared late
     * (seed 107080 of the difftest campaign, a segfault) */
    Node **wide = arena_alloc(g->arena, sizeof(Node *) * (size_t)(2 * nn + 1));
    bool any = false;
    for (int i = 0; i < nn; i++) {
        old[i] = g->nodes.v[i];
        any |= half_value(old[i]);
    }
    for (int i = 0; i < 2 * nn + 1; i++)
        wide[i] = NULL;
    if (!any)
        return;
    g->nodes.n = 0;
    for (int i = 0; i < nn; i++) {
        Node *n = old[i];
        for (int j = 0; j < n->nin && n->op != OP_CAST; j++) {
            Node *x = n->in[j];
            if (!half_value(x))
                continue;
            if (!wide[x->id]) {
                Node *w = ir_unary(g, OP_CAST, x, x->loc);
                w->scope = x->scope;
                attr_set_to(g, w, "f32");
                wide[x->id] = w;
            }
            n->in[j] = wide[x->id];
        }
        n->id = g->nodes.n;
        vec_push(g->arena, &g->nodes, n);
    }
}

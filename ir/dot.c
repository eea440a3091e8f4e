/*
 * Graphviz output: the graph as a `digraph`, one box per IR node labelled
 * with its id, op, name and (once known) type, an edge from each input to
 * its user, and an ellipse per model output and for the training step so
 * the graph's ends stand out. def scopes are nested clusters (a node's
 * Node.scope), fused kernels clusters inside them, and autodiff's nodes,
 * labelled with the node whose gradient they compute, sit in a dashed
 * "backward" cluster with the same scopes. A loop's body is a dashed
 * cluster of its own after the model's nodes (nested loops nest), its
 * nodes named after their loop's ("n3_0" is %0 of %3's body). Labels are
 * quoted dot strings;
 * quotes and backslashes in them are escaped and line breaks are `\n`.
 */
#include <inttypes.h>
#include <string.h>

#include "ir.h"

static void put_dot_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else if ((unsigned char)*s < 0x20)
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

/* Where a node is drawn: its kernel's root (a fused group stays in one
 * cluster), then "backward" for autodiff's nodes, else its def scope. */
static const char *draw_scope(const Node *n)
{
    const Node *r = n->fused ? n->fused : n;
    if (r->grad_of)
        return r->grad_of->scope ? r->grad_of->scope : "";
    return r->scope ? r->scope : "";
}

static bool is_grad(const Node *n)
{
    return (n->fused ? n->fused : n)->grad_of != NULL;
}

static void put_node(FILE *f, const Graph *g, const Node *n, const char *pre, const char *indent)
{
    fprintf(f, "%s%s%d [label=\"%%%d %s", indent, pre, n->id, n->id, op_info[n->op].text);
    if (n->name) {
        fputs("\\n", f);
        put_dot_str(f, n->name);
    }
    if (n->grad_of)
        fprintf(f, "\\ngradient of %%%d %s", n->grad_of->id, op_info[n->grad_of->op].text);
    if (n->op == OP_CONST && attr_has_value(n))
        fprintf(f, "\\n%g", attr_value(n));
    if (n->dtype != DT_UNKNOWN) {
        char buf[IR_MAX_RANK * 48];
        fprintf(f, "\\n%s", ir_dtype_name(n->dtype));
        put_dot_str(f, ir_shape_str(&n->shape, g->batch, buf, sizeof buf));
    }
    fputc('"', f);
    bool loss = false;
    for (const Train *t = g->train; t; t = t->next)
        loss |= n == t->loss;
    if (loss)
        fputs(", color=red, penwidth=2", f);
    else if (op_info[n->op].kind == K_SOURCE)
        fputs(", style=rounded", f);
    else if (n->grad_of)
        fputs(", style=dashed", f);
    fputs("];\n", f);
}

/* The nodes drawn in scope (exactly), fused groups as clusters of their own. */
static void put_scope_nodes(FILE *f, const Graph *g, const bool *keep, const char *scope,
                            bool grads, const char *indent)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        if (!n || (keep && !keep[n->id]) || n->fused || is_grad(n) != grads ||
            strcmp(draw_scope(n), scope) != 0)
            continue;
        bool group = false;
        for (int j = 0; j < g->nodes.n && !group; j++)
            group = g->nodes.v[j] && g->nodes.v[j]->fused == n && (!keep || keep[j]);
        if (!group) {
            put_node(f, g, n, "n", indent);
            continue;
        }
        fprintf(f, "%ssubgraph cluster_kernel%d {\n%s  label=\"kernel %%%d\"; style=filled; "
                   "fillcolor=\"#eef4ff\"; color=\"#7090c0\";\n",
                indent, n->id, indent, n->id);
        char inner[80];
        snprintf(inner, sizeof inner, "%s  ", indent);
        for (int j = 0; j < g->nodes.n; j++)
            if (g->nodes.v[j] && g->nodes.v[j]->fused == n && (!keep || keep[j]))
                put_node(f, g, g->nodes.v[j], "n", inner);
        put_node(f, g, n, "n", inner);
        fprintf(f, "%s}\n", indent);
    }
}

/* The cluster of scope and, nested, the clusters of the scopes under it
 * (those of drawn nodes that start with "scope."). */
static void put_scope(FILE *f, const Graph *g, const bool *keep, const char *scope, bool grads,
                      int depth, int *next)
{
    char indent[64];
    snprintf(indent, sizeof indent, "%*s", 2 * depth + 2, "");
    put_scope_nodes(f, g, keep, scope, grads, indent);
    size_t len = strlen(scope);
    /* each direct child scope once, in node order */
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        if (!n || (keep && !keep[n->id]) || n->fused || is_grad(n) != grads)
            continue;
        const char *s = draw_scope(n);
        if (strncmp(s, scope, len) != 0 || (len && s[len] != '.') || !s[len])
            continue;
        const char *rest = len ? s + len + 1 : s;
        const char *dot = strchr(rest, '.');
        size_t clen = (size_t)(rest - s) + (dot ? (size_t)(dot - rest) : strlen(rest));
        char child[256];
        if (clen >= sizeof child)
            continue;
        memcpy(child, s, clen);
        child[clen] = 0;
        bool seen = false; /* an earlier node opened it */
        for (int j = 0; j < i && !seen; j++) {
            const Node *m = g->nodes.v[j];
            if (!m || (keep && !keep[m->id]) || m->fused || is_grad(m) != grads)
                continue;
            const char *t = draw_scope(m);
            seen = strncmp(t, child, clen) == 0 && (t[clen] == 0 || t[clen] == '.');
        }
        if (seen)
            continue;
        fprintf(f, "%ssubgraph cluster_scope%d {\n%s  label=\"", indent, (*next)++, indent);
        put_dot_str(f, child + (len ? len + 1 : 0));
        fputs("\";\n", f);
        put_scope(f, g, keep, child, grads, depth + 1, next);
        fprintf(f, "%s}\n", indent);
    }
}

/* The body of loop n (its nodes named pre + id), as a cluster with its
 * edges and outputs, its own loops' bodies nested inside. */
static void put_body(FILE *f, const Node *n, const char *pre, int depth)
{
    const Graph *b = n->body;
    char indent[80], inner[80], sub[64];
    snprintf(indent, sizeof indent, "%*s", 2 * depth, "");
    snprintf(inner, sizeof inner, "%*s", 2 * depth + 2, "");
    /* Names carry every enclosing loop's id; past sub's size they would
     * collide, so a body nested that deep is left out, and said so. */
    if (snprintf(sub, sizeof sub, "%s%d_", pre, n->id) >= (int)sizeof sub) {
        fprintf(f, "%s// body of %%%d nested too deep to draw\n", indent, n->id);
        return;
    }
    fprintf(f, "%ssubgraph cluster_%sbody {\n%s  label=\"body of %%%d loop, %" PRId64
               " trips\"; style=dashed;\n",
            indent, sub, indent, n->id, attr_trips(n));
    for (int i = 0; i < b->nodes.n; i++)
        put_node(f, b, b->nodes.v[i], sub, inner);
    for (int i = 0; i < b->nodes.n; i++) {
        const Node *m = b->nodes.v[i];
        for (int j = 0; j < m->nin; j++)
            fprintf(f, "%s%s%d -> %s%d;\n", inner, sub, m->in[j]->id, sub, m->id);
        if (m->body)
            put_body(f, m, sub, depth + 1);
    }
    for (int i = 0; i < b->outputs.n; i++) {
        fprintf(f, "%s%sout%d [label=\"output ", inner, sub, i);
        put_dot_str(f, b->outputs.v[i].name);
        fprintf(f, "\", shape=ellipse];\n%s%s%d -> %sout%d;\n", inner, sub,
                b->outputs.v[i].node->id, sub, i);
    }
    fprintf(f, "%s}\n", indent);
}

void ir_print_dot_subset(FILE *f, const Graph *g, const bool *keep)
{
    fputs("digraph \"", f);
    put_dot_str(f, g->name ? g->name : "model");
    fputs("\" {\n", f);
    fputs("  node [shape=box, fontname=\"monospace\"];\n", f);
    int next = 0;
    put_scope(f, g, keep, "", false, 0, &next);
    bool grads = false;
    for (int i = 0; i < g->nodes.n && !grads; i++)
        grads = g->nodes.v[i] && (!keep || keep[i]) && is_grad(g->nodes.v[i]);
    if (grads) {
        fputs("  subgraph cluster_backward {\n    label=\"backward\"; style=dashed;\n", f);
        put_scope(f, g, keep, "", true, 1, &next);
        fputs("  }\n", f);
    }
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        if (!n || (keep && !keep[n->id]))
            continue;
        for (int j = 0; j < n->nin; j++)
            if (!keep || keep[n->in[j]->id])
                fprintf(f, "  n%d -> n%d;\n", n->in[j]->id, n->id);
        if (n->body)
            put_body(f, n, "n", 1);
    }
    for (int i = 0; i < g->outputs.n; i++) {
        const Output *o = &g->outputs.v[i];
        if (keep && !keep[o->node->id])
            continue;
        fprintf(f, "  out%d [label=\"output ", i);
        put_dot_str(f, o->name);
        fputs("\", shape=ellipse, style=filled, fillcolor=lightblue];\n", f);
        fprintf(f, "  n%d -> out%d;\n", o->node->id, i);
    }
    int k = 0;
    for (const Train *t = g->train; t; t = t->next, k++) {
        if (keep && !keep[t->loss->id])
            continue;
        /* the first is plain "train", as with a single objective */
        char id[32] = "train";
        if (k > 0)
            snprintf(id, sizeof id, "train%d", k);
        fprintf(f, "  %s [label=\"train %s%s%s\", shape=ellipse, style=filled, "
                   "fillcolor=salmon];\n",
                id, optim_info[t->optim].text, t->name ? " as " : "", t->name ? t->name : "");
        fprintf(f, "  n%d -> %s;\n", t->loss->id, id);
    }
    fputs("}\n", f);
}

void ir_print_dot(FILE *f, const Graph *g)
{
    ir_print_dot_subset(f, g, NULL);
}

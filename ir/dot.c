/*
 * Graphviz output: the graph as a `digraph`, one box per IR node labelled
 * with its id, op, name and (once known) type, an edge from each input to
 * its user, and an ellipse per model output and for the training step so
 * the graph's ends stand out. Labels are quoted dot strings; quotes and
 * backslashes in them are escaped and line breaks are dot's `\n`.
 */
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

void ir_print_dot(FILE *f, const Graph *g)
{
    fputs("digraph \"", f);
    put_dot_str(f, g->name ? g->name : "model");
    fputs("\" {\n", f);
    fputs("  node [shape=box, fontname=\"monospace\"];\n", f);
    const Node *loss = g->train ? g->train->loss : NULL;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        if (!n)
            continue;
        fprintf(f, "  n%d [label=\"%%%d %s", n->id, n->id, op_info[n->op].text);
        if (n->name) {
            fputs("\\n", f);
            put_dot_str(f, n->name);
        }
        if (n->op == OP_CONST) {
            if (attr_has_value(n))
                fprintf(f, "\\n%g", attr_value(n));
        }
        if (n->dtype != DT_UNKNOWN) {
            char buf[IR_MAX_RANK * 48];
            fprintf(f, "\\n%s", ir_dtype_name(n->dtype));
            put_dot_str(f, ir_shape_str(&n->shape, g->batch, buf, sizeof buf));
        }
        fputc('"', f);
        if (n == loss)
            fputs(", color=red, penwidth=2", f);
        else if (op_info[n->op].kind == K_SOURCE)
            fputs(", style=rounded", f);
        fputs("];\n", f);
    }
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        if (!n)
            continue;
        for (int j = 0; j < n->nin; j++)
            fprintf(f, "  n%d -> n%d;\n", n->in[j]->id, n->id);
    }
    for (int i = 0; i < g->outputs.n; i++) {
        const Output *o = &g->outputs.v[i];
        fprintf(f, "  out%d [label=\"output ", i);
        put_dot_str(f, o->name);
        fputs("\", shape=ellipse, style=filled, fillcolor=lightblue];\n", f);
        fprintf(f, "  n%d -> out%d;\n", o->node->id, i);
    }
    if (g->train) {
        fprintf(f, "  train [label=\"train %s\", shape=ellipse, style=filled, fillcolor=salmon];\n",
                optim_info[g->train->optim].text);
        fprintf(f, "  n%d -> train;\n", g->train->loss->id);
    }
    fputs("}\n", f);
}

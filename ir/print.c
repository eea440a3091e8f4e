/*
 * The textual IR printer (docs/IR.md describes the format). Output is a
 * pure function of the graph: nodes in order, attributes in stored order,
 * floats in their shortest form that reads back to the identical double,
 * strings escaped, and source files named through a table of the files the
 * locations use, so ir_read(ir_print(g)) prints back byte for byte.
 */
#include "ir.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The shortest %.*g that strtod maps back to v, marked as a float by a '.'
 * or an exponent so that 1.0 never reads back as the int 1. */
static void put_float(FILE *f, double v)
{
    if (isnan(v)) {
        fputs("nan", f);
        return;
    }
    if (isinf(v)) {
        fputs(v < 0 ? "-inf" : "inf", f);
        return;
    }
    char buf[64];
    if (v == trunc(v) && fabs(v) < 1e16) {
        /* whole numbers read better without an exponent: 1000.0, not 1e+03 */
        fprintf(f, "%.0f.0", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
    if (!strpbrk(buf, ".e"))
        fputs(".0", f);
}

static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\x%02x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static bool is_ident(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

static void put_attr_value(FILE *f, const Attr *at, const char *batch)
{
    char buf[64];
    switch (at->kind) {
    case AK_INT: fprintf(f, "%" PRId64, at->i); break;
    case AK_FLOAT: put_float(f, at->f); break;
    case AK_BOOL: fputs(at->b ? "true" : "false", f); break;
    case AK_STR:
    case AK_ENUM: put_str(f, at->s ? at->s : ""); break;
    case AK_INTS:
        fputc('[', f);
        for (int i = 0; i < at->ints.n; i++)
            fprintf(f, "%s%s", i ? ", " : "", ir_dim_str(at->ints.v[i], batch, buf, sizeof buf));
        fputc(']', f);
        break;
    case AK_FLOATS:
        fputc('[', f);
        for (int i = 0; i < at->floats.n; i++) {
            if (i)
                fputs(", ", f);
            put_float(f, at->floats.v[i]);
        }
        fputc(']', f);
        break;
    }
}

static void put_attrs(FILE *f, const AttrList *l, const char *batch)
{
    if (l->n == 0)
        return;
    fputs(" {", f);
    for (int i = 0; i < l->n; i++) {
        fprintf(f, "%s%s = ", i ? ", " : "", l->v[i].name);
        put_attr_value(f, &l->v[i], batch);
    }
    fputc('}', f);
}

/* The file table: the distinct file ids the graph's locations use, in
 * increasing order; a location prints the index of its file here. */
typedef struct {
    int *v;
    int n;
} Files;

static void files_add(Files *fs, Loc l)
{
    if (l.line <= 0)
        return;
    int i = 0;
    while (i < fs->n && fs->v[i] < l.file)
        i++;
    if (i < fs->n && fs->v[i] == l.file)
        return;
    fs->v = xrealloc(fs->v, (size_t)(fs->n + 1) * sizeof *fs->v);
    memmove(fs->v + i + 1, fs->v + i, (size_t)(fs->n - i) * sizeof *fs->v);
    fs->v[i] = l.file;
    fs->n++;
}

static int files_index(const Files *fs, int file)
{
    for (int i = 0; i < fs->n; i++)
        if (fs->v[i] == file)
            return i;
    die("file %d is not in the file table", file);
}

static void put_loc(FILE *f, const Files *fs, Loc l)
{
    if (l.line <= 0)
        return;
    fprintf(f, " @%d:%d:%d", files_index(fs, l.file), l.line, l.col);
    if (l.len != 1)
        fprintf(f, "+%d", l.len);
}

/* The files of g's locations and, recursively, of its loop bodies'. */
static void files_add_graph(Files *fs, const Graph *g)
{
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]) {
            files_add(fs, g->nodes.v[i]->loc);
            if (g->nodes.v[i]->body)
                files_add_graph(fs, g->nodes.v[i]->body);
        }
    for (int i = 0; i < g->outputs.n; i++)
        files_add(fs, g->outputs.v[i].loc);
    for (const Train *t = g->train; t; t = t->next)
        files_add(fs, t->loc);
}

/* g's nodes and outputs at the indentation of depth (1 for the model); a
 * loop's body follows its line as a block one level deeper, numbered on
 * its own. */
static void put_nodes(FILE *f, const Files *fs, const Graph *g, const char *batch, int depth)
{
    int ind = 2 * depth;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        if (!n)
            continue;
        fprintf(f, "%*s%%%d = %s", ind, "", n->id, op_info[n->op].text);
        if (n->name) {
            fputc(' ', f);
            put_str(f, n->name);
        }
        if (n->nin > 0) {
            fputs(n->name ? " (" : "(", f);
            for (int j = 0; j < n->nin; j++)
                fprintf(f, "%s%%%d", j ? ", " : "", n->in[j]->id);
            fputc(')', f);
        }
        put_attrs(f, &n->attrs, batch);
        if (n->dtype == DT_UNKNOWN) {
            fputs(" : ?", f);
        } else {
            char buf[IR_MAX_RANK * 48];
            fprintf(f, " : %s%s", ir_dtype_name(n->dtype),
                    ir_shape_str(&n->shape, batch, buf, sizeof buf));
        }
        put_loc(f, fs, n->loc);
        if (n->fused)
            fprintf(f, " fused %%%d", n->fused->id);
        if (n->body) {
            fputs(" {\n", f);
            put_nodes(f, fs, n->body, batch, depth + 1);
            fprintf(f, "%*s}", ind, "");
        }
        fputc('\n', f);
    }
    for (int i = 0; i < g->outputs.n; i++) {
        const Output *o = &g->outputs.v[i];
        fprintf(f, "%*soutput ", ind, "");
        put_str(f, o->name);
        fprintf(f, " = %%%d", o->node->id);
        put_loc(f, fs, o->loc);
        fputc('\n', f);
    }
}

void ir_print(FILE *f, const Graph *g)
{
    const char *batch = g->batch;
    Files fs = {0};
    files_add(&fs, g->loc);
    files_add_graph(&fs, g);

    fputs("dlc-ir 1\n", f);
    for (int i = 0; i < fs.n; i++) {
        fprintf(f, "file %d ", i);
        put_str(f, diag_file_path(fs.v[i]));
        fputc('\n', f);
    }
    fputs("model ", f);
    if (is_ident(g->name))
        fputs(g->name, f);
    else
        put_str(f, g->name ? g->name : "");
    if (batch)
        fprintf(f, " batch %s <= %" PRId64, batch, g->max_batch);
    put_loc(f, &fs, g->loc);
    fputc('\n', f);

    put_nodes(f, &fs, g, batch, 1);
    for (const Train *t = g->train; t; t = t->next) {
        fprintf(f, "  train %%%d", t->loss->id);
        if (t->name)
            fprintf(f, " as %s", t->name);
        fprintf(f, " with %s", optim_info[t->optim].text);
        put_attrs(f, &t->optim_args, batch);
        if (t->has_clip_value) {
            fputs(" clip_value = ", f);
            put_float(f, t->clip_value);
        }
        if (t->has_clip) {
            fputs(" clip_norm = ", f);
            put_float(f, t->clip_norm);
        }
        if (t->sched != SCHED_CONSTANT || t->sched_args.n > 0) {
            fprintf(f, " schedule = %s", sched_info[t->sched].text);
            put_attrs(f, &t->sched_args, batch);
        }
        if (t->prefixes.n > 0) {
            fputs(" params = [", f);
            for (int i = 0; i < t->prefixes.n; i++) {
                fputs(i ? ", " : "", f);
                put_str(f, t->prefixes.v[i].path);
            }
            fputc(']', f);
        }
        put_loc(f, &fs, t->loc);
        fputc('\n', f);
        for (int i = 0; i < t->params.n; i++) {
            fputs("  grad ", f);
            put_str(f, t->params.v[i]->name);
            fprintf(f, " = %%%d\n", t->grads.v[i]->id);
        }
    }
    fputs("end\n", f);
    free(fs.v);
}

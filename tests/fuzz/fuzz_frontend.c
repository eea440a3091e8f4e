/*
 * libFuzzer target for the front end and the shape pass. An input that
 * starts with "dlc-ir" is read as textual IR, anything else as a .dl file.
 * Whatever parses and checks is printed, read back and printed again: the
 * two texts must be identical; then it goes through simplification,
 * fusion and memory planning, whose internal checks abort on a bug. Any crash, sanitizer report or round-trip
 * difference is a bug in dlc.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "diag.h"
#include "ir.h"
#include "codegen.h"
#include "passes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print_graph(const Graph *g, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        abort();
    ir_print(f, g);
    fclose(f);
    return buf;
}

static void round_trip(const Graph *g)
{
    size_t len1, len2;
    char *text1 = print_graph(g, &len1);
    Arena *a = arena_new();
    int file = diag_add_source("roundtrip.ir", text1, len1);
    Graph *back = ir_read(a, file);
    if (!back || diag_errors()) {
        fprintf(stderr, "printed IR does not read back:\n%s\n", text1);
        abort();
    }
    ir_verify(back);
    char *text2 = print_graph(back, &len2);
    if (len1 != len2 || memcmp(text1, text2, len1) != 0) {
        fprintf(stderr, "IR round trip differs:\n%s\n---\n%s\n", text1, text2);
        abort();
    }
    free(text1);
    free(text2);
    arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    diag_set_output(sink);
    Arena *a = arena_new();
    Graph *g;
    if (size >= 6 && memcmp(data, "dlc-ir", 6) == 0) {
        int file = diag_add_source("fuzz.ir", (const char *)data, size);
        g = ir_read(a, file);
    } else {
        g = fe_load_text(a, "fuzz.dl", (const char *)data, size, NULL, 0);
    }
    if (g && diag_errors() == 0) {
        ir_verify(g);
        round_trip(g);
        if (pass_shape(g) && diag_errors() == 0) {
            ir_verify(g);
            round_trip(g);
            /* the rest of the pipeline before code generation */
            pass_simplify(g);
            ir_verify(g);
            pass_fuse(g);
            ir_verify(g);
            round_trip(g);
            Node **roots = malloc(((size_t)g->outputs.n + 1) * sizeof *roots);
            for (int i = 0; i < g->outputs.n; i++)
                roots[i] = g->outputs.v[i].node;
            MemPlan *p = pass_memplan(g, roots, g->outputs.n, cg_scratch_bytes);
            if (p->arena_bytes < p->peak_bytes)
                abort();
            free(roots);
        }
    }
    diag_reset();
    arena_free(a);
    return 0;
}

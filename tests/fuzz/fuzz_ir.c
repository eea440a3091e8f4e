/*
 * libFuzzer target for the textual IR reader alone (ir/read.c). Any text
 * is read as IR; what reads without a diagnostic must be a graph that
 * ir_verify accepts, and printing it, reading the print back and printing
 * again must give the same text. The reader must diagnose everything
 * else: any crash, sanitizer report, ir_verify abort or round-trip
 * difference is a bug in dlc. (fuzz_frontend reads IR too, but only
 * behind "dlc-ir" and on its way to the passes; this target spends every
 * execution in the reader.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "ir.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    diag_set_output(sink);
    Arena *a = arena_new();
    Graph *g = ir_read(a, diag_add_source("fuzz.ir", (const char *)data, size));
    if (g && diag_errors() == 0) {
        ir_verify(g);
        size_t len1, len2;
        char *text1 = print_graph(g, &len1);
        Graph *back = ir_read(a, diag_add_source("printed.ir", text1, len1));
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
    }
    diag_reset();
    arena_free(a);
    return 0;
}

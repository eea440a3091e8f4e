/*
 * libFuzzer target for the whole compiler on .dl input, as `dlc -O0`
 * runs it (tools/dlc.c): front end, shape, autodiff, simplify, fuse, the
 * memory plans and the instance layout, then code generation through
 * LLVM's verifier and object emission, in memory, and the C header. A
 * model that the front end or the shape pass accepts must compile, or
 * fail in codegen with a message (a model codegen cannot emit); any
 * crash, abort (die, an LLVM verifier failure), sanitizer report or hang
 * is a bug in dlc.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "diag.h"
#include "frontend.h"
#include "ir.h"
#include "passes.h"
#include "plans.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void compile(Arena *a, Graph *g)
{
    ir_verify(g);
    if (!pass_shape(g) || diag_errors())
        return;
    ir_verify(g);
    if (!pass_autodiff(g) || diag_errors())
        return;
    ir_verify(g);
    pass_simplify(g);
    ir_verify(g);
    pass_fuse(g);
    ir_verify(g);
    CgPlans plans = dlc_plan_memory(a, g, false);
    Layout *layout = cg_layout(g, &plans);
    CgOptions o = {.opt_level = 0};
    char *err = NULL;
    if (!cg_emit(g, &plans, layout, &o, CG_OBJ, NULL, &err, NULL)) {
        if (!err)
            abort(); /* a failure says why */
        free(err);
        return;
    }
    static FILE *header;
    if (!header)
        header = fopen("/dev/null", "w");
    cg_write_header(header, g, &plans, layout, &o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    diag_set_output(sink);
    Arena *a = arena_new();
    Graph *g = fe_load_text(a, "fuzz.dl", (const char *)data, size, NULL, 0);
    if (g && diag_errors() == 0)
        compile(a, g);
    diag_reset();
    arena_free(a);
    return 0;
}

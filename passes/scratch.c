/*
 * Scratch memory of kernels: the temporary buffers a kernel needs during
 * its own step only (an im2col matrix, recurrent gates, attention scores).
 * The memory planner gives each a slot of the arena, so generated code
 * never allocates. Sizes are at the maximum batch.
 *
 * Elementwise, GEMM, reduction, layout and loss kernels work in their
 * output buffers and need none.
 */
#include "passes.h"

int64_t pass_scratch_bytes(const Graph *g, const Node *n)
{
    (void)g;
    switch (n->op) {
    default:
        return 0;
    }
}

/*
 * Passes over the graph IR. Each pass is one file with one entry point.
 * A pass that can find mistakes in the user's model reports them through
 * diag and returns false; the others cannot fail.
 */
#ifndef DLC_PASSES_H
#define DLC_PASSES_H

#include "../ir/ir.h"

/* Infers the element type and shape of every node, checks every op's
 * rules, and canonicalizes attributes that depend on shapes (negative
 * axes, omitted slice bounds, one-int pool/conv sizes expanded per
 * spatial dimension). Reports each mistake at the node's source position;
 * nodes downstream of an error are skipped, not reported again. */
bool pass_shape(Graph *g);

#endif

/*
 * Internal to codegen/: the kernel frame (frame.c) -- what every kernel
 * function of a plan step is given: its signature `NAME.kID(out, in...,
 * batch[, scratch][, key])` and attributes, the buffers of nodes, the
 * extents and strides of shapes at run time, and its node's attributes.
 * Above random numbers (cg_rng.h: a drawing step takes a key).
 */
#ifndef DLC_CG_FRAME_H
#define DLC_CG_FRAME_H

#include "cg_rng.h"

/* Storage: the node whose buffer holds n's value (follows fusion and the
 * plan's aliases). */
/* Links each group's nodes (c->root given) and sets up the by-id scratch
 * arrays, so that a kernel visits its own nodes, not the whole graph. */
void cg_group_members(Cg *c);
/* By node id: the group root that computes it (itself when unfused). */
Node **cg_group_roots(const Graph *g);
Node *cg_storage(const Cg *c, Node *n);

/* Extents at run time in the current function (Dim.batch dims are n *
 * batch), and the contiguous element strides of a shape. */
LLVMValueRef cg_dim(Cg *c, Dim d);
LLVMValueRef cg_numel(Cg *c, const Shape *s);
void cg_strides(Cg *c, const Shape *s, LLVMValueRef *st);

/* Starts the kernel function of step, `NAME.kID(out, ins..., batch)`, plus
 * a pointer argument, the step's scratch buffer, when the plan gives it
 * one (plan->scratch_offset[id] >= 0), and the step's random key last when
 * it draws (cg_step_draws); leaves the builder in its entry block with
 * c->fn, c->batch, c->rng_key and the operands c->kin, c->nkin set.
 * cg_kernel_scratch returns the scratch pointer inside the function (nin
 * as given to cg_kernel_begin); cg_kernel_end returns from it. */
LLVMValueRef cg_kernel_begin(Cg *c, Node *step, Node **ins, int nin);
LLVMValueRef cg_kernel_scratch(Cg *c, int nin);
/* Once the kernel fn is built: its reads of an input it overwrites in
 * place go through the output's pointer (cg_kernel_begin). */
void cg_kernel_unalias(Cg *c, LLVMValueRef fn);
void cg_kernel_end(Cg *c);

/* Element i of an ints attribute (attr_stride(n), ...). */
static inline int64_t cg_ints_at(AttrInts a, int i)
{
    check(i < a.n);
    return a.v[i].n;
}

#endif

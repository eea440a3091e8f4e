/*
 * The memory plans of the functions dlc generates for a graph that went
 * through the pass pipeline (tools/dlc.c).
 */
#ifndef DLC_PLANS_H
#define DLC_PLANS_H

#include "codegen.h"

/* One memory plan per generated function (docs/TRAINING.md): forward (the
 * outputs), evaluate (the loss) and the training step (the loss, every
 * gradient and the ops with running statistics), with the optimizer's
 * recipe; forward only with inference_only or without a train statement. */
CgPlans dlc_plan_memory(Arena *a, Graph *g, bool inference_only);

#endif

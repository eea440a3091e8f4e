/*
 * Internal to codegen/: training-mode random numbers (rng.c). Above the
 * runtime ABI (cg_abi.h: the key reads the instance's seed and step).
 *
 * Whether the kernel of step draws (a training function's dropout,
 * stochastic_pool2d or their replaying gradients in its group; the kernel
 * then takes the step's key as its last argument, c->rng_key inside it),
 * that key for the instance at m, the uniform in [0, 1) of type t that
 * node site draws for element index (i64) with the current kernel's key,
 * and splitmix64's finalizer.
 */
#ifndef DLC_CG_RNG_H
#define DLC_CG_RNG_H

#include "cg_abi.h"

bool cg_step_draws(const Cg *c, const Node *step);
LLVMValueRef cg_step_key(Cg *c, LLVMValueRef m);
LLVMValueRef cg_uniform(Cg *c, const Node *site, LLVMValueRef index, DType t);
LLVMValueRef cg_mix64(Cg *c, LLVMValueRef z);

#endif

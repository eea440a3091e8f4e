/* selftest.h: the interface of a hand-written stand-in for a compiled
 * model (selftest.c), so that selftest.test can check that the harness
 * catches wrong gradients. The same functions as a generated header
 * declares for "model gc_selftest". */
#ifndef GRADCHECK_SELFTEST_H
#define GRADCHECK_SELFTEST_H

#include <stdint.h>

#include <dlrt.h>

typedef struct gc_selftest gc_selftest;

gc_selftest *gc_selftest_create(uint64_t seed);
void gc_selftest_destroy(gc_selftest *m);
double *gc_selftest_params(gc_selftest *m);
double *gc_selftest_grads(gc_selftest *m);
int64_t gc_selftest_step(const gc_selftest *m);
const dlrt_model_info *gc_selftest_info(void);

#endif

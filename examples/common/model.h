/* model.h — picks a compiled model's generated API when a program is
 * compiled: with -DMODEL=lenet it includes lenet.h, names the instance type
 * Model and maps M(create) to lenet_create, M(train_step) to
 * lenet_train_step, and so on. One C program then serves every model of a
 * kind (examples/common/train_mnist.c, bench/mnist.c); dlc_program() in the
 * top-level CMakeLists.txt builds it once per model. */
#ifndef DLC_EXAMPLES_MODEL_H
#define DLC_EXAMPLES_MODEL_H

#ifndef MODEL
#error "compile with -DMODEL=NAME, the name of the model in the .dl file"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(a) #a
#define STR(a) STR_(a)
#include STR(MODEL.h)

#define M(f) CAT(MODEL, _##f)
typedef MODEL Model;

#endif

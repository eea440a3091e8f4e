/*
 * cpu_list.sh's driver of cpu_list.dl through its direct entry points
 * (NAME_create, NAME_train_step, NAME_forward): prints the instance's
 * cpu_level, the loss of three training steps and the outputs after
 * them, one value a line as a C99 hex float (exact).
 */
#include <stdint.h>
#include <stdio.h>

#include "cpu_list.h"

enum { B = 8 };

int main(void)
{
    static float x[B * 784], probs[B * 10];
    int32_t y[B];
    for (uint32_t i = 0; i < B * 784; i++)
        x[i] = (float)((i * 2654435761u) >> 16) * 0x1p-16f;
    for (int b = 0; b < B; b++)
        y[b] = b % 10;
    cpu_list *m = cpu_list_create(1);
    if (!m)
        return 1;
    printf("level %d\n", (int)((const dlrt_instance *)(const void *)m)->cpu_level);
    for (int s = 0; s < 3; s++) {
        float loss;
        if (cpu_list_train_step(m, B, x, y, &loss) != 0)
            return 1;
        printf("loss %a\n", (double)loss);
    }
    if (cpu_list_forward(m, B, x, probs) != 0)
        return 1;
    for (int i = 0; i < B * 10; i++)
        printf("probs %a\n", (double)probs[i]);
    cpu_list_destroy(m);
    return 0;
}

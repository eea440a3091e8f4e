/* Drives nobatch.o: no batch argument; transpose and a slice. */
#include "check.h"
#include "nobatch.h"

int main(void)
{
    nobatch *m = nobatch_create(0);
    expect("create", m != NULL);
    if (!m)
        return 1;
    float a[2][3] = {{1, 2, 3}, {4, 5, 6}}, at[3][2], tail[2][2];
    expect("forward", nobatch_forward(m, &a[0][0], &at[0][0], &tail[0][0]) == 0);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            near("at", j * 2 + i, at[j][i], a[i][j], 0);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            near("tail", i * 2 + j, tail[i][j], a[i][j + 1] * 2, 0);
    expect("null a", nobatch_forward(m, NULL, &at[0][0], &tail[0][0]) == DLRT_EINVAL);
    expect("max batch", nobatch_info()->max_batch == 0);
    nobatch_destroy(m);
    if (failures)
        fprintf(stderr, "nobatch: %d failures\n", failures);
    return failures != 0;
}

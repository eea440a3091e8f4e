/* x[ids] (take_checks.dl): ids outside 0..n-1 make forward and
 * train_step return DLRT_ERANGE, naming the input, the element and the
 * range, with the instance unchanged; 0 and n-1 are valid. Compiled with
 * --no-checks, the kernel's rule holds instead: an id out of range reads
 * a row of zeros.
 *
 *   run checks | no-checks */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "take_checks.h"

enum { B = 2, N = 4, T = 6, D = 3, V = 5 };

int main(int argc, char **argv)
{
    int checks = check_mode(argc, argv);
    if (checks < 0)
        return 2;
    take_checks *m = take_checks_create(7);
    if (!m)
        return 1;
    float x[B * T * D], y[B * D], rows[B * N * D], loss = 0;
    fill_data(x, B * T * D, 1);
    fill_data(y, B * D, 2);
    int32_t ids[B * N] = {0, 4, 4, 1, 2, 0, 3, 4}, k[2] = {4, 0};
    expect("valid ids 0..4: forward", take_checks_forward(m, B, ids, rows) == 0);
    /* rows 1 and 2 of sample 0 are both w[4] */
    for (int j = 0; j < D; j++)
        expect("repeated id: the same row", rows[1 * D + j] == rows[2 * D + j]);
    expect("valid ids: train_step",
           take_checks_train_step(m, B, ids, x, k, y, &loss) == 0);

    unsigned char *before = state_copy(m, take_checks_STATE_BYTES);
    ids[6] = 5;
    int rf = take_checks_forward(m, B, ids, rows);
    if (checks) {
        expect("id 5: forward refused", rf == DLRT_ERANGE);
        expect("the message names the input and the range",
               strstr(dlrt_last_error(),
                      "input 'ids' (indices of take): element [1, 2] (sample 1) is 5, outside 0..4") !=
                   NULL);
        expect("id 5: train_step refused",
               take_checks_train_step(m, B, ids, x, k, y, &loss) == DLRT_ERANGE);
        expect("instance unchanged", memcmp(before, m, take_checks_STATE_BYTES) == 0);
        ids[6] = 3;
        k[1] = -1;
        expect("k = -1: train_step refused",
               take_checks_train_step(m, B, ids, x, k, y, &loss) == DLRT_ERANGE);
        expect("the message names k and -1",
               strstr(dlrt_last_error(), "input 'k'") && strstr(dlrt_last_error(), "is -1"));
        k[1] = 6;
        expect("k = 6 (x has 6 rows, w 5): refused by the smaller bound",
               take_checks_train_step(m, B, ids, x, k, y, &loss) == DLRT_ERANGE);
        expect("instance unchanged", memcmp(before, m, take_checks_STATE_BYTES) == 0);
    } else {
        expect("no checks: forward runs", rf == 0);
        for (int j = 0; j < D; j++)
            expect("id 5: a row of zeros", rows[6 * D + j] == 0);
    }
    free(before);
    take_checks_destroy(m);
    return report();
}

/* lstm(..., lengths = n) (lengths_checks.dl): lengths outside 0..T (5)
 * make forward and train_step return DLRT_ERANGE, naming the input, the
 * element and the range, with the parameters unchanged; 0 and T are
 * valid. Compiled with --no-checks, the kernel's rule holds instead: a
 * length above T runs every step and one below 0 none, so h is the
 * state after T steps and 0 (the zero initial state).
 *
 *   run checks | no-checks */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lengths_checks.h"

enum { B = 4, T = 5, F = 2, H = 3 };

int main(int argc, char **argv)
{
    int checks = check_mode(argc, argv);
    if (checks < 0)
        return 2;
    lengths_checks *m = lengths_checks_create(7);
    if (!m)
        return 1;
    float x[B * T * F], y[B * H], h[B * H], loss = 0;
    fill_data(x, B * T * F, 1);
    fill_data(y, B * H, 2);
    int32_t good[B] = {0, 5, 2, 1};
    expect("valid lengths 0..T: forward", lengths_checks_forward(m, B, x, good, h) == 0);
    for (int j = 0; j < H; j++)
        expect("length 0: h is h0", h[j] == 0);
    expect("valid lengths: train_step", lengths_checks_train_step(m, B, x, good, y, &loss) == 0);

    /* reference: h for the full length 5 (row 1) */
    float full[H];
    lengths_checks_forward(m, B, x, good, h);
    memcpy(full, h + 1 * H, sizeof full);

    unsigned char *before = state_copy(m, lengths_checks_STATE_BYTES);
    int32_t bad[B] = {0, 6, 2, -1};
    int rf = lengths_checks_forward(m, B, x, bad, h);
    if (checks) {
        expect("length 6: forward refused", rf == DLRT_ERANGE);
        expect("the message names the input and the range",
               strstr(dlrt_last_error(),
                      "input 'n' (lengths of lstm): element [1] is 6, outside 0..5") != NULL);
        expect("length 6: train_step refused",
               lengths_checks_train_step(m, B, x, bad, y, &loss) == DLRT_ERANGE);
        expect("parameters unchanged",
               memcmp(before, m, lengths_checks_STATE_BYTES) == 0);
        bad[1] = 5;
        expect("length -1: forward refused",
               lengths_checks_forward(m, B, x, bad, h) == DLRT_ERANGE);
        expect("the message names -1", strstr(dlrt_last_error(), "is -1") != NULL);
    } else {
        expect("no checks: forward runs", rf == 0);
        for (int j = 0; j < H; j++) {
            near("length 6: h after every step", j, h[1 * H + j], full[j], 0);
            expect("length -1: h is h0", h[3 * H + j] == 0);
        }
    }
    free(before);
    lengths_checks_destroy(m);
    return report();
}

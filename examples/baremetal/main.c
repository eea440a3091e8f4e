/*
 * Firmware that classifies the MNIST digits of digits_data.c with the
 * model digits.dl compiled for the Cortex-M4 (README.md). The instance
 * lives in a static buffer of digits_STATE_BYTES: no heap, no files, no
 * threads. Prints one line per image (report.h) and exits 0, or 1 when a
 * call fails.
 */
#include <stdint.h>
#include <string.h>

#include "digits.h"
#include "digits_data.h"
#include "report.h"
#include "semihost.h"

static _Alignas(64) unsigned char state[digits_STATE_BYTES];

int main(void)
{
    digits *m = (digits *)state;
    if (digits_init(m, state, sizeof state, 1) != DLRT_OK ||
        digits_trained_count != digits_NUM_PARAMS) {
        sh_puts("digits: cannot initialize the model\n");
        return 1;
    }
    memcpy(digits_params(m), digits_trained, sizeof(float) * digits_NUM_PARAMS);
    for (int i = 0; i < DIGITS_IMAGES; i++) {
        float x[784], probs[10];
        int32_t digit;
        for (int j = 0; j < 784; j++)
            x[j] = digits_pixel(digits_images[i][j]);
        if (digits_forward(m, 1, x, &digit, probs) != DLRT_OK || digit < 0 || digit > 9) {
            sh_puts("digits: forward failed\n");
            return 1;
        }
        char line[64];
        report_line(line, i, digits_labels[i], (int)digit, probs[digit]);
        sh_puts(line);
    }
    return 0;
}

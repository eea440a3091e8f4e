/* What export.c writes into digits_data.c: the trained parameters of
 * digits.dl in NAME_params order, and the first test images of MNIST
 * with their labels. */
#ifndef DIGITS_DATA_H
#define DIGITS_DATA_H

#include <stdint.h>

#define DIGITS_IMAGES 10

extern const float digits_trained[];
extern const uint32_t digits_trained_count;
extern const uint8_t digits_images[DIGITS_IMAGES][784];
extern const uint8_t digits_labels[DIGITS_IMAGES];

/* pixel p (0..255) as the model's input, the same expression on every
 * target */
static inline float digits_pixel(uint8_t p)
{
    return (float)p / 255.0f;
}

#endif

/* One line per classified image, printed alike by the firmware (main.c)
 * and the PC (export.c), so that their outputs can be compared with diff:
 *
 *   image 3: label 0, predicted 0, p 0x3f7ff8d2
 *
 * p is the bits of the predicted class's probability. Formatted by hand:
 * the firmware has no printf. */
#ifndef REPORT_H
#define REPORT_H

#include <stdint.h>
#include <string.h>

static inline char *report_uint(char *s, uint32_t v, int base, int width)
{
    char d[12];
    int n = 0;
    do {
        d[n++] = "0123456789abcdef"[v % (uint32_t)base];
        v /= (uint32_t)base;
    } while (v);
    while (n < width)
        d[n++] = '0';
    while (n)
        *s++ = d[--n];
    return s;
}

/* writes the line for image i into line (at least 64 bytes) */
static inline void report_line(char *line, int i, int label, int predicted, float p)
{
    uint32_t bits;
    memcpy(&bits, &p, sizeof bits);
    char *s = line;
    memcpy(s, "image ", 6), s += 6;
    s = report_uint(s, (uint32_t)i, 10, 1);
    memcpy(s, ": label ", 8), s += 8;
    s = report_uint(s, (uint32_t)label, 10, 1);
    memcpy(s, ", predicted ", 12), s += 12;
    s = report_uint(s, (uint32_t)predicted, 10, 1);
    memcpy(s, ", p 0x", 6), s += 6;
    s = report_uint(s, bits, 16, 8);
    *s++ = '\n';
    *s = 0;
}

#endif

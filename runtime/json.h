/*
 * Private to libdlrt: the lexical half of a strict JSON reader (RFC 8259),
 * used by the safetensors loader, which drives the grammar itself because
 * the header has a fixed shape. Strings are decoded (escapes, \uXXXX with
 * surrogate pairs) and checked to be well-formed UTF-8; numbers must be
 * non-negative integers without leading zeros, fraction or exponent.
 */
#ifndef DLRT_JSON_H
#define DLRT_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *p;   /* next unread byte */
    const char *end; /* one past the last byte */
} dlrt_json_cur;

/* Skips JSON whitespace (space, tab, LF, CR). */
void dlrt_json_ws(dlrt_json_cur *c);

/* Skips whitespace, then consumes `ch` if it comes next; returns 1 if so. */
int dlrt_json_eat(dlrt_json_cur *c, char ch);

/* Parses a string at the cursor (after whitespace) into out (which has room
 * for at least the rest of the input plus a NUL), NUL-terminates it and sets
 * *len to its decoded length (it may contain NULs from \u0000). Returns 0 or
 * -1 for anything that is not a well-formed string. */
int dlrt_json_string(dlrt_json_cur *c, char *out, size_t *len);

/* Parses a non-negative integer no larger than max (after whitespace).
 * Returns 0 or -1 (not an integer, negative, fractional, too large). */
int dlrt_json_uint(dlrt_json_cur *c, uint64_t max, uint64_t *v);

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF). */
int dlrt_json_utf8_valid(const char *s, size_t n);

#endif

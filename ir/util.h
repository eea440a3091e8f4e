/*
 * Small shared utilities for the compiler: an arena allocator (one per
 * compilation, freed at once, as QBE's freeall), growable arrays that live
 * in an arena, a string builder, and the always-on assertion for bugs in
 * dlc itself. User mistakes never reach die(): they go through diag.h.
 */
#ifndef DLC_UTIL_H
#define DLC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Arena Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size);          /* zeroed, 16-byte aligned */
void *arena_realloc(Arena *a, void *p, size_t old, size_t size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t arena_used(const Arena *a);                 /* bytes handed out so far */

/* A growable array of T in an arena: `Vec(Node *) v = {0}; vec_push(a, &v, n);` */
#define Vec(T)                                                                 \
    struct {                                                                   \
        T *v;                                                                  \
        int n, cap;                                                            \
    }
#define vec_push(arena, vec, x)                                                \
    do {                                                                       \
        if ((vec)->n == (vec)->cap) {                                          \
            int ncap_ = (vec)->cap ? 2 * (vec)->cap : 8;                       \
            (vec)->v = arena_realloc((arena), (vec)->v,                        \
                                     (size_t)(vec)->cap * sizeof *(vec)->v,    \
                                     (size_t)ncap_ * sizeof *(vec)->v);        \
            (vec)->cap = ncap_;                                                \
        }                                                                      \
        (vec)->v[(vec)->n++] = (x);                                            \
    } while (0)

/* malloc, calloc and realloc that end dlc cleanly when memory runs out:
 * "dlc: error: out of memory", exit status 2 (as for I/O failures). Running
 * out of memory is neither a bug in dlc nor a mistake in the model. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
_Noreturn void out_of_memory(size_t bytes);

/* String builder on malloc; sb_take hands the buffer to the caller. */
typedef struct {
    char *s;
    size_t len, cap;
} StrBuf;

void sb_putc(StrBuf *b, char c);
void sb_puts(StrBuf *b, const char *s);
void sb_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(StrBuf *b, const char *fmt, va_list ap);
char *sb_take(StrBuf *b);  /* NUL-terminated; never NULL; b is reset */
void sb_free(StrBuf *b);

/* Edit distance, for "did you mean" suggestions. */
int edit_distance(const char *a, const char *b);

/* Reads a whole file; returns NULL and sets errno on failure. malloc'd. */
char *read_file(const char *path, size_t *len);

/* Checked arithmetic: return false on overflow. */
bool mul_overflows_i64(int64_t a, int64_t b, int64_t *out);
bool add_overflows_i64(int64_t a, int64_t b, int64_t *out);

/* A bug in dlc: print file, line and message, then abort. */
_Noreturn void die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define die(...) die_at(__FILE__, __LINE__, __VA_ARGS__)
#define check(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            die_at(__FILE__, __LINE__, "assertion failed: %s", #cond);        \
    } while (0)

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif

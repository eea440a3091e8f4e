/* Internal to libdlrt: the message behind dlrt_last_error(). */
#ifndef DLRT_ERROR_H
#define DLRT_ERROR_H

/* Sets this thread's last error message (printf-style); returns code, so
 * that a failure reads `return dlrt_fail(DLRT_EMISMATCH, "...", ...)`. */
int dlrt_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same with a fixed text, without stdio (check.c). */
int dlrt_fail_text(int code, const char *text);

/* Empties this thread's message: public calls that set one start so. */
void dlrt_error_clear(void);

/* Puts prefix and ": " before this thread's message (a file's path), or
 * before dlrt_strerror(code) when there is none. */
void dlrt_error_prefix(const char *prefix, int code);

#endif

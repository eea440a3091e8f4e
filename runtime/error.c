/*
 * dlrt_last_error(): what exactly went wrong in the last failing call of
 * this thread, beyond its DLRT_E* code ("tensor 'fc1.w': the model has F32
 * [784, 256], the file F32 [256, 784]"). Thread-local, as instances may be
 * used from several threads. Calls that can say more clear it when they
 * start, so after a failure it is that failure's message or "".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dlrt.h"
#include "error.h"

enum { MESSAGE_SIZE = 512 };
static _Thread_local char message[MESSAGE_SIZE];

const char *dlrt_last_error(void) { return message; }

int dlrt_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return code;
}

int dlrt_fail_text(int code, const char *text)
{
    size_t n = strlen(text);
    if (n > sizeof message - 1)
        n = sizeof message - 1;
    memcpy(message, text, n);
    message[n] = 0;
    return code;
}

void dlrt_error_clear(void) { message[0] = 0; }

void dlrt_error_prefix(const char *prefix, int code)
{
    char old[MESSAGE_SIZE];
    memcpy(old, message, sizeof old);
    /* a long path may cut the message short: that is fine, it stays a string */
    int n = snprintf(message, sizeof message, "%s: ", prefix);
    if (n >= 0 && (size_t)n < sizeof message)
        snprintf(message + n, sizeof message - (size_t)n, "%s", old[0] ? old : dlrt_strerror(code));
}

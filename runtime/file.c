/*
 * Error messages and whole-file reads for libdlrt's loaders. A file is read
 * in doubling chunks until fread comes up short, so pipes and files whose
 * size changes work as well as regular files.
 */
#include "file.h"

#include "dlrt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dlrt_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int dlrt_read_file(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        dlrt_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return DLRT_EIO;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    int rc = DLRT_OK;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *t = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!t) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = t;
        cap *= 2;
    }
    if (!buf) {
        dlrt_seterr(err, errlen, "%s: out of memory", path);
        rc = DLRT_ENOMEM;
    } else if (ferror(f)) {
        dlrt_seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = DLRT_EIO;
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *data = buf;
    *len = buf ? n : 0;
    return rc;
}

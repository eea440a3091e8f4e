/* Internal to libdlrt (not installed, not part of its API): the error
 * messages and whole-file reads that the loaders (csv.c, idx.c, text.c)
 * share. */
#ifndef DLRT_FILE_H
#define DLRT_FILE_H

#include <stddef.h>

/* Formats a one-line message into err; nothing when err is NULL or errlen 0. */
void dlrt_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads the whole file at path into *data (malloc'd, free it) of *len bytes.
 * DLRT_EIO when it cannot be opened or read (a directory, say), DLRT_ENOMEM;
 * both with "PATH: ..." in err. */
int dlrt_read_file(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen);

#endif

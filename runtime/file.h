/* Internal to libdlrt (not installed, not part of its API): the error
 * messages and whole-file reads that the loaders (csv.c, idx.c, text.c)
 * share, and checkpoints' temporary files (tmpfile.c). */
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

/* tmpfile.c: creates path's temporary file PATH.tmp.XXXXXX, locked (flock)
 * until closed; returns its descriptor and its malloc'd name in *tmp_path,
 * or DLRT_ENOMEM, DLRT_EIO. */
int dlrt_tmp_create(const char *path, char **tmp_path);

/* Removes path's temporary files that no live process holds (left by a
 * killed save); returns how many. Best effort: errors are ignored. */
int dlrt_tmp_sweep(const char *path);

#endif

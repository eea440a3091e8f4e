/*
 * The temporary files of atomic checkpoint saves, and their cleanup after
 * a save that was killed. A save writes PATH.tmp.XXXXXX (mkostemp's six
 * letters and digits) and renames it over PATH; a process killed in
 * between leaves the temporary file behind.
 *
 * Which leftovers are safe to remove: the writer holds an exclusive
 * flock() on its temporary file from creation until after the rename.
 * The kernel drops a lock when its holder dies, kill -9 included, so a
 * file whose lock can be taken has no live writer. The sweep removes a
 * directory entry only when its name is exactly BASENAME.tmp. and six
 * letters or digits, it is a regular file (no symlink is followed) owned
 * by this user, and a non-blocking lock on it succeeds. A writer could
 * lose the race between mkostemp and its flock to a sweep; it then finds
 * its name gone or naming another file, and starts again with a new name.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp, strndup */
#endif
#include "file.h"

#include "dlrt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char suffix[] = ".tmp.XXXXXX";
enum { SUFFIX_LEN = sizeof suffix - 1, RANDOM_LEN = 6 };

/* Whether name is base's temporary-file name. */
static int is_temp_name(const char *name, const char *base, size_t blen)
{
    if (strlen(name) != blen + SUFFIX_LEN || memcmp(name, base, blen) != 0 ||
        memcmp(name + blen, suffix, SUFFIX_LEN - RANDOM_LEN) != 0)
        return 0;
    for (const char *p = name + blen + SUFFIX_LEN - RANDOM_LEN; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

int dlrt_tmp_sweep(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    if (blen == 0)
        return 0;
    char *dir = !slash          ? strdup(".")
                : slash == path ? strdup("/")
                                : strndup(path, (size_t)(slash - path));
    if (!dir)
        return 0;
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return 0;
    int dfd = dirfd(d), removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_temp_name(e->d_name, base, blen))
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            flock(fd, LOCK_EX | LOCK_NB) == 0) {
            /* the name must still be this file: not one a writer made since */
            struct stat now;
            if (fstatat(dfd, e->d_name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
                now.st_ino == st.st_ino && now.st_dev == st.st_dev &&
                unlinkat(dfd, e->d_name, 0) == 0)
                removed++;
        }
        close(fd);
    }
    closedir(d);
    return removed;
}

int dlrt_tmp_create(const char *path, char **tmp_path)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof suffix);
    if (!tmp)
        return DLRT_ENOMEM;
    for (int attempt = 0; attempt < 100; attempt++) {
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, suffix, sizeof suffix);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
            break;
        struct stat mine, named;
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &mine) == 0 && stat(tmp, &named) == 0 &&
            mine.st_ino == named.st_ino && mine.st_dev == named.st_dev) {
            *tmp_path = tmp;
            return fd;
        }
        close(fd); /* a sweep took it before the lock: the name is gone or another's */
    }
    free(tmp);
    return DLRT_EIO;
}

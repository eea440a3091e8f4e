/*
 * Atomic output files and make dependency files. A failed compilation, a
 * full disk or an interrupted write leaves the previous outputs as they
 * were, never a partial object that a build system would take as new.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "output.h"

enum { MAX_PENDING = 16 };
static char *pending[MAX_PENDING];
static int npending;

static void remove_pending(void)
{
    for (int i = 0; i < npending; i++)
        if (pending[i]) {
            unlink(pending[i]);
            free(pending[i]);
            pending[i] = NULL;
        }
    npending = 0;
}

void out_unlink_pending(void)
{
    for (int i = 0; i < npending; i++)
        if (pending[i])
            unlink(pending[i]);
}

static _Noreturn void io_error(const char *what, const char *path)
{
    fprintf(stderr, "dlc: error: %s '%s': %s\n", what, path, strerror(errno));
    exit(2);
}

const char *out_begin(const char *path)
{
    /* Standard output, and devices and pipes (-o /dev/null), are written
     * in place: renaming a file over them would replace the device. */
    struct stat st;
    if (strcmp(path, "-") == 0 || (stat(path, &st) == 0 && !S_ISREG(st.st_mode)))
        return path;
    if (npending == 0)
        atexit(remove_pending);
    if (npending == MAX_PENDING) {
        fprintf(stderr, "dlc: error: too many output files\n");
        exit(2);
    }
    size_t n = strlen(path);
    char *tmp = malloc(n + sizeof ".tmpXXXXXX");
    if (!tmp)
        io_error("out of memory writing", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmpXXXXXX", sizeof ".tmpXXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        io_error("cannot write", path);
    }
    close(fd);
    pending[npending++] = tmp;
    return tmp;
}

bool out_commit(const char *tmp, const char *path)
{
    if (tmp == path)
        return true;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "dlc: error: cannot write '%s': %s\n", path, strerror(errno));
        return false;
    }
    for (int i = 0; i < npending; i++)
        if (pending[i] && strcmp(pending[i], tmp) == 0) {
            free(pending[i]);
            pending[i] = NULL;
        }
    return true;
}

FILE *out_fopen(const char *tmp)
{
    if (strcmp(tmp, "-") == 0)
        return stdout;
    FILE *f = fopen(tmp, "w");
    if (!f)
        io_error("cannot write", tmp);
    return f;
}

bool out_fclose(FILE *f, const char *path)
{
    if (f == stdout) {
        if (fflush(f) == 0 && !ferror(f))
            return true;
    } else if (!ferror(f) & (fclose(f) == 0)) {
        return true;
    }
    fprintf(stderr, "dlc: error: writing '%s' failed: %s\n", path, strerror(errno));
    return false;
}

/* A path as make reads it: spaces and '#' escaped, '$' doubled. */
static void put_make_path(FILE *f, const char *p)
{
    for (; *p; p++) {
        if (*p == ' ' || *p == '#')
            fputc('\\', f);
        else if (*p == '$')
            fputc('$', f);
        fputc(*p, f);
    }
}

bool out_write_depfile(const char *path, const char *rule_target, const char *const *targets,
                       int ntargets)
{
    const char *tmp = out_begin(path);
    FILE *f = out_fopen(tmp);
    if (rule_target)
        fputs(rule_target, f);
    for (int i = 0; i < ntargets && !rule_target; i++) {
        if (i)
            fputc(' ', f);
        put_make_path(f, targets[i]);
    }
    fputc(':', f);
    for (int i = 0; i < diag_num_files(); i++) {
        const char *src = diag_file_path(i);
        if (strcmp(src, "-") == 0 || strcmp(src, "<stdin>") == 0)
            continue;
        fputs(" \\\n  ", f);
        put_make_path(f, src);
    }
    fputc('\n', f);
    return out_fclose(f, path) && out_commit(tmp, path);
}

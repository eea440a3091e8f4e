/*
 * Loading: reads the main .dl file, registers it with diag, parses it, then
 * follows its `import "x.dl";` statements (paths relative to the importing
 * file's directory), loading each file once by its canonical path so that
 * import cycles are harmless. The parsed programs go to fe_lower with the
 * main file first; imported files contribute only their defs.
 *
 * Only regular files are imported: reading /dev/zero or a FIFO named in an
 * import would never end.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend.h"

typedef struct {
    Arena *a;
    Vec(Program *) progs;
    Vec(const char *) seen; /* canonical paths already loaded */
} Loader;

static const char *canonical(Arena *a, const char *path)
{
    char *r = realpath(path, NULL);
    if (!r)
        return arena_strdup(a, path);
    const char *s = arena_strdup(a, r);
    free(r);
    return s;
}

static bool seen(Loader *ld, const char *canon)
{
    for (int i = 0; i < ld->seen.n; i++)
        if (strcmp(ld->seen.v[i], canon) == 0)
            return true;
    return false;
}

/* The directory part of path with a trailing '/', or "" for none. */
static const char *dir_of(Arena *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? arena_strndup(a, path, (size_t)(slash - path + 1)) : "";
}

static void load_imports(Loader *ld, Program *p, const char *dir);

/* Registers and parses one text; NULL after syntax errors. */
static Program *parse_text(Loader *ld, const char *path, const char *text, size_t len)
{
    int before = diag_errors();
    int file = diag_add_source(path, text, len);
    Program *p = fe_parse(ld->a, file);
    if (!p || diag_errors() > before)
        return NULL;
    vec_push(ld->a, &ld->progs, p);
    return p;
}

static void load_import(Loader *ld, const Import *im, const char *dir)
{
    if (!im->path)
        return;
    const char *path = im->path[0] == '/' ? im->path : arena_printf(ld->a, "%s%s", dir, im->path);
    struct stat st;
    if (stat(path, &st) != 0) {
        diag_error(im->loc, "cannot open '%s': %s", im->path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        diag_error(im->loc, "cannot open '%s': not a regular file", im->path);
        return;
    }
    const char *canon = canonical(ld->a, path);
    if (seen(ld, canon))
        return;
    vec_push(ld->a, &ld->seen, canon);
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        diag_error(im->loc, "cannot open '%s': %s", im->path, strerror(errno));
        return;
    }
    Program *p = parse_text(ld, path, text, len);
    free(text);
    if (p)
        load_imports(ld, p, dir_of(ld->a, path));
}

static void load_imports(Loader *ld, Program *p, const char *dir)
{
    for (int i = 0; i < p->nimports; i++)
        load_import(ld, &p->imports[i], dir);
}

/* Parses text (the main file) and its imports into *out; false after
 * reporting errors. */
static bool parse_all(Arena *a, const char *path, const char *text, size_t len, const char *dir,
                      FePrograms *out)
{
    int before = diag_errors();
    Loader ld = {.a = a};
    vec_push(a, &ld.seen, canonical(a, path));
    Program *main = parse_text(&ld, path, text, len);
    if (!main)
        return false;
    load_imports(&ld, main, dir);
    if (diag_errors() > before)
        return false;
    *out = (FePrograms){ld.progs.v, ld.progs.n};
    return true;
}

bool fe_parse_file(Arena *a, const char *path, FePrograms *out)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        diag_error_plain("cannot open '%s': not a regular file", path);
        return false;
    }
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        diag_error_plain("cannot open '%s': %s", path, strerror(errno));
        return false;
    }
    bool ok = parse_all(a, path, text, len, dir_of(a, path), out);
    free(text);
    return ok;
}

bool fe_parse_text(Arena *a, const char *path, const char *text, size_t len, FePrograms *out)
{
    return parse_all(a, path ? path : "<input>", text ? text : "", text ? len : 0, "", out);
}

Graph *fe_load(Arena *a, const char *path, const Define *defs, int ndefs)
{
    FePrograms p;
    return fe_parse_file(a, path, &p) ? fe_lower(a, p.v, p.n, defs, ndefs) : NULL;
}

Graph *fe_load_text(Arena *a, const char *path, const char *text, size_t len, const Define *defs,
                    int ndefs)
{
    FePrograms p;
    return fe_parse_text(a, path, text, len, &p) ? fe_lower(a, p.v, p.n, defs, ndefs) : NULL;
}

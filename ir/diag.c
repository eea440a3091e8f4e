/*
 * Diagnostic printing. Sources are copied in and kept until diag_reset, so
 * the caret line can be printed long after parsing. After DIAG_MAX_ERRORS
 * errors further ones are counted but not printed.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *path;
    char *text;
    size_t len;
} Source;

static Source *sources;
static int nsources, capsources;
static int nerrors;
static FILE *out;

void diag_reset(void)
{
    for (int i = 0; i < nsources; i++) {
        free(sources[i].path);
        free(sources[i].text);
    }
    free(sources);
    sources = NULL;
    nsources = capsources = 0;
    nerrors = 0;
}

void diag_set_output(FILE *f) { out = f; }

static FILE *stream(void) { return out ? out : stderr; }

int diag_add_source(const char *path, const char *text, size_t len)
{
    if (nsources == capsources) {
        capsources = capsources ? 2 * capsources : 4;
        sources = xrealloc(sources, (size_t)capsources * sizeof *sources);
    }
    Source *s = &sources[nsources];
    s->path = strdup(path);
    s->text = xmalloc(len + 1);
    if (!s->path)
        out_of_memory(strlen(path) + 1);
    memcpy(s->text, text, len);
    s->text[len] = 0;
    s->len = len;
    return nsources++;
}

const char *diag_file_path(int file)
{
    return file >= 0 && file < nsources ? sources[file].path : "<unknown>";
}

const char *diag_source_text(int file, size_t *len)
{
    if (file < 0 || file >= nsources)
        return NULL;
    if (len)
        *len = sources[file].len;
    return sources[file].text;
}

int diag_num_files(void) { return nsources; }

static void show_line(Loc loc)
{
    if (loc.file < 0 || loc.file >= nsources || loc.line <= 0)
        return;
    const Source *s = &sources[loc.file];
    const char *p = s->text, *end = s->text + s->len;
    for (int l = 1; l < loc.line && p < end; p++)
        if (*p == '\n')
            l++;
    if (p >= end && loc.line > 1)
        return;
    const char *eol = p;
    while (eol < end && *eol != '\n' && *eol != '\r')
        eol++;
    FILE *f = stream();
    fputs("    ", f);
    for (const char *q = p; q < eol; q++)
        fputc(*q == 0 ? ' ' : *q, f);
    fputc('\n', f);
    fputs("    ", f);
    /* Keep tabs so the caret lines up under the token. */
    int col = 1;
    for (const char *q = p; q < eol && col < loc.col; q++, col++)
        fputc(*q == '\t' ? '\t' : ' ', f);
    fputc('^', f);
    for (int i = 1; i < loc.len && col + i <= (int)(eol - p); i++)
        fputc('~', f);
    fputc('\n', f);
}

static void report(Loc loc, const char *kind, const char *fmt, va_list ap)
{
    FILE *f = stream();
    if (loc.line > 0)
        fprintf(f, "%s:%d:%d: %s: ", diag_file_path(loc.file), loc.line, loc.col, kind);
    else
        fprintf(f, "dlc: %s: ", kind);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    show_line(loc);
}

void diag_error(Loc loc, const char *fmt, ...)
{
    if (++nerrors > DIAG_MAX_ERRORS) {
        if (nerrors == DIAG_MAX_ERRORS + 1)
            fprintf(stream(), "dlc: error: too many errors, stopping here\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    report(loc, "error", fmt, ap);
    va_end(ap);
}

void diag_warning(Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(loc, "warning", fmt, ap);
    va_end(ap);
}

void diag_note(Loc loc, const char *fmt, ...)
{
    if (nerrors > DIAG_MAX_ERRORS)
        return;
    va_list ap;
    va_start(ap, fmt);
    report(loc, "note", fmt, ap);
    va_end(ap);
}

void diag_error_plain(const char *fmt, ...)
{
    nerrors++;
    va_list ap;
    va_start(ap, fmt);
    report((Loc){0}, "error", fmt, ap);
    va_end(ap);
}

int diag_errors(void) { return nerrors; }

const char *diag_suggest(const char *word, const char *const *cands, int n)
{
    const char *best = NULL;
    int bestd = 1000;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, cands[i]);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    int len = (int)strlen(word);
    /* a one-letter name is too short for a guess to help */
    int limit = len <= 1 ? 0 : len <= 4 ? 1 : len <= 7 ? 2 : 3;
    return bestd <= limit ? best : NULL;
}

/*
 * fe_parse: runs the Flex scanner and the Bison parser (lexer.l, parser.y)
 * over one registered source and collects what they built into a Program.
 * The scanner reads the diag copy of the text as a counted buffer, so the
 * text may hold NUL bytes; all AST memory comes from the caller's arena.
 */
#include <limits.h>

#include "frontend.h"
#include "parser.h"

/* after parser.h: the scanner header uses its token and location types */
#include "lexer.h"

Program *fe_parse(Arena *a, int file)
{
    size_t len;
    const char *text = diag_source_text(file, &len);
    check(text);
    Program *prog = arena_alloc(a, sizeof *prog);
    prog->file = file;
    if (len > INT_MAX / 2) {
        diag_error((Loc){file, 1, 1, 1}, "file is too large to parse (%zu bytes)", len);
        return prog;
    }

    FeParser ps = {.arena = a, .file = file, .line = 1, .col = 1, .lex_error_at = -1};
    yyscan_t scanner;
    if (yylex_init_extra(&ps, &scanner) != 0)
        out_of_memory(sizeof(yyscan_t));
    YY_BUFFER_STATE buf = yy_scan_bytes(text, (int)len, scanner);
    yyparse(scanner, &ps);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);

    prog->defs = ps.defs.v;
    prog->ndefs = ps.defs.n;
    prog->models = ps.models.v;
    prog->nmodels = ps.models.n;
    prog->imports = ps.imports.v;
    prog->nimports = ps.imports.n;
    return prog;
}

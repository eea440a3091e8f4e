/*
 * Helpers for every unit test (checklib.h): the table of tests and the
 * main() that runs it, scratch directories and whole-file I/O, on libc
 * alone.
 */
#include "checklib.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* defined by the test program (SUITE) */
extern const char *const unit_suite_name;

static UnitTest *tests;
static int ntests, cap;

void unit_register(UnitTest t)
{
    if (ntests == cap) {
        cap = cap ? 2 * cap : 64;
        tests = realloc(tests, (size_t)cap * sizeof *tests);
        if (!tests)
            abort();
    }
    tests[ntests++] = t;
}

/* file order: constructors need not run in it */
static int by_place(const void *pa, const void *pb)
{
    const TTest *a = ((const UnitTest *)pa)->test, *b = ((const UnitTest *)pb)->test;
    int c = strcmp(a->file, b->file);
    return c ? c : (a->line > b->line) - (a->line < b->line);
}

int main(void)
{
    qsort(tests, (size_t)ntests, sizeof *tests, by_place);
    Suite *s = suite_create(unit_suite_name);
    const UnitGroup **groups = calloc((size_t)ntests + 1, sizeof *groups);
    TCase **cases = calloc((size_t)ntests + 1, sizeof *cases);
    int ngroups = 0;
    for (int i = 0; i < ntests; i++) {
        const UnitTest *t = &tests[i];
        int g = 0;
        while (g < ngroups && groups[g] != t->group)
            g++;
        if (g == ngroups) {
            groups[g] = t->group;
            cases[g] = tcase_create(t->group->name);
            if (t->group->setup || t->group->teardown)
                tcase_add_checked_fixture(cases[g], t->group->setup, t->group->teardown);
            if (t->group->timeout > 0)
                tcase_set_timeout(cases[g], t->group->timeout);
            suite_add_tcase(s, cases[g]);
            ngroups++;
        }
        tcase_add_loop_test_raise_signal(cases[g], t->test, t->signal, 0, t->loops > 0 ? t->loops : 1);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(groups);
    free(cases);
    free(tests);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void tmp_dir_new(char *dir, size_t size, const char *prefix)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, size, "%s/%s-XXXXXX", t && *t ? t : "/tmp", prefix);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

void tmp_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (rmdir(p) != 0)
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

const char *tmp_path(const char *dir, const char *name)
{
    static char p[2][512];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

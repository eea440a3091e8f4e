/*
 * Helpers every unit test may use, compiler and runtime alike: they need
 * only Check and libc, so the test_rt_* programs, which link the runtime
 * and nothing else of the tree, can use them too.
 *
 * Tests register themselves: a test file names its suite once, declares
 * its groups (Check's test cases: fixtures and timeout), and defines each
 * test with TEST (or TEST_SIGNAL, TEST_LOOP) instead of START_TEST:
 *
 *   SUITE("ir");
 *   GROUP(text, setup, teardown);         // or GROUP(core, NULL, NULL, 60)
 *   TEST(text, print_mlp_exact)
 *   {
 *       ck_assert_int_eq(...);
 *   }
 *
 * Each TEST adds itself to a table before main() runs (a constructor);
 * checklib.c's main() builds the suite from the table, groups in the order
 * of their first test and tests in the order of the file, and runs it.
 * The rest makes scratch directories and reads and writes whole files,
 * failing the test (not crashing) when the system refuses.
 */
#ifndef DLC_TESTS_CHECKLIB_H
#define DLC_TESTS_CHECKLIB_H

#include <check.h>
#include <stddef.h>

/* A group of tests: one Check test case. */
typedef struct {
    const char *name;
    SFun setup, teardown; /* checked fixtures: in each test's process, or NULL */
    double timeout;       /* seconds; 0 for Check's default (CK_DEFAULT_TIMEOUT) */
} UnitGroup;

/* One registered test. */
typedef struct {
    const UnitGroup *group;
    const TTest *test;
    int signal; /* the signal the test must raise; 0: it must return */
    int loops;  /* > 0: run with _i = 0 .. loops - 1 */
} UnitTest;

/* Adds t to the table main() runs; called by the TEST macros. */
void unit_register(UnitTest t);

/* The suite's name, once per test program. */
#define SUITE(name) const char *const unit_suite_name = name
/* GROUP(name, setup, teardown[, timeout]) */
#define GROUP(id, ...) static const UnitGroup unit_group_##id = {.name = #id, __VA_ARGS__}
#define TEST(group, name) UNIT_TEST_(group, name, 0, 0)
/* a test that passes when it raises signal sig (an assertion's SIGABRT) */
#define TEST_SIGNAL(group, name, sig) UNIT_TEST_(group, name, sig, 0)
/* a test run n times, with _i = 0 .. n - 1 */
#define TEST_LOOP(group, name, n) UNIT_TEST_(group, name, 0, n)

#define UNIT_TEST_(group, name, sig, n)                                                            \
    static void name##_fn(int _i);                                                                 \
    static const TTest name##_ttest = {#name, name##_fn, __FILE__, __LINE__};                      \
    __attribute__((constructor)) static void name##_register(void)                                 \
    {                                                                                              \
        unit_register((UnitTest){&unit_group_##group, &name##_ttest, sig, n});                     \
    }                                                                                              \
    static void name##_fn(int _i CK_ATTRIBUTE_UNUSED)

/* A fresh directory $TMPDIR/PREFIX-XXXXXX (/tmp without TMPDIR) in dir. */
void tmp_dir_new(char *dir, size_t size, const char *prefix);
/* Removes dir with the files and empty directories in it. */
void tmp_dir_remove(const char *dir);
/* dir/name in a static buffer; the two most recent results stay valid. */
const char *tmp_path(const char *dir, const char *name);

/* Writes n bytes to path, replacing the file. */
void write_bytes(const char *path, const void *p, size_t n);
/* The whole file, malloc'd with one spare byte; its length in *n. */
unsigned char *read_bytes(const char *path, size_t *n);

#endif

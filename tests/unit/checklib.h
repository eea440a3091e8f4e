/*
 * Helpers every unit test may use, compiler and runtime alike: they need
 * only Check and libc, so the test_rt_* programs, which link the runtime
 * and nothing else of the tree, can use them too. run_suite() is the whole
 * of a test's main(); the rest makes scratch directories and reads and
 * writes whole files, failing the test (not crashing) when the system
 * refuses.
 */
#ifndef DLC_TESTS_CHECKLIB_H
#define DLC_TESTS_CHECKLIB_H

#include <check.h>
#include <stddef.h>

/* Runs every test of s; EXIT_SUCCESS when none failed. */
int run_suite(Suite *s);

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

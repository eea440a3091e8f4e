/* libdlrt error strings and settings. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "checklib.h"
#include "dlrt.h"

SUITE("runtime-errors");
GROUP(core, NULL, NULL);

TEST(core, strerror_known_codes)
{
    ck_assert_str_eq(dlrt_strerror(DLRT_OK), "success");
    ck_assert_str_eq(dlrt_strerror(DLRT_EINVAL), "invalid argument");
    ck_assert_str_eq(dlrt_strerror(DLRT_EFORMAT), "malformed file");
    for (int c = 0; c > -DLRT_ECOUNT; c--) {
        ck_assert_ptr_nonnull(dlrt_strerror(c));
        ck_assert_str_ne(dlrt_strerror(c), "unknown error");
    }
}
END_TEST

TEST(core, strerror_unknown_codes)
{
    ck_assert_str_eq(dlrt_strerror(1), "unknown error");
    ck_assert_str_eq(dlrt_strerror(-DLRT_ECOUNT), "unknown error");
    ck_assert_str_eq(dlrt_strerror(-1000), "unknown error");
}
END_TEST

TEST(core, threads)
{
    ck_assert_int_eq(dlrt_set_num_threads(0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_set_num_threads(2), DLRT_OK);
    ck_assert_int_eq(dlrt_num_threads(), 2);
    ck_assert_int_eq(dlrt_set_num_threads(1), DLRT_OK);
    ck_assert_int_eq(dlrt_num_threads(), 1);
}
END_TEST

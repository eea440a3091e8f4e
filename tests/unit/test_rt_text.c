/* libdlrt text for language models: bytes to ids, every kind of bad input,
 * the held-out split, random training windows (reproducible from (seed,
 * step), every start equally likely), consecutive evaluation windows, the
 * unigram baseline against a hand computation, and temperature sampling
 * against its distribution. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checklib.h"
#include "dlrt.h"

static char dir[256];

static void setup(void)
{
    tmp_dir_new(dir, sizeof dir, "dlrt-text");
}

static void teardown(void)
{
    tmp_dir_remove(dir);
}

/* A text of ids 0..n-1 (vocabulary n), so a window names its start. */
static dlrt_text counting(int64_t n)
{
    dlrt_text t = {n, (int)n, malloc(sizeof(int32_t) * (size_t)n)};
    ck_assert_ptr_nonnull(t.ids);
    for (int64_t i = 0; i < n; i++)
        t.ids[i] = (int32_t)i;
    return t;
}

SUITE("runtime-text");
GROUP(core, setup, teardown);

TEST(core, text_load_maps_bytes)
{
    const char *path = tmp_path(dir, "t.txt");
    write_bytes(path, "ab\xc3\xa9\n", 5);
    dlrt_text t;
    char err[256] = "";
    ck_assert_int_eq(dlrt_text_load(path, 128, 26, &t, err, sizeof err), DLRT_OK);
    const int32_t want[5] = {'a', 'b', 26, 26, '\n'};
    ck_assert_int_eq(t.n, 5);
    ck_assert_int_eq(t.vocab, 128);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(t.ids[i], want[i]);
    dlrt_text_free(&t);
    ck_assert_ptr_null(t.ids);
    /* with a byte vocabulary every byte is its own id */
    ck_assert_int_eq(dlrt_text_load(path, 256, 0, &t, err, sizeof err), DLRT_OK);
    ck_assert_int_eq(t.ids[2], 0xc3);
    ck_assert_int_eq(t.ids[3], 0xa9);
    dlrt_text_free(&t);
    /* a vocabulary below the byte values: 'a' = 97 and up become unknown */
    ck_assert_int_eq(dlrt_text_parse("a\n", 2, 16, 3, NULL, &t, NULL, 0), DLRT_OK);
    ck_assert_int_eq(t.ids[0], 3);
    ck_assert_int_eq(t.ids[1], '\n');
    dlrt_text_free(&t);
}
END_TEST

TEST(core, text_bad_input)
{
    dlrt_text t;
    char err[256] = "";
    const char *missing = tmp_path(dir, "missing.txt");
    ck_assert_int_eq(dlrt_text_load(missing, 128, 26, &t, err, sizeof err), DLRT_EIO);
    ck_assert_ptr_nonnull(strstr(err, "missing.txt: cannot open"));
    ck_assert_ptr_null(t.ids);
    dlrt_text_free(&t); /* safe after a failure */

    const char *empty = tmp_path(dir, "empty.txt");
    write_bytes(empty, "", 0);
    ck_assert_int_eq(dlrt_text_load(empty, 128, 26, &t, err, sizeof err), DLRT_EFORMAT);
    ck_assert_ptr_nonnull(strstr(err, "empty.txt: empty text"));
    ck_assert_int_eq(dlrt_text_load(dir, 128, 26, &t, NULL, 0) < 0, 1); /* a directory */

    ck_assert_int_eq(dlrt_text_parse("ab", 2, 0, 0, "x", &t, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_parse("ab", 2, 65537, 0, "x", &t, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_parse("ab", 2, 128, 128, "x", &t, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_parse("ab", 2, 128, -1, "x", &t, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_parse(NULL, 2, 128, 0, "x", &t, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_parse("ab", 2, 128, 0, "x", NULL, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_load(NULL, 128, 0, &t, NULL, 0), DLRT_EINVAL);
}
END_TEST

TEST(core, text_split)
{
    dlrt_text t = counting(100), train, held;
    char err[256] = "";
    ck_assert_int_eq(dlrt_text_split(&t, 0.1, 9, &train, &held, err, sizeof err), DLRT_OK);
    ck_assert_int_eq(train.n, 90);
    ck_assert_int_eq(held.n, 10);
    ck_assert_int_eq(train.vocab, 100);
    ck_assert_int_eq(held.vocab, 100);
    ck_assert_int_eq(train.ids[89], 89);
    ck_assert_int_eq(held.ids[0], 90);
    ck_assert_int_eq(held.ids[9], 99);
    dlrt_text_free(&train);
    dlrt_text_free(&held);
    /* the held-out tail (10) cannot hold a window of 10 + 1 */
    ck_assert_int_eq(dlrt_text_split(&t, 0.1, 10, &train, &held, err, sizeof err), DLRT_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "too short"));
    ck_assert_ptr_null(train.ids);
    ck_assert_ptr_null(held.ids);
    /* nor can the training part (10 of 100 at 90% held out) */
    ck_assert_int_eq(dlrt_text_split(&t, 0.9, 10, &train, &held, NULL, 0), DLRT_ERANGE);
    ck_assert_int_eq(dlrt_text_split(&t, 0, 4, &train, &held, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_split(&t, 1, 4, &train, &held, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_split(&t, NAN, 4, &train, &held, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_split(&t, 0.1, 0, &train, &held, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_split(NULL, 0.1, 4, &train, &held, NULL, 0), DLRT_EINVAL);
    dlrt_text_free(&t);
}
END_TEST

TEST(core, text_random_windows)
{
    enum { N = 20, T = 4, B = 8, STEPS = 5000 };
    dlrt_text t = counting(N);
    int32_t ids[B * T], targets[B * T], again[B * T], tg2[B * T];
    long starts[N] = {0};
    for (int s = 0; s < STEPS; s++) {
        ck_assert_int_eq(dlrt_text_random_windows(&t, T, B, 7, (uint64_t)s, ids, targets), DLRT_OK);
        for (int b = 0; b < B; b++) {
            int32_t start = ids[b * T];
            ck_assert_int_ge(start, 0);
            ck_assert_int_le(start, N - T - 1); /* the last target is the text's last id */
            starts[start]++;
            for (int j = 0; j < T; j++) {
                ck_assert_int_eq(ids[b * T + j], start + j);
                ck_assert_int_eq(targets[b * T + j], start + j + 1);
            }
        }
    }
    /* 16 starts, 40000 draws: 2500 each, sd 48; 6 sd either way */
    for (int i = 0; i <= N - T - 1; i++) {
        ck_assert_int_gt(starts[i], 2500 - 290);
        ck_assert_int_lt(starts[i], 2500 + 290);
    }
    /* a batch depends on (seed, step) only */
    dlrt_text_random_windows(&t, T, B, 7, 123, ids, targets);
    dlrt_text_random_windows(&t, T, B, 7, 9, again, tg2);
    dlrt_text_random_windows(&t, T, B, 7, 123, again, tg2);
    ck_assert_mem_eq(ids, again, sizeof ids);
    ck_assert_mem_eq(targets, tg2, sizeof targets);
    dlrt_text_random_windows(&t, T, B, 8, 123, again, tg2);
    ck_assert_int_ne(memcmp(ids, again, sizeof ids), 0);
    /* a text of exactly T + 1 ids has one window; shorter has none */
    ck_assert_int_eq(dlrt_text_random_windows(&t, N - 1, 1, 7, 0, ids, targets), DLRT_OK);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(dlrt_text_random_windows(&t, N, 1, 7, 0, ids, targets), DLRT_ERANGE);
    ck_assert_int_eq(dlrt_text_random_windows(&t, 0, 1, 7, 0, ids, targets), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_random_windows(&t, T, 0, 7, 0, ids, targets), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_random_windows(NULL, T, 1, 7, 0, ids, targets), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_random_windows(&t, T, 1, 7, 0, ids, NULL), DLRT_EINVAL);
    dlrt_text_free(&t);
}
END_TEST

TEST(core, text_consecutive_windows)
{
    enum { T = 4 };
    dlrt_text t = counting(22); /* windows at 0, 4, 8, 12, 16; ids 20 and 21 left over */
    int32_t ids[3 * T], targets[3 * T];
    ck_assert_int_eq(dlrt_text_window_count(&t, T), 5);
    ck_assert_int_eq(dlrt_text_windows(&t, T, 0, 3, ids, targets), 3);
    for (int i = 0; i < 3 * T; i++) {
        ck_assert_int_eq(ids[i], i);
        ck_assert_int_eq(targets[i], i + 1);
    }
    ck_assert_int_eq(dlrt_text_windows(&t, T, 3, 3, ids, targets), 2);
    ck_assert_int_eq(ids[0], 12);
    ck_assert_int_eq(targets[2 * T - 1], 20);
    ck_assert_int_eq(dlrt_text_windows(&t, T, 5, 3, ids, targets), 0);
    ck_assert_int_eq(dlrt_text_windows(&t, T, -1, 3, ids, targets), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_text_window_count(&t, 21), 1);
    ck_assert_int_eq(dlrt_text_window_count(&t, 22), 0);
    ck_assert_int_eq(dlrt_text_windows(&t, 22, 0, 1, ids, targets), 0);
    ck_assert_int_eq(dlrt_text_window_count(&t, 0), DLRT_EINVAL);
    dlrt_text_free(&t);
}
END_TEST

TEST(core, text_unigram)
{
    int32_t a[3] = {0, 0, 1}, b[5] = {3, 0, 1, 2, 0};
    dlrt_text train = {3, 4, a}, eval = {5, 4, b};
    /* targets of eval's 2 windows of 2: 0 1 2 0; add-one counts 3 2 1 1 of 7 */
    double want = -(2 * log(3.0 / 7) + log(2.0 / 7) + log(1.0 / 7)) / 4;
    ck_assert_double_eq_tol(dlrt_text_unigram_loss(&train, &eval, 2), want, 1e-12);
    ck_assert_double_eq(dlrt_text_unigram_loss(&train, &eval, 5), DLRT_ERANGE);
    ck_assert_double_eq(dlrt_text_unigram_loss(&train, &eval, 0), DLRT_EINVAL);
    ck_assert_double_eq(dlrt_text_unigram_loss(NULL, &eval, 2), DLRT_EINVAL);
    eval.vocab = 5;
    ck_assert_double_eq(dlrt_text_unigram_loss(&train, &eval, 2), DLRT_EINVAL);
    eval.vocab = 4;
    b[2] = 4; /* outside the vocabulary */
    ck_assert_double_eq(dlrt_text_unigram_loss(&train, &eval, 2), DLRT_ERANGE);
}
END_TEST

/* Frequencies of n draws against want[] within 5 standard deviations. */
static void check_frequencies(const float *p, int k, double temperature, const double *want)
{
    enum { DRAWS = 100000 };
    dlrt_rng rng;
    dlrt_rng_seed(&rng, 3, 0);
    long count[8] = {0};
    for (int i = 0; i < DRAWS; i++) {
        int c = dlrt_sample(p, k, temperature, &rng);
        ck_assert_int_ge(c, 0);
        ck_assert_int_lt(c, k);
        count[c]++;
    }
    for (int c = 0; c < k; c++) {
        double sd = sqrt(DRAWS * want[c] * (1 - want[c]));
        ck_assert_msg(fabs((double)count[c] - DRAWS * want[c]) <= 5 * sd + 1e-9,
                      "index %d: %ld draws, expected %.0f", c, count[c], DRAWS * want[c]);
    }
}

TEST(core, sample_temperature)
{
    const float p[4] = {0.2f, 0.3f, 0.5f, 0.0f};
    const double t1[4] = {0.2, 0.3, 0.5, 0};
    check_frequencies(p, 4, 1.0, t1);
    /* temperature 1/2 squares: 0.04, 0.09, 0.25 of 0.38 */
    const double t05[4] = {0.04 / 0.38, 0.09 / 0.38, 0.25 / 0.38, 0};
    check_frequencies(p, 4, 0.5, t05);
    /* temperature 2 takes square roots */
    double s = sqrt(0.2) + sqrt(0.3) + sqrt(0.5);
    const double t2[4] = {sqrt(0.2) / s, sqrt(0.3) / s, sqrt(0.5) / s, 0};
    check_frequencies(p, 4, 2.0, t2);
    /* NaN, infinite and negative entries are never drawn */
    const float odd[4] = {NAN, 0.5f, -1.0f, INFINITY};
    const double only1[4] = {0, 1, 0, 0};
    check_frequencies(odd, 4, 1.0, only1);

    dlrt_rng rng;
    dlrt_rng_seed(&rng, 3, 0);
    ck_assert_int_eq(dlrt_sample(p, 4, 0, &rng), 2); /* argmax */
    const float zeros[3] = {0, 0, 0};
    ck_assert_int_eq(dlrt_sample(zeros, 3, 1.0, &rng), 0);
    /* a tiny temperature is the argmax, without overflow */
    ck_assert_int_eq(dlrt_sample(p, 4, 1e-3, &rng), 2);
    ck_assert_int_eq(dlrt_sample(p, 4, -1, &rng), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_sample(p, 4, NAN, &rng), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_sample(p, 0, 1, &rng), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_sample(NULL, 4, 1, &rng), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_sample(p, 4, 1, NULL), DLRT_EINVAL);
}
END_TEST

/* libdlrt data utilities: IDX and CSV loading (valid files and each kind of
 * malformed one), MNIST helpers, mini-batches, argmax/accuracy and the
 * progress bar (with an injected clock). Small input files are written into
 * a fresh temporary directory; the real MNIST test set is checked when
 * scripts/fetch-mnist.sh has put it under $DLC_SOURCE_DIR/data/mnist. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checklib.h"
#include "dlrt.h"

static char tmpdir[64];

static void setup(void)
{
    strcpy(tmpdir, "/tmp/dlrt_data_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes bytes to tmpdir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const void *bytes, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    write_bytes(path, bytes, len);
    return path;
}

/* An IDX header: type code, rank, dims; returns its length. */
static size_t idx_header(unsigned char *p, int type, int rank, const uint32_t *dims)
{
    p[0] = p[1] = 0;
    p[2] = (unsigned char)type;
    p[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        p[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        p[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        p[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        p[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)rank;
}

/* ---- IDX ---- */

SUITE("runtime-data");
GROUP(core, setup, teardown);

TEST(core, idx_u8_file)
{
    unsigned char buf[64];
    uint32_t dims[2] = {2, 3};
    size_t h = idx_header(buf, 0x08, 2, dims);
    for (int i = 0; i < 6; i++)
        buf[h + i] = (unsigned char)(i * 50);
    const char *path = write_file("a.idx", buf, h + 6);
    dlrt_idx *x = NULL;
    char err[256] = "";
    ck_assert_int_eq(dlrt_idx_load(path, &x, err, sizeof err), DLRT_OK);
    ck_assert_int_eq(x->type, DLRT_IDX_U8);
    ck_assert_int_eq(x->rank, 2);
    ck_assert_int_eq(x->dims[0], 2);
    ck_assert_int_eq(x->dims[1], 3);
    ck_assert_int_eq(x->dims[2], 0);
    ck_assert_int_eq(x->count, 6);
    ck_assert_int_eq(((uint8_t *)x->data)[5], 250);
    float f[6];
    int32_t v[6];
    ck_assert_int_eq(dlrt_idx_to_f32(x, f), DLRT_OK);
    ck_assert_int_eq(dlrt_idx_to_i32(x, v), DLRT_OK);
    for (int i = 0; i < 6; i++) {
        ck_assert_float_eq(f[i], (float)(i * 50));
        ck_assert_int_eq(v[i], i * 50);
    }
    dlrt_idx_free(x);
}
END_TEST

TEST(core, idx_other_types)
{
    unsigned char buf[64];
    uint32_t dims[1] = {2};
    dlrt_idx *x;
    int32_t v[2];
    float f[2];

    /* i16: -2 and 0x1234, big-endian */
    size_t h = idx_header(buf, 0x0B, 1, dims);
    memcpy(buf + h, "\xff\xfe\x12\x34", 4);
    ck_assert_int_eq(dlrt_idx_parse(buf, h + 4, &x, NULL, 0), DLRT_OK);
    ck_assert_int_eq(x->type, DLRT_IDX_I16);
    ck_assert_int_eq(dlrt_idx_to_i32(x, v), DLRT_OK);
    ck_assert_int_eq(v[0], -2);
    ck_assert_int_eq(v[1], 0x1234);
    dlrt_idx_free(x);

    /* i8 */
    h = idx_header(buf, 0x09, 1, dims);
    memcpy(buf + h, "\x80\x7f", 2);
    ck_assert_int_eq(dlrt_idx_parse(buf, h + 2, &x, NULL, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_idx_to_i32(x, v), DLRT_OK);
    ck_assert_int_eq(v[0], -128);
    ck_assert_int_eq(v[1], 127);
    dlrt_idx_free(x);

    /* i32: -70000, 0x01020304 */
    h = idx_header(buf, 0x0C, 1, dims);
    memcpy(buf + h, "\xff\xfe\xee\x90\x01\x02\x03\x04", 8);
    ck_assert_int_eq(dlrt_idx_parse(buf, h + 8, &x, NULL, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_idx_to_i32(x, v), DLRT_OK);
    ck_assert_int_eq(v[0], -70000);
    ck_assert_int_eq(v[1], 0x01020304);
    dlrt_idx_free(x);

    /* f32: 1.5 (0x3fc00000), -2.25 (0xc0100000); then 2.5 is not an integer */
    h = idx_header(buf, 0x0D, 1, dims);
    memcpy(buf + h, "\x3f\xc0\x00\x00\xc0\x10\x00\x00", 8);
    ck_assert_int_eq(dlrt_idx_parse(buf, h + 8, &x, NULL, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_idx_to_f32(x, f), DLRT_OK);
    ck_assert_float_eq(f[0], 1.5f);
    ck_assert_float_eq(f[1], -2.25f);
    ck_assert_int_eq(dlrt_idx_to_i32(x, v), DLRT_ERANGE);
    dlrt_idx_free(x);

    /* f64: 3.0 (0x4008...), -0.5 (0xbfe0...) */
    h = idx_header(buf, 0x0E, 1, dims);
    memcpy(buf + h, "\x40\x08\0\0\0\0\0\0\xbf\xe0\0\0\0\0\0\0", 16);
    ck_assert_int_eq(dlrt_idx_parse(buf, h + 16, &x, NULL, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_idx_to_f32(x, f), DLRT_OK);
    ck_assert_float_eq(f[0], 3.0f);
    ck_assert_float_eq(f[1], -0.5f);
    ck_assert_int_eq(dlrt_idx_to_i32(x, v), DLRT_ERANGE);
    dlrt_idx_free(x);

    /* a zero dimension: no data, still valid */
    uint32_t zd[2] = {0, 5};
    h = idx_header(buf, 0x08, 2, zd);
    ck_assert_int_eq(dlrt_idx_parse(buf, h, &x, NULL, 0), DLRT_OK);
    ck_assert_int_eq(x->count, 0);
    dlrt_idx_free(x);
}
END_TEST

/* Each malformed file gives its code both from a file and from memory,
 * and an error message that mentions the problem. */
static void expect_idx_error(const unsigned char *buf, size_t len, int code, const char *msg)
{
    char err[256] = "";
    dlrt_idx *x = (dlrt_idx *)&x; /* must be reset to NULL */
    ck_assert_int_eq(dlrt_idx_parse(buf, len, &x, err, sizeof err), code);
    ck_assert_ptr_null(x);
    ck_assert_msg(strstr(err, msg), "parse message '%s' lacks '%s'", err, msg);
    const char *path = write_file("bad.idx", buf, len);
    err[0] = 0;
    x = (dlrt_idx *)&x;
    ck_assert_int_eq(dlrt_idx_load(path, &x, err, sizeof err), code);
    ck_assert_ptr_null(x);
    ck_assert_msg(strstr(err, msg), "load message '%s' lacks '%s'", err, msg);
    ck_assert_msg(strstr(err, "bad.idx"), "message '%s' lacks the file name", err);
}

TEST(core, idx_errors)
{
    unsigned char buf[128] = {0};
    uint32_t dims[3] = {2, 2, 2};
    size_t h = idx_header(buf, 0x08, 3, dims);

    expect_idx_error(buf, 3, DLRT_EFORMAT, "truncated IDX header");
    expect_idx_error(buf, h - 2, DLRT_EFORMAT, "truncated IDX header");
    expect_idx_error(buf, h + 7, DLRT_EFORMAT, "truncated");
    expect_idx_error(buf, h + 9, DLRT_EFORMAT, "trailing bytes");
    dlrt_idx *ok;
    ck_assert_int_eq(dlrt_idx_parse(buf, h + 8, &ok, NULL, 0), DLRT_OK); /* the control */
    ck_assert_int_eq(ok->count, 8);
    dlrt_idx_free(ok);

    unsigned char b2[128];
    memcpy(b2, buf, sizeof b2);
    b2[0] = 1; /* bad magic */
    expect_idx_error(b2, h + 8, DLRT_EFORMAT, "not an IDX file");
    memcpy(b2, buf, sizeof b2);
    b2[2] = 0x0A; /* no such type code */
    expect_idx_error(b2, h + 8, DLRT_EFORMAT, "not an IDX file");
    memcpy(b2, buf, sizeof b2);
    b2[3] = 0; /* rank 0 */
    expect_idx_error(b2, h + 8, DLRT_EFORMAT, "rank 0");
    b2[3] = 9; /* rank above DLRT_MAX_RANK */
    expect_idx_error(b2, 4 + 36 + 8, DLRT_ERANGE, "rank 9");

    /* dims that disagree with the data: [2,2,3] needs 12 bytes, [2,2,1] 4 */
    uint32_t d3[3] = {2, 2, 3};
    idx_header(b2, 0x08, 3, d3);
    expect_idx_error(b2, h + 8, DLRT_EFORMAT, "truncated");
    uint32_t d1[3] = {2, 2, 1};
    idx_header(b2, 0x08, 3, d1);
    expect_idx_error(b2, h + 8, DLRT_EFORMAT, "trailing bytes");
    /* [2,2,2] f32 needs 32 bytes */
    idx_header(b2, 0x0D, 3, dims);
    expect_idx_error(b2, h + 8, DLRT_EFORMAT, "truncated");

    /* huge dims: the product overflows 64 bits, or exceeds what memory can
     * hold, or merely exceeds the file (caught before allocating 64 GiB) */
    uint32_t huge[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 2};
    idx_header(b2, 0x08, 4, huge);
    expect_idx_error(b2, 4 + 16 + 8, DLRT_ERANGE, "too large");
    idx_header(b2, 0x0E, 2, huge);
    expect_idx_error(b2, 4 + 8 + 8, DLRT_ERANGE, "too large");
    uint32_t big[3] = {65536, 65536, 16};
    idx_header(b2, 0x08, 3, big);
    expect_idx_error(b2, h + 8, DLRT_EFORMAT, "truncated");
}
END_TEST

TEST(core, idx_bad_arguments)
{
    dlrt_idx *x;
    char err[256] = "";
    char path[300];
    snprintf(path, sizeof path, "%s/missing.idx", tmpdir);
    ck_assert_int_eq(dlrt_idx_load(path, &x, err, sizeof err), DLRT_EIO);
    ck_assert_ptr_nonnull(strstr(err, "missing.idx: cannot open"));
    ck_assert_int_eq(dlrt_idx_load(NULL, &x, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_idx_load(path, NULL, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_idx_parse(NULL, 4, &x, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_idx_to_f32(NULL, NULL), DLRT_EINVAL);
    ck_assert_uint_eq(dlrt_idx_type_size(0x0A), 0);
    ck_assert_uint_eq(dlrt_idx_type_size(DLRT_IDX_F64), 8);
    dlrt_idx_free(NULL);
}
END_TEST

/* ---- MNIST helpers on a tiny fake data set ---- */

static void write_mnist(const char *prefix, int n, int nl, int label_bias)
{
    unsigned char buf[256];
    uint32_t d[3] = {(uint32_t)n, 2, 2};
    size_t h = idx_header(buf, 0x08, 3, d);
    for (int i = 0; i < 4 * n; i++)
        buf[h + i] = (unsigned char)(i * 255 / (4 * n - 1));
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    write_file(name, buf, h + 4 * (size_t)n);
    uint32_t dl[1] = {(uint32_t)nl};
    h = idx_header(buf, 0x08, 1, dl);
    for (int i = 0; i < nl; i++)
        buf[h + i] = (unsigned char)(i % 10 + label_bias);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    write_file(name, buf, h + (size_t)nl);
}

TEST(core, mnist_helpers)
{
    write_mnist("train", 3, 3, 0);
    dlrt_dataset ds;
    char err[256] = "";
    ck_assert_int_eq(dlrt_mnist_load(tmpdir, "train", 0, &ds, err, sizeof err), DLRT_OK);
    ck_assert_int_eq(ds.n, 3);
    ck_assert_int_eq(ds.dim, 4);
    ck_assert_float_eq(ds.x[0], 0.0f);
    ck_assert_float_eq(ds.x[11], 1.0f);
    ck_assert_float_eq_tol(ds.x[1], 23.0f / 255.0f, 1e-7f); /* 1*255/11 = 23 */
    ck_assert_int_eq(ds.y[0], 0);
    ck_assert_int_eq(ds.y[2], 2);
    dlrt_dataset_free(&ds);
    ck_assert_ptr_null(ds.x);

    ck_assert_int_eq(dlrt_mnist_load(tmpdir, "train", DLRT_MNIST_NORMALIZE, &ds, NULL, 0), DLRT_OK);
    ck_assert_float_eq_tol(ds.x[0], -0.1307f / 0.3081f, 1e-6f);
    ck_assert_float_eq_tol(ds.x[11], (1.0f - 0.1307f) / 0.3081f, 1e-6f);
    dlrt_dataset_free(&ds);

    /* the test split is t10k-*, absent here */
    ck_assert_int_eq(dlrt_mnist_load(tmpdir, "test", 0, &ds, NULL, 0), DLRT_EIO);
    ck_assert_int_eq(dlrt_mnist_load(tmpdir, "valid", 0, &ds, err, sizeof err), DLRT_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown MNIST split"));

    /* 3 images, 4 labels */
    write_mnist("t10k", 3, 4, 0);
    ck_assert_int_eq(dlrt_mnist_load(tmpdir, "test", 0, &ds, err, sizeof err), DLRT_EMISMATCH);
    ck_assert_ptr_nonnull(strstr(err, "4 labels for 3 images"));
    ck_assert_ptr_null(ds.x);

    /* a label of 10 */
    write_mnist("t10k", 3, 3, 8);
    ck_assert_int_eq(dlrt_mnist_load(tmpdir, "test", 0, &ds, err, sizeof err), DLRT_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "label 10 at index 2"));

    /* labels where images are expected */
    float *img;
    int64_t n, dim;
    char path[300];
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", tmpdir);
    ck_assert_int_eq(dlrt_mnist_images(path, 0, &img, &n, &dim, err, sizeof err), DLRT_EMISMATCH);
    ck_assert_ptr_null(img);
    ck_assert_int_eq(dlrt_mnist_images(path, 4, &img, &n, &dim, NULL, 0), DLRT_EINVAL);
}
END_TEST

/* ---- CSV ---- */

TEST(core, csv_valid)
{
    const char *text = "a, b ,c\n1,2,3\r\n\n4.5,-6e2, .5 \r\n  \n7,+8.,9E-1";
    dlrt_csv *c;
    char err[256] = "";
    ck_assert_int_eq(dlrt_csv_parse(text, strlen(text), 1, "t.csv", &c, err, sizeof err), DLRT_OK);
    ck_assert_int_eq(c->rows, 3);
    ck_assert_int_eq(c->cols, 3);
    ck_assert_str_eq(c->names[0], "a");
    ck_assert_str_eq(c->names[1], "b");
    ck_assert_str_eq(c->names[2], "c");
    const float want[9] = {1, 2, 3, 4.5f, -600, 0.5f, 7, 8, 0.9f};
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq(c->data[i], want[i]);
    ck_assert_int_eq(dlrt_csv_column(c, "c"), 2);
    ck_assert_int_eq(dlrt_csv_column(c, "z"), DLRT_EINVAL);

    /* labels from column 2 fail (0.5 and 0.9), c stays as it was */
    int32_t lab[3];
    ck_assert_int_eq(dlrt_csv_take_labels(c, 2, lab, err, sizeof err), DLRT_ERANGE);
    ck_assert_str_eq(err, "record 2, column 3: 0.5 is not an integer label");
    ck_assert_int_eq(c->cols, 3);
    /* column 0 as labels: 1, 4.5 is not an integer either */
    ck_assert_int_eq(dlrt_csv_take_labels(c, 0, lab, NULL, 0), DLRT_ERANGE);
    float col[3];
    ck_assert_int_eq(dlrt_csv_take_column(c, 1, col), DLRT_OK);
    ck_assert_float_eq(col[0], 2);
    ck_assert_float_eq(col[1], -600);
    ck_assert_float_eq(col[2], 8);
    ck_assert_int_eq(c->cols, 2);
    ck_assert_str_eq(c->names[1], "c");
    const float rest[6] = {1, 3, 4.5f, 0.5f, 7, 0.9f};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(c->data[i], rest[i]);
    ck_assert_int_eq(dlrt_csv_take_column(c, 2, col), DLRT_EINVAL);
    dlrt_csv_free(c);

    /* no header; labels in the first column */
    const char *t2 = "3,0.25\n-1,1e3\n";
    ck_assert_int_eq(dlrt_csv_parse(t2, strlen(t2), 0, NULL, &c, NULL, 0), DLRT_OK);
    ck_assert_ptr_null(c->names);
    ck_assert_int_eq(c->rows, 2);
    ck_assert_int_eq(dlrt_csv_take_labels(c, 0, lab, NULL, 0), DLRT_OK);
    ck_assert_int_eq(lab[0], 3);
    ck_assert_int_eq(lab[1], -1);
    ck_assert_int_eq(c->cols, 1);
    ck_assert_float_eq(c->data[0], 0.25f);
    ck_assert_float_eq(c->data[1], 1000.0f);
    dlrt_csv_free(c);

    /* from a file */
    const char *path = write_file("d.csv", "x,y\n1,2\n", 8);
    ck_assert_int_eq(dlrt_csv_load(path, 1, &c, err, sizeof err), DLRT_OK);
    ck_assert_int_eq(c->rows, 1);
    ck_assert_float_eq(c->data[1], 2.0f);
    dlrt_csv_free(c);
    /* a byte order mark before the header */
    ck_assert_int_eq(dlrt_csv_parse("\xEF\xBB\xBFx,y\n1,2", 10, 1, NULL, &c, NULL, 0), DLRT_OK);
    ck_assert_str_eq(c->names[0], "x");
    ck_assert_float_eq(c->data[1], 2.0f);
    dlrt_csv_free(c);
    /* only a header: no rows */
    ck_assert_int_eq(dlrt_csv_parse("x,y\n", 4, 1, NULL, &c, NULL, 0), DLRT_OK);
    ck_assert_int_eq(c->rows, 0);
    ck_assert_int_eq(c->cols, 2);
    dlrt_csv_free(c);
}
END_TEST

static void expect_csv_error(const char *text, int header, int code, const char *msg)
{
    dlrt_csv *c = (dlrt_csv *)&c;
    char err[256] = "";
    ck_assert_int_eq(dlrt_csv_parse(text, strlen(text), header, "t.csv", &c, err, sizeof err),
                     code);
    ck_assert_ptr_null(c);
    ck_assert_msg(strcmp(err, msg) == 0, "message '%s', expected '%s'", err, msg);
}

TEST(core, csv_errors)
{
    expect_csv_error("1,2\n3,x\n", 0, DLRT_EFORMAT, "t.csv:2:3: expected a number, found 'x'");
    expect_csv_error("1,2\r\n3\r\n", 0, DLRT_EFORMAT, "t.csv:2:2: record has 1 fields, expected 2");
    expect_csv_error("a,b\n1,2,3\n", 1, DLRT_EFORMAT, "t.csv:2:5: more than 2 fields in a record");
    expect_csv_error("1,,2\n", 0, DLRT_EFORMAT, "t.csv:1:3: empty field");
    expect_csv_error("1,2,\n", 0, DLRT_EFORMAT, "t.csv:1:5: empty field");
    expect_csv_error("1.5abc,2\n", 0, DLRT_EFORMAT, "t.csv:1:1: expected a number, found '1.5abc'");
    expect_csv_error("1 2\n", 0, DLRT_EFORMAT, "t.csv:1:1: expected a number, found '1 2'");
    expect_csv_error("nan\n", 0, DLRT_EFORMAT, "t.csv:1:1: expected a number, found 'nan'");
    expect_csv_error("0x10\n", 0, DLRT_EFORMAT, "t.csv:1:1: expected a number, found '0x10'");
    expect_csv_error("\"1\"\n", 0, DLRT_EFORMAT, "t.csv:1:1: expected a number, found '\"1\"'");
    expect_csv_error("1e\n", 0, DLRT_EFORMAT, "t.csv:1:1: malformed exponent, found '1e'");
    expect_csv_error("-.\n", 0, DLRT_EFORMAT, "t.csv:1:1: expected a number, found '-.'");
    expect_csv_error("1;2\n", 0, DLRT_EFORMAT, "t.csv:1:1: expected a number, found '1;2'");
    expect_csv_error("1,2\n3,-1e39", 0, DLRT_ERANGE, "t.csv:2:3: -1e39 is out of the float range");
    expect_csv_error("\n\n", 1, DLRT_EFORMAT, "t.csv: no header line");

    dlrt_csv *c;
    char err[256] = "";
    char path[300];
    snprintf(path, sizeof path, "%s/none.csv", tmpdir);
    ck_assert_int_eq(dlrt_csv_load(path, 0, &c, err, sizeof err), DLRT_EIO);
    ck_assert_ptr_nonnull(strstr(err, "none.csv: cannot open"));
    ck_assert_int_eq(dlrt_csv_load(NULL, 0, &c, NULL, 0), DLRT_EINVAL);
    /* an error in a file names the file */
    const char *p = write_file("e.csv", "1\n2\nq\n", 6);
    ck_assert_int_eq(dlrt_csv_load(p, 0, &c, err, sizeof err), DLRT_EFORMAT);
    ck_assert_ptr_nonnull(strstr(err, "e.csv:3:1: expected a number, found 'q'"));
}
END_TEST

/* ---- mini-batches ---- */

enum { N = 103, D = 3, B = 10 };

static void fill_data(float *x, int32_t *y)
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)(i * D + j);
        y[i] = 7 * i;
    }
}

/* Runs one epoch, checks that the gathered rows match the indices, and
 * stores the order visited. */
static void run_epoch(dlrt_batches *b, int64_t epoch, const float *x, const int32_t *y,
                      int64_t *order)
{
    float xb[B * D];
    int32_t yb[B];
    int m, k = 0, batches = 0;
    ck_assert_int_eq(dlrt_batches_start(b, epoch), DLRT_OK);
    while ((m = dlrt_batches_next(b, x, D, xb, y, DLRT_I32, 1, yb)) > 0) {
        const int64_t *idx = dlrt_batches_indices(b);
        ck_assert_ptr_nonnull(idx);
        ck_assert_int_eq(m, batches < N / B ? B : N % B);
        for (int i = 0; i < m; i++) {
            ck_assert_int_eq(yb[i], 7 * idx[i]);
            for (int j = 0; j < D; j++)
                ck_assert_float_eq(xb[i * D + j], (float)(idx[i] * D + j));
            order[k++] = idx[i];
        }
        batches++;
    }
    ck_assert_int_eq(m, 0);
    ck_assert_int_eq(batches, 11);
    ck_assert_int_eq(k, N);
    ck_assert_int_eq(dlrt_batches_next(b, x, D, xb, y, DLRT_I32, 1, yb), 0);
}

TEST(core, batches_epochs)
{
    static float x[N * D];
    static int32_t y[N];
    fill_data(x, y);
    dlrt_batches b, b2;
    ck_assert_int_eq(dlrt_batches_init(&b, N, B, 42, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_batches_count(&b), 11);
    int64_t o0[N], o1[N], o0again[N], other[N];
    run_epoch(&b, 0, x, y, o0);
    run_epoch(&b, 1, x, y, o1);
    run_epoch(&b, 0, x, y, o0again);
    /* every sample once per epoch */
    for (int e = 0; e < 2; e++) {
        int seen[N] = {0};
        for (int i = 0; i < N; i++)
            seen[(e ? o1 : o0)[i]]++;
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(seen[i], 1);
    }
    ck_assert_mem_eq(o0, o0again, sizeof o0);
    ck_assert_int_ne(memcmp(o0, o1, sizeof o0), 0);
    /* shuffled, not the identity */
    int fixed = 0;
    for (int i = 0; i < N; i++)
        fixed += o0[i] == i;
    ck_assert_int_lt(fixed, 10);
    /* another instance with the same seed agrees; another seed does not */
    ck_assert_int_eq(dlrt_batches_init(&b2, N, B, 42, 0), DLRT_OK);
    run_epoch(&b2, 1, x, y, other);
    ck_assert_mem_eq(o1, other, sizeof o1);
    dlrt_batches_free(&b2);
    ck_assert_int_eq(dlrt_batches_init(&b2, N, B, 43, 0), DLRT_OK);
    run_epoch(&b2, 1, x, y, other);
    ck_assert_int_ne(memcmp(o1, other, sizeof o1), 0);
    dlrt_batches_free(&b2);
    dlrt_batches_free(&b);
}
END_TEST

TEST(core, batches_flags_and_errors)
{
    static float x[N * D];
    static int32_t y[N];
    fill_data(x, y);
    float xb[B * D], tb[B * 2], t[N * 2];
    int32_t yb[B];
    for (int i = 0; i < 2 * N; i++)
        t[i] = (float)i;
    dlrt_batches b;

    /* drop_last + sequential: 10 full batches in order, float targets */
    ck_assert_int_eq(dlrt_batches_init(&b, N, B, 1, DLRT_BATCH_DROP_LAST | DLRT_BATCH_SEQUENTIAL),
                     DLRT_OK);
    ck_assert_int_eq(dlrt_batches_count(&b), 10);
    ck_assert_int_eq(dlrt_batches_next(&b, x, D, xb, y, DLRT_I32, 1, yb), DLRT_ESTATE);
    ck_assert_int_eq(dlrt_batches_start(&b, 3), DLRT_OK);
    int m, count = 0;
    while ((m = dlrt_batches_next(&b, x, D, xb, t, DLRT_F32, 2, tb)) > 0) {
        ck_assert_int_eq(m, B);
        for (int i = 0; i < B; i++) {
            int s = count * B + i;
            ck_assert_float_eq(xb[i * D], (float)(s * D));
            ck_assert_float_eq(tb[i * 2 + 1], (float)(2 * s + 1));
        }
        count++;
    }
    ck_assert_int_eq(m, 0);
    ck_assert_int_eq(count, 10);
    ck_assert_ptr_null(dlrt_batches_indices(&b));

    /* indices only */
    ck_assert_int_eq(dlrt_batches_start(&b, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_batches_next(&b, NULL, 0, NULL, NULL, DLRT_I32, 1, NULL), B);
    ck_assert_int_eq(dlrt_batches_indices(&b)[9], 9);

    ck_assert_int_eq(dlrt_batches_next(&b, x, D, xb, y, DLRT_I32, 2, yb), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_batches_next(&b, x, D, xb, y, DLRT_F64, 1, yb), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_batches_next(&b, x, 0, xb, NULL, DLRT_I32, 1, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_batches_start(&b, -1), DLRT_EINVAL);
    dlrt_batches_free(&b);
    dlrt_batches_free(&b);
    ck_assert_int_eq(dlrt_batches_start(&b, 0), DLRT_EINVAL);

    ck_assert_int_eq(dlrt_batches_init(&b, 0, B, 1, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_batches_init(&b, N, 0, 1, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_batches_init(&b, N, B, 1, 8), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_batches_init(NULL, N, B, 1, 0), DLRT_EINVAL);

    /* a batch larger than the data set: one partial batch, or none */
    ck_assert_int_eq(dlrt_batches_init(&b, 5, 8, 1, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_batches_count(&b), 1);
    ck_assert_int_eq(dlrt_batches_start(&b, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_batches_next(&b, x, D, xb, y, DLRT_I32, 1, yb), 5);
    ck_assert_int_eq(dlrt_batches_next(&b, x, D, xb, y, DLRT_I32, 1, yb), 0);
    dlrt_batches_free(&b);
    ck_assert_int_eq(dlrt_batches_init(&b, 5, 8, 1, DLRT_BATCH_DROP_LAST), DLRT_OK);
    ck_assert_int_eq(dlrt_batches_count(&b), 0);
    ck_assert_int_eq(dlrt_batches_start(&b, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_batches_next(&b, x, D, xb, y, DLRT_I32, 1, yb), 0);
    dlrt_batches_free(&b);
}
END_TEST

/* Fisher-Yates with unbiased draws makes all 6 orders of 3 samples equally
 * likely: 6000 epochs give each about 1000 (a biased shuffle such as
 * swapping with any position is off by 15% or more). */
TEST(core, batches_uniform)
{
    dlrt_batches b;
    ck_assert_int_eq(dlrt_batches_init(&b, 3, 3, 7, 0), DLRT_OK);
    int hist[27] = {0};
    for (int e = 0; e < 6000; e++) {
        ck_assert_int_eq(dlrt_batches_start(&b, e), DLRT_OK);
        ck_assert_int_eq(dlrt_batches_next(&b, NULL, 0, NULL, NULL, DLRT_I32, 1, NULL), 3);
        const int64_t *o = dlrt_batches_indices(&b);
        hist[o[0] * 9 + o[1] * 3 + o[2]]++;
    }
    int perms = 0;
    for (int i = 0; i < 27; i++) {
        if (hist[i]) {
            perms++;
            ck_assert_int_gt(hist[i], 880);
            ck_assert_int_lt(hist[i], 1120);
        }
    }
    ck_assert_int_eq(perms, 6);
    dlrt_batches_free(&b);
}
END_TEST

/* ---- accuracy ---- */

TEST(core, accuracy_and_argmax)
{
    const float s[] = {
        1,  1,   0,     /* tie: index 0 */
        0,  2,   2,     /* tie: index 1 */
        -1, -3,  -0.5f, /* 2 */
        0,  NAN, 5,     /* NaN wins: 1 */
    };
    int32_t am[4];
    ck_assert_int_eq(dlrt_argmax_rows(s, 4, 3, am), DLRT_OK);
    ck_assert_int_eq(am[0], 0);
    ck_assert_int_eq(am[1], 1);
    ck_assert_int_eq(am[2], 2);
    ck_assert_int_eq(am[3], 1);
    const int32_t l1[] = {0, 1, 2, 1};
    const int32_t l2[] = {1, 2, 2, 2};
    ck_assert_double_eq(dlrt_accuracy(s, 4, 3, l1), 1.0);
    ck_assert_double_eq(dlrt_accuracy(s, 4, 3, l2), 0.25);
    ck_assert_double_eq(dlrt_accuracy(s, 3, 3, l2), 1.0 / 3.0);
    const int32_t bad[] = {0, 3};
    ck_assert_double_eq(dlrt_accuracy(s, 2, 3, bad), DLRT_ERANGE);
    ck_assert_double_eq(dlrt_accuracy(s, 0, 3, l1), DLRT_EINVAL);
    ck_assert_double_eq(dlrt_accuracy(NULL, 1, 3, l1), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_argmax_rows(s, 1, 0, am), DLRT_EINVAL);
    /* one class: always index 0 */
    ck_assert_int_eq(dlrt_argmax_rows(s, 4, 1, am), DLRT_OK);
    ck_assert_int_eq(am[3], 0);
}
END_TEST

/* ---- progress bar ---- */

static double fake_clock(void *ctx)
{
    return *(double *)ctx;
}

/* The whole output written to f so far. */
static char *slurp(FILE *f)
{
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    rewind(f);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    return s;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

TEST(core, progress_render)
{
    double now = 100.0;
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    dlrt_progress p;
    dlrt_progress_init(&p, f, fake_clock, &now);
    p.tty = 0;
    dlrt_progress_begin(&p, 938, "epoch 1/3");
    char line[256];
    /* 612 steps of 64 samples in 9.5625 s: 4096 samples/s; ETA 326 * 9.5625/612 = 5.09 s */
    for (int s = 1; s <= 612; s++) {
        now = 100.0 + s * (64.0 / 4096.0);
        dlrt_progress_update(&p, s, 0.25, 64);
    }
    dlrt_progress_render(&p, 0, line, sizeof line);
    ck_assert_str_eq(line, "epoch 1/3 [===================>          ] 612/938  loss 0.2500"
                           "  4096 samples/s  ETA 0:05");
    for (int s = 613; s <= 938; s++) {
        now = 100.0 + s * (64.0 / 4096.0);
        dlrt_progress_update(&p, s, 0.25, 64);
    }
    now += 0.5; /* end comes a little later */
    dlrt_progress_end(&p);
    char *out = slurp(f);
    /* one line per tenth, the first at step 94, then the final one */
    ck_assert_int_eq(count_char(out, '\n'), 10);
    ck_assert_int_eq(count_char(out, '\r'), 0);
    const char *first = "epoch 1/3 [===>                          ]  94/938  loss 0.2500"
                        "  4096 samples/s  ETA 0:13\n";
    ck_assert_msg(strncmp(out, first, strlen(first)) == 0, "first line: %s", out);
    const char *last = strstr(out, "[==============================]");
    ck_assert_ptr_nonnull(last);
    /* 60032 samples in 15.15625 s */
    ck_assert_str_eq(last, "[==============================] 938/938  loss 0.2500"
                           "  3961 samples/s  elapsed 0:15\n");
    free(out);
    fclose(f);
}
END_TEST

TEST(core, progress_loss_average)
{
    double now = 0;
    dlrt_progress p;
    dlrt_progress_init(&p, stderr, fake_clock, &now);
    dlrt_progress_begin(&p, 0, "train");
    char line[256];
    dlrt_progress_render(&p, 0, line, sizeof line);
    ck_assert_str_eq(line, "train step 0");
    p.tty = 0; /* unknown total, not a terminal: prints every 10 s, not now */
    now = 2;
    dlrt_progress_update(&p, 1, 1.0, 10);
    now = 4;
    dlrt_progress_update(&p, 2, 0.5, 10);
    /* bias-corrected EMA: (0.98*0.02*1 + 0.02*0.5) / (1 - 0.98^2) = 0.0296/0.0396 */
    dlrt_progress_render(&p, 0, line, sizeof line);
    ck_assert_str_eq(line, "train step 2  loss 0.7475  5 samples/s");
    now = 3725; /* render shows the state at the last update, whatever the clock says */
    dlrt_progress_render(&p, 1, line, sizeof line);
    ck_assert_str_eq(line, "train step 2  loss 0.7475  5 samples/s  elapsed 0:04");
    ck_assert_int_eq(dlrt_progress_render(&p, 1, NULL, 0), (int)strlen(line));
    p.unit = "tokens"; /* a language model counts characters */
    dlrt_progress_render(&p, 0, line, sizeof line);
    ck_assert_str_eq(line, "train step 2  loss 0.7475  5 tokens/s");
}
END_TEST

TEST(core, progress_tty)
{
    double now = 0;
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    dlrt_progress p;
    dlrt_progress_init(&p, f, fake_clock, &now);
    p.tty = 1;
    dlrt_progress_begin(&p, 1000, NULL);
    /* 1000 steps, 10 ms apart: a redraw every 0.1 s is about 100 */
    for (int s = 1; s <= 1000; s++) {
        now = s * 0.01;
        dlrt_progress_update(&p, s, 2.0, 1);
    }
    now = 3725.0;
    dlrt_progress_end(&p);
    char *out = slurp(f);
    int redraws = count_char(out, '\r');
    ck_assert_int_ge(redraws, 95);
    ck_assert_int_le(redraws, 105);
    ck_assert_int_eq(count_char(out, '\n'), 1);
    ck_assert_ptr_nonnull(strstr(out, "\r[>                             ]    1/1000  loss 2.0000"
                                      "  100 samples/s  ETA 0:10\033[K\r"));
    const char *end = strrchr(out, '\r');
    ck_assert_str_eq(end, "\r[==============================] 1000/1000  loss 2.0000"
                          "  0 samples/s  elapsed 1:02:05\033[K\n");
    free(out);
    fclose(f);
}
END_TEST

/* ---- the real MNIST test set, when scripts/fetch-mnist.sh has run ---- */

TEST(core, mnist_real)
{
    const char *root = getenv("DLC_SOURCE_DIR");
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/data/mnist", root ? root : "..");
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    if (access(path, R_OK) != 0) {
        printf("test_rt_data: mnist_real SKIPPED: %s is absent "
               "(run scripts/fetch-mnist.sh)\n",
               path);
        return;
    }
    dlrt_idx *x;
    char err[256] = "";
    ck_assert_int_eq(dlrt_idx_load(path, &x, err, sizeof err), DLRT_OK);
    ck_assert_int_eq(x->type, DLRT_IDX_U8);
    ck_assert_int_eq(x->rank, 3);
    ck_assert_int_eq(x->dims[0], 10000);
    ck_assert_int_eq(x->dims[1], 28);
    ck_assert_int_eq(x->dims[2], 28);
    dlrt_idx_free(x);

    dlrt_dataset ds;
    ck_assert_int_eq(dlrt_mnist_load(dir, "test", 0, &ds, err, sizeof err), DLRT_OK);
    ck_assert_int_eq(ds.n, 10000);
    ck_assert_int_eq(ds.dim, 784);
    float lo = 1, hi = 0;
    double sum = 0;
    for (int64_t i = 0; i < ds.n * ds.dim; i++) {
        lo = fminf(lo, ds.x[i]);
        hi = fmaxf(hi, ds.x[i]);
        sum += ds.x[i];
    }
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_float_eq(hi, 1.0f);
    /* the test set's mean pixel is 0.1325 (the train set's 0.1307) */
    ck_assert_double_eq_tol(sum / (double)(ds.n * ds.dim), 0.1325, 5e-4);
    /* the published MNIST test label counts */
    const int want[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    int hist[10] = {0};
    for (int64_t i = 0; i < ds.n; i++)
        hist[ds.y[i]]++;
    for (int d = 0; d < 10; d++)
        ck_assert_int_eq(hist[d], want[d]);
    dlrt_dataset_free(&ds);

    /* the train labels too, if present: 5923 zeros, 6742 ones, ... */
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    int32_t *l;
    int64_t n;
    if (access(path, R_OK) == 0) {
        const int wt[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
        ck_assert_int_eq(dlrt_mnist_labels(path, &l, &n, err, sizeof err), DLRT_OK);
        ck_assert_int_eq(n, 60000);
        memset(hist, 0, sizeof hist);
        for (int64_t i = 0; i < n; i++)
            hist[l[i]]++;
        for (int d = 0; d < 10; d++)
            ck_assert_int_eq(hist[d], wt[d]);
        free(l);
    }
}
END_TEST

/* dlrt_last_error(): a checkpoint that does not fit is refused with a
 * message naming the tensor and what differs (dtype, shape, a missing or
 * an extra tensor, another model's file), prefixed with the path. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checklib.h"
#include "dlrt.h"

static char path[64];

/* A file with fc.w F32 [3, 2] and fc.b F32 [2]. */
static void write_file(void)
{
    snprintf(path, sizeof path, "/tmp/dlrt-lasterr-%d.safetensors", (int)getpid());
    static const float w[6] = {0}, b[2] = {0};
    const dlrt_tensor_desc d[2] = {{"fc.w", DLRT_F32, 2, {3, 2}}, {"fc.b", DLRT_F32, 1, {2}}};
    const void *data[2] = {w, b};
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, data, 2, NULL, NULL, 0), 0);
}

/* Loads the file into descs d and checks the code and the message. */
static void expect_message(const dlrt_tensor_desc *d, int n, const char *message)
{
    static double buf[2][8];
    void *data[2] = {buf[0], buf[1]};
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, data, n, 0, NULL, NULL), DLRT_EMISMATCH);
    char want[256];
    snprintf(want, sizeof want, "%s: %s", path, message);
    ck_assert_str_eq(dlrt_last_error(), want);
}

SUITE("runtime-last-error");
GROUP(checkpoints, NULL, NULL);

TEST(checkpoints, names_what_does_not_fit)
{
    write_file();
    const dlrt_tensor_desc transposed[2] = {{"fc.w", DLRT_F32, 2, {2, 3}},
                                            {"fc.b", DLRT_F32, 1, {2}}};
    expect_message(transposed, 2, "tensor 'fc.w': the model has F32 [2, 3], the file F32 [3, 2]");
    const dlrt_tensor_desc f64[2] = {{"fc.w", DLRT_F64, 2, {3, 2}}, {"fc.b", DLRT_F32, 1, {2}}};
    expect_message(f64, 2, "tensor 'fc.w': the model has F64 [3, 2], the file F32 [3, 2]");
    const dlrt_tensor_desc renamed[2] = {{"fc.weight", DLRT_F32, 2, {3, 2}},
                                         {"fc.b", DLRT_F32, 1, {2}}};
    expect_message(renamed, 2, "no tensor 'fc.weight' in the file (it has 2)");
    const dlrt_tensor_desc fewer[1] = {{"fc.w", DLRT_F32, 2, {3, 2}}};
    expect_message(fewer, 1, "tensor 'fc.b' of the file is not in the model");
    /* a success leaves the next failure's message to say what is wrong */
    const dlrt_tensor_desc right[2] = {{"fc.w", DLRT_F32, 2, {3, 2}}, {"fc.b", DLRT_F32, 1, {2}}};
    static float w[6], b[2];
    void *data[2] = {w, b};
    ck_assert_int_eq(dlrt_checkpoint_load(path, right, data, 2, 0, NULL, NULL), 0);
    ck_assert_str_eq(dlrt_last_error(), "");
    unlink(path);
}
END_TEST

TEST(checkpoints, names_the_file_that_cannot_be_read)
{
    const dlrt_tensor_desc d[1] = {{"w", DLRT_F32, 1, {2}}};
    float w[2];
    void *data[1] = {w};
    ck_assert_int_eq(dlrt_checkpoint_load("/nonexistent/x.safetensors", d, data, 1, 0, NULL, NULL),
                     DLRT_EIO);
    ck_assert_str_eq(dlrt_last_error(),
                     "/nonexistent/x.safetensors: cannot read: No such file or directory");
    static const unsigned char junk[4] = {1, 2, 3, 4};
    ck_assert_int_eq(dlrt_checkpoint_load_buffer(junk, sizeof junk, d, data, 1, 0, NULL, NULL),
                     DLRT_EFORMAT);
    ck_assert_str_eq(dlrt_last_error(), "4 bytes: too short for a safetensors file");
}
END_TEST

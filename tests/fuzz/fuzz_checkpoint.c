/*
 * libFuzzer target for the safetensors loader: arbitrary bytes are loaded
 * into a fixed small model (a: F32 [2, 2], b: F64 [3], c: I32 scalar),
 * from memory with and without DLRT_CKPT_ALLOW_EXTRA and, for some sizes,
 * through a file.
 * Besides crashes, leaks and hangs (the sanitizers and libFuzzer), it traps
 * on broken promises: a failed load that wrote a destination, results that
 * differ between the memory and file paths, and a successful load whose
 * tensors do not survive a save and a second load bit for bit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlrt.h"

#define SENTINEL 0x5a

static const dlrt_tensor_desc descs[3] = {
    {"a", DLRT_F32, 2, {2, 2}},
    {"b", DLRT_F64, 1, {3}},
    {"c", DLRT_I32, 0, {0}},
};
static char in_path[4096], out_path[4096];

typedef struct {
    unsigned char a[16], b[24], c[4];
} model;

static void fill(model *m)
{
    memset(m, SENTINEL, sizeof *m);
}

static int untouched(const model *m)
{
    const unsigned char *p = (const unsigned char *)m;
    for (size_t i = 0; i < sizeof *m; i++)
        if (p[i] != SENTINEL)
            return 0;
    return 1;
}

static int count_meta(void *ctx, const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
    /* the strings are NUL-terminated at their lengths */
    if (key[key_len] != 0 || value[value_len] != 0)
        __builtin_trap();
    ++*(int *)ctx;
    return 0;
}

static void cleanup(void)
{
    unlink(in_path);
    unlink(out_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *t = getenv("TMPDIR");
    snprintf(in_path, sizeof in_path, "%s/fuzz-ckpt-XXXXXX", t && *t ? t : "/tmp");
    int fd = mkstemp(in_path);
    if (fd < 0)
        abort();
    close(fd);
    snprintf(out_path, sizeof out_path, "%s.out", in_path);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    model m, f;
    void *dst[3] = {m.a, m.b, m.c}, *fdst[3] = {f.a, f.b, f.c};
    int metas = 0;

    fill(&m);
    int rc = dlrt_checkpoint_load_buffer(data, size, descs, dst, 3, 0, count_meta, &metas);
    if (rc > 0 || rc < -DLRT_ECOUNT + 1 || (rc && !untouched(&m)))
        __builtin_trap();

    /* the file path must agree with the memory path (checked for one input
     * size in 8 only: file I/O would dominate the run time) */
    FILE *fp = size % 8 == 0 ? fopen(in_path, "wb") : NULL;
    if (fp) {
        size_t w = fwrite(data, 1, size, fp);
        if (fclose(fp) == 0 && w == size) {
            fill(&f);
            int frc = dlrt_checkpoint_load(in_path, descs, fdst, 3, 0, NULL, NULL);
            if (frc != rc || (rc == 0 && memcmp(&m, &f, sizeof m)) || (frc && !untouched(&f)))
                __builtin_trap();
        }
    }

    /* allowing extra tensors only ever turns a mismatch into success */
    fill(&f);
    int erc =
        dlrt_checkpoint_load_buffer(data, size, descs, fdst, 3, DLRT_CKPT_ALLOW_EXTRA, NULL, NULL);
    if ((rc == 0 && erc != 0) || (rc != 0 && rc != DLRT_EMISMATCH && erc != rc) ||
        (rc == DLRT_EMISMATCH && erc != 0 && erc != DLRT_EMISMATCH) || (erc && !untouched(&f)) ||
        (erc == 0 && rc == 0 && memcmp(&m, &f, sizeof m)))
        __builtin_trap();

    if (rc == 0) {
        /* what loaded saves and loads back unchanged */
        const void *src[3] = {m.a, m.b, m.c};
        if (dlrt_checkpoint_save(out_path, descs, src, 3, NULL, NULL, 0) == 0) {
            fill(&f);
            if (dlrt_checkpoint_load(out_path, descs, fdst, 3, 0, NULL, NULL) != 0 ||
                memcmp(&m, &f, sizeof m))
                __builtin_trap();
        }
    }
    return 0;
}

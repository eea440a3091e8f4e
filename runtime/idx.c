/*
 * IDX files (the MNIST format) and the MNIST loaders built on them.
 *
 * The header (magic and dimensions) is read first and validated: the size
 * it implies is computed with overflow checks and, for a regular file,
 * compared with the file's size before anything large is allocated, so a
 * corrupt header cannot make us allocate gigabytes. The elements are then
 * read in one piece, converted from big-endian in place, and a further byte
 * after them is an error (a file with trailing bytes is not the file the
 * header describes).
 */
#include "dlrt.h"
#include "file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

size_t dlrt_idx_type_size(int type)
{
    switch (type) {
    case DLRT_IDX_U8:
    case DLRT_IDX_I8: return 1;
    case DLRT_IDX_I16: return 2;
    case DLRT_IDX_I32:
    case DLRT_IDX_F32: return 4;
    case DLRT_IDX_F64: return 8;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the 4-byte magic; on success sets the type and rank. */
static int check_magic(const unsigned char m[4], const char *name, dlrt_idx *x, char *err,
                       size_t errlen)
{
    if (m[0] != 0 || m[1] != 0 || dlrt_idx_type_size(m[2]) == 0) {
        dlrt_seterr(err, errlen, "%s: not an IDX file (magic 0x%02x%02x%02x%02x)", name, m[0], m[1],
                    m[2], m[3]);
        return DLRT_EFORMAT;
    }
    if (m[3] < 1 || m[3] > DLRT_MAX_RANK) {
        dlrt_seterr(err, errlen, "%s: IDX rank %d is not supported (1..%d)", name, m[3],
                    DLRT_MAX_RANK);
        return m[3] == 0 ? DLRT_EFORMAT : DLRT_ERANGE;
    }
    x->type = (dlrt_idx_type)m[2];
    x->rank = m[3];
    return DLRT_OK;
}

/* Decodes the dimensions and computes the element count and data size. */
static int check_dims(const unsigned char *p, const char *name, dlrt_idx *x, size_t *bytes,
                      char *err, size_t errlen)
{
    size_t esize = dlrt_idx_type_size(x->type);
    uint64_t count = 1;
    int overflow = 0, empty = 0;
    for (int i = 0; i < x->rank; i++) {
        x->dims[i] = be32(p + 4 * i);
        empty |= x->dims[i] == 0;
    }
    /* A zero dimension makes the data empty whatever the others say. */
    for (int i = 0; i < x->rank && !empty; i++) {
        if (count > UINT64_MAX / (uint64_t)x->dims[i])
            overflow = 1;
        else
            count *= (uint64_t)x->dims[i];
    }
    if (empty)
        count = 0;
    if (overflow || count > (uint64_t)PTRDIFF_MAX / esize || count > (uint64_t)INT64_MAX) {
        dlrt_seterr(err, errlen, "%s: IDX dimensions too large (first dimension %lld, rank %d)",
                    name, (long long)x->dims[0], x->rank);
        return DLRT_ERANGE;
    }
    x->count = (int64_t)count;
    *bytes = (size_t)count * esize;
    return DLRT_OK;
}

/* Big-endian to host order, in place. */
static void swap_data(dlrt_idx *x)
{
    size_t es = dlrt_idx_type_size(x->type);
    unsigned char *p = x->data;
    if (es == 1)
        return;
    for (int64_t i = 0; i < x->count; i++, p += es) {
        union {
            uint16_t u16;
            uint32_t u32;
            uint64_t u64;
        } v;
        if (es == 2) {
            v.u16 = (uint16_t)(p[0] << 8 | p[1]);
            memcpy(p, &v.u16, 2);
        } else if (es == 4) {
            v.u32 = be32(p);
            memcpy(p, &v.u32, 4);
        } else {
            v.u64 = (uint64_t)be32(p) << 32 | be32(p + 4);
            memcpy(p, &v.u64, 8);
        }
    }
}

static dlrt_idx *idx_alloc(size_t bytes)
{
    dlrt_idx *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->data = malloc(bytes ? bytes : 1);
    if (!x->data) {
        free(x);
        return NULL;
    }
    return x;
}

void dlrt_idx_free(dlrt_idx *x)
{
    if (!x)
        return;
    free(x->data);
    free(x);
}

int dlrt_idx_parse(const void *buf, size_t len, dlrt_idx **out, char *err, size_t errlen)
{
    if (!out || (!buf && len))
        return DLRT_EINVAL;
    *out = NULL;
    const unsigned char *p = buf;
    const char *name = "<idx>";
    dlrt_idx h = {0};
    size_t bytes;
    int rc;
    if (len < 4) {
        dlrt_seterr(err, errlen, "%s: truncated IDX header (%zu bytes)", name, len);
        return DLRT_EFORMAT;
    }
    if ((rc = check_magic(p, name, &h, err, errlen)) < 0)
        return rc;
    size_t hlen = 4 + 4 * (size_t)h.rank;
    if (len < hlen) {
        dlrt_seterr(err, errlen, "%s: truncated IDX header (%zu of %zu bytes)", name, len, hlen);
        return DLRT_EFORMAT;
    }
    if ((rc = check_dims(p + 4, name, &h, &bytes, err, errlen)) < 0)
        return rc;
    if (len - hlen != bytes) {
        dlrt_seterr(err, errlen, "%s: IDX data is %zu bytes, the header implies %zu (%s)", name,
                    len - hlen, bytes, len - hlen < bytes ? "truncated" : "trailing bytes");
        return DLRT_EFORMAT;
    }
    dlrt_idx *x = idx_alloc(bytes);
    if (!x)
        return DLRT_ENOMEM;
    void *data = x->data;
    *x = h;
    x->data = data;
    if (bytes)
        memcpy(x->data, p + hlen, bytes);
    swap_data(x);
    *out = x;
    return DLRT_OK;
}

int dlrt_idx_load(const char *path, dlrt_idx **out, char *err, size_t errlen)
{
    if (!path || !out)
        return DLRT_EINVAL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        dlrt_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return DLRT_EIO;
    }
    unsigned char head[4 + 4 * DLRT_MAX_RANK];
    dlrt_idx h = {0};
    dlrt_idx *x = NULL;
    size_t bytes = 0, got;
    int rc;
    got = fread(head, 1, 4, f);
    if (got < 4) {
        rc = ferror(f) ? DLRT_EIO : DLRT_EFORMAT;
        dlrt_seterr(err, errlen, "%s: truncated IDX header (%zu bytes)", path, got);
        goto fail;
    }
    if ((rc = check_magic(head, path, &h, err, errlen)) < 0)
        goto fail;
    size_t hlen = 4 + 4 * (size_t)h.rank;
    got = fread(head + 4, 1, hlen - 4, f);
    if (got < hlen - 4) {
        rc = ferror(f) ? DLRT_EIO : DLRT_EFORMAT;
        dlrt_seterr(err, errlen, "%s: truncated IDX header (%zu of %zu bytes)", path, 4 + got,
                    hlen);
        goto fail;
    }
    if ((rc = check_dims(head + 4, path, &h, &bytes, err, errlen)) < 0)
        goto fail;
    /* Compare with the file's size before allocating what the header asks. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= hlen &&
        (uint64_t)st.st_size - hlen != bytes) {
        uint64_t have = (uint64_t)st.st_size - hlen;
        dlrt_seterr(err, errlen, "%s: IDX data is %llu bytes, the header implies %zu (%s)", path,
                    (unsigned long long)have, bytes, have < bytes ? "truncated" : "trailing bytes");
        rc = DLRT_EFORMAT;
        goto fail;
    }
    x = idx_alloc(bytes);
    if (!x) {
        dlrt_seterr(err, errlen, "%s: out of memory for %zu bytes of IDX data", path, bytes);
        rc = DLRT_ENOMEM;
        goto fail;
    }
    void *data = x->data;
    *x = h;
    x->data = data;
    got = fread(x->data, 1, bytes, f);
    if (got < bytes) {
        rc = ferror(f) ? DLRT_EIO : DLRT_EFORMAT;
        dlrt_seterr(err, errlen, "%s: IDX data is %zu bytes, the header implies %zu (truncated)",
                    path, got, bytes);
        goto fail;
    }
    if (fgetc(f) != EOF) {
        dlrt_seterr(err, errlen, "%s: trailing bytes after the IDX data", path);
        rc = DLRT_EFORMAT;
        goto fail;
    }
    if (ferror(f)) {
        dlrt_seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = DLRT_EIO;
        goto fail;
    }
    fclose(f);
    swap_data(x);
    *out = x;
    return DLRT_OK;
fail:
    dlrt_idx_free(x);
    fclose(f);
    return rc;
}

int dlrt_idx_to_f32(const dlrt_idx *x, float *out)
{
    if (!x || (!out && x->count))
        return DLRT_EINVAL;
    for (int64_t i = 0; i < x->count; i++) {
        switch (x->type) {
        case DLRT_IDX_U8: out[i] = ((const uint8_t *)x->data)[i]; break;
        case DLRT_IDX_I8: out[i] = ((const int8_t *)x->data)[i]; break;
        case DLRT_IDX_I16: out[i] = ((const int16_t *)x->data)[i]; break;
        case DLRT_IDX_I32: out[i] = (float)((const int32_t *)x->data)[i]; break;
        case DLRT_IDX_F32: out[i] = ((const float *)x->data)[i]; break;
        case DLRT_IDX_F64: out[i] = (float)((const double *)x->data)[i]; break;
        default: return DLRT_EINVAL;
        }
    }
    return DLRT_OK;
}

int dlrt_idx_to_i32(const dlrt_idx *x, int32_t *out)
{
    if (!x || (!out && x->count))
        return DLRT_EINVAL;
    for (int64_t i = 0; i < x->count; i++) {
        double v;
        switch (x->type) {
        case DLRT_IDX_U8: out[i] = ((const uint8_t *)x->data)[i]; continue;
        case DLRT_IDX_I8: out[i] = ((const int8_t *)x->data)[i]; continue;
        case DLRT_IDX_I16: out[i] = ((const int16_t *)x->data)[i]; continue;
        case DLRT_IDX_I32: out[i] = ((const int32_t *)x->data)[i]; continue;
        case DLRT_IDX_F32: v = ((const float *)x->data)[i]; break;
        case DLRT_IDX_F64: v = ((const double *)x->data)[i]; break;
        default: return DLRT_EINVAL;
        }
        /* The negated test also rejects NaN. */
        if (!(v >= INT32_MIN && v <= INT32_MAX) || v != (double)(int64_t)v)
            return DLRT_ERANGE;
        out[i] = (int32_t)v;
    }
    return DLRT_OK;
}

/* ---- MNIST ---- */

int dlrt_mnist_images(const char *path, unsigned flags, float **images, int64_t *n, int64_t *dim,
                      char *err, size_t errlen)
{
    if (!path || !images || !n || !dim || (flags & ~DLRT_MNIST_NORMALIZE))
        return DLRT_EINVAL;
    *images = NULL;
    *n = *dim = 0;
    dlrt_idx *x;
    int rc = dlrt_idx_load(path, &x, err, errlen);
    if (rc < 0)
        return rc;
    if (x->type != DLRT_IDX_U8 || x->rank != 3) {
        dlrt_seterr(err, errlen, "%s: expected u8 images of rank 3, found type 0x%02x rank %d",
                    path, (unsigned)x->type, x->rank);
        dlrt_idx_free(x);
        return DLRT_EMISMATCH;
    }
    float *f = malloc(x->count ? (size_t)x->count * sizeof *f : 1);
    if (!f) {
        dlrt_idx_free(x);
        return DLRT_ENOMEM;
    }
    /* A table of the 256 possible values: one load per pixel, no division. */
    float lut[256];
    for (int v = 0; v < 256; v++) {
        lut[v] = v / 255.0f;
        if (flags & DLRT_MNIST_NORMALIZE)
            lut[v] = (lut[v] - DLRT_MNIST_MEAN) / DLRT_MNIST_STD;
    }
    const uint8_t *u = x->data;
    for (int64_t i = 0; i < x->count; i++)
        f[i] = lut[u[i]];
    *images = f;
    *n = x->dims[0];
    *dim = x->dims[1] * x->dims[2];
    dlrt_idx_free(x);
    return DLRT_OK;
}

int dlrt_mnist_labels(const char *path, int32_t **labels, int64_t *n, char *err, size_t errlen)
{
    if (!path || !labels || !n)
        return DLRT_EINVAL;
    *labels = NULL;
    *n = 0;
    dlrt_idx *x;
    int rc = dlrt_idx_load(path, &x, err, errlen);
    if (rc < 0)
        return rc;
    if (x->type != DLRT_IDX_U8 || x->rank != 1) {
        dlrt_seterr(err, errlen, "%s: expected u8 labels of rank 1, found type 0x%02x rank %d",
                    path, (unsigned)x->type, x->rank);
        dlrt_idx_free(x);
        return DLRT_EMISMATCH;
    }
    const uint8_t *u = x->data;
    for (int64_t i = 0; i < x->count; i++) {
        if (u[i] > 9) {
            dlrt_seterr(err, errlen, "%s: label %d at index %lld is not a digit 0..9", path, u[i],
                        (long long)i);
            dlrt_idx_free(x);
            return DLRT_ERANGE;
        }
    }
    int32_t *l = malloc(x->count ? (size_t)x->count * sizeof *l : 1);
    if (!l) {
        dlrt_idx_free(x);
        return DLRT_ENOMEM;
    }
    for (int64_t i = 0; i < x->count; i++)
        l[i] = u[i];
    *labels = l;
    *n = x->count;
    dlrt_idx_free(x);
    return DLRT_OK;
}

void dlrt_dataset_free(dlrt_dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

int dlrt_mnist_load(const char *dir, const char *split, unsigned flags, dlrt_dataset *out,
                    char *err, size_t errlen)
{
    if (!dir || !split || !out)
        return DLRT_EINVAL;
    memset(out, 0, sizeof *out);
    const char *prefix;
    if (strcmp(split, "train") == 0)
        prefix = "train";
    else if (strcmp(split, "test") == 0 || strcmp(split, "t10k") == 0)
        prefix = "t10k";
    else {
        dlrt_seterr(err, errlen, "unknown MNIST split '%s' (train, test)", split);
        return DLRT_EINVAL;
    }
    size_t plen = strlen(dir) + 64;
    char *path = malloc(plen);
    if (!path)
        return DLRT_ENOMEM;
    int64_t ni, nl;
    snprintf(path, plen, "%s/%s-images-idx3-ubyte", dir, prefix);
    int rc = dlrt_mnist_images(path, flags, &out->x, &ni, &out->dim, err, errlen);
    if (rc == DLRT_OK) {
        snprintf(path, plen, "%s/%s-labels-idx1-ubyte", dir, prefix);
        rc = dlrt_mnist_labels(path, &out->y, &nl, err, errlen);
    }
    if (rc == DLRT_OK && ni != nl) {
        dlrt_seterr(err, errlen, "%s: %lld labels for %lld images", path, (long long)nl,
                    (long long)ni);
        rc = DLRT_EMISMATCH;
    }
    free(path);
    if (rc < 0) {
        dlrt_dataset_free(out);
        return rc;
    }
    out->n = ni;
    return DLRT_OK;
}

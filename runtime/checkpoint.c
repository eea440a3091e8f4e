/*
 * Safetensors reading and writing (see dlrt_checkpoint.h).
 *
 * Loading is two phases. First the whole file is in memory and checked:
 * the header is parsed by a grammar-directed reader over json.c's strict
 * lexer (the header's shape is fixed, so nesting deeper than the format
 * allows is a syntax error and nothing recurses), every tensor's byte range
 * is checked against its dtype and shape with overflow-checked arithmetic,
 * the ranges sorted by offset must tile the data exactly, and the expected
 * tensors are matched by name (binary search over the sorted names, which
 * also finds duplicates). Only then, with nothing left that can fail, are
 * the destinations written. Saving builds the header in memory, writes a
 * temporary file next to the target (tmpfile.c: locked while written;
 * leftovers of killed saves are swept on the next save or load of the
 * path), fsyncs it and renames it into place.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp, strndup */
#endif
#include "dlrt.h"
#include "file.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "file.h"

#define MAX_FILE_RANK 32 /* tensors in a file may have more dims than a model */

/* The safetensors dtypes whose element size is a whole number of bytes. */
static const struct {
    const char *name;
    unsigned size;
} st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};
#define N_ST_DTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

static const char *dtype_name(dlrt_dtype t)
{
    switch (t) {
    case DLRT_F32: return "F32";
    case DLRT_F64: return "F64";
    case DLRT_I32: return "I32";
    case DLRT_F16: return "F16";
    case DLRT_BF16: return "BF16";
    }
    return NULL;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Copies n elements of `size` bytes, reversing each element's bytes when
 * the host is big-endian (the file is always little-endian). */
static void copy_le(void *dst, const void *src, size_t n, size_t size)
{
    if (host_is_little_endian()) {
        memcpy(dst, src, n * size);
        return;
    }
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++, d += size, s += size)
        for (size_t k = 0; k < size; k++)
            d[k] = s[size - 1 - k];
}

/* Bytes of a tensor of descriptor d; 0 on success, -1 if invalid. */
static int desc_bytes(const dlrt_tensor_desc *d, size_t *bytes)
{
    size_t es = dlrt_dtype_size(d->dtype);
    if (!d->name || !es || d->rank < 0 || d->rank > DLRT_MAX_RANK)
        return -1;
    size_t b = es;
    for (int i = 0; i < d->rank; i++) {
        if (d->shape[i] < 0 || (uint64_t)d->shape[i] > SIZE_MAX ||
            __builtin_mul_overflow(b, (size_t)d->shape[i], &b))
            return -1;
    }
    *bytes = b;
    return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether the n C strings have a repeat (sorting a scratch copy). */
static int has_duplicates(const char *const *s, int n, int *err)
{
    if (n < 2)
        return 0;
    const char **tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) {
        *err = DLRT_ENOMEM;
        return 1;
    }
    memcpy(tmp, s, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_cstr);
    int dup = 0;
    for (int i = 1; i < n && !dup; i++)
        dup = strcmp(tmp[i - 1], tmp[i]) == 0;
    free(tmp);
    if (dup)
        *err = DLRT_EINVAL;
    return dup;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct {
    const char *name;
    size_t name_len;
    int dtype; /* index into st_dtypes */
    int rank;
    uint64_t shape[MAX_FILE_RANK];
    uint64_t begin, end;
} entry;

typedef struct {
    const char *key, *value;
    size_t key_len, value_len;
} meta_pair;

typedef struct {
    char *pool; /* decoded strings; the header's length suffices */
    size_t pool_used;
    entry *e;
    size_t ne, cap_e;
    meta_pair *m;
    size_t nm, cap_m;
} header;

static void header_free(header *h)
{
    free(h->pool);
    free(h->e);
    free(h->m);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q)
        return DLRT_ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int read_string(dlrt_json_cur *c, header *h, const char **s, size_t *len)
{
    char *out = h->pool + h->pool_used;
    if (dlrt_json_string(c, out, len))
        return DLRT_EFORMAT;
    *s = out;
    h->pool_used += *len + 1;
    return 0;
}

static int key_is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* array = "[" [ uint ("," uint)* ] "]", at most max elements */
static int read_uint_array(dlrt_json_cur *c, uint64_t *v, int max, int *count)
{
    if (!dlrt_json_eat(c, '['))
        return DLRT_EFORMAT;
    int n = 0;
    if (dlrt_json_eat(c, ']')) {
        *count = 0;
        return 0;
    }
    do {
        if (n == max || dlrt_json_uint(c, INT64_MAX, &v[n]))
            return DLRT_EFORMAT;
        n++;
    } while (dlrt_json_eat(c, ','));
    if (!dlrt_json_eat(c, ']'))
        return DLRT_EFORMAT;
    *count = n;
    return 0;
}

/* tensor = "{" field ("," field)* "}" with each of "dtype": string,
 * "shape": [uint*], "data_offsets": [uint, uint] exactly once */
static int read_tensor(dlrt_json_cur *c, header *h, entry *e)
{
    if (!dlrt_json_eat(c, '{'))
        return DLRT_EFORMAT;
    int seen = 0; /* bits: dtype, shape, data_offsets */
    do {
        const char *k;
        size_t klen;
        int rc = read_string(c, h, &k, &klen);
        if (rc)
            return rc;
        if (!dlrt_json_eat(c, ':'))
            return DLRT_EFORMAT;
        if (key_is(k, klen, "dtype") && !(seen & 1)) {
            const char *d;
            size_t dlen;
            if ((rc = read_string(c, h, &d, &dlen)))
                return rc;
            e->dtype = -1;
            for (int i = 0; i < N_ST_DTYPES; i++)
                if (key_is(d, dlen, st_dtypes[i].name))
                    e->dtype = i;
            if (e->dtype < 0)
                return DLRT_EFORMAT;
            seen |= 1;
        } else if (key_is(k, klen, "shape") && !(seen & 2)) {
            if ((rc = read_uint_array(c, e->shape, MAX_FILE_RANK, &e->rank)))
                return rc;
            seen |= 2;
        } else if (key_is(k, klen, "data_offsets") && !(seen & 4)) {
            uint64_t off[2];
            int cnt;
            if ((rc = read_uint_array(c, off, 2, &cnt)))
                return rc;
            if (cnt != 2)
                return DLRT_EFORMAT;
            e->begin = off[0];
            e->end = off[1];
            seen |= 4;
        } else {
            return DLRT_EFORMAT; /* unknown or repeated field */
        }
    } while (dlrt_json_eat(c, ','));
    if (!dlrt_json_eat(c, '}') || seen != 7)
        return DLRT_EFORMAT;
    return 0;
}

/* metadata = "{" [ string ":" string ("," string ":" string)* ] "}" */
static int read_meta(dlrt_json_cur *c, header *h)
{
    if (!dlrt_json_eat(c, '{'))
        return DLRT_EFORMAT;
    if (dlrt_json_eat(c, '}'))
        return 0;
    do {
        int rc = grow((void **)&h->m, &h->cap_m, h->nm + 1, sizeof *h->m);
        if (rc)
            return rc;
        meta_pair *p = &h->m[h->nm];
        if ((rc = read_string(c, h, &p->key, &p->key_len)))
            return rc;
        if (!dlrt_json_eat(c, ':'))
            return DLRT_EFORMAT;
        if ((rc = read_string(c, h, &p->value, &p->value_len)))
            return rc;
        h->nm++;
    } while (dlrt_json_eat(c, ','));
    return dlrt_json_eat(c, '}') ? 0 : DLRT_EFORMAT;
}

/* header = "{" [ member ("," member)* ] "}" whitespace*, where a member is
 * "__metadata__": metadata (at most once) or name: tensor. The first byte
 * must be '{', as the reference implementation requires. */
static int read_header(const char *text, size_t len, header *h)
{
    h->pool = malloc(len + 1);
    if (!h->pool)
        return DLRT_ENOMEM;
    dlrt_json_cur c = {text, text + len};
    if (len == 0 || text[0] != '{')
        return DLRT_EFORMAT;
    c.p++;
    int have_meta = 0;
    if (!dlrt_json_eat(&c, '}')) {
        do {
            const char *k;
            size_t klen;
            int rc = read_string(&c, h, &k, &klen);
            if (rc)
                return rc;
            if (!dlrt_json_eat(&c, ':'))
                return DLRT_EFORMAT;
            if (key_is(k, klen, "__metadata__")) {
                if (have_meta)
                    return DLRT_EFORMAT;
                have_meta = 1;
                rc = read_meta(&c, h);
            } else {
                rc = grow((void **)&h->e, &h->cap_e, h->ne + 1, sizeof *h->e);
                if (!rc) {
                    entry *e = &h->e[h->ne];
                    e->name = k;
                    e->name_len = klen;
                    rc = read_tensor(&c, h, e);
                    h->ne++;
                }
            }
            if (rc)
                return rc;
        } while (dlrt_json_eat(&c, ','));
        if (!dlrt_json_eat(&c, '}'))
            return DLRT_EFORMAT;
    }
    dlrt_json_ws(&c);
    return c.p == c.end ? 0 : DLRT_EFORMAT;
}

static int cmp_bytes(const char *a, size_t na, const char *b, size_t nb)
{
    int r = memcmp(a, b, na < nb ? na : nb);
    if (r)
        return r;
    return (na > nb) - (na < nb);
}

static int cmp_entry_name(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    return cmp_bytes(x->name, x->name_len, y->name, y->name_len);
}

static int cmp_entry_range(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin)
        return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->end > y->end) - (x->end < y->end);
}

static int cmp_meta_key(const void *a, const void *b)
{
    const meta_pair *x = *(const meta_pair *const *)a, *y = *(const meta_pair *const *)b;
    return cmp_bytes(x->key, x->key_len, y->key, y->key_len);
}

/* Checks the ranges of all entries against their dtypes, shapes and the
 * data size, and for duplicate names and metadata keys. Fills by_name with
 * the entries sorted by name. */
static int check_layout(header *h, uint64_t data_size, entry **by_name)
{
    for (size_t i = 0; i < h->ne; i++) {
        entry *e = &h->e[i];
        uint64_t bytes = st_dtypes[e->dtype].size;
        for (int k = 0; k < e->rank; k++)
            if (__builtin_mul_overflow(bytes, e->shape[k], &bytes))
                return DLRT_EFORMAT;
        if (e->end < e->begin || e->end - e->begin != bytes)
            return DLRT_EFORMAT;
        by_name[i] = e;
    }
    /* the ranges, sorted, must tile [0, data_size) */
    if (h->ne > 1)
        qsort(by_name, h->ne, sizeof *by_name, cmp_entry_range);
    uint64_t at = 0;
    for (size_t i = 0; i < h->ne; i++) {
        if (by_name[i]->begin != at)
            return DLRT_EFORMAT;
        at = by_name[i]->end;
    }
    if (at != data_size)
        return DLRT_EFORMAT;
    if (h->ne > 1)
        qsort(by_name, h->ne, sizeof *by_name, cmp_entry_name);
    for (size_t i = 1; i < h->ne; i++)
        if (cmp_entry_name(&by_name[i - 1], &by_name[i]) == 0)
            return DLRT_EFORMAT;
    if (h->nm > 1) {
        meta_pair **mk = malloc(h->nm * sizeof *mk);
        if (!mk)
            return DLRT_ENOMEM;
        for (size_t i = 0; i < h->nm; i++)
            mk[i] = &h->m[i];
        qsort(mk, h->nm, sizeof *mk, cmp_meta_key);
        int dup = 0;
        for (size_t i = 1; i < h->nm && !dup; i++)
            dup = cmp_meta_key(&mk[i - 1], &mk[i]) == 0;
        free(mk);
        if (dup)
            return DLRT_EFORMAT;
    }
    return 0;
}

static entry *find_entry(entry **by_name, size_t n, const char *name)
{
    size_t len = strlen(name), lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = cmp_bytes(name, len, by_name[mid]->name, by_name[mid]->name_len);
        if (r == 0)
            return by_name[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int is_opt_name(const char *name, size_t len)
{
    return len >= 4 && memcmp(name, "opt.", 4) == 0;
}

static int check_load_args(const dlrt_tensor_desc *descs, void *const *data, int n, unsigned flags)
{
    if (n < 0 || (n > 0 && (!descs || !data)) ||
        (flags & ~(DLRT_CKPT_ALLOW_EXTRA | DLRT_CKPT_SKIP_OPT | DLRT_CKPT_NARROW)))
        return DLRT_EINVAL;
    for (int i = 0; i < n; i++) {
        size_t bytes = 0;
        if (desc_bytes(&descs[i], &bytes) || (bytes > 0 && !data[i]))
            return DLRT_EINVAL;
        if ((flags & DLRT_CKPT_SKIP_OPT) && is_opt_name(descs[i].name, strlen(descs[i].name)))
            return DLRT_EINVAL;
    }
    if (n < 2)
        return 0;
    const char **names = malloc((size_t)n * sizeof *names);
    if (!names)
        return DLRT_ENOMEM;
    for (int i = 0; i < n; i++)
        names[i] = descs[i].name;
    int err = 0;
    has_duplicates(names, n, &err);
    free(names);
    return err;
}

/* "F32 [784, 256]" into out. */
static void format_tensor(char *out, size_t size, const char *dtype, int rank,
                          const uint64_t *shape)
{
    int k = snprintf(out, size, "%s [", dtype);
    for (int i = 0; i < rank && k > 0 && (size_t)k < size; i++)
        k += snprintf(out + k, size - (size_t)k, "%s%llu", i ? ", " : "",
                      (unsigned long long)shape[i]);
    if (k > 0 && (size_t)k < size)
        snprintf(out + k, size - (size_t)k, "]");
}

/* Why the file's tensor e (NULL: absent) does not fit d. */
static int tensor_mismatch(const dlrt_tensor_desc *d, const entry *e, size_t nfile)
{
    if (!e)
        return dlrt_fail(DLRT_EMISMATCH, "no tensor '%s' in the file (it has %zu)", d->name, nfile);
    uint64_t shape[MAX_FILE_RANK];
    for (int k = 0; k < d->rank; k++)
        shape[k] = (uint64_t)d->shape[k];
    char want[160], have[160];
    format_tensor(want, sizeof want, dtype_name(d->dtype), d->rank, shape);
    format_tensor(have, sizeof have, st_dtypes[e->dtype].name, e->rank, e->shape);
    return dlrt_fail(DLRT_EMISMATCH, "tensor '%s': the model has %s, the file %s", d->name, want,
                     have);
}

/* The first tensor of the file that no desc names (and that is not
 * optimizer state skipped by flags): the file holds more than the model. */
static int extra_tensor(const header *h, const dlrt_tensor_desc *descs, int n, unsigned flags)
{
    for (size_t i = 0; i < h->ne; i++) {
        const entry *e = &h->e[i];
        if ((flags & DLRT_CKPT_SKIP_OPT) && is_opt_name(e->name, e->name_len))
            continue;
        int named = 0;
        for (int j = 0; j < n && !named; j++)
            named = strlen(descs[j].name) == e->name_len &&
                    memcmp(descs[j].name, e->name, e->name_len) == 0;
        if (!named)
            return dlrt_fail(DLRT_EMISMATCH, "tensor '%.*s' of the file is not in the model",
                             (int)e->name_len, e->name);
    }
    return DLRT_EMISMATCH;
}

/* Whether file tensor e (F32) fills half-precision desc d (DLRT_CKPT_NARROW) */
static int narrows(const entry *e, const dlrt_tensor_desc *d, unsigned flags)
{
    return (flags & DLRT_CKPT_NARROW) && strcmp(st_dtypes[e->dtype].name, "F32") == 0 &&
           (d->dtype == DLRT_F16 || d->dtype == DLRT_BF16);
}

static void narrow_copy(void *dst, dlrt_dtype t, const unsigned char *src, size_t count)
{
    uint16_t *h = dst;
    for (size_t i = 0; i < count; i++) {
        float f;
        copy_le(&f, src + 4 * i, 1, 4);
        h[i] = t == DLRT_F16 ? dlrt_f16_from_f32(f) : dlrt_bf16_from_f32(f);
    }
}

int dlrt_checkpoint_load_buffer(const void *buf, size_t size, const dlrt_tensor_desc *descs,
                                void *const *data, int n, unsigned flags, dlrt_meta_fn meta,
                                void *ctx)
{
    dlrt_error_clear();
    if (!buf && size > 0)
        return DLRT_EINVAL;
    int rc = check_load_args(descs, data, n, flags);
    if (rc)
        return rc;
    const unsigned char *bytes = buf;
    if (size < 8)
        return dlrt_fail(DLRT_EFORMAT, "%zu bytes: too short for a safetensors file", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | bytes[i];
    if (hlen > DLRT_CKPT_MAX_HEADER || hlen > size - 8)
        return DLRT_EFORMAT;
    const unsigned char *payload = bytes + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;

    header h = {0};
    entry **by_name = NULL;
    entry **found = NULL;
    rc = read_header((const char *)bytes + 8, (size_t)hlen, &h);
    if (!rc && h.ne > 0 && !(by_name = malloc(h.ne * sizeof *by_name)))
        rc = DLRT_ENOMEM;
    if (!rc)
        rc = check_layout(&h, data_size, by_name);
    if (!rc && n > 0 && !(found = malloc((size_t)n * sizeof *found)))
        rc = DLRT_ENOMEM;
    for (int i = 0; !rc && i < n; i++) {
        const dlrt_tensor_desc *d = &descs[i];
        entry *e = find_entry(by_name, h.ne, d->name);
        if (!e ||
            (strcmp(st_dtypes[e->dtype].name, dtype_name(d->dtype)) != 0 &&
             !narrows(e, d, flags)) ||
            e->rank != d->rank) {
            rc = tensor_mismatch(d, e, h.ne);
            break;
        }
        for (int k = 0; k < d->rank && !rc; k++)
            if (e->shape[k] != (uint64_t)d->shape[k])
                rc = tensor_mismatch(d, e, h.ne);
        found[i] = e;
    }
    /* names in descs are distinct, so n matches mean n distinct entries */
    size_t skipped = 0;
    for (size_t i = 0; (flags & DLRT_CKPT_SKIP_OPT) && i < h.ne; i++)
        skipped += (size_t)is_opt_name(h.e[i].name, h.e[i].name_len);
    if (!rc && h.ne - skipped > (size_t)n && !(flags & DLRT_CKPT_ALLOW_EXTRA))
        rc = extra_tensor(&h, descs, n, flags);
    for (size_t i = 0; !rc && meta && i < h.nm; i++) {
        int r = meta(ctx, h.m[i].key, h.m[i].key_len, h.m[i].value, h.m[i].value_len);
        if (r)
            rc = r < 0 ? r : DLRT_EMISMATCH;
    }
    for (int i = 0; !rc && i < n; i++) {
        if (narrows(found[i], &descs[i], flags)) {
            narrow_copy(data[i], descs[i].dtype, payload + found[i]->begin,
                        (size_t)((found[i]->end - found[i]->begin) / 4));
            continue;
        }
        size_t es = dlrt_dtype_size(descs[i].dtype);
        size_t count = (size_t)((found[i]->end - found[i]->begin) / es);
        if (count)
            copy_le(data[i], payload + found[i]->begin, count, es);
    }
    free(found);
    free(by_name);
    header_free(&h);
    return rc;
}

/* Reads the whole regular file at path into a malloc'd buffer, after
 * checking its header length so that a huge non-checkpoint is not read. */
static int read_file(const char *path, unsigned char **out, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return DLRT_EIO;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 0) {
        close(fd);
        return DLRT_EIO;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return DLRT_ENOMEM;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return DLRT_ENOMEM;
    }
    size_t got = 0;
    int rc = 0;
    while (got < n) {
        size_t want = n - got;
        if (got < 8 && want > 8 - got)
            want = 8 - got; /* the length first */
        ssize_t r = read(fd, buf + got, want > (1u << 30) ? (1u << 30) : want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = DLRT_EIO; /* an error, or the file shrank under us */
            break;
        }
        got += (size_t)r;
        if (got == 8 && n > 8) {
            uint64_t hlen = 0;
            for (int i = 7; i >= 0; i--)
                hlen = hlen << 8 | buf[i];
            if (hlen > DLRT_CKPT_MAX_HEADER || hlen > n - 8) {
                rc = DLRT_EFORMAT;
                break;
            }
        }
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *size = n;
    return 0;
}

int dlrt_checkpoint_load(const char *path, const dlrt_tensor_desc *descs, void *const *data, int n,
                         unsigned flags, dlrt_meta_fn meta, void *ctx)
{
    if (!path)
        return DLRT_EINVAL;
    int rc = check_load_args(descs, data, n, flags);
    if (rc)
        return rc;
    unsigned char *buf;
    size_t size;
    dlrt_error_clear();
    dlrt_tmp_sweep(path);
    errno = 0;
    if ((rc = read_file(path, &buf, &size))) {
        if (rc == DLRT_EIO)
            dlrt_fail(rc, "cannot read: %s", errno ? strerror(errno) : "not a regular file");
        dlrt_error_prefix(path, rc);
        return rc;
    }
    rc = dlrt_checkpoint_load_buffer(buf, size, descs, data, n, flags, meta, ctx);
    free(buf);
    if (rc)
        dlrt_error_prefix(path, rc);
    return rc;
}

typedef struct {
    const char *key;
    char *buf;
    size_t size;
    long len; /* -1 until the key is found */
} meta_lookup;

static int lookup_meta(void *ctx, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    meta_lookup *m = ctx;
    if (key_len != strlen(m->key) || memcmp(key, m->key, key_len) != 0)
        return 0;
    if (value_len > INT_MAX)
        return DLRT_ERANGE;
    m->len = (long)value_len;
    if (m->size > 0) {
        size_t k = value_len < m->size - 1 ? value_len : m->size - 1;
        memcpy(m->buf, value, k);
        m->buf[k] = 0;
    }
    return 0;
}

int dlrt_checkpoint_meta(const char *path, const char *key, char *buf, size_t size)
{
    if (!path || !key || (!buf && size > 0))
        return DLRT_EINVAL;
    meta_lookup m = {key, buf, size, -1};
    int rc = dlrt_checkpoint_load(path, NULL, NULL, 0, DLRT_CKPT_ALLOW_EXTRA, lookup_meta, &m);
    if (rc)
        return rc;
    return m.len < 0 ? DLRT_EMISMATCH : (int)m.len;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *q = realloc(b->s, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->s = q;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_u64(sbuf *b, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    sb_str(b, t);
}

/* A JSON string literal, escaped as serde_json does: quote, backslash and
 * the C0 controls (short forms where JSON has them); UTF-8 as is. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        const char *esc = NULL;
        char u[8];
        switch (ch) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (ch < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", ch);
                esc = u;
            }
        }
        if (esc)
            sb_str(b, esc);
        else
            sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

static int valid_text(const char *s)
{
    return s && dlrt_json_utf8_valid(s, strlen(s));
}

static int check_save_args(const dlrt_tensor_desc *descs, const void *const *data, int n,
                           const char *const *keys, const char *const *values, int nmeta)
{
    if (n < 0 || nmeta < 0 || (n > 0 && (!descs || !data)) || (nmeta > 0 && (!keys || !values)))
        return DLRT_EINVAL;
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = 0;
        if (desc_bytes(&descs[i], &bytes) || (bytes > 0 && !data[i]) ||
            !valid_text(descs[i].name) || strcmp(descs[i].name, "__metadata__") == 0 ||
            __builtin_add_overflow(total, (uint64_t)bytes, &total))
            return DLRT_EINVAL;
    }
    for (int i = 0; i < nmeta; i++)
        if (!valid_text(keys[i]) || !valid_text(values[i]))
            return DLRT_EINVAL;
    int err = 0;
    const char **names = n > 0 ? malloc((size_t)n * sizeof *names) : NULL;
    if (n > 0 && !names)
        return DLRT_ENOMEM;
    for (int i = 0; i < n; i++)
        names[i] = descs[i].name;
    if (!has_duplicates(names, n, &err))
        has_duplicates((const char *const *)keys, nmeta, &err);
    free(names);
    return err;
}

/* {"__metadata__":{"k":"v",...},"name":{"dtype":"F32","shape":[..],
 * "data_offsets":[b,e]},...} padded with spaces to a multiple of 8 */
static int build_header(sbuf *b, const dlrt_tensor_desc *descs, int n, const char *const *keys,
                        const char *const *values, int nmeta)
{
    sb_put(b, "{", 1);
    if (nmeta > 0) {
        sb_str(b, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i)
                sb_put(b, ",", 1);
            sb_json_string(b, keys[i]);
            sb_put(b, ":", 1);
            sb_json_string(b, values[i]);
        }
        sb_put(b, "}", 1);
    }
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = 0;
        desc_bytes(&descs[i], &bytes);
        if (i || nmeta > 0)
            sb_put(b, ",", 1);
        sb_json_string(b, descs[i].name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, dtype_name(descs[i].dtype));
        sb_str(b, "\",\"shape\":[");
        for (int k = 0; k < descs[i].rank; k++) {
            if (k)
                sb_put(b, ",", 1);
            sb_u64(b, (uint64_t)descs[i].shape[k]);
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_u64(b, at);
        sb_put(b, ",", 1);
        at += bytes;
        sb_u64(b, at);
        sb_str(b, "]}");
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->len % 8)
        sb_put(b, " ", 1);
    if (b->oom)
        return DLRT_ENOMEM;
    return b->len > DLRT_CKPT_MAX_HEADER ? DLRT_EINVAL : 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return DLRT_EIO;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The tensor's bytes in little-endian order; on big-endian hosts through a
 * swapped copy. */
static int write_tensor(int fd, const dlrt_tensor_desc *d, const void *data)
{
    size_t bytes = 0;
    desc_bytes(d, &bytes);
    if (bytes == 0 || host_is_little_endian())
        return bytes ? write_all(fd, data, bytes) : 0;
    size_t es = dlrt_dtype_size(d->dtype), chunk = 1 << 16;
    unsigned char *tmp = malloc(chunk);
    if (!tmp)
        return DLRT_ENOMEM;
    int rc = 0;
    for (size_t off = 0; off < bytes && !rc; off += chunk) {
        size_t k = bytes - off < chunk ? bytes - off : chunk;
        copy_le(tmp, (const unsigned char *)data + off, k / es, es);
        rc = write_all(fd, tmp, k);
    }
    free(tmp);
    return rc;
}

/* The process umask, read without changing it (umask(2) would race with
 * other threads); -1 if /proc does not say. */
static int current_umask(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -1;
    char line[256];
    int mask = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Umask:", 6) == 0) {
            mask = (int)strtol(line + 6, NULL, 8);
            break;
        }
    fclose(f);
    return mask;
}

/* fsyncs the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return DLRT_ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return DLRT_EIO;
    int rc = fsync(fd) && errno != EINVAL && errno != EROFS ? DLRT_EIO : 0;
    close(fd);
    return rc;
}

int dlrt_checkpoint_save(const char *path, const dlrt_tensor_desc *descs, const void *const *data,
                         int n, const char *const *meta_keys, const char *const *meta_values,
                         int nmeta)
{
    if (!path || !*path)
        return DLRT_EINVAL;
    int rc = check_save_args(descs, data, n, meta_keys, meta_values, nmeta);
    if (rc)
        return rc;
    sbuf hdr = {0};
    if ((rc = build_header(&hdr, descs, n, meta_keys, meta_values, nmeta))) {
        free(hdr.s);
        return rc;
    }
    dlrt_tmp_sweep(path);
    char *tmp;
    int fd = dlrt_tmp_create(path, &tmp);
    if (fd < 0) {
        free(hdr.s);
        return fd;
    }
    struct stat old;
    mode_t mode = 0600;
    if (stat(path, &old) == 0) {
        mode = old.st_mode & 07777;
    } else {
        int mask = current_umask();
        if (mask >= 0)
            mode = 0666 & ~(mode_t)mask;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    rc = fchmod(fd, mode) ? DLRT_EIO : 0;
    if (!rc)
        rc = write_all(fd, len8, 8);
    if (!rc)
        rc = write_all(fd, hdr.s, hdr.len);
    for (int i = 0; !rc && i < n; i++)
        rc = write_tensor(fd, &descs[i], data[i]);
    if (!rc && fsync(fd))
        rc = DLRT_EIO;
    /* renamed while still locked, so that no sweep takes it for stale */
    if (!rc && rename(tmp, path))
        rc = DLRT_EIO;
    if (rc)
        unlink(tmp);
    if (close(fd) && !rc)
        rc = DLRT_EIO;
    if (!rc)
        rc = sync_dir(path);
    free(tmp);
    free(hdr.s);
    return rc;
}

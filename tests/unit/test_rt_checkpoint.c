/* libdlrt's safetensors checkpoints: bit-exact round trips (F32, F64, I32,
 * scalars, empty and many tensors, metadata), the exact bytes we write,
 * files laid out the way the Python package writes them, atomic saves, the
 * sweep of temporary files left by killed saves, and
 * a corpus of malformed or mismatched files built here, each rejected with
 * the right code and with the destination buffers left untouched. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checklib.h"
#include "dlrt.h"

static char dir[256];

#define make_dir() tmp_dir_new(dir, sizeof dir, "dlrt-ckpt")
#define remove_dir() tmp_dir_remove(dir)
#define in_dir(name) tmp_path(dir, name)

/* The number of files in dir whose name contains ".tmp." */
static int temp_files(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static dlrt_tensor_desc desc(const char *name, dlrt_dtype t, int rank, const int64_t *shape)
{
    dlrt_tensor_desc d = {name, t, rank, {0}};
    for (int i = 0; i < rank; i++)
        d.shape[i] = shape[i];
    return d;
}

/* Pseudo-random bytes (any pattern, NaN payloads included, must survive). */
static void fill_random(void *p, size_t n, uint64_t seed)
{
    dlrt_rng r;
    dlrt_rng_seed(&r, seed, 0);
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)dlrt_rng_next(&r);
}

/* ---- round trips -------------------------------------------------------- */

typedef struct {
    int count;
    char keys[8][64], values[8][64];
    size_t value_len[8];
} meta_seen;

static int collect(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len)
{
    meta_seen *m = ctx;
    if (m->count == 8 || key_len >= 64 || value_len >= 64)
        return DLRT_ERANGE;
    memcpy(m->keys[m->count], key, key_len + 1);
    memcpy(m->values[m->count], value, value_len + 1);
    m->value_len[m->count] = value_len;
    m->count++;
    return 0;
}

SUITE("runtime-checkpoint");
GROUP(core, NULL, NULL);

TEST(core, round_trip)
{
    make_dir();
    const int64_t s1[2] = {3, 4}, s2[1] = {5}, s3[3] = {2, 2, 2}, s5[2] = {0, 3};
    dlrt_tensor_desc d[6] = {
        desc("layer1.w", DLRT_F32, 2, s1), desc("layer1.b", DLRT_F64, 1, s2),
        desc("ids", DLRT_I32, 3, s3),      desc("scale", DLRT_F32, 0, NULL),
        desc("empty", DLRT_F64, 2, s5),    desc("bias", DLRT_F64, 0, NULL),
    };
    float w[12], w2[12], sc, sc2;
    double b[5], b2[5], bias, bias2;
    int32_t ids[8], ids2[8];
    fill_random(w, sizeof w, 1);
    fill_random(b, sizeof b, 2);
    fill_random(ids, sizeof ids, 3);
    fill_random(&sc, sizeof sc, 4);
    fill_random(&bias, sizeof bias, 5);
    w[0] = -0.0f;
    b[0] = 4.9e-324; /* a denormal */
    const void *src[6] = {w, b, ids, &sc, NULL, &bias};
    void *dst[6] = {w2, b2, ids2, &sc2, NULL, &bias2};
    const char *keys[4] = {"step", "format", "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", "odd"};
    const char *vals[4] = {"1234", "pt", "v\xc3\xa4lue \xf0\x9f\x98\x80",
                           "q\"b\\s/n\nt\tc\x01\x1f end"};
    const char *path = in_dir("model.safetensors");
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, src, 6, keys, vals, 4), 0);
    ck_assert_int_eq(temp_files(), 0);

    meta_seen m = {0};
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, dst, 6, 0, collect, &m), 0);
    ck_assert_int_eq(memcmp(w, w2, sizeof w), 0);
    ck_assert_int_eq(memcmp(b, b2, sizeof b), 0);
    ck_assert_int_eq(memcmp(ids, ids2, sizeof ids), 0);
    ck_assert_int_eq(memcmp(&sc, &sc2, sizeof sc), 0);
    ck_assert_int_eq(memcmp(&bias, &bias2, sizeof bias), 0);
    ck_assert_int_eq(m.count, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(m.keys[i], keys[i]);
        ck_assert_str_eq(m.values[i], vals[i]);
        ck_assert_uint_eq(m.value_len[i], strlen(vals[i]));
    }

    /* descs in another order load the same */
    dlrt_tensor_desc rd[2] = {d[5], d[0]};
    void *rdst[2] = {&bias2, w2};
    memset(w2, 0, sizeof w2);
    bias2 = 0;
    ck_assert_int_eq(dlrt_checkpoint_load(path, rd, rdst, 2, DLRT_CKPT_ALLOW_EXTRA, NULL, NULL), 0);
    ck_assert_int_eq(memcmp(w, w2, sizeof w), 0);
    ck_assert_int_eq(memcmp(&bias, &bias2, sizeof bias), 0);

    /* metadata lookup, snprintf-style */
    char buf[64];
    ck_assert_int_eq(dlrt_checkpoint_meta(path, "step", buf, sizeof buf), 4);
    ck_assert_str_eq(buf, "1234");
    ck_assert_int_eq(dlrt_checkpoint_meta(path, "step", buf, 3), 4);
    ck_assert_str_eq(buf, "12");
    ck_assert_int_eq(dlrt_checkpoint_meta(path, "step", NULL, 0), 4);
    ck_assert_int_eq(dlrt_checkpoint_meta(path, keys[3], buf, sizeof buf), (int)strlen(vals[3]));
    ck_assert_str_eq(buf, vals[3]);
    ck_assert_int_eq(dlrt_checkpoint_meta(path, "nope", buf, sizeof buf), DLRT_EMISMATCH);
    ck_assert_int_eq(dlrt_checkpoint_meta(path, "ste", buf, sizeof buf), DLRT_EMISMATCH);
    ck_assert_int_eq(dlrt_checkpoint_meta(path, NULL, buf, sizeof buf), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_meta(in_dir("missing"), "step", buf, sizeof buf), DLRT_EIO);

    /* the header is 8-aligned, starts with the metadata, and the data follows it */
    size_t n;
    unsigned char *f = read_bytes(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f[i];
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_eq(n, 8 + hlen + sizeof w + sizeof b + sizeof ids + 4 + 8);
    ck_assert_int_eq(memcmp(f + 8, "{\"__metadata__\":{\"step\":\"1234\"", 30), 0);
    ck_assert_int_eq(memcmp(f + 8 + hlen, w, sizeof w), 0); /* the first tensor first */
    free(f);
    remove_dir();
}
END_TEST

TEST(core, exact_bytes)
{
    /* What the reference writer produces for these tensors: compact JSON,
     * metadata first, padded with spaces to a multiple of 8. */
    make_dir();
    const int64_t s[1] = {2};
    dlrt_tensor_desc d = desc("w", DLRT_F32, 1, s);
    const float w[2] = {1.0f, -2.0f};
    const void *src[1] = {w};
    const char *path = in_dir("w.safetensors");
    const char *k[1] = {"format"}, *v[1] = {"pt"};
    static const char *const want_hdr[2] = {
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
    };
    static const unsigned char data[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};
    for (int meta = 0; meta < 2; meta++) {
        ck_assert_int_eq(dlrt_checkpoint_save(path, &d, src, 1, k, v, meta), 0);
        size_t n;
        unsigned char *f = read_bytes(path, &n);
        size_t hl = strlen(want_hdr[meta]), padded = (hl + 7) / 8 * 8;
        ck_assert_uint_eq(n, 8 + padded + 8);
        ck_assert_uint_eq(f[0], padded);
        for (int i = 1; i < 8; i++)
            ck_assert_uint_eq(f[i], 0);
        ck_assert_int_eq(memcmp(f + 8, want_hdr[meta], hl), 0);
        for (size_t i = hl; i < padded; i++)
            ck_assert_uint_eq(f[8 + i], ' ');
        ck_assert_int_eq(memcmp(f + 8 + padded, data, 8), 0);
        free(f);
    }
    remove_dir();
}
END_TEST

TEST(core, many_tensors)
{
    make_dir();
    enum { N = 1000 };
    static dlrt_tensor_desc d[N];
    static char names[N][32];
    static const void *src[N];
    static void *dst[N];
    static double vals[N * 7], back[N * 7];
    fill_random(vals, sizeof vals, 11);
    size_t at = 0;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "block%d.w", i);
        int64_t s[2] = {i % 7 + 1, 1};
        d[i] = desc(names[i], DLRT_F64, 1 + i % 2, s);
        src[i] = vals + at;
        dst[i] = back + at;
        at += (size_t)(i % 7 + 1);
    }
    const char *path = in_dir("many.safetensors");
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, src, N, NULL, NULL, 0), 0);
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, dst, N, 0, NULL, NULL), 0);
    ck_assert_int_eq(memcmp(vals, back, at * sizeof(double)), 0);
    /* a subset: only with DLRT_CKPT_ALLOW_EXTRA */
    memset(back, 0, sizeof back);
    ck_assert_int_eq(dlrt_checkpoint_load(path, d + 500, dst + 500, 10, 0, NULL, NULL),
                     DLRT_EMISMATCH);
    ck_assert_int_eq(
        dlrt_checkpoint_load(path, d + 500, dst + 500, 10, DLRT_CKPT_ALLOW_EXTRA, NULL, NULL), 0);
    size_t off = (size_t)((double *)dst[500] - back), len = (size_t)((double *)dst[510] - back);
    ck_assert_int_eq(memcmp(vals + off, back + off, (len - off) * sizeof(double)), 0);
    ck_assert(back[0] == 0.0);
    remove_dir();
}
END_TEST

TEST(core, nothing_to_save)
{
    make_dir();
    const char *path = in_dir("empty.safetensors");
    ck_assert_int_eq(dlrt_checkpoint_save(path, NULL, NULL, 0, NULL, NULL, 0), 0);
    size_t n;
    unsigned char *f = read_bytes(path, &n);
    ck_assert_uint_eq(n, 16);
    ck_assert_int_eq(memcmp(f + 8, "{}      ", 8), 0);
    free(f);
    ck_assert_int_eq(dlrt_checkpoint_load(path, NULL, NULL, 0, 0, NULL, NULL), 0);
    remove_dir();
}
END_TEST

/* ---- files written by others -------------------------------------------- */

/* A whole file from a header text and data bytes. */
static unsigned char *make_file(const char *hdr, size_t hlen, const void *data, size_t dlen,
                                size_t *n)
{
    unsigned char *f = malloc(8 + hlen + dlen + 1);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 8; i++)
        f[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(f + 8, hdr, hlen);
    if (dlen)
        memcpy(f + 8 + hlen, data, dlen);
    *n = 8 + hlen + dlen;
    return f;
}

TEST(core, python_layout)
{
    /* safetensors.torch.save_file({"weight": [[1,2],[3,4]] f32, "bias": [0.5,-0.5]
     * f32, "count": 7.0 f64}, metadata={"format": "pt"}): tensors sorted by
     * dtype (largest alignment first) then name, metadata first, compact
     * JSON padded with spaces to 8 bytes. */
    const char hdr[] = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"count\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                       "\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                       "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]}}"
                       " ";
    ck_assert_uint_eq((sizeof hdr - 1) % 8, 0);
    static const unsigned char data[32] = {
        0, 0, 0,    0,    0, 0, 0x1c, 0x40,                                     /* 7.0 */
        0, 0, 0,    0x3f, 0, 0, 0,    0xbf,                                     /* 0.5, -0.5 */
        0, 0, 0x80, 0x3f, 0, 0, 0,    0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, /* 1..4 */
    };
    size_t n;
    unsigned char *f = make_file(hdr, sizeof hdr - 1, data, sizeof data, &n);
    const int64_t sw[2] = {2, 2}, sb[1] = {2};
    dlrt_tensor_desc d[3] = {desc("weight", DLRT_F32, 2, sw), desc("bias", DLRT_F32, 1, sb),
                             desc("count", DLRT_F64, 0, NULL)};
    float w[4], b[2];
    double c;
    void *dst[3] = {w, b, &c};
    ck_assert_int_eq(dlrt_checkpoint_load_buffer(f, n, d, dst, 3, 0, NULL, NULL), 0);
    ck_assert(w[0] == 1 && w[1] == 2 && w[2] == 3 && w[3] == 4);
    ck_assert(b[0] == 0.5f && b[1] == -0.5f);
    ck_assert(c == 7.0);
    free(f);

    /* pretty-printed, fields reordered, escapes in names: still the same file */
    const char pretty[] = "{\n  \"w\\u00e9ight\\/x\" : {\r\n\t\"data_offsets\" : [ 0 , 16 ],"
                          " \"shape\" : [2, 2], \"dtype\" : \"F32\" } ,\n"
                          "  \"__metadata__\" : { \"\\ud83d\\ude00\" : \"\\\"hi\\\"\" }\n}\n";
    f = make_file(pretty, sizeof pretty - 1, data + 16, 16, &n);
    dlrt_tensor_desc dw = desc("w\xc3\xa9ight/x", DLRT_F32, 2, sw);
    void *dwp[1] = {w};
    memset(w, 0, sizeof w);
    meta_seen m = {0};
    ck_assert_int_eq(dlrt_checkpoint_load_buffer(f, n, &dw, dwp, 1, 0, collect, &m), 0);
    ck_assert(w[0] == 1 && w[3] == 4);
    ck_assert_int_eq(m.count, 1);
    ck_assert_str_eq(m.keys[0], "\xf0\x9f\x98\x80");
    ck_assert_str_eq(m.values[0], "\"hi\"");
    free(f);
}
END_TEST

/* ---- malformed and mismatched files -------------------------------------- */

#define SENTINEL 0xA5

/* The model every corpus file is loaded into: a: F32 [2, 2], b: F64 [3]. */
static const int64_t SA[2] = {2, 2}, SB[1] = {3};
static const char VALID[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                            "\"b\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[16,40]}}";

/* Loads the bytes, from a file and from memory, into sentinel-filled
 * buffers; checks the code and, on failure, that nothing was written. */
static void expect(const char *what, const void *bytes, size_t n, unsigned flags, int want)
{
    dlrt_tensor_desc d[2] = {desc("a", DLRT_F32, 2, SA), desc("b", DLRT_F64, 1, SB)};
    unsigned char a[16], b[24];
    void *dst[2] = {a, b};
    const char *path = in_dir("corpus.safetensors");
    write_bytes(path, bytes, n);
    for (int via_file = 0; via_file < 2; via_file++) {
        memset(a, SENTINEL, sizeof a);
        memset(b, SENTINEL, sizeof b);
        int rc = via_file ? dlrt_checkpoint_load(path, d, dst, 2, flags, NULL, NULL)
                          : dlrt_checkpoint_load_buffer(bytes, n, d, dst, 2, flags, NULL, NULL);
        ck_assert_msg(rc == want, "%s (%s): got %d (%s), want %d", what,
                      via_file ? "file" : "buffer", rc, dlrt_strerror(rc), want);
        if (rc == 0)
            continue;
        int touched = 0;
        for (size_t i = 0; i < sizeof a; i++)
            touched |= a[i] != SENTINEL;
        for (size_t i = 0; i < sizeof b; i++)
            touched |= b[i] != SENTINEL;
        ck_assert_msg(!touched, "%s: a failed load wrote a destination", what);
    }
}

/* A file with header text hdr and dlen data bytes. */
static void expect_hdr(const char *what, const char *hdr, size_t dlen, unsigned flags, int want)
{
    unsigned char data[64];
    fill_random(data, sizeof data, 99);
    ck_assert_uint_le(dlen, sizeof data);
    size_t n;
    unsigned char *f = make_file(hdr, strlen(hdr), data, dlen, &n);
    expect(what, f, n, flags, want);
    free(f);
}

/* clang-format off */
#define TA(dt, shape, offs) "\"a\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" offs "}"
#define TB(dt, shape, offs) "\"b\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" offs "}"
#define A_OK TA("F32", "[2,2]", "[0,16]")
#define B_OK TB("F64", "[3]", "[16,40]")
/* a valid file but for the name of an extra, empty tensor */
#define WITH_NAME(n) "{" A_OK "," B_OK ",\"" n "\":{\"dtype\":\"F32\",\"shape\":[0]," \
                     "\"data_offsets\":[40,40]}}"

static const struct {
    const char *what, *hdr;
    size_t dlen;
    int want;
} corpus[] = {
    {"the valid file", "{" A_OK "," B_OK "}", 40, 0},
    {"valid, reversed", "{" B_OK "," A_OK "}", 40, 0},
    {"valid, escaped names", "{\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":"
                             "[0,16]},\"\\u0062\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":"
                             "[16,40]}}", 40, 0},
    {"valid, padded", "{" A_OK "," B_OK "}   \t\r\n ", 40, 0},
    {"empty header", "", 40, DLRT_EFORMAT},
    {"header not JSON", "hello, world", 40, DLRT_EFORMAT},
    {"header is an array", "[1,2]", 40, DLRT_EFORMAT},
    {"leading whitespace", " {" A_OK "," B_OK "}", 40, DLRT_EFORMAT},
    {"trailing garbage", "{" A_OK "," B_OK "}x", 40, DLRT_EFORMAT},
    {"second object", "{" A_OK "," B_OK "}{}", 40, DLRT_EFORMAT},
    {"escape after header", "{" A_OK "," B_OK "}\\u0000", 40, DLRT_EFORMAT},
    {"unterminated object", "{" A_OK "," B_OK, 40, DLRT_EFORMAT},
    {"trailing comma", "{" A_OK "," B_OK ",}", 40, DLRT_EFORMAT},
    {"missing comma", "{" A_OK " " B_OK "}", 40, DLRT_EFORMAT},
    {"missing colon", "{\"a\" {\"dtype\":\"F32\"}}", 40, DLRT_EFORMAT},
    {"unterminated string", "{\"a", 40, DLRT_EFORMAT},
    {"single quotes", "{'a':1}", 40, DLRT_EFORMAT},
    {"unknown dtype", "{" TA("F33", "[2,2]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"lowercase dtype", "{" TA("f32", "[2,2]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"dtype not a string", "{\"a\":{\"dtype\":32,\"shape\":[2,2],\"data_offsets\":[0,16]},"
                           B_OK "}", 40, DLRT_EFORMAT},
    {"shape/offsets mismatch", "{" TA("F32", "[2,3]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"range too short", "{" TA("F32", "[2,2]", "[0,12]") "," TB("F64", "[3]", "[12,36]") "}",
     36, DLRT_EFORMAT},
    {"overlapping ranges", "{" TA("F32", "[2,2]", "[0,16]") "," TB("F64", "[3]", "[8,32]") "}",
     32, DLRT_EFORMAT},
    {"same range twice", "{" TA("F32", "[2]", "[0,8]") "," TB("F64", "[1]", "[0,8]") "}", 8,
     DLRT_EFORMAT},
    {"gap between ranges", "{" TA("F32", "[2,2]", "[0,16]") "," TB("F64", "[3]", "[24,48]") "}",
     48, DLRT_EFORMAT},
    {"not starting at 0", "{" TA("F32", "[2,2]", "[8,24]") "," TB("F64", "[3]", "[24,48]") "}",
     48, DLRT_EFORMAT},
    {"end before begin", "{" TA("F32", "[2,2]", "[16,0]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"data shorter than declared", "{" A_OK "," B_OK "}", 39, DLRT_EFORMAT},
    {"data longer than declared", "{" A_OK "," B_OK "}", 41, DLRT_EFORMAT},
    {"no data at all", "{" A_OK "," B_OK "}", 0, DLRT_EFORMAT},
    {"negative dimension", "{" TA("F32", "[-2,-2]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"negative offset", "{" TA("F32", "[2,2]", "[-0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"float dimension", "{" TA("F32", "[2.0,2]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"exponent offset", "{" TA("F32", "[2,2]", "[0,1.6e1]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"exponent dimension", "{" TA("F32", "[2E0,2]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"leading zero", "{" TA("F32", "[02,2]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"string dimension", "{" TA("F32", "[\"2\",2]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"null shape", "{" TA("F32", "null", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"huge offset", "{" TA("F32", "[2,2]", "[0,99999999999999999999999]") "," B_OK "}", 40,
     DLRT_EFORMAT},
    {"offset 2^63", "{" TA("F32", "[2,2]", "[9223372036854775808,16]") "," B_OK "}", 40,
     DLRT_EFORMAT},
    {"element count overflows", "{" TA("F32", "[4294967296,4294967296,16]", "[0,16]") ","
     B_OK "}", 40, DLRT_EFORMAT},
    {"byte count overflows", "{" TA("F64", "[2305843009213693952]", "[0,16]") "," B_OK "}", 40,
     DLRT_EFORMAT},
    {"33 dimensions", "{" TA("F32", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"
     ",1,1,4]", "[0,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"three offsets", "{" TA("F32", "[2,2]", "[0,16,16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"one offset", "{" TA("F32", "[2,2]", "[16]") "," B_OK "}", 40, DLRT_EFORMAT},
    {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2]}," B_OK "}", 40,
     DLRT_EFORMAT},
    {"missing dtype", "{\"a\":{\"shape\":[2,2],\"data_offsets\":[0,16]}," B_OK "}", 40,
     DLRT_EFORMAT},
    {"unknown field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16],"
                      "\"x\":1}," B_OK "}", 40, DLRT_EFORMAT},
    {"repeated field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2,2],"
                       "\"data_offsets\":[0,16]}," B_OK "}", 40, DLRT_EFORMAT},
    {"duplicate tensor", "{" A_OK "," B_OK "," A_OK "}", 40, DLRT_EFORMAT},
    {"duplicate via escape", "{" A_OK "," B_OK ",\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[0],"
                             "\"data_offsets\":[40,40]}}", 40, DLRT_EFORMAT},
    {"duplicate metadata", "{\"__metadata__\":{},\"__metadata__\":{}," A_OK "," B_OK "}", 40,
     DLRT_EFORMAT},
    {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," A_OK "," B_OK "}",
     40, DLRT_EFORMAT},
    {"metadata value a number", "{\"__metadata__\":{\"k\":1}," A_OK "," B_OK "}", 40,
     DLRT_EFORMAT},
    {"metadata an array", "{\"__metadata__\":[\"k\"]," A_OK "," B_OK "}", 40, DLRT_EFORMAT},
    {"metadata nested", "{\"__metadata__\":{\"k\":{\"x\":\"y\"}}," A_OK "," B_OK "}", 40,
     DLRT_EFORMAT},
    {"deep nesting", "{\"a\":{\"dtype\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"F32\"]]]]]]]]]]]]]]]]]]]"
                     "]]]]]]]]]]]]]}}", 40, DLRT_EFORMAT},
    {"deep objects", "{\"a\":{\"x\":{\"x\":{\"x\":{\"x\":{\"x\":{\"x\":{}}}}}}}}", 40,
     DLRT_EFORMAT},
    {"bad escape", WITH_NAME("\\x61"), 40, DLRT_EFORMAT},
    {"bad \\u escape", WITH_NAME("\\u12G4"), 40, DLRT_EFORMAT},
    {"short \\u escape", "{\"\\u12\"}", 40, DLRT_EFORMAT},
    {"lone high surrogate", WITH_NAME("\\ud800"), 40, DLRT_EFORMAT},
    {"lone low surrogate", WITH_NAME("\\udc00"), 40, DLRT_EFORMAT},
    {"high then non-low", WITH_NAME("\\ud800\\u0041"), 40, DLRT_EFORMAT},
    {"raw control char", WITH_NAME("c\tx"), 40, DLRT_EFORMAT},
    {"invalid UTF-8", WITH_NAME("\xff"), 40, DLRT_EFORMAT},
    {"overlong UTF-8", WITH_NAME("\xc0\xaf"), 40, DLRT_EFORMAT},
    {"UTF-8 surrogate", WITH_NAME("\xed\xa0\x80"), 40, DLRT_EFORMAT},
    {"truncated UTF-8", WITH_NAME("\xe2\x82"), 40, DLRT_EFORMAT},
    {"literal true", "{\"a\":true}", 40, DLRT_EFORMAT},
    /* well-formed, but not this model */
    {"extra, escaped name", WITH_NAME("\\ud83d\\ude00\\n\\u00e9\\/\\\\"), 40, DLRT_EMISMATCH},
    {"extra, UTF-8 name", WITH_NAME("\xf4\x8f\xbf\xbf\xe2\x82\xac\xc3\xa9"), 40, DLRT_EMISMATCH},
    {"missing tensor", "{" A_OK "}", 16, DLRT_EMISMATCH},
    {"no tensors", "{}", 0, DLRT_EMISMATCH},
    {"extra tensor", "{" A_OK "," B_OK ",\"c\":{\"dtype\":\"F32\",\"shape\":[1],"
                     "\"data_offsets\":[40,44]}}", 44, DLRT_EMISMATCH},
    {"wrong shape", "{" A_OK "," TB("F64", "[1,3]", "[16,40]") "}", 40, DLRT_EMISMATCH},
    {"wrong rank", "{" TA("F32", "[4]", "[0,16]") "," B_OK "}", 40, DLRT_EMISMATCH},
    {"transposed", "{" A_OK "," TB("F64", "[3,1]", "[16,40]") "}", 40, DLRT_EMISMATCH},
    {"wrong dtype", "{" A_OK "," TB("F32", "[3]", "[16,28]") "}", 28, DLRT_EMISMATCH},
    {"wrong dtype, same size", "{" TA("I32", "[2,2]", "[0,16]") "," B_OK "}", 40,
     DLRT_EMISMATCH},
    {"other dtype, same bytes", "{" A_OK "," TB("I64", "[3]", "[16,40]") "}", 40,
     DLRT_EMISMATCH},
    {"name differs in case", "{" A_OK ",\"B\":{\"dtype\":\"F64\",\"shape\":[3],"
                             "\"data_offsets\":[16,40]}}", 40, DLRT_EMISMATCH},
    {"name with NUL", "{" A_OK ",\"b\\u0000\":{\"dtype\":\"F64\",\"shape\":[3],"
                      "\"data_offsets\":[16,40]}}", 40, DLRT_EMISMATCH},
};

/* clang-format on */

TEST(core, malformed_corpus)
{
    make_dir();
    size_t count = sizeof corpus / sizeof corpus[0];
    ck_assert_uint_ge(count, 20);
    for (size_t i = 0; i < count; i++)
        expect_hdr(corpus[i].what, corpus[i].hdr, corpus[i].dlen, 0, corpus[i].want);
    remove_dir();
}
END_TEST

TEST(core, malformed_lengths)
{
    make_dir();
    size_t n;
    unsigned char *f =
        make_file(VALID, strlen(VALID), "0123456789012345678901234567890123456789", 40, &n);
    expect("the valid file", f, n, 0, 0);
    expect("empty file", f, 0, 0, DLRT_EFORMAT);
    expect("truncated length", f, 5, 0, DLRT_EFORMAT);
    expect("length only", f, 8, 0, DLRT_EFORMAT);
    expect("truncated header", f, 8 + strlen(VALID) - 1, 0, DLRT_EFORMAT);
    f[0]++; /* the header length one past the file's end */
    unsigned char *g = malloc(8 + strlen(VALID));
    memcpy(g, f, 8 + strlen(VALID));
    expect("length beyond file", g, 8 + strlen(VALID), 0, DLRT_EFORMAT);
    f[0]--;
    /* the header length over the limit, and 2^63, and 2^64 - 1 */
    const uint64_t lens[3] = {DLRT_CKPT_MAX_HEADER + 1ULL, 1ULL << 63, ~0ULL};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 8; i++)
            f[i] = (unsigned char)(lens[k] >> (8 * i));
        expect("huge header length", f, n, 0, DLRT_EFORMAT);
    }
    free(g);
    free(f);
    remove_dir();
}
END_TEST

TEST(core, extra_tensors_allowed_by_flag)
{
    make_dir();
    expect_hdr("extra, allowed",
               "{" A_OK "," B_OK ",\"c\":{\"dtype\":\"BF16\",\"shape\":[2],"
               "\"data_offsets\":[40,44]}}",
               44, DLRT_CKPT_ALLOW_EXTRA, 0);
    expect_hdr("missing, extras allowed", "{" A_OK "}", 16, DLRT_CKPT_ALLOW_EXTRA, DLRT_EMISMATCH);
    remove_dir();
}
END_TEST

TEST(core, optimizer_state_skipped_by_flag)
{
    /* DLRT_CKPT_SKIP_OPT: the file's "opt.*" tensors are ignored (a file
     * with optimizer state loads into an inference-only build), every other
     * tensor must still match, and descs may not ask for "opt.*" */
    make_dir();
    const char *path = in_dir("opt.safetensors");
    float w[3] = {1, 2, 3}, m[3] = {4, 5, 6}, out[3] = {0};
    const int64_t s3[1] = {3};
    dlrt_tensor_desc d[2] = {desc("w", DLRT_F32, 1, s3), desc("opt.exp_avg.w", DLRT_F32, 1, s3)};
    const void *src[2] = {w, m};
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, src, 2, NULL, NULL, 0), 0);
    void *dst[2] = {out, out};
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, dst, 1, 0, NULL, NULL), DLRT_EMISMATCH);
    ck_assert_float_eq(out[0], 0);
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, dst, 1, DLRT_CKPT_SKIP_OPT, NULL, NULL), 0);
    ck_assert(memcmp(out, w, sizeof w) == 0);
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, dst, 2, DLRT_CKPT_SKIP_OPT, NULL, NULL),
                     DLRT_EINVAL);
    /* a file holding only optimizer state still lacks "w" */
    ck_assert_int_eq(dlrt_checkpoint_save(path, d + 1, src + 1, 1, NULL, NULL, 0), 0);
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, dst, 1, DLRT_CKPT_SKIP_OPT, NULL, NULL),
                     DLRT_EMISMATCH);
    remove_dir();
}
END_TEST

static int reject_meta(void *ctx, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
    (void)key_len;
    (void)value_len;
    (void)value;
    int *calls = ctx;
    ++*calls;
    return strcmp(key, "bad") == 0 ? (*calls == 1 ? DLRT_ERANGE : 1) : 0;
}

TEST(core, meta_callback_can_reject)
{
    const char hdr[] = "{\"__metadata__\":{\"bad\":\"x\"}," A_OK "," B_OK "}";
    unsigned char data[40] = {1};
    size_t n;
    unsigned char *f = make_file(hdr, strlen(hdr), data, 40, &n);
    dlrt_tensor_desc d[2] = {desc("a", DLRT_F32, 2, SA), desc("b", DLRT_F64, 1, SB)};
    unsigned char a[16], b[24];
    memset(a, SENTINEL, sizeof a);
    memset(b, SENTINEL, sizeof b);
    void *dst[2] = {a, b};
    int calls = 0;
    ck_assert_int_eq(dlrt_checkpoint_load_buffer(f, n, d, dst, 2, 0, reject_meta, &calls),
                     DLRT_ERANGE);
    ck_assert_int_eq(dlrt_checkpoint_load_buffer(f, n, d, dst, 2, 0, reject_meta, &calls),
                     DLRT_EMISMATCH);
    ck_assert_int_eq(calls, 2);
    ck_assert_uint_eq(a[0], SENTINEL);
    ck_assert_uint_eq(b[23], SENTINEL);
    /* and a malformed file never reaches the callback */
    f[8 + 5] = 'X';
    ck_assert_int_eq(dlrt_checkpoint_load_buffer(f, n, d, dst, 2, 0, reject_meta, &calls),
                     DLRT_EFORMAT);
    ck_assert_int_eq(calls, 2);
    free(f);
}
END_TEST

TEST(core, bad_arguments)
{
    make_dir();
    const char *path = in_dir("x.safetensors");
    float a[4] = {0};
    double b[3] = {0};
    dlrt_tensor_desc d[2] = {desc("a", DLRT_F32, 2, SA), desc("b", DLRT_F64, 1, SB)};
    const void *src[2] = {a, b};
    void *dst[2] = {a, b};
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, src, 2, NULL, NULL, 0), 0);
    ck_assert_int_eq(dlrt_checkpoint_load(NULL, d, dst, 2, 0, NULL, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, dst, -1, 0, NULL, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_load(path, NULL, dst, 2, 0, NULL, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, NULL, 2, 0, NULL, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, dst, 2, 8, NULL, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_load_buffer(NULL, 10, d, dst, 2, 0, NULL, NULL), DLRT_EINVAL);
    void *nulls[2] = {a, NULL};
    ck_assert_int_eq(dlrt_checkpoint_load(path, d, nulls, 2, 0, NULL, NULL), DLRT_EINVAL);
    dlrt_tensor_desc twice[2] = {d[0], d[0]};
    ck_assert_int_eq(dlrt_checkpoint_load(path, twice, dst, 2, 0, NULL, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_save(path, twice, src, 2, NULL, NULL, 0), DLRT_EINVAL);
    dlrt_tensor_desc bad = d[0];
    bad.rank = DLRT_MAX_RANK + 1;
    ck_assert_int_eq(dlrt_checkpoint_load(path, &bad, dst, 1, 0, NULL, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_save(path, &bad, src, 1, NULL, NULL, 0), DLRT_EINVAL);
    bad = d[0];
    bad.shape[1] = -2;
    ck_assert_int_eq(dlrt_checkpoint_save(path, &bad, src, 1, NULL, NULL, 0), DLRT_EINVAL);
    bad = d[0];
    bad.dtype = (dlrt_dtype)9;
    ck_assert_int_eq(dlrt_checkpoint_save(path, &bad, src, 1, NULL, NULL, 0), DLRT_EINVAL);
    bad = d[0];
    bad.name = NULL;
    ck_assert_int_eq(dlrt_checkpoint_save(path, &bad, src, 1, NULL, NULL, 0), DLRT_EINVAL);
    bad.name = "__metadata__";
    ck_assert_int_eq(dlrt_checkpoint_save(path, &bad, src, 1, NULL, NULL, 0), DLRT_EINVAL);
    bad.name = "bad\xff";
    ck_assert_int_eq(dlrt_checkpoint_save(path, &bad, src, 1, NULL, NULL, 0), DLRT_EINVAL);
    const int64_t huge[3] = {INT64_MAX, 2, 2};
    bad = desc("h", DLRT_F32, 3, huge);
    ck_assert_int_eq(dlrt_checkpoint_save(path, &bad, src, 1, NULL, NULL, 0), DLRT_EINVAL);
    const void *nsrc[2] = {a, NULL};
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, nsrc, 2, NULL, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_save(NULL, d, src, 2, NULL, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_save("", d, src, 2, NULL, NULL, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, src, -1, NULL, NULL, 0), DLRT_EINVAL);
    const char *k2[2] = {"k", "k"}, *v2[2] = {"1", "2"}, *kn[1] = {NULL};
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, src, 2, k2, v2, 2), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, src, 2, kn, v2, 1), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, src, 2, NULL, NULL, 1), DLRT_EINVAL);
    /* I/O errors */
    ck_assert_int_eq(dlrt_checkpoint_load(in_dir("absent"), d, dst, 2, 0, NULL, NULL), DLRT_EIO);
    ck_assert_int_eq(dlrt_checkpoint_load(dir, d, dst, 2, 0, NULL, NULL), DLRT_EIO);
    ck_assert_int_eq(temp_files(), 0);
    remove_dir();
}
END_TEST

/* ---- atomic saves ---------------------------------------------------------- */

static void check_still_old(const char *path, const float *want)
{
    const int64_t s[1] = {4};
    dlrt_tensor_desc d = desc("w", DLRT_F32, 1, s);
    float got[4];
    void *dst[1] = {got};
    ck_assert_int_eq(dlrt_checkpoint_load(path, &d, dst, 1, 0, NULL, NULL), 0);
    ck_assert_int_eq(memcmp(got, want, sizeof got), 0);
}

TEST(core, failed_saves_leave_old_file)
{
    make_dir();
    const char *path = in_dir("model.safetensors");
    const int64_t s[1] = {4};
    dlrt_tensor_desc d = desc("w", DLRT_F32, 1, s);
    const float old[4] = {1, 2, 3, 4};
    const void *src[1] = {old};
    mode_t mask = umask(027);
    ck_assert_int_eq(dlrt_checkpoint_save(path, &d, src, 1, NULL, NULL, 0), 0);
    umask(mask);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640); /* a new file: 0666 minus the umask */
    chmod(path, 0604);
    ck_assert_int_eq(dlrt_checkpoint_save(path, &d, src, 1, NULL, NULL, 0), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0604); /* a replacement keeps the mode */

    /* a directory that does not exist */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/model.safetensors", dir);
    ck_assert_int_eq(dlrt_checkpoint_save(bad, &d, src, 1, NULL, NULL, 0), DLRT_EIO);

    /* bad arguments: nothing happens */
    const float other[4] = {9, 9, 9, 9};
    const void *osrc[1] = {other};
    dlrt_tensor_desc wrong = d;
    wrong.rank = -1;
    ck_assert_int_eq(dlrt_checkpoint_save(path, &wrong, osrc, 1, NULL, NULL, 0), DLRT_EINVAL);
    check_still_old(path, old);

    /* the write itself fails half way (file size limit): the old file stays */
    const int64_t big_shape[1] = {1 << 16};
    float *big = calloc(1 << 16, sizeof *big);
    ck_assert_ptr_nonnull(big);
    dlrt_tensor_desc bd = desc("w", DLRT_F32, 1, big_shape);
    const void *bsrc[1] = {big};
    struct rlimit saved, small = {16384, 16384};
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small.rlim_max = saved.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = dlrt_checkpoint_save(path, &bd, bsrc, 1, NULL, NULL, 0);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, SIG_DFL);
    ck_assert_int_eq(rc, DLRT_EIO);
    free(big);
    check_still_old(path, old);
    ck_assert_int_eq(temp_files(), 0);

    /* the target is a directory: the rename fails, the temp file goes */
    const char *sub = in_dir("sub");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(dlrt_checkpoint_save(sub, &d, src, 1, NULL, NULL, 0), DLRT_EIO);
    ck_assert_int_eq(temp_files(), 0);

    /* a read-only directory (permissions do not stop root) */
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(dir, 0555), 0);
        ck_assert_int_eq(dlrt_checkpoint_save(path, &d, osrc, 1, NULL, NULL, 0), DLRT_EIO);
        ck_assert_int_eq(chmod(dir, 0755), 0);
        check_still_old(path, old);
    }
    ck_assert_int_eq(temp_files(), 0);
    remove_dir();
}
END_TEST

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A temporary file as a save killed with SIGKILL leaves it: a child
 * creates and locks it, then dies. */
static void killed_writer(const char *path)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) || write(fd, "partial", 7) != 7)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert(exists(path));
}

TEST(core, killed_saves_are_swept)
{
    make_dir();
    char path[600], p[700];
    snprintf(path, sizeof path, "%s", in_dir("m.safetensors"));
    const int64_t s[1] = {4};
    dlrt_tensor_desc d = desc("w", DLRT_F32, 1, s);
    const float w[4] = {1, 2, 3, 4};
    const void *src[1] = {w};

    /* names that are not m.safetensors's temporary files stay */
    const char *keep[] = {"m.safetensors.tmp.ab12",    "m.safetensors.tmp.abc12!",
                          "m.safetensors.tmp.abc1234", "m.safetensors.tmpXabc123",
                          "n.safetensors.tmp.abc123",  "xm.safetensors.tmp.abc123",
                          "m.safetensors.tmp.ab-123"};
    for (int i = 0; i < (int)(sizeof keep / sizeof *keep); i++)
        write_bytes(tmp_path(dir, keep[i]), "x", 1);
    /* nor does a directory, a symlink (or what it points to) or a file a
     * live process holds */
    snprintf(p, sizeof p, "%s.tmp.dir001", path);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    write_bytes(in_dir("target"), "t", 1);
    snprintf(p, sizeof p, "%s.tmp.link01", path);
    ck_assert_int_eq(symlink(in_dir("target"), p), 0);
    snprintf(p, sizeof p, "%s.tmp.live01", path);
    int live = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(live, 0);
    ck_assert_int_eq(flock(live, LOCK_EX), 0);

    /* two killed saves: swept by the next save */
    snprintf(p, sizeof p, "%s.tmp.Kill01", path);
    killed_writer(p);
    snprintf(p, sizeof p, "%s.tmp.kill02", path);
    write_bytes(p, "unlocked", 8); /* a writer that died before its lock */
    ck_assert_int_eq(temp_files(), 11);
    ck_assert_int_eq(dlrt_checkpoint_save(path, &d, src, 1, NULL, NULL, 0), 0);
    ck_assert_int_eq(temp_files(), 9);
    snprintf(p, sizeof p, "%s.tmp.Kill01", path);
    ck_assert(!exists(p));
    for (int i = 0; i < (int)(sizeof keep / sizeof *keep); i++)
        ck_assert_msg(exists(tmp_path(dir, keep[i])), "%s removed", keep[i]);
    snprintf(p, sizeof p, "%s.tmp.live01", path);
    ck_assert(exists(p));
    snprintf(p, sizeof p, "%s.tmp.link01", path);
    ck_assert(exists(p) && exists(in_dir("target")));

    /* and by a load, which succeeds as before; once the holder is gone,
     * its file goes too */
    snprintf(p, sizeof p, "%s.tmp.Kill03", path);
    killed_writer(p);
    close(live);
    float got[4] = {0};
    void *dst[1] = {got};
    ck_assert_int_eq(dlrt_checkpoint_load(path, &d, dst, 1, 0, NULL, NULL), 0);
    ck_assert_int_eq(memcmp(got, w, sizeof w), 0);
    ck_assert(!exists(p));
    snprintf(p, sizeof p, "%s.tmp.live01", path);
    ck_assert(!exists(p));
    ck_assert_int_eq(temp_files(), 8);
    /* a load of a path with no file still sweeps */
    snprintf(p, sizeof p, "%s.tmp.Kill04", in_dir("gone.safetensors"));
    killed_writer(p);
    ck_assert_int_eq(dlrt_checkpoint_load(in_dir("gone.safetensors"), &d, dst, 1, 0, NULL, NULL),
                     DLRT_EIO);
    ck_assert(!exists(p));
    snprintf(p, sizeof p, "%s.tmp.link01", path);
    unlink(p);
    snprintf(p, sizeof p, "%s.tmp.dir001", path);
    rmdir(p);
    remove_dir();
}
END_TEST

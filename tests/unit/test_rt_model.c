/* libdlrt's model instances, on a dlrt_model_info built here the way dlc's
 * code generator lays one out: argument checks of init, deterministic
 * initialization by stream (checked against dlrt_init_tensor itself),
 * create/destroy ownership, checkpoint round trips and rejected files that
 * leave the instance untouched, the batch check, and the GEMM wrappers
 * against a naive triple loop in double. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checklib.h"
#include "dlrt.h"

/* --- the model -------------------------------------------------------------
 * [header 0..64) [params 64..152: fc.w 64, fc.b 112, emb 128]
 * [states 192..216: bn.running_var 192, noise 208] [arena 256..320) */
#define PARAMS_OFF 64
#define PARAMS_BYTES 88
#define STATES_OFF 192
#define STATES_BYTES 24
#define STATE_BYTES 320

static const dlrt_tensor_info params[] = {
    {{"fc.w", DLRT_F32, 2, {3, 4}}, 0, 64, DLRT_INIT_XAVIER_UNIFORM, 0, {0}, 0},
    {{"fc.b", DLRT_F32, 1, {4}}, 0, 112, DLRT_INIT_ZEROS, 0, {0}, 0},
    {{"emb", DLRT_F32, 2, {2, 3}}, 0, 128, DLRT_INIT_NORMAL, 2, {0.5, 2.0}, 1},
};
static const dlrt_tensor_info states[] = {
    {{"bn.running_var", DLRT_F32, 1, {4}}, 0, 192, DLRT_INIT_ONES, 0, {0}, 0},
    {{"noise", DLRT_F32, 1, {2}}, 0, 208, DLRT_INIT_UNIFORM, 2, {-1, 1}, 0},
};

static const dlrt_model_info model = {
    .name = "tiny",
    .max_batch = 8,
    .param_dtype = DLRT_F32,
    .num_param_scalars = 22,
    .state_bytes = STATE_BYTES,
    .num_params = 3,
    .num_states = 2,
    .params = params,
    .states = states,
    .params_offset = PARAMS_OFF,
    .params_bytes = PARAMS_BYTES,
    .grads_offset = 152,
    .opt_offset = 152,
    .states_offset = STATES_OFF,
    .states_bytes = STATES_BYTES,
    .arena_offset = 256,
    .arena_bytes = 64,
};

/* The same layout with fc.w transposed: another model's checkpoint. */
static const dlrt_tensor_info other_params[] = {
    {{"fc.w", DLRT_F32, 2, {4, 3}}, 0, 64, DLRT_INIT_XAVIER_UNIFORM, 0, {0}, 0},
    {{"fc.b", DLRT_F32, 1, {4}}, 0, 112, DLRT_INIT_ZEROS, 0, {0}, 0},
    {{"emb", DLRT_F32, 2, {2, 3}}, 0, 128, DLRT_INIT_NORMAL, 2, {0.5, 2.0}, 1},
};

static float *fc_w(void *m)
{
    return (float *)((char *)m + 64);
}
static float *fc_b(void *m)
{
    return (float *)((char *)m + 112);
}
static float *emb(void *m)
{
    return (float *)((char *)m + 128);
}
static float *running_var(void *m)
{
    return (float *)((char *)m + 192);
}
static float *noise(void *m)
{
    return (float *)((char *)m + 208);
}
static dlrt_instance *hdr(void *m)
{
    return m;
}

static void *block(void)
{
    void *m = aligned_alloc(64, STATE_BYTES);
    ck_assert_ptr_nonnull(m);
    memset(m, 0xab, STATE_BYTES);
    return m;
}

static int all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v)
            return 0;
    return 1;
}

/* --- temporary files ------------------------------------------------------ */
static char dir[256];

#define make_dir() tmp_dir_new(dir, sizeof dir, "dlrt-model")
#define remove_dir() tmp_dir_remove(dir)
#define in_dir(name) tmp_path(dir, name)

/* --- init ----------------------------------------------------------------- */
SUITE("runtime-model");
GROUP(model, NULL, NULL);

TEST(model, init_rejects_bad_arguments)
{
    void *m = block();
    ck_assert_int_eq(dlrt_model_init(NULL, m, STATE_BYTES, 1), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_init(&model, NULL, STATE_BYTES, 1), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_init(&model, m, STATE_BYTES - 1, 1), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_init(&model, m, 0, 1), DLRT_EINVAL);
    ck_assert(all_bytes(m, STATE_BYTES, 0xab));
    free(m);

    /* misaligned by 8 and by 32, with room enough */
    char *big = aligned_alloc(64, 2 * STATE_BYTES);
    ck_assert_ptr_nonnull(big);
    memset(big, 0xab, 2 * STATE_BYTES);
    ck_assert_int_eq(dlrt_model_init(&model, big + 8, STATE_BYTES + 56, 1), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_init(&model, big + 32, STATE_BYTES + 32, 1), DLRT_EINVAL);
    ck_assert(all_bytes(big, 2 * STATE_BYTES, 0xab));
    /* a larger block than needed is fine, and the rest is left alone */
    ck_assert_int_eq(dlrt_model_init(&model, big, 2 * STATE_BYTES, 1), DLRT_OK);
    ck_assert(all_bytes(big + STATE_BYTES, STATE_BYTES, 0xab));
    free(big);
}
END_TEST

/* Infos that are wrong in one way each are refused before a byte is written. */
TEST(model, init_rejects_bad_info)
{
    dlrt_tensor_info p[3], s[2];
    dlrt_model_info bad;
    void *m = block();
    for (int k = 0; k < 9; k++) {
        memcpy(p, params, sizeof p);
        memcpy(s, states, sizeof s);
        bad = model;
        bad.params = p;
        bad.states = s;
        switch (k) {
        case 0: p[0].offset = 60; break;                             /* before the params region */
        case 1: p[2].offset = 136; break;                            /* past the params region */
        case 2: s[0].offset = STATE_BYTES - 8; break;                /* outside the states region */
        case 3: p[1].init = DLRT_INIT_CONSTANT; break;               /* constant without a value */
        case 4: p[1].init = DLRT_INIT_COUNT; break;                  /* unknown initializer */
        case 5: p[2].desc.dtype = DLRT_F64; break;                   /* not the parameters' type */
        case 6: s[0].desc.dtype = DLRT_I32; break;                   /* an integer state */
        case 7: bad.state_bytes = 16; break;                         /* no room for the header */
        case 8: p[0].init_args[0] = NAN, p[0].ninit_args = 1; break; /* non-finite gain */
        }
        ck_assert_msg(dlrt_model_init(&bad, m, STATE_BYTES, 1) == DLRT_EINVAL, "case %d", k);
        ck_assert_msg(all_bytes(m, STATE_BYTES, 0xab), "case %d wrote", k);
        ck_assert_msg(dlrt_model_create(&bad, 1) == NULL, "case %d created", k);
    }
    free(m);
}
END_TEST

TEST(model, init_header_and_values)
{
    void *m = block();
    ck_assert_int_eq(dlrt_model_init(&model, m, STATE_BYTES, 7), DLRT_OK);
    ck_assert_ptr_eq(hdr(m)->info, &model);
    ck_assert_uint_eq(hdr(m)->seed, 7);
    ck_assert_int_eq(hdr(m)->step, 0);
    ck_assert(hdr(m)->lr == 0);
    ck_assert_ptr_null(hdr(m)->owned);
    ck_assert_int_eq(hdr(m)->cpu_level, dlrt_cpu_level());

    /* each tensor from its documented stream: params 0, 1, 2, states 3, 4 */
    float w[12], b[4], e[6], v[4], u[2];
    memset(b, 0xcd, sizeof b);
    ck_assert_int_eq(dlrt_init_tensor(w, DLRT_F32, 2, (int64_t[]){3, 4}, DLRT_INIT_XAVIER_UNIFORM,
                                      NULL, 0, 7, 0),
                     DLRT_OK);
    ck_assert_int_eq(dlrt_init_tensor(e, DLRT_F32, 2, (int64_t[]){2, 3}, DLRT_INIT_NORMAL,
                                      (double[]){0.5, 2.0}, 2, 7, 2),
                     DLRT_OK);
    ck_assert_int_eq(memcmp(fc_w(m), w, sizeof w), 0);
    ck_assert_int_eq(memcmp(emb(m), e, sizeof e), 0);
    ck_assert_int_eq(dlrt_init_tensor(u, DLRT_F32, 1, (int64_t[]){2}, DLRT_INIT_UNIFORM,
                                      (double[]){-1, 1}, 2, 7, 4),
                     DLRT_OK);
    ck_assert_int_eq(memcmp(noise(m), u, sizeof u), 0);
    ck_assert(noise(m)[0] != noise(m)[1]);
    ck_assert_int_eq(dlrt_init_tensor(e, DLRT_F32, 2, (int64_t[]){2, 3}, DLRT_INIT_NORMAL,
                                      (double[]){0.5, 2.0}, 2, 7, 3),
                     DLRT_OK);
    ck_assert_int_ne(memcmp(emb(m), e, sizeof e), 0); /* the stream matters */

    double bound = sqrt(6.0 / 7.0);
    int distinct = 0;
    for (int i = 0; i < 12; i++) {
        ck_assert(fabsf(fc_w(m)[i]) < bound);
        distinct += i > 0 && fc_w(m)[i] != fc_w(m)[i - 1];
    }
    ck_assert_int_ge(distinct, 10);
    for (int i = 0; i < 4; i++) {
        b[i] = 0, v[i] = 1;
    }
    ck_assert_int_eq(memcmp(fc_b(m), b, sizeof b), 0);
    ck_assert_int_eq(memcmp(running_var(m), v, sizeof v), 0);

    /* everything else is zero: header padding aside, the gaps and the arena */
    ck_assert(all_bytes((char *)m + sizeof(dlrt_instance), PARAMS_OFF - sizeof(dlrt_instance), 0));
    ck_assert(all_bytes((char *)m + PARAMS_OFF + PARAMS_BYTES,
                        STATES_OFF - PARAMS_OFF - PARAMS_BYTES, 0));
    ck_assert(all_bytes((char *)m + STATES_OFF + STATES_BYTES,
                        STATE_BYTES - STATES_OFF - STATES_BYTES, 0));
    free(m);
}
END_TEST

/* The CPU's level, and DLRT_CPU lowering it: never raising it above what
 * this CPU has (the variant of a level it lacks could not run). */
TEST(model, cpu_level)
{
    unsetenv("DLRT_CPU");
    int have = dlrt_cpu_level();
#if defined(__x86_64__)
    ck_assert_int_ge(have, 1);
    ck_assert_int_le(have, 4);
#else
    ck_assert_int_eq(have, 0);
#endif
    for (int l = 1; l <= 4; l++) {
        setenv("DLRT_CPU", dlrt_cpu_level_name(l), 1);
        ck_assert_int_eq(dlrt_cpu_level(), have && l < have ? l : have);
        void *m = block();
        ck_assert_int_eq(dlrt_model_init(&model, m, STATE_BYTES, 7), DLRT_OK);
        ck_assert_int_eq(hdr(m)->cpu_level, dlrt_cpu_level());
        free(m);
    }
    const char *ignored[] = {"", "x86-64-v5", "X86-64", "x86-64-v3 ", "avx2", "generic"};
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) {
        setenv("DLRT_CPU", ignored[i], 1);
        ck_assert_int_eq(dlrt_cpu_level(), have);
    }
    unsetenv("DLRT_CPU");
    ck_assert_str_eq(dlrt_cpu_level_name(1), "x86-64");
    ck_assert_str_eq(dlrt_cpu_level_name(3), "x86-64-v3");
    ck_assert_str_eq(dlrt_cpu_level_name(0), "");
    ck_assert_str_eq(dlrt_cpu_level_name(5), "");
}
END_TEST

TEST(model, init_is_deterministic)
{
    void *a = block(), *b = block(), *c = block();
    ck_assert_int_eq(dlrt_model_init(&model, a, STATE_BYTES, 42), DLRT_OK);
    ck_assert_int_eq(dlrt_model_init(&model, b, STATE_BYTES, 42), DLRT_OK);
    ck_assert_int_eq(dlrt_model_init(&model, c, STATE_BYTES, 43), DLRT_OK);
    ck_assert_int_eq(memcmp(a, b, STATE_BYTES), 0);
    ck_assert_int_ne(memcmp(fc_w(a), fc_w(c), 12 * sizeof(float)), 0);
    ck_assert_int_ne(memcmp(emb(a), emb(c), 6 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(fc_b(a), fc_b(c), 4 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(running_var(a), running_var(c), 4 * sizeof(float)), 0);
    ck_assert_int_ne(memcmp(noise(a), noise(c), 2 * sizeof(float)), 0);
    /* re-initializing resets whatever was there */
    fc_b(a)[2] = 5;
    hdr(a)->step = 9;
    ck_assert_int_eq(dlrt_model_init(&model, a, STATE_BYTES, 42), DLRT_OK);
    ck_assert_int_eq(memcmp(a, b, STATE_BYTES), 0);
    free(a);
    free(b);
    free(c);
}
END_TEST

TEST(model, create_and_destroy)
{
    void *m = dlrt_model_create(&model, 42);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq((uintptr_t)m % 64, 0);
    ck_assert_ptr_eq(hdr(m)->owned, m);
    void *ref = block();
    ck_assert_int_eq(dlrt_model_init(&model, ref, STATE_BYTES, 42), DLRT_OK);
    ck_assert_int_eq(memcmp((char *)m + sizeof(dlrt_instance), (char *)ref + sizeof(dlrt_instance),
                            STATE_BYTES - sizeof(dlrt_instance)),
                     0);
    dlrt_model_destroy(m);
    /* a caller-owned block is not freed (ASan reports the double free otherwise) */
    dlrt_model_destroy(ref);
    free(ref);
    dlrt_model_destroy(NULL);
    ck_assert_ptr_null(dlrt_model_create(NULL, 1));
}
END_TEST

/* --- checkpoints ---------------------------------------------------------- */
TEST(model, save_load_round_trip)
{
    make_dir();
    void *a = dlrt_model_create(&model, 1), *b = dlrt_model_create(&model, 2);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    fc_b(a)[1] = 0.25f;
    running_var(a)[3] = 3.5f;
    hdr(a)->step = 1234567890123;
    ck_assert_int_eq(dlrt_model_save(a, in_dir("a.safetensors")), DLRT_OK);
    ck_assert_int_ne(memcmp(fc_w(a), fc_w(b), 12 * sizeof(float)), 0);
    ck_assert_int_eq(dlrt_model_load(b, in_dir("a.safetensors")), DLRT_OK);
    ck_assert_int_eq(memcmp((char *)a + PARAMS_OFF, (char *)b + PARAMS_OFF, PARAMS_BYTES), 0);
    ck_assert_int_eq(memcmp((char *)a + STATES_OFF, (char *)b + STATES_OFF, STATES_BYTES), 0);
    ck_assert_int_eq(hdr(b)->step, 1234567890123);
    ck_assert_uint_eq(hdr(b)->seed, 2); /* the seed is the instance's own */

    /* names, metadata and the data as a reader of the file sees them */
    char buf[64];
    ck_assert_int_eq(dlrt_checkpoint_meta(in_dir("a.safetensors"), "format", buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "dlc");
    ck_assert_int_eq(dlrt_checkpoint_meta(in_dir("a.safetensors"), "model", buf, sizeof buf), 4);
    ck_assert_str_eq(buf, "tiny");
    ck_assert_int_gt(dlrt_checkpoint_meta(in_dir("a.safetensors"), "step", buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "1234567890123");
    float rv[4], w[12];
    dlrt_tensor_desc d[2] = {states[0].desc, params[0].desc};
    ck_assert_int_eq(dlrt_checkpoint_load(in_dir("a.safetensors"), d, (void *[]){rv, w}, 2,
                                          DLRT_CKPT_ALLOW_EXTRA, NULL, NULL),
                     DLRT_OK);
    ck_assert(rv[3] == 3.5f && rv[0] == 1.0f);
    ck_assert_int_eq(memcmp(w, fc_w(a), sizeof w), 0);
    /* and nothing else is in it */
    ck_assert_int_eq(
        dlrt_checkpoint_load(in_dir("a.safetensors"), d, (void *[]){rv, w}, 2, 0, NULL, NULL),
        DLRT_EMISMATCH);

    /* a file without a step leaves the step alone */
    float bias[4] = {9, 8, 7, 6};
    dlrt_tensor_desc all[5] = {params[0].desc, params[1].desc, params[2].desc, states[0].desc,
                               states[1].desc};
    ck_assert_int_eq(
        dlrt_checkpoint_save(in_dir("nostep.safetensors"), all,
                             (const void *[]){fc_w(a), bias, emb(a), running_var(a), noise(a)}, 5,
                             NULL, NULL, 0),
        DLRT_OK);
    ck_assert_int_eq(dlrt_model_load(b, in_dir("nostep.safetensors")), DLRT_OK);
    ck_assert(fc_b(b)[0] == 9 && fc_b(b)[3] == 6);
    ck_assert_int_eq(hdr(b)->step, 1234567890123);

    dlrt_model_destroy(a);
    dlrt_model_destroy(b);
    remove_dir();
}
END_TEST

/* Loads `path` into m and checks the code and that m did not change. */
static void expect_load_fails(void *m, const char *path, int code)
{
    unsigned char before[STATE_BYTES];
    memcpy(before, m, STATE_BYTES);
    int rc = dlrt_model_load(m, path);
    const char *p = path ? path : "(null)";
    ck_assert_msg(rc == code, "%s: %d (%s), expected %d", p, rc, dlrt_strerror(rc), code);
    ck_assert_msg(memcmp(before, m, STATE_BYTES) == 0, "%s: instance changed", p);
}

TEST(model, load_rejects_other_files)
{
    make_dir();
    void *m = dlrt_model_create(&model, 3);
    ck_assert_ptr_nonnull(m);
    hdr(m)->step = 5;

    /* another model: same names, fc.w transposed */
    dlrt_model_info other = model;
    other.name = "other";
    other.params = other_params;
    void *o = dlrt_model_create(&other, 4);
    ck_assert_ptr_nonnull(o);
    hdr(o)->step = 77;
    ck_assert_int_eq(dlrt_model_save(o, in_dir("other.safetensors")), DLRT_OK);
    expect_load_fails(m, in_dir("other.safetensors"), DLRT_EMISMATCH);
    dlrt_model_destroy(o);

    /* the same tensors under another model's name */
    other = model;
    other.name = "tiny2";
    o = dlrt_model_create(&other, 4);
    ck_assert_ptr_nonnull(o);
    hdr(o)->step = 77;
    ck_assert_int_eq(dlrt_model_save(o, in_dir("renamed.safetensors")), DLRT_OK);
    expect_load_fails(m, in_dir("renamed.safetensors"), DLRT_EMISMATCH);
    dlrt_model_destroy(o);

    /* a tensor missing, or one too many */
    dlrt_tensor_desc d[6] = {params[0].desc, params[1].desc, params[2].desc,
                             states[0].desc, states[1].desc, {"extra", DLRT_F32, 1, {4}}};
    const void *data[6] = {fc_w(m), fc_b(m), emb(m), running_var(m), noise(m), fc_b(m)};
    ck_assert_int_eq(dlrt_checkpoint_save(in_dir("missing.safetensors"), d, data, 4, NULL, NULL, 0),
                     DLRT_OK);
    expect_load_fails(m, in_dir("missing.safetensors"), DLRT_EMISMATCH);
    ck_assert_int_eq(dlrt_checkpoint_save(in_dir("extra.safetensors"), d, data, 6, NULL, NULL, 0),
                     DLRT_OK);
    expect_load_fails(m, in_dir("extra.safetensors"), DLRT_EMISMATCH);

    /* a step that is not a count */
    const char *key[] = {"step"};
    const char *bad_steps[] = {"-1", "1x", "", " 1", "99999999999999999999", "9999999999999999999",
                               "+3"};
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(
            dlrt_checkpoint_save(in_dir("step.safetensors"), d, data, 5, key, &bad_steps[i], 1),
            DLRT_OK);
        expect_load_fails(m, in_dir("step.safetensors"), DLRT_EFORMAT);
    }

    /* a good step before a wrong model name: the step must not stick */
    const char *keys2[] = {"step", "model"}, *values2[] = {"77", "other"};
    ck_assert_int_eq(
        dlrt_checkpoint_save(in_dir("late.safetensors"), d, data, 5, keys2, values2, 2), DLRT_OK);
    expect_load_fails(m, in_dir("late.safetensors"), DLRT_EMISMATCH);

    /* a truncated copy of a good file */
    void *t = dlrt_model_create(&model, 9);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(dlrt_model_save(t, in_dir("good.safetensors")), DLRT_OK);
    dlrt_model_destroy(t);
    FILE *f = fopen(in_dir("good.safetensors"), "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char bytes[4096];
    size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    ck_assert_uint_gt(n, 100);
    size_t cuts[] = {n - 4, n / 2, 9, 0};
    for (int i = 0; i < 4; i++) {
        f = fopen(in_dir("cut.safetensors"), "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(bytes, 1, cuts[i], f), cuts[i]);
        fclose(f);
        expect_load_fails(m, in_dir("cut.safetensors"), DLRT_EFORMAT);
    }

    expect_load_fails(m, in_dir("absent.safetensors"), DLRT_EIO);
    ck_assert_int_eq(hdr(m)->step, 5);
    dlrt_model_destroy(m);
    remove_dir();
}
END_TEST

/* --- a model with optimizer state -------------------------------------------
 * [params 64..152 as above] [grads 192..280) [opt 320..384: opt.m.fc.w 320,
 * opt.m.fc.b 368] [states 384..408] [arena 448..512) */
#define T_STATE_BYTES 512
static const dlrt_tensor_info t_opt[] = {
    {{"opt.m.fc.w", DLRT_F32, 2, {3, 4}}, 0, 320, DLRT_INIT_ZEROS, 0, {0}, 0},
    {{"opt.m.fc.b", DLRT_F32, 1, {4}}, 0, 368, DLRT_INIT_ZEROS, 0, {0}, 0},
};
static const dlrt_tensor_info t_states[] = {
    {{"bn.running_var", DLRT_F32, 1, {4}}, 0, 384, DLRT_INIT_ONES, 0, {0}, 0},
    {{"noise", DLRT_F32, 1, {2}}, 0, 400, DLRT_INIT_UNIFORM, 2, {-1, 1}, 0},
};

static dlrt_model_info trained_model(void)
{
    dlrt_model_info t = model;
    t.state_bytes = T_STATE_BYTES;
    t.grads_offset = 192;
    t.grads_bytes = PARAMS_BYTES;
    t.opt_offset = 320;
    t.opt_bytes = 64;
    t.num_opt = 2;
    t.opt = t_opt;
    t.states = t_states;
    t.states_offset = 384;
    t.arena_offset = 448;
    return t;
}

/* Writes m's params and states, then the n optimizer tensors d (data from
 * m's optimizer region, whatever the desc says), with a step. */
static void save_with_opt(void *m, const char *path, const dlrt_tensor_desc *opt, int n)
{
    char *b = m;
    dlrt_tensor_desc d[8] = {params[0].desc, params[1].desc, params[2].desc, t_states[0].desc,
                             t_states[1].desc};
    const void *data[8] = {b + 64, b + 112, b + 128, b + 384, b + 400};
    for (int i = 0; i < n; i++) {
        d[5 + i] = opt[i];
        data[5 + i] = b + 320;
    }
    const char *keys[] = {"model", "step"}, *values[] = {"tiny", "42"};
    ck_assert_int_eq(dlrt_checkpoint_save(path, d, data, 5 + n, keys, values, 2), DLRT_OK);
}

TEST(model, damaged_optimizer_state_is_an_error)
{
    make_dir();
    dlrt_model_info info = trained_model();
    void *a = dlrt_model_create(&info, 1), *b = dlrt_model_create(&info, 2);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    float *am = (float *)((char *)a + 320), *bm = (float *)((char *)b + 320);
    for (int i = 0; i < 16; i++) {
        am[i] = 0.5f + (float)i;
        bm[i] = -1.0f - (float)i;
    }
    hdr(a)->step = 42;
    hdr(b)->step = 7;

    /* the whole state: loaded, status 0 */
    unsigned status = 99;
    ck_assert_int_eq(dlrt_model_save(a, in_dir("full.safetensors")), DLRT_OK);
    void *c = dlrt_model_create(&info, 3);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(dlrt_model_load_ex(c, in_dir("full.safetensors"), &status), DLRT_OK);
    ck_assert_uint_eq(status, 0);
    ck_assert_int_eq(memcmp((char *)c + 320, am, 64), 0);
    ck_assert_int_eq(hdr(c)->step, 42);

    /* no optimizer state at all: loads, zeroed, and says so */
    save_with_opt(a, in_dir("noopt.safetensors"), NULL, 0);
    status = 99;
    ck_assert_int_eq(dlrt_model_load_ex(c, in_dir("noopt.safetensors"), &status), DLRT_OK);
    ck_assert_uint_eq(status, DLRT_LOAD_OPT_ZEROED);
    ck_assert(all_bytes((char *)c + 320, 64, 0));
    ck_assert_int_eq(hdr(c)->step, 42);
    ck_assert_int_eq(dlrt_model_load(c, in_dir("noopt.safetensors")), DLRT_OK);

    /* damaged: one missing, renamed (within and out of the opt. names),
     * another shape, another dtype; each refused, b bit-for-bit as it was */
    const dlrt_tensor_desc w = t_opt[0].desc, bias = t_opt[1].desc;
    struct {
        const char *file, *names;
        dlrt_tensor_desc d[2];
        int n;
    } bad[] = {
        {"missing", "opt.m.fc.b", {w}, 1},
        {"renamed", "opt.m.fc.b", {w, {"opt.m.fc.c", DLRT_F32, 1, {4}}}, 2},
        {"prefix", "opt.m.fc.b", {w, {"ppt.m.fc.b", DLRT_F32, 1, {4}}}, 2},
        {"shape", "opt.m.fc.w", {{"opt.m.fc.w", DLRT_F32, 2, {4, 3}}, bias}, 2},
        {"dtype", "opt.m.fc.b", {w, {"opt.m.fc.b", DLRT_I32, 1, {4}}}, 2},
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof *bad); i++) {
        const char *path = in_dir(bad[i].file);
        save_with_opt(a, path, bad[i].d, bad[i].n);
        unsigned char before[T_STATE_BYTES];
        memcpy(before, b, T_STATE_BYTES);
        status = 99;
        int rc = dlrt_model_load_ex(b, path, &status);
        ck_assert_msg(rc == DLRT_EMISMATCH, "%s: %d", bad[i].file, rc);
        ck_assert_uint_eq(status, 0);
        ck_assert_msg(memcmp(before, b, T_STATE_BYTES) == 0, "%s: instance changed", bad[i].file);
        ck_assert_msg(strstr(dlrt_last_error(), bad[i].names), "%s: '%s'", bad[i].file,
                      dlrt_last_error());
        ck_assert_int_eq(dlrt_model_load(b, path), DLRT_EMISMATCH);
    }
    ck_assert_int_eq(hdr(b)->step, 7);

    /* a model without optimizer state ignores a file's */
    void *t = dlrt_model_create(&model, 5);
    ck_assert_ptr_nonnull(t);
    status = 99;
    ck_assert_int_eq(dlrt_model_load_ex(t, in_dir("full.safetensors"), &status), DLRT_OK);
    ck_assert_uint_eq(status, 0);
    ck_assert_int_eq(memcmp((char *)t + 64, (char *)a + 64, PARAMS_BYTES), 0);
    dlrt_model_destroy(t);
    dlrt_model_destroy(a);
    dlrt_model_destroy(b);
    dlrt_model_destroy(c);
    remove_dir();
}
END_TEST

TEST(model, checkpoint_bad_arguments)
{
    make_dir();
    void *m = dlrt_model_create(&model, 3);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(dlrt_model_save(m, in_dir("no/such/dir/m.safetensors")), DLRT_EIO);
    ck_assert_int_eq(dlrt_model_save(NULL, in_dir("m.safetensors")), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_save(m, NULL), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_save(m, in_dir("m.safetensors")), DLRT_OK);
    ck_assert_int_eq(dlrt_model_load(NULL, in_dir("m.safetensors")), DLRT_EINVAL);
    expect_load_fails(m, NULL, DLRT_EINVAL);
    /* an instance never initialized (zeroed header) */
    void *z = block();
    memset(z, 0, STATE_BYTES);
    ck_assert_int_eq(dlrt_model_save(z, in_dir("z.safetensors")), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_load(z, in_dir("m.safetensors")), DLRT_EINVAL);
    free(z);
    dlrt_model_destroy(m);
    remove_dir();
}
END_TEST

/* --- batch check ---------------------------------------------------------- */
TEST(model, check_batch_bounds)
{
    ck_assert_int_eq(dlrt_model_check_batch(&model, 1), DLRT_OK);
    ck_assert_int_eq(dlrt_model_check_batch(&model, 8), DLRT_OK);
    ck_assert_int_eq(dlrt_model_check_batch(&model, 0), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_check_batch(&model, 9), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_check_batch(&model, -1), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_check_batch(NULL, 1), DLRT_EINVAL);
    dlrt_model_info nobatch = model;
    nobatch.max_batch = 0;
    ck_assert_int_eq(dlrt_model_check_batch(&nobatch, 0), DLRT_OK);
    ck_assert_int_eq(dlrt_model_check_batch(&nobatch, 1), DLRT_OK);
    ck_assert_int_eq(dlrt_model_check_batch(&nobatch, 2), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_model_check_batch(&nobatch, -1), DLRT_EINVAL);
}
END_TEST

/* batch dimensions (any of them, possibly twice the batch) scale; others not */
TEST(model, tensor_count_at_batch)
{
    dlrt_tensor_info t = {.desc = {.rank = 3, .shape = {16, 3, 8}}, .batch_dims = 5};
    ck_assert_int_eq(dlrt_tensor_count(&t, 8, 8), 16 * 3 * 8);
    ck_assert_int_eq(dlrt_tensor_count(&t, 8, 2), 4 * 3 * 2);
    t.batch_dims = 0;
    ck_assert_int_eq(dlrt_tensor_count(&t, 8, 2), 16 * 3 * 8);
    dlrt_tensor_info scalar = {.desc = {.rank = 0}};
    ck_assert_int_eq(dlrt_tensor_count(&scalar, 8, 3), 1);
}
END_TEST

/* --- GEMM ----------------------------------------------------------------- */
/* A deterministic value in [-1, 1) for element i of matrix `which`. */
static double val(int which, int64_t i)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull + (uint64_t)which * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 32;
    return (double)(x >> 11) * 0x1.0p-52 - 1.0;
}

/* Checks one call of each wrapper against the naive product in double.
 * Stored A is (ta ? k x m : m x k) with row stride lda, and so on (m, n,
 * k >= 1); C's padding columns must come back as they were. */
static void check_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
                       int64_t ldc, double alpha, double beta)
{
    int64_t ra = ta ? k : m, ca = ta ? m : k, rb = tb ? n : k, cb = tb ? k : n;
    int64_t sa = (ra - 1) * lda + ca + 1, sb = (rb - 1) * ldb + cb + 1, sc = (m - 1) * ldc + n + 1;
    float *af = malloc(sa * sizeof *af), *bf = malloc(sb * sizeof *bf),
          *cf = malloc(sc * sizeof *cf);
    double *ad = malloc(sa * sizeof *ad), *bd = malloc(sb * sizeof *bd),
           *cd = malloc(sc * sizeof *cd);
    double *ref = malloc(sc * sizeof *ref), *mag = malloc(sc * sizeof *mag);
    ck_assert(af && bf && cf && ad && bd && cd && ref && mag);
    for (int64_t i = 0; i < sa; i++)
        ad[i] = af[i] = (float)val(1, i);
    for (int64_t i = 0; i < sb; i++)
        bd[i] = bf[i] = (float)val(2, i);
    for (int64_t i = 0; i < sc; i++)
        cd[i] = cf[i] = (float)val(3, i);
    for (int64_t i = 0; i < sc; i++)
        ref[i] = cd[i], mag[i] = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, g = 0;
            for (int64_t p = 0; p < k; p++) {
                double x = (ta ? ad[p * lda + i] : ad[i * lda + p]) *
                           (tb ? bd[j * ldb + p] : bd[p * ldb + j]);
                s += x;
                g += fabs(x);
            }
            ref[i * ldc + j] = alpha * s + beta * cd[i * ldc + j];
            mag[i * ldc + j] = fabs(alpha) * g + fabs(beta * cd[i * ldc + j]);
        }
    dlrt_gemm_f32(ta, tb, m, n, k, (float)alpha, af, lda, bf, ldb, (float)beta, cf, ldc);
    dlrt_gemm_f64(ta, tb, m, n, k, alpha, ad, lda, bd, ldb, beta, cd, ldc);
    for (int64_t i = 0; i < sc; i++) {
        ck_assert_msg(fabs(cf[i] - ref[i]) <= 1e-5 * mag[i] + 1e-30,
                      "f32 ta=%d tb=%d m=%lld n=%lld k=%lld: c[%lld] = %g, expected %g", ta, tb,
                      (long long)m, (long long)n, (long long)k, (long long)i, cf[i], ref[i]);
        ck_assert_msg(fabs(cd[i] - ref[i]) <= 1e-13 * mag[i] + 1e-300,
                      "f64 ta=%d tb=%d m=%lld n=%lld k=%lld: c[%lld] = %.17g, expected %.17g", ta,
                      tb, (long long)m, (long long)n, (long long)k, (long long)i, cd[i], ref[i]);
    }
    free(af), free(bf), free(cf), free(ad), free(bd), free(cd), free(ref), free(mag);
}

TEST(model, gemm_against_naive)
{
    static const int64_t sizes[] = {1, 3, 17, 65};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int im = 0; im < 4; im++)
                for (int in = 0; in < 4; in++)
                    for (int ik = 0; ik < 4; ik++) {
                        int64_t m = sizes[im], n = sizes[in], k = sizes[ik];
                        int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
                        check_gemm(ta, tb, m, n, k, lda, ldb, ldc, 0.75, -0.5);
                    }
}
END_TEST

TEST(model, gemm_across_blocks)
{
    /* k beyond the portable loops' panel depth (128), rows beyond their
     * block of 4 and columns beyond their panel width (8 or 4), with
     * remainders of each */
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        check_gemm(ta, tb, 11, 21, 300, (ta ? 11 : 300) + 1, (tb ? 300 : 21) + 2, 23, 1.0, 0.0);
        check_gemm(ta, tb, 8, 16, 256, ta ? 8 : 256, tb ? 256 : 16, 16, -0.5, 2.0);
    }
    /* large enough for runtime/gemm.c to cut k into parts (B, or A
     * transposed, dominates), with strides beyond the rows: the parts'
     * sums are added to C's own columns and nothing else */
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        check_gemm(ta, tb, 40, 300, 1003, (ta ? 40 : 1003) + 5, (tb ? 1003 : 300) + 3, 307, 1.5,
                   -0.5);
        check_gemm(ta, tb, 300, 40, 1003, (ta ? 300 : 1003) + 1, (tb ? 1003 : 40) + 2, 41, -1.0,
                   2.0);
        check_gemm(ta, tb, 40, 600, 1500, ta ? 40 : 1500, tb ? 1500 : 600, 601, 1.0, 0.5);
    }
}
END_TEST

TEST(model, gemm_edge_cases)
{
    /* tight strides, beta 0 and 1, alpha 0 */
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        check_gemm(ta, tb, 5, 7, 3, ta ? 5 : 3, tb ? 3 : 7, 7, 1.0, 0.0);
        check_gemm(ta, tb, 5, 7, 3, ta ? 5 : 3, tb ? 3 : 7, 7, -2.0, 1.0);
        check_gemm(ta, tb, 4, 2, 6, ta ? 4 : 6, tb ? 6 : 2, 9, 0.0, 0.5);
    }
    /* one row: a stride BLAS would reject (0) is never used */
    check_gemm(0, 0, 1, 4, 3, 0, 4, 0, 1.5, 0.25);
    check_gemm(0, 1, 1, 1, 5, 0, 0, 0, 1.0, 0.0);
    /* overlapping rows (a stride below the row length) go around BLAS */
    check_gemm(0, 0, 4, 3, 5, 2, 3, 3, 1.0, 0.0);

    /* k == 0: C = beta*C, A and B never read */
    float c[6] = {1, 2, 3, 4, 5, 6};
    dlrt_gemm_f32(0, 0, 2, 2, 0, 1.0f, NULL, 0, NULL, 0, 0.5f, c, 3);
    float want[6] = {0.5f, 1, 3, 2, 2.5f, 6};
    ck_assert_int_eq(memcmp(c, want, sizeof c), 0);
    double d[4] = {NAN, 2, INFINITY, 4};
    dlrt_gemm_f64(1, 1, 2, 2, 0, 1.0, NULL, 0, NULL, 0, 0.0, d, 2);
    for (int i = 0; i < 4; i++)
        ck_assert(d[i] == 0); /* beta 0 overwrites, as in BLAS */
    /* m or n == 0: nothing is touched */
    float z[2] = {7, 8};
    dlrt_gemm_f32(0, 0, 0, 2, 3, 1.0f, NULL, 0, NULL, 0, 0.0f, z, 0);
    dlrt_gemm_f32(0, 0, 2, 0, 3, 1.0f, NULL, 0, NULL, 0, 0.0f, z, 0);
    ck_assert(z[0] == 7 && z[1] == 8);
    /* NULL operands never crash */
    dlrt_gemm_f64(0, 0, 2, 2, 2, 1.0, NULL, 2, NULL, 2, 0.0, NULL, 2);
    dlrt_gemm_f64(0, 0, 1, 2, 2, 1.0, NULL, 2, NULL, 2, 3.0, d, 2);
    ck_assert(d[0] == 0 && d[1] == 0);
}
END_TEST

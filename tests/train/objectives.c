/* Several objectives (objectives.test): gan2 has a discriminator
 * objective `disc` (its loss reaches the generator only through
 * stop_gradient) and a generator objective `gen` narrowed to gen.* by
 * `params = [gen]`, both Adam, the generator's with gradient clipping.
 * gan_d and gan_g are the same model with one objective each and the
 * other player frozen, so their parameter arrays are laid out alike and
 * each keeps one player's optimizer state. Alternating steps, the twins
 * handing each other their updated parameters, must give gan2's losses,
 * parameters and optimizer state; a step of one objective must leave the
 * other's parameters, optimizer state and counters untouched; each
 * objective's functions take only the inputs its loss needs (a single
 * unnamed objective's take every input, as gan_g_train_step shows); a
 * checkpoint restores both objectives' state bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gan2.h"
#include "gan_d.h"
#include "gan_g.h"

enum { B = 6, NP = gan2_NUM_PARAMS, STEPS = 6 };

/* The opt tensor of info named name, or NULL. */
static const dlrt_tensor_info *opt_named(const dlrt_model_info *info, const char *name)
{
    for (int i = 0; i < info->num_opt; i++)
        if (strcmp(info->opt[i].desc.name, name) == 0)
            return &info->opt[i];
    return NULL;
}

static int64_t count(const dlrt_tensor_info *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->desc.rank; d++)
        n *= t->desc.shape[d];
    return n;
}

/* gan2's optimizer state of objective obj against a twin's, tensor by
 * tensor ("opt.OBJ.SLOT.PARAM" against "opt.SLOT.PARAM") */
static void same_opt(const char *obj, const void *m2, const void *twin,
                     const dlrt_model_info *twin_info)
{
    const dlrt_model_info *info = gan2_info();
    size_t len = strlen(obj);
    int seen = 0;
    for (int i = 0; i < info->num_opt; i++) {
        const char *name = info->opt[i].desc.name;
        if (strncmp(name + 4, obj, len) != 0 || name[4 + len] != '.')
            continue;
        char want[128];
        snprintf(want, sizeof want, "opt.%s", name + 5 + len);
        const dlrt_tensor_info *t = opt_named(twin_info, want);
        expect(want, t != NULL);
        if (!t)
            continue;
        const double *a = (const double *)((const char *)m2 + info->opt[i].offset);
        const double *b = (const double *)((const char *)twin + t->offset);
        for (int64_t k = 0; k < count(t); k++)
            near(name, (int)k, a[k], b[k], 1e-12);
        seen++;
    }
    expect("every twin opt tensor has its counterpart", seen == twin_info->num_opt);
}

/* a copy of objective obj's optimizer state in gan2 */
static double *opt_copy(const char *obj, const void *m2, int *n)
{
    const dlrt_model_info *info = gan2_info();
    double *v = malloc(info->opt_bytes);
    size_t len = strlen(obj);
    *n = 0;
    for (int i = 0; i < info->num_opt; i++) {
        const char *name = info->opt[i].desc.name;
        if (strncmp(name + 4, obj, len) != 0 || name[4 + len] != '.')
            continue;
        const double *a = (const double *)((const char *)m2 + info->opt[i].offset);
        for (int64_t k = 0; k < count(&info->opt[i]); k++)
            v[(*n)++] = a[k];
    }
    return v;
}

int main(int argc, char **argv)
{
    const dlrt_model_info *info = gan2_info();
    expect("two objectives", info->num_objectives == 2);
    if (info->num_objectives != 2)
        return 1;
    const dlrt_objective_info *od = &info->objectives[0], *og = &info->objectives[1];
    expect("names", strcmp(od->name, "disc") == 0 && strcmp(og->name, "gen") == 0);
    /* disc's functions take real and z, gen's only z */
    expect("disc inputs", od->num_inputs == 2 && od->inputs[0] == 0 && od->inputs[1] == 1);
    expect("gen inputs", og->num_inputs == 1 && og->inputs[0] == 1);
    expect("first objective's fields", info->compute_gradients == od->compute_gradients &&
                                           info->lr == od->lr && od->lr == 0.05 && og->lr == 0.02);
    /* the optimizer state: 2 Adam slots of each player's parameters */
    int ngen = 0;
    for (int i = 0; i < info->num_params; i++)
        ngen += strncmp(info->params[i].desc.name, "gen.", 4) == 0;
    expect("gen.* parameters", ngen == 4);
    expect("opt tensors", info->num_opt == 2 * 4 + 2 * ngen);
    expect("named opt", opt_named(info, "opt.disc.exp_avg.d1w") &&
                            opt_named(info, "opt.gen.exp_avg_sq.gen.dense.b") &&
                            !opt_named(info, "opt.gen.exp_avg.d1w"));
    expect("twins' layout", gan_d_NUM_PARAMS == NP && gan_g_NUM_PARAMS == NP);

    gan2 *m = gan2_create(11);
    gan_d *d = gan_d_create(1);
    gan_g *g = gan_g_create(2);
    expect("create", m && d && g);
    if (!m || !d || !g)
        return 1;
    /* which scalars are the generator's: the parameters after the critic's */
    size_t first_gen = SIZE_MAX;
    for (int i = 0; i < info->num_params; i++)
        if (strncmp(info->params[i].desc.name, "gen.", 4) == 0 &&
            info->params[i].offset < first_gen)
            first_gen = info->params[i].offset;
    int ng = (int)((info->params_offset + info->params_bytes - first_gen) / sizeof(double));
    int nd = NP - ng;
    expect("split", nd == 4 * 3 + 3 + 3 + 1 && ng == 2 * 3 + 3 + 3 * 4 + 4);
    double *p = gan2_params(m), *gr = gan2_grads(m);
    memcpy(gan_d_params(d), p, sizeof(double) * NP);
    memcpy(gan_g_params(g), p, sizeof(double) * NP);

    /* compute_gradients_disc adds to the critic's entries only */
    double real[B * 4], z[B * 2], loss, loss1;
    for (int i = 0; i < B * 4; i++)
        real[i] = data_value(1, (uint64_t)i);
    for (int i = 0; i < B * 2; i++)
        z[i] = data_value(2, (uint64_t)i);
    for (int i = 0; i < NP; i++)
        gr[i] = 100; /* compute_gradients adds to what is there */
    expect("compute_gradients_disc", gan2_compute_gradients_disc(m, B, real, z, &loss) == 0);
    expect("compute_gradients d", gan_d_compute_gradients(d, B, real, z, &loss1) == 0);
    near("disc loss", 0, loss, loss1, 1e-12);
    for (int i = 0; i < NP; i++)
        near("disc grads", i, gr[i], i < nd ? 100 + gan_d_grads(d)[i] : 100, 1e-12);
    for (int i = 0; i < nd; i++)
        expect("a critic gradient", gan_d_grads(d)[i] != 0);
    memset(gr, 0, sizeof(double) * NP);
    memset(gan_d_grads(d), 0, sizeof(double) * NP);

    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < B * 4; i++)
            real[i] = 0.5 + 0.3 * data_value(10 + (uint64_t)s, (uint64_t)i);
        for (int i = 0; i < B * 2; i++)
            z[i] = data_value(100 + (uint64_t)s, (uint64_t)i);

        /* the critic's step: the generator's half untouched */
        double before[NP];
        memcpy(before, p, sizeof before);
        int nopt;
        double *gen_opt = opt_copy("gen", m, &nopt);
        expect("train_step_disc", gan2_train_step_disc(m, B, real, z, &loss) == 0);
        expect("gan_d train_step", gan_d_train_step(d, B, real, z, &loss1) == 0);
        near("disc step loss", s, loss, loss1, 1e-12);
        for (int i = 0; i < NP; i++)
            near("after disc", i, p[i], gan_d_params(d)[i], 1e-12);
        expect("critic moved", memcmp(p, before, sizeof(double) * (size_t)nd) != 0);
        expect("generator untouched by disc",
               memcmp(p + nd, before + nd, sizeof(double) * (size_t)ng) == 0);
        int n2;
        double *gen_opt2 = opt_copy("gen", m, &n2);
        expect("gen's opt untouched by disc",
               n2 == nopt && memcmp(gen_opt, gen_opt2, sizeof(double) * (size_t)nopt) == 0);
        free(gen_opt);
        free(gen_opt2);
        expect("steps after disc", gan2_step_disc(m) == s + 1 && gan2_step_gen(m) == s);
        same_opt("disc", m, d, gan_d_info());
        memcpy(gan_g_params(g), gan_d_params(d), sizeof(double) * NP);

        /* the generator's step: the critic's half untouched */
        memcpy(before, p, sizeof before);
        double *disc_opt = opt_copy("disc", m, &nopt);
        expect("train_step_gen", gan2_train_step_gen(m, B, z, &loss) == 0);
        expect("gan_g train_step", gan_g_train_step(g, B, real, z, &loss1) == 0);
        near("gen step loss", s, loss, loss1, 1e-12);
        for (int i = 0; i < NP; i++)
            near("after gen", i, p[i], gan_g_params(g)[i], 1e-12);
        expect("generator moved", memcmp(p + nd, before + nd, sizeof(double) * (size_t)ng) != 0);
        expect("critic untouched by gen", memcmp(p, before, sizeof(double) * (size_t)nd) == 0);
        double *disc_opt2 = opt_copy("disc", m, &n2);
        expect("disc's opt untouched by gen",
               n2 == nopt && memcmp(disc_opt, disc_opt2, sizeof(double) * (size_t)nopt) == 0);
        free(disc_opt);
        free(disc_opt2);
        expect("steps after gen", gan2_step_disc(m) == s + 1 && gan2_step_gen(m) == s + 1);
        same_opt("gen", m, g, gan_g_info());
        memcpy(gan_d_params(d), gan_g_params(g), sizeof(double) * NP);
        for (int i = 0; i < NP; i++)
            expect("grads zeroed", gr[i] == 0);
    }

    /* each objective's rate is its own */
    expect("rates", gan2_learning_rate_disc(m) == 0.05 && gan2_learning_rate_gen(m) == 0.02);
    expect("set rate", gan2_set_learning_rate_gen(m, 0.5) == 0);
    expect("rates after", gan2_learning_rate_disc(m) == 0.05 && gan2_learning_rate_gen(m) == 0.5);
    expect("bad rate", gan2_set_learning_rate_disc(m, -1) == DLRT_EINVAL);
    /* the forward pass takes z alone */
    double sample[B * 4];
    expect("forward", gan2_forward(m, B, z, sample) == 0);

    /* a checkpoint holds both objectives' optimizer state and counters: a
     * fresh instance that loads it continues exactly as m does */
    char path[4096];
    snprintf(path, sizeof path, "%s/gan2.ckpt", argc > 1 ? argv[1] : ".");
    expect("save", gan2_save(m, path) == 0);
    gan2 *r = gan2_create(99);
    expect("create r", r != NULL);
    if (!r)
        return 1;
    unsigned status = 9;
    expect("load", dlrt_model_load_ex(r, path, &status) == 0 && status == 0);
    char *a = (char *)m, *b = (char *)r;
    expect("params loaded", memcmp(gan2_params(r), p, sizeof(double) * NP) == 0);
    expect("opt loaded", memcmp(a + info->opt_offset, b + info->opt_offset, info->opt_bytes) == 0);
    expect("steps loaded", gan2_step_disc(r) == STEPS && gan2_step_gen(r) == STEPS);
    expect("rates loaded", gan2_learning_rate_disc(r) == 0.05 && gan2_learning_rate_gen(r) == 0.5);
    for (int s = 0; s < 2; s++) {
        double l1, l2;
        expect("resume disc", gan2_train_step_disc(m, B, real, z, &l1) == 0 &&
                                  gan2_train_step_disc(r, B, real, z, &l2) == 0 && l1 == l2);
        expect("resume gen", gan2_train_step_gen(m, B, z, &l1) == 0 &&
                                 gan2_train_step_gen(r, B, z, &l2) == 0 && l1 == l2);
    }
    expect("resumed identically",
           memcmp(gan2_params(r), p, sizeof(double) * NP) == 0 &&
               memcmp(a + info->opt_offset, b + info->opt_offset, info->opt_bytes) == 0);
    /* a fresh instance's counters differ, so the loads above did something */
    gan2 *fresh = gan2_create(11);
    expect("fresh", fresh && gan2_step_gen(fresh) == 0 && gan2_learning_rate_gen(fresh) == 0.02);
    gan2_destroy(fresh);
    gan2_destroy(r);

    gan2_destroy(m);
    gan_d_destroy(d);
    gan_g_destroy(g);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}

/*
 * Text for character-level language models: bytes to ids, the held-out
 * split, training and evaluation windows, the unigram baseline, and
 * sampling from a predicted distribution with a temperature.
 *
 * A training batch is a pure function of (seed, step): window starts come
 * from the dlrt_rng stream `step` of the seed, each by rejection sampling
 * so every start is equally likely. Nothing carries over between steps, so
 * a run resumed at step s draws what an uninterrupted one would.
 */
#include "dlrt.h"
#include "file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A uniform integer in [0, bound), bound >= 1. */
static uint64_t below(dlrt_rng *rng, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = dlrt_rng_next(rng);
    while (r >= limit);
    return r % bound;
}

int dlrt_text_parse(const void *bytes, size_t len, int vocab, int32_t unknown, const char *name,
                    dlrt_text *out, char *err, size_t errlen)
{
    if (!out)
        return DLRT_EINVAL;
    memset(out, 0, sizeof *out);
    if ((!bytes && len) || vocab < 1 || vocab > 65536 || unknown < 0 || unknown >= vocab)
        return DLRT_EINVAL;
    if (!name)
        name = "<text>";
    if (len == 0) {
        dlrt_seterr(err, errlen, "%s: empty text", name);
        return DLRT_EFORMAT;
    }
    if (len > SIZE_MAX / sizeof *out->ids || len > (uint64_t)INT64_MAX) {
        dlrt_seterr(err, errlen, "%s: too long (%zu bytes)", name, len);
        return DLRT_ERANGE;
    }
    out->ids = malloc(len * sizeof *out->ids);
    if (!out->ids) {
        dlrt_seterr(err, errlen, "%s: out of memory for %zu ids", name, len);
        return DLRT_ENOMEM;
    }
    const unsigned char *b = bytes;
    for (size_t i = 0; i < len; i++)
        out->ids[i] = b[i] < vocab ? b[i] : unknown;
    out->n = (int64_t)len;
    out->vocab = vocab;
    return DLRT_OK;
}

int dlrt_text_load(const char *path, int vocab, int32_t unknown, dlrt_text *out, char *err,
                   size_t errlen)
{
    if (!path || !out)
        return DLRT_EINVAL;
    memset(out, 0, sizeof *out);
    unsigned char *bytes;
    size_t len;
    int rc = dlrt_read_file(path, &bytes, &len, err, errlen);
    if (rc == DLRT_OK)
        rc = dlrt_text_parse(bytes, len, vocab, unknown, path, out, err, errlen);
    free(bytes);
    return rc;
}

void dlrt_text_free(dlrt_text *t)
{
    if (!t)
        return;
    free(t->ids);
    memset(t, 0, sizeof *t);
}

static int text_copy(const dlrt_text *t, int64_t from, int64_t n, dlrt_text *out)
{
    out->ids = malloc((size_t)n * sizeof *out->ids);
    if (!out->ids)
        return DLRT_ENOMEM;
    memcpy(out->ids, t->ids + from, (size_t)n * sizeof *out->ids);
    out->n = n;
    out->vocab = t->vocab;
    return DLRT_OK;
}

int dlrt_text_split(const dlrt_text *t, double heldout, int64_t window, dlrt_text *train,
                    dlrt_text *held, char *err, size_t errlen)
{
    if (!train || !held)
        return DLRT_EINVAL;
    memset(train, 0, sizeof *train);
    memset(held, 0, sizeof *held);
    if (!t || !t->ids || t->n < 1 || !(heldout > 0 && heldout < 1) || window < 1)
        return DLRT_EINVAL;
    int64_t h = (int64_t)((double)t->n * heldout);
    if (h < window + 1 || t->n - h < window + 1) {
        dlrt_seterr(err, errlen,
                    "a text of %lld characters is too short: its training part and its held-out "
                    "%.0f%% (%lld) must each hold %lld characters",
                    (long long)t->n, heldout * 100, (long long)h, (long long)window + 1);
        return DLRT_ERANGE;
    }
    int rc = text_copy(t, 0, t->n - h, train);
    if (!rc)
        rc = text_copy(t, t->n - h, h, held);
    if (rc) {
        dlrt_text_free(train);
        dlrt_text_free(held);
        dlrt_seterr(err, errlen, "out of memory for %lld characters", (long long)t->n);
    }
    return rc;
}

/* Window at `start`: ids[0..T) and the targets ids[1..T]. */
static void window_at(const dlrt_text *t, int64_t start, int64_t T, int32_t *ids, int32_t *targets)
{
    memcpy(ids, t->ids + start, (size_t)T * sizeof *ids);
    memcpy(targets, t->ids + start + 1, (size_t)T * sizeof *targets);
}

static int windows_ok(const dlrt_text *t, int64_t T, int batch, const int32_t *ids,
                      const int32_t *targets)
{
    if (!t || !t->ids || T < 1 || batch < 1 || !ids || !targets)
        return DLRT_EINVAL;
    return t->n < T + 1 ? DLRT_ERANGE : DLRT_OK;
}

int dlrt_text_random_windows(const dlrt_text *t, int64_t T, int batch, uint64_t seed, uint64_t step,
                             int32_t *ids, int32_t *targets)
{
    int rc = windows_ok(t, T, batch, ids, targets);
    if (rc)
        return rc;
    dlrt_rng rng;
    dlrt_rng_seed(&rng, seed, step);
    for (int b = 0; b < batch; b++) {
        int64_t start = (int64_t)below(&rng, (uint64_t)(t->n - T));
        window_at(t, start, T, ids + (size_t)b * (size_t)T, targets + (size_t)b * (size_t)T);
    }
    return DLRT_OK;
}

int64_t dlrt_text_window_count(const dlrt_text *t, int64_t T)
{
    if (!t || !t->ids || T < 1)
        return DLRT_EINVAL;
    return t->n < 1 ? 0 : (t->n - 1) / T;
}

int dlrt_text_windows(const dlrt_text *t, int64_t T, int64_t first, int batch, int32_t *ids,
                      int32_t *targets)
{
    int rc = windows_ok(t, T, batch, ids, targets);
    if (rc == DLRT_ERANGE)
        return 0;
    if (rc || first < 0)
        return rc ? rc : DLRT_EINVAL;
    int64_t count = dlrt_text_window_count(t, T);
    int n = 0;
    for (int64_t w = first; w < count && n < batch; w++, n++)
        window_at(t, w * T, T, ids + (size_t)n * (size_t)T, targets + (size_t)n * (size_t)T);
    return n;
}

double dlrt_text_unigram_loss(const dlrt_text *train, const dlrt_text *eval, int64_t T)
{
    if (!train || !eval || !train->ids || !eval->ids || T < 1 || train->vocab != eval->vocab ||
        train->vocab < 1)
        return DLRT_EINVAL;
    int64_t count = dlrt_text_window_count(eval, T);
    if (count < 1)
        return DLRT_ERANGE;
    double *freq = calloc((size_t)train->vocab, sizeof *freq);
    if (!freq)
        return DLRT_ENOMEM;
    double total = (double)train->n + train->vocab, loss = 0;
    int rc = DLRT_OK;
    for (int64_t i = 0; i < train->n && !rc; i++) {
        if (train->ids[i] < 0 || train->ids[i] >= train->vocab)
            rc = DLRT_ERANGE;
        else
            freq[train->ids[i]] += 1;
    }
    for (int64_t i = 1; i <= count * T && !rc; i++) {
        if (eval->ids[i] < 0 || eval->ids[i] >= eval->vocab)
            rc = DLRT_ERANGE;
        else
            loss -= log((freq[eval->ids[i]] + 1) / total);
    }
    free(freq);
    return rc ? rc : loss / (double)(count * T);
}

int dlrt_sample(const float *probs, int n, double temperature, dlrt_rng *rng)
{
    if (!probs || n < 1 || !rng || !(temperature >= 0))
        return DLRT_EINVAL;
    /* Weights relative to the largest, so 1/temperature powers stay finite. */
    int best = 0;
    double top = 0;
    for (int i = 0; i < n; i++) {
        if (isfinite(probs[i]) && probs[i] > top) {
            best = i;
            top = probs[i];
        }
    }
    if (temperature == 0 || top == 0)
        return best;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (isfinite(probs[i]) && probs[i] > 0)
            sum += pow(probs[i] / top, 1 / temperature);
    }
    double u = dlrt_rng_double(rng) * sum, run = 0;
    int last = best;
    for (int i = 0; i < n; i++) {
        if (!(isfinite(probs[i]) && probs[i] > 0))
            continue;
        run += pow(probs[i] / top, 1 / temperature);
        last = i;
        if (u < run)
            return i;
    }
    return last; /* u within rounding of sum */
}

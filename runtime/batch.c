/*
 * Shuffled mini-batches, row-wise argmax and accuracy.
 *
 * Each epoch's order is computed from scratch: the identity permutation,
 * shuffled by Fisher-Yates with the dlrt_rng stream `epoch` of the seed.
 * It does not depend on earlier epochs, so a run resumed at epoch e sees
 * exactly the batches of a run that never stopped. Bounded draws use
 * rejection sampling, so every permutation is equally likely.
 */
#include "dlrt.h"

#include <stdlib.h>
#include <string.h>

/* A uniform integer in [0, bound), bound >= 1. */
static uint64_t below(dlrt_rng *rng, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound; /* multiples of bound fit below */
    uint64_t r;
    do
        r = dlrt_rng_next(rng);
    while (r >= limit);
    return r % bound;
}

int dlrt_batches_init(dlrt_batches *b, int64_t n, int64_t batch, uint64_t seed, unsigned flags)
{
    if (!b)
        return DLRT_EINVAL;
    memset(b, 0, sizeof *b);
    b->epoch = -1;
    if (n < 1 || batch < 1 || (flags & ~(DLRT_BATCH_DROP_LAST | DLRT_BATCH_SEQUENTIAL)) ||
        (uint64_t)n > SIZE_MAX / sizeof *b->order)
        return DLRT_EINVAL;
    b->order = malloc((size_t)n * sizeof *b->order);
    if (!b->order)
        return DLRT_ENOMEM;
    b->n = n;
    b->batch = batch;
    b->seed = seed;
    b->flags = flags;
    return DLRT_OK;
}

void dlrt_batches_free(dlrt_batches *b)
{
    if (!b)
        return;
    free(b->order);
    b->order = NULL;
}

int64_t dlrt_batches_count(const dlrt_batches *b)
{
    if (!b || !b->order)
        return DLRT_EINVAL;
    if (b->flags & DLRT_BATCH_DROP_LAST)
        return b->n / b->batch;
    return b->n / b->batch + (b->n % b->batch != 0);
}

int dlrt_batches_start(dlrt_batches *b, int64_t epoch)
{
    if (!b || !b->order || epoch < 0)
        return DLRT_EINVAL;
    for (int64_t i = 0; i < b->n; i++)
        b->order[i] = i;
    if (!(b->flags & DLRT_BATCH_SEQUENTIAL)) {
        dlrt_rng rng;
        dlrt_rng_seed(&rng, b->seed, (uint64_t)epoch);
        for (int64_t i = b->n - 1; i > 0; i--) {
            int64_t j = (int64_t)below(&rng, (uint64_t)i + 1);
            int64_t t = b->order[i];
            b->order[i] = b->order[j];
            b->order[j] = t;
        }
    }
    b->epoch = epoch;
    b->pos = 0;
    b->last = 0;
    return DLRT_OK;
}

int dlrt_batches_next(dlrt_batches *b, const float *x, int64_t d, float *xb, const void *y,
                      dlrt_dtype ytype, int64_t k, void *yb)
{
    if (!b || !b->order)
        return DLRT_EINVAL;
    if (b->epoch < 0)
        return DLRT_ESTATE;
    if (x && (d < 1 || !xb))
        return DLRT_EINVAL;
    if (y && (!yb || (ytype == DLRT_I32 && k != 1) || (ytype == DLRT_F32 && k < 1) ||
              (ytype != DLRT_I32 && ytype != DLRT_F32)))
        return DLRT_EINVAL;
    int64_t m = b->n - b->pos;
    if (m > b->batch)
        m = b->batch;
    if (m <= 0 || (m < b->batch && (b->flags & DLRT_BATCH_DROP_LAST))) {
        b->pos = b->n;
        b->last = 0;
        return 0;
    }
    const int64_t *idx = b->order + b->pos;
    for (int64_t i = 0; i < m; i++) {
        if (x)
            memcpy(xb + i * d, x + idx[i] * d, (size_t)d * sizeof *x);
        if (y && ytype == DLRT_I32)
            ((int32_t *)yb)[i] = ((const int32_t *)y)[idx[i]];
        else if (y)
            memcpy((float *)yb + i * k, (const float *)y + idx[i] * k, (size_t)k * sizeof(float));
    }
    b->pos += m;
    b->last = m;
    return (int)m;
}

const int64_t *dlrt_batches_indices(const dlrt_batches *b)
{
    if (!b || !b->order || b->last == 0)
        return NULL;
    return b->order + b->pos - b->last;
}

/* NaN wins over numbers; among equals the first index wins. */
static int32_t argmax_row(const float *s, int classes)
{
    int32_t best = 0;
    for (int j = 1; j < classes; j++) {
        if (s[best] != s[best])
            break;
        if (s[j] > s[best] || s[j] != s[j])
            best = j;
    }
    return best;
}

int dlrt_argmax_rows(const float *scores, int n, int classes, int32_t *out)
{
    if (!scores || !out || n < 0 || classes < 1)
        return DLRT_EINVAL;
    for (int i = 0; i < n; i++)
        out[i] = argmax_row(scores + (size_t)i * (size_t)classes, classes);
    return DLRT_OK;
}

double dlrt_accuracy(const float *scores, int n, int classes, const int32_t *labels)
{
    if (!scores || !labels || n < 1 || classes < 1)
        return DLRT_EINVAL;
    int64_t correct = 0;
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= classes)
            return DLRT_ERANGE;
        correct += argmax_row(scores + (size_t)i * (size_t)classes, classes) == labels[i];
    }
    return (double)correct / n;
}

/*
 * The reference's recurrent layers (rnn, lstm, gru) and their backward
 * ops, one sample and one step at a time in f64, from PyTorch's formulas.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_ops.h"

/* One step's projections of sample b at step t from the state h:
 * gx = x_t W_ih + b_ih and gh = h W_hh (+ b_hh for gru), [G*H] each. */
static void project(const RefTensor *const *w, const RefTensor *x, int64_t b, int64_t t,
                    const double *h, int64_t H, double *gx, double *gh)
{
    const RefTensor *wih = w[0], *whh = w[1], *bih = w[2], *bhh = w[3];
    int64_t T = x->dim[1], F = x->dim[2], GH = wih->dim[1];
    for (int64_t u = 0; u < GH; u++) {
        double sx = bih->v[u], sh = bhh ? bhh->v[u] : 0;
        for (int64_t f = 0; f < F; f++)
            sx += x->v[(b * T + t) * F + f] * wih->v[f * GH + u];
        for (int64_t k = 0; k < H; k++)
            sh += h[k] * whh->v[k * GH + u];
        gx[u] = sx;
        gh[u] = sh;
    }
}

/* rnn / lstm / gru over x [B, T, F], one sample and one step at a time,
 * from PyTorch's formulas (nn.RNN, nn.LSTM, nn.GRU) with weights stored
 * transposed: w_ih [F, G*H], w_hh [H, G*H]. The packed ops skip the steps
 * from a row's length on (output 0, the state kept), as PyTorch's packed
 * sequences do. */
void ref_recurrent(const Node *n, RefTensor *const *in, RefTensor *out)
{
    const RefTensor *x = in[0], *h0 = in[1];
    Op cell = ir_recurrent_cell(n->op);
    bool lstm = cell == OP_LSTM, gru = cell == OP_GRU;
    bool relu = cell == OP_RNN && strcmp(attr_nonlinearity(n), "relu") == 0;
    const RefTensor *len = ir_recurrent_packed(n->op) ? in[n->nin - 1] : NULL;
    int G = lstm ? 4 : gru ? 3 : 1;
    int w = lstm ? 3 : 2;
    const RefTensor *ws[4] = {in[w], in[w + 1], in[w + 2], gru ? in[w + 3] : NULL};
    int64_t B = x->dim[0], T = x->dim[1], H = h0->dim[1], GH = G * H;
    int64_t TS = T + ir_recurrent_state_rows(n); /* rows per sample */
    double *h = ref_calloc(H), *c = ref_calloc(H), *hn = ref_calloc(H);
    double *gx = ref_calloc(GH), *gh = ref_calloc(GH);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t j = 0; j < H; j++) {
            h[j] = h0->v[b * H + j];
            c[j] = lstm ? in[2]->v[b * H + j] : 0;
        }
        for (int64_t t = 0; t < T; t++) {
            if (len && t >= len->v[b]) {
                /* past the length (packed sequences): 0, the state kept */
                for (int64_t j = 0; j < H; j++)
                    out->v[(b * TS + t) * H + j] = 0;
                continue;
            }
            project(ws, x, b, t, h, H, gx, gh);
            for (int64_t j = 0; j < H; j++) {
                if (lstm) {
                    double i = ref_sigmoid(gx[j] + gh[j]);
                    double f = ref_sigmoid(gx[H + j] + gh[H + j]);
                    double g = tanh(gx[2 * H + j] + gh[2 * H + j]);
                    double o = ref_sigmoid(gx[3 * H + j] + gh[3 * H + j]);
                    c[j] = f * c[j] + i * g;
                    hn[j] = o * tanh(c[j]);
                } else if (gru) {
                    double r = ref_sigmoid(gx[j] + gh[j]);
                    double z = ref_sigmoid(gx[H + j] + gh[H + j]);
                    double nn = tanh(gx[2 * H + j] + r * gh[2 * H + j]);
                    hn[j] = (1 - z) * nn + z * h[j];
                } else if (relu) {
                    double a = gx[j] + gh[j];
                    hn[j] = a > 0 || isnan(a) ? a : 0;
                } else {
                    hn[j] = tanh(gx[j] + gh[j]);
                }
            }
            for (int64_t j = 0; j < H; j++) {
                h[j] = hn[j];
                out->v[(b * TS + t) * H + j] = h[j];
            }
        }
        /* return_state: h_n, then the LSTM's c_n */
        for (int64_t j = 0; j < H && TS > T; j++) {
            out->v[(b * TS + T) * H + j] = h[j];
            if (lstm)
                out->v[(b * TS + T + 1) * H + j] = c[j];
        }
    }
    free(h);
    free(c);
    free(hn);
    free(gx);
    free(gh);
}

/* The backward ops (ir/ops.def): for each sample, the gates are rebuilt
 * from h_{t-1} = y[t - 1] (h0 at t = 0) and, for lstm, the cell states
 * from c0; then the adjoints run from t = T - 1 down to 0. dh and dc are
 * the adjoints reaching h_t and c_t from step t + 1. The packed ops' steps
 * past a row's length (which kept the state) pass dh and dc unchanged. */
void ref_recurrent_grad(const Node *n, RefTensor *const *in, RefTensor *out)
{
    const RefTensor *y = in[0], *dy = in[1], *x = in[2], *h0 = in[3];
    Op kind = ir_recurrent_cell(n->op);
    bool lstm = kind == OP_LSTM, gru = kind == OP_GRU;
    bool relu = kind == OP_RNN && strcmp(attr_nonlinearity(n), "relu") == 0;
    const RefTensor *len = ir_recurrent_packed(n->op) ? in[n->nin - 1] : NULL;
    int G = lstm ? 4 : gru ? 3 : 1;
    int w = lstm ? 5 : 4;
    const RefTensor *ws[4] = {in[w], in[w + 1], in[w + 2], gru ? in[w + 3] : NULL};
    const RefTensor *whh = ws[1];
    int64_t B = x->dim[0], T = x->dim[1], H = h0->dim[1], GH = G * H;
    int64_t W = out->dim[2], TS = T + ir_recurrent_state_rows(n);
    /* per step: activated gates [GH], gru's n_h = h W_hh + b_hh [H], cells */
    double *act = ref_calloc(T * GH), *nh = ref_calloc(T * H), *cell = ref_calloc((T + 1) * H);
    double *pre = ref_calloc(GH), *dh = ref_calloc(H), *dc = ref_calloc(H), *d = ref_calloc(W);
    double *gx = ref_calloc(GH), *gh = ref_calloc(GH);
    for (int64_t b = 0; b < B; b++) {
        /* packed: steps from the row's length on pass the adjoints by */
        int64_t live = len ? (int64_t)fmax(0, fmin((double)T, len->v[b])) : T;
        for (int64_t t = 0; t < live; t++) {
            const double *hp = t ? &y->v[(b * TS + t - 1) * H] : &h0->v[b * H];
            project(ws, x, b, t, hp, H, gx, gh);
            for (int64_t u = 0; u < GH; u++) {
                pre[u] = gx[u] + gh[u];
                if (gru && u >= 2 * H) {
                    nh[t * H + u - 2 * H] = gh[u];
                    pre[u] = gx[u];
                }
            }
            double *a = &act[t * GH];
            for (int64_t j = 0; j < H; j++) {
                if (lstm) {
                    a[j] = ref_sigmoid(pre[j]);
                    a[H + j] = ref_sigmoid(pre[H + j]);
                    a[2 * H + j] = tanh(pre[2 * H + j]);
                    a[3 * H + j] = ref_sigmoid(pre[3 * H + j]);
                    double cp = t ? cell[t * H + j] : in[4]->v[b * H + j];
                    cell[(t + 1) * H + j] = a[H + j] * cp + a[j] * a[2 * H + j];
                } else if (gru) {
                    a[j] = ref_sigmoid(pre[j]);
                    a[H + j] = ref_sigmoid(pre[H + j]);
                    a[2 * H + j] = tanh(pre[2 * H + j] + a[j] * nh[t * H + j]);
                }
            }
        }
        /* return_state: the final states' adjoints start the carried ones */
        for (int64_t j = 0; j < H; j++) {
            dh[j] = TS > T ? dy->v[(b * TS + T) * H + j] : 0;
            dc[j] = TS > T + 1 ? dy->v[(b * TS + T + 1) * H + j] : 0;
        }
        for (int64_t t = T - 1; t >= 0; t--) {
            if (t >= live) {
                for (int64_t u = 0; u < W; u++)
                    out->v[(b * (T + 1) + t) * W + u] = 0;
                continue;
            }
            const double *a = &act[t * GH];
            const double *hp = t ? &y->v[(b * TS + t - 1) * H] : &h0->v[b * H];
            for (int64_t j = 0; j < H; j++) {
                double e = dy->v[(b * TS + t) * H + j] + dh[j];
                if (lstm) {
                    double i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
                    double c = cell[(t + 1) * H + j];
                    double cp = t ? cell[t * H + j] : in[4]->v[b * H + j];
                    double dct = dc[j] + e * o * (1 - tanh(c) * tanh(c));
                    d[j] = dct * g * i * (1 - i);
                    d[H + j] = dct * cp * f * (1 - f);
                    d[2 * H + j] = dct * i * (1 - g * g);
                    d[3 * H + j] = e * tanh(c) * o * (1 - o);
                    dc[j] = dct * f;
                } else if (gru) {
                    double r = a[j], z = a[H + j], nn = a[2 * H + j];
                    double dn = e * (1 - z) * (1 - nn * nn);
                    d[j] = dn * nh[t * H + j] * r * (1 - r);
                    d[H + j] = e * (hp[j] - nn) * z * (1 - z);
                    d[2 * H + j] = dn;
                    d[3 * H + j] = dn * r;
                } else {
                    double h = y->v[(b * TS + t) * H + j];
                    d[j] = relu ? (h > 0 ? e : 0) : e * (1 - h * h);
                }
            }
            /* dh_{t-1} = the recurrent side's adjoint @ W_hh^T (+ z dh for gru) */
            for (int64_t k = 0; k < H; k++) {
                double s = gru ? (dy->v[(b * TS + t) * H + k] + dh[k]) * a[H + k] : 0;
                for (int64_t u = 0; u < GH; u++) {
                    double du = gru && u >= 2 * H ? d[u + H] : d[u];
                    s += du * whh->v[k * GH + u];
                }
                pre[k] = s;
            }
            for (int64_t k = 0; k < H; k++)
                dh[k] = pre[k];
            for (int64_t u = 0; u < W; u++)
                out->v[(b * (T + 1) + t) * W + u] = d[u];
        }
        for (int64_t j = 0; j < H; j++) {
            out->v[(b * (T + 1) + T) * W + j] = dh[j];
            if (lstm)
                out->v[(b * (T + 1) + T) * W + H + j] = dc[j];
        }
    }
    free(act);
    free(nh);
    free(cell);
    free(pre);
    free(gx);
    free(gh);
    free(dh);
    free(dc);
    free(d);
}

/* out[b, t] = x[b, n[b] - 1 - t] for t < n[b], else x[b, t], with n[b]
 * clamped to 0..T */
void ref_reverse_sequence(RefTensor *const *in, RefTensor *out)
{
    const RefTensor *x = in[0], *len = in[1];
    int64_t B = x->dim[0], T = x->dim[1], K = x->count / (B * T);
    for (int64_t b = 0; b < B; b++) {
        int64_t n = (int64_t)fmax(0, fmin((double)T, len->v[b]));
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < n ? n - 1 - t : t;
            for (int64_t k = 0; k < K; k++)
                out->v[(b * T + t) * K + k] = x->v[(b * T + src) * K + k];
        }
    }
}

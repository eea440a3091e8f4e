/* The training step's product cut along k (split_k.dl): at each batch
 * 1..MAX_B, the loss and the gradients of compute_gradients against the
 * model computed here in f64 from the instance's own parameters, and the
 * same bits at 1, 2 and 3 threads. */
#include "check.h"
#include "split_k.h"

enum { MAX_B = 12, K = 300, N = 256, NP = K * N + N };

/* The loss and the gradients of mse(relu(x @ w + b), y) in f64; p holds
 * w then b, g receives their gradients. */
static double reference(int B, const float *x, const float *y, const float *p, double *g)
{
    const float *w = p, *b = p + K * N;
    double loss = 0;
    for (int j = 0; j < NP; j++)
        g[j] = 0;
    for (int i = 0; i < B; i++) {
        for (int n = 0; n < N; n++) {
            double z = b[n];
            for (int k = 0; k < K; k++)
                z += (double)x[i * K + k] * w[k * N + n];
            double pred = z > 0 ? z : 0, e = pred - y[i * N + n];
            loss += e * e / (B * N);
            /* d loss / d z: through the relu only where z > 0 */
            double dz = z > 0 ? 2 * e / (B * N) : 0;
            for (int k = 0; k < K; k++)
                g[k * N + n] += x[i * K + k] * dz;
            g[K * N + n] += dz;
        }
    }
    return loss;
}

int main(void)
{
    static float x[MAX_B * K], y[MAX_B * N], first[MAX_B][NP];
    static double want[NP];
    fill_data(x, MAX_B * K, 1);
    for (int i = 0; i < MAX_B * N; i++)
        y[i] = (float)(0.5 * data_value(2, (uint64_t)i) + 0.25);
    for (int threads = 1; threads <= 3; threads++) {
        expect("set_num_threads", dlrt_set_num_threads(threads) == 0);
        for (int B = 1; B <= MAX_B; B++) {
            split_k *m = split_k_create(3);
            expect("create", m != NULL);
            if (!m)
                return 1;
            float loss = -1;
            expect("compute_gradients", split_k_compute_gradients(m, B, x, y, &loss) == 0);
            const float *g = split_k_grads(m);
            if (threads == 1) {
                double l = reference(B, x, y, split_k_params(m), want);
                near("loss", B, loss, l, 1e-5);
                for (int j = 0; j < NP; j++)
                    near("gradient", B * NP + j, g[j], want[j], 1e-6);
                memcpy(first[B - 1], g, sizeof first[0]);
            } else {
                expect("the same gradients at 2 and 3 threads as at 1",
                       memcmp(first[B - 1], g, sizeof first[0]) == 0);
            }
            split_k_destroy(m);
        }
    }
    return report();
}

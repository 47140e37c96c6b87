/* One optimizer update of one input, fused into one pass per H×W plane (see native.py).
 *
 * The same arithmetic as update_input in step.py: the network's gradient with the
 * jitter undone and non-finite entries zeroed, plus the gradients of R_B (eq. 2) and
 * R_TV (eq. 3); Adam's moments; the step; the projection of every pixel's channel
 * vector onto the B-ball. It also writes next step's jittered copy of the result, so
 * the network's input costs no separate pass.
 *
 * Layout: x, grad, x_out and feed share one canonical view [B, K, D, H, W] with
 * strides (sb, sk, sd, W, 1): every H×W plane is contiguous. The moments are that
 * shape, contiguous. x is read only (its neighbours feed R_TV), so x_out must be
 * another buffer.
 *
 * Work is split over (b, k) planes, each handled as flat arrays: rows of 32 pixels
 * are too short to pay for a loop each. Every plane has one writer and its penalty
 * its own slot, so the result does not depend on the number of threads.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ENERGY_FLOOR 1e-12f /* regularizers.ENERGY_FLOOR */
#define NORM_FLOOR 1e-12f
#define FLOAT_MAX 3.4028234663852886e38f

enum { DIM_B, DIM_K, DIM_D, DIM_H, DIM_W, STRIDE_B, STRIDE_K, STRIDE_D, DIMS };
enum { ALPHA, BOUND, LAMBDA_B, LAMBDA_TV, BETA1, BETA2, EPS, STEP_SIZE, BIAS2_SQRT, CONSTS };

/* out[h][w] = in[(h + dy) mod H][(w + dx) mod W] over one H×W plane: the gradient with its jitter undone.
 * As flat arrays that is a circular shift by dy·W + dx, except that the last dx entries of every
 * row must come from the start of the same source row, not the next one. */
static void unroll_plane(float *out, const float *in, int64_t H, int64_t W, int64_t dy, int64_t dx) {
    const int64_t n = H * W, s = dy * W + dx;
    memcpy(out, in + s, (size_t)(n - s) * sizeof(float));
    memcpy(out + n - s, in, (size_t)s * sizeof(float));
    if (dx == 0) return;
    for (int64_t h = 0; h < H; h++) {
        const float *from = in + ((h + dy) % H) * W;
        float *to = out + h * W + W - dx;
        for (int64_t w = 0; w < dx; w++) to[w] = from[w];
    }
}

/* out[(h + dy) mod H][(w + dx) mod W] = in[h][w]: next step's jittered input, the inverse of unroll_plane. */
static void roll_plane(float *out, const float *in, int64_t H, int64_t W, int64_t dy, int64_t dx) {
    const int64_t n = H * W, s = dy * W + dx;
    memcpy(out + s, in, (size_t)(n - s) * sizeof(float));
    memcpy(out, in + n - s, (size_t)s * sizeof(float));
    if (dx == 0) return;
    for (int64_t h = 0; h < H; h++) {
        const float *from = in + h * W + W - dx;
        float *to = out + ((h + dy) % H) * W;
        for (int64_t w = 0; w < dx; w++) to[w] = from[w];
    }
}

/* κ (sum of the 4 spatial neighbours) + γ (sum of the 2 temporal ones), a missing neighbour
 * (outside the grid) replaced by the pixel itself: R_TV's differences are 0 there. One flat pass
 * with the plane's neighbours in flat order, then the border pixels, where the flat ones are wrong. */
static void neighbours(float *out, const float *x, const float *prev, const float *next, int64_t H, int64_t W,
                       float kappa, float gamma) {
    const int64_t n = H * W;
#pragma omp simd
    for (int64_t i = W; i < n - W; i++)
        out[i] = kappa * (x[i - W] + x[i + W] + x[i - 1] + x[i + 1]) + gamma * (prev[i] + next[i]);
    for (int64_t h = 0; h < H; h++) {
        const int border_row = h == 0 || h == H - 1;
        for (int64_t w = 0; w < W; w += border_row || W == 1 ? 1 : W - 1) {
            const int64_t i = h * W + w;
            const float up = h > 0 ? x[i - W] : x[i], down = h < H - 1 ? x[i + W] : x[i];
            const float left = w > 0 ? x[i - 1] : x[i], right = w < W - 1 ? x[i + 1] : x[i];
            out[i] = kappa * (up + down + left + right) + gamma * (prev[i] + next[i]);
        }
    }
}

static int64_t wrap(int64_t value, int64_t n) { return ((value % n) + n) % n; }

/* Writes penalty[b] = λ_B R_B + λ_TV R_TV of sample b at x (plane_penalty: [B·K] scratch). Samples not
 * both alive and active are copied unchanged. Returns 0, or -1 when scratch memory could not be
 * allocated (nothing is then trustworthy). */
int kt_fused_update(const float *x, const float *grad, float *x_out, float *feed, float *exp_avg, float *exp_avg_sq,
                    const int64_t *dims, const float *consts, const int64_t *shifts, const int64_t *next_shifts,
                    const float *kappa, const float *gamma, const uint8_t *alive, const uint8_t *active,
                    double *plane_penalty, float *penalty, int threads) {
    const int64_t B = dims[DIM_B], K = dims[DIM_K], D = dims[DIM_D], H = dims[DIM_H], W = dims[DIM_W];
    const int64_t sb = dims[STRIDE_B], sk = dims[STRIDE_K], sd = dims[STRIDE_D];
    const int64_t n = H * W;
    const float alpha = consts[ALPHA], bound = consts[BOUND], lambda_b = consts[LAMBDA_B], lambda_tv = consts[LAMBDA_TV];
    const float beta1 = consts[BETA1], beta2 = consts[BETA2], eps = consts[EPS];
    const float step_size = consts[STEP_SIZE], bias2_sqrt = consts[BIAS2_SQRT];
    const float lambda_b_over_alpha = lambda_b / alpha;
    int failed = 0;
    /* no more threads than planes: at batch 1 an image is one plane, and waking a thread costs microseconds */
    const int team = (int64_t)threads < B * K ? threads : (int)(B * K);
#pragma omp parallel num_threads(team)
    {
        /* per thread, planes of H×W: D unrolled gradients, D neighbour sums, D stepped values, slope, scale */
        float *scratch = malloc((size_t)(3 * D + 2) * (size_t)n * sizeof(float));
        if (scratch == NULL) {
#pragma omp atomic write
            failed = 1;
        }
        float *unrolled = scratch, *around = scratch + D * n, *stepped = scratch + 2 * D * n;
        float *slope = scratch + 3 * D * n, *scale = scratch + (3 * D + 1) * n;
#pragma omp for collapse(2) schedule(static)
        for (int64_t b = 0; b < B; b++)
            for (int64_t k = 0; k < K; k++) {
                if (scratch == NULL) continue;
                const float kap = kappa[b], gam = gamma[b];
                const int kept = alive[b] && active[b];
                const int64_t at = b * sb + k * sk;
                const int64_t before = k > 0 ? -sk : 0, after = k < K - 1 ? sk : 0;

                for (int64_t d = 0; d < D; d++) {
                    const float *plane = x + at + d * sd;
                    if (shifts != NULL)
                        unroll_plane(unrolled + d * n, grad + at + d * sd, H, W, wrap(shifts[2 * b], H), wrap(shifts[2 * b + 1], W));
                    neighbours(around + d * n, plane, plane + before, plane + after, H, W, kap, gam);
                }
                for (int64_t i = 0; i < n; i++) scale[i] = 0.0f;
                for (int64_t d = 0; d < D; d++) {
                    const float *plane = x + at + d * sd;
#pragma omp simd
                    for (int64_t i = 0; i < n; i++) scale[i] += plane[i] * plane[i];
                }
#pragma omp simd
                for (int64_t i = 0; i < n; i++) { /* ∂R_B/∂x = α (Σ_d x²)^{α/2−1} x */
                    const float energy = scale[i], clamped = energy < ENERGY_FLOOR ? ENERGY_FLOOR : energy;
                    const float power = alpha == 3.0f ? sqrtf(clamped) * 3.0f : powf(clamped, alpha / 2.0f - 1.0f) * alpha;
                    slope[i] = energy >= ENERGY_FLOOR ? power : 0.0f;
                }

                const float centre = 4.0f * kap + 2.0f * gam;
                float *norm = scale; /* Σ_d of the stepped values squared, then the projection's scale */
                for (int64_t i = 0; i < n; i++) norm[i] = 0.0f;
                double sum = 0.0;
                for (int64_t d = 0; d < D; d++) {
                    const float *plane = x + at + d * sd, *nb = around + d * n;
                    const float *g_in = shifts != NULL ? unrolled + d * n : grad + at + d * sd;
                    const int64_t moment = ((b * K + k) * D + d) * n;
                    float *avg = exp_avg + moment, *avg_sq = exp_avg_sq + moment, *out = stepped + d * n;
                    float partial = 0.0f;
#pragma omp simd reduction(+ : partial)
                    for (int64_t i = 0; i < n; i++) {
                        const float xc = plane[i];
                        /* ½ ∂R_TV/∂x = Σ over axes and both directions of (x − neighbour) */
                        const float variation = centre * xc - nb[i];
                        const float energy = slope[i] * xc;
                        /* Euler: x·∇R_B = α R_B, x·∇R_TV = 2 R_TV */
                        partial += xc * (lambda_b_over_alpha * energy + lambda_tv * variation);
                        float g = g_in[i];
                        g = fabsf(g) <= FLOAT_MAX ? g : 0.0f;
                        g = g + lambda_b * energy + lambda_tv * (2.0f * variation);
                        const float m = avg[i] * beta1 + g * (1.0f - beta1);
                        const float v = avg_sq[i] * beta2 + g * g * (1.0f - beta2);
                        const float stepped_value = xc - step_size * m / (sqrtf(v) / bias2_sqrt + eps);
                        out[i] = stepped_value;
                        norm[i] += stepped_value * stepped_value;
                        if (kept) {
                            avg[i] = m;
                            avg_sq[i] = v;
                        }
                    }
                    sum += partial;
                }

#pragma omp simd
                for (int64_t i = 0; i < n; i++) {
                    float length = sqrtf(norm[i]);
                    length = length < NORM_FLOOR ? NORM_FLOOR : length;
                    const float ratio = bound / length;
                    scale[i] = ratio > 1.0f ? 1.0f : ratio;
                }
                for (int64_t d = 0; d < D; d++) {
                    const float *plane = x + at + d * sd, *in = stepped + d * n;
                    float *out = x_out + at + d * sd;
                    if (kept) {
#pragma omp simd
                        for (int64_t i = 0; i < n; i++) out[i] = in[i] * scale[i];
                    } else {
                        memcpy(out, plane, (size_t)n * sizeof(float));
                    }
                    if (feed != NULL)
                        roll_plane(feed + at + d * sd, out, H, W, wrap(next_shifts[2 * b], H), wrap(next_shifts[2 * b + 1], W));
                }
                plane_penalty[b * K + k] = sum;
            }
        free(scratch);
    }
    for (int64_t b = 0; b < B; b++) { /* in a fixed order, whatever the threads */
        double sum = 0.0;
        for (int64_t k = 0; k < K; k++) sum += plane_penalty[b * K + k];
        penalty[b] = (float)sum;
    }
    return failed ? -1 : 0;
}

/* Several inputs' updates in one call, so that a step crosses from Python into C once: `args`
 * holds, per input, kt_fused_update's first 16 arguments in order, as addresses (the constants
 * pointed to are read as that function reads them). total[b] gets the sum of the inputs'
 * penalties, added in input order. */
int kt_fused_updates(int64_t count, const uintptr_t *args, float *total, int64_t batch, int threads) {
    for (int64_t b = 0; b < batch; b++) total[b] = 0.0f;
    for (int64_t i = 0; i < count; i++) {
        const uintptr_t *a = args + 16 * i;
        float *penalty = (float *)a[15];
        const int status = kt_fused_update(
            (const float *)a[0], (const float *)a[1], (float *)a[2], (float *)a[3], (float *)a[4], (float *)a[5],
            (const int64_t *)a[6], (const float *)a[7], (const int64_t *)a[8], (const int64_t *)a[9],
            (const float *)a[10], (const float *)a[11], (const uint8_t *)a[12], (const uint8_t *)a[13],
            (double *)a[14], penalty, threads);
        if (status != 0) return status;
        for (int64_t b = 0; b < batch; b++) total[b] += penalty[b];
    }
    return 0;
}

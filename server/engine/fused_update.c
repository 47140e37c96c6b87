/* One optimizer update of one input, fused into one pass per H×W plane (see native.py).
 *
 * The same arithmetic as update_input in step.py: the network's gradient with the
 * jitter undone and non-finite entries zeroed, plus the gradients of R_B (eq. 2) and
 * R_TV (eq. 3); Adam's moments; the step; the projection of every pixel's channel
 * vector onto the B-ball. It also writes next step's jittered copy of the result, so
 * the network's input costs no separate pass.
 *
 * Everything the Python side passes for one input is one `struct kt_input`, mirrored field for
 * field by native.NativeInput. A new regularizer is one weight field there, one inline function
 * for its gradient here and one torch function in regularizers.py.
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

/* One input's update for one step, mirrored field for field by native.NativeInput. */
struct kt_input {
    /* this step's buffers */
    const float *x;            /* the values, canonical view (read only: R_TV reads the old neighbours) */
    const float *grad;         /* the network's gradient w.r.t. the jittered input */
    float *x_out;              /* the stepped values (another buffer laid out as x) */
    float *feed;               /* NULL, or where x_out rolled by next_shifts goes (next step's input) */
    const int64_t *shifts;     /* [B, 2] this step's jitter (dy, dx), or NULL */
    const int64_t *next_shifts;
    const uint8_t *alive;      /* [B] samples still running */
    float step_size;           /* Adam: lr_t / (1 − β1^t), in the input's units */
    float bias2_sqrt;          /* Adam: √(1 − β2^t) */
    /* the same for the whole run */
    float *exp_avg, *exp_avg_sq; /* contiguous [B, K, D, H, W] */
    const float *kappa, *gamma;  /* [B] the settings' R_TV weights */
    const uint8_t *active;       /* [B] samples that read this input */
    double *plane_penalty;       /* [B·K] scratch */
    float *penalty;              /* [B] λ_B R_B + λ_TV R_TV at x */
    int64_t dims[5];             /* B, K, D, H, W */
    int64_t strides[3];          /* of B, K, D in x, grad, x_out and feed (H×W planes are contiguous) */
    float alpha, bound, lambda_b, lambda_tv; /* regularizers.RegularizerWeights */
    float beta1, beta2, eps;                 /* optim.Adam */
};

/* R_B (eq. 2): ∂R_B/∂x = slope · x with slope = α (Σ_d x²)^{α/2−1}, 0 below ENERGY_FLOOR. */
static inline float local_energy_slope(float energy, float alpha) {
    const float clamped = energy < ENERGY_FLOOR ? ENERGY_FLOOR : energy;
    const float power = alpha == 3.0f ? sqrtf(clamped) * 3.0f : powf(clamped, alpha / 2.0f - 1.0f) * alpha;
    return energy >= ENERGY_FLOOR ? power : 0.0f;
}

/* R_TV (eq. 3): ½ ∂R_TV/∂x = Σ over axes and both directions of (x − neighbour), from the
 * weighted neighbour sum `around` (see neighbours) and centre = 4κ + 2γ. */
static inline float half_variation_gradient(float x, float around, float centre) { return centre * x - around; }

/* The network's gradient, a non-finite entry taken as 0. */
static inline float grad_or_zero(float g) { return fabsf(g) <= FLOAT_MAX ? g : 0.0f; }

/* The projection onto the B-ball (the pixel parameterization's constraint): the factor that scales a
 * pixel's channel vector of squared length `norm` back to length B where it is longer. */
static inline float ball_scale(float norm, float bound) {
    float length = sqrtf(norm);
    length = length < NORM_FLOOR ? NORM_FLOOR : length;
    const float ratio = bound / length;
    return ratio > 1.0f ? 1.0f : ratio;
}

/* Adam's moments (torch.optim.Adam: no weight decay, no amsgrad) and the stepped value. */
static inline float adam_step(float x, float g, float *m, float *v, const struct kt_input *in) {
    *m = *m * in->beta1 + g * (1.0f - in->beta1);
    *v = *v * in->beta2 + g * g * (1.0f - in->beta2);
    return x - in->step_size * *m / (sqrtf(*v) / in->bias2_sqrt + in->eps);
}

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

/* Writes in->penalty[b] = λ_B R_B + λ_TV R_TV of sample b at x. Samples not both alive and active are
 * copied unchanged. Returns 0, or -1 when scratch memory could not be allocated (nothing is then trustworthy). */
static int fused_update(const struct kt_input *in, int threads) {
    const int64_t B = in->dims[0], K = in->dims[1], D = in->dims[2], H = in->dims[3], W = in->dims[4];
    const int64_t sb = in->strides[0], sk = in->strides[1], sd = in->strides[2];
    const int64_t n = H * W;
    const float alpha = in->alpha, bound = in->bound, lambda_b = in->lambda_b, lambda_tv = in->lambda_tv;
    const float lambda_b_over_alpha = lambda_b / alpha;
    const float *x = in->x, *grad = in->grad;
    const int64_t *shifts = in->shifts, *next_shifts = in->next_shifts;
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
                const float kap = in->kappa[b], gam = in->gamma[b];
                const int kept = in->alive[b] && in->active[b];
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
                for (int64_t i = 0; i < n; i++) slope[i] = local_energy_slope(scale[i], alpha);

                const float centre = 4.0f * kap + 2.0f * gam;
                float *norm = scale; /* Σ_d of the stepped values squared, then the projection's scale */
                for (int64_t i = 0; i < n; i++) norm[i] = 0.0f;
                double sum = 0.0;
                for (int64_t d = 0; d < D; d++) {
                    const float *plane = x + at + d * sd, *nb = around + d * n;
                    const float *g_in = shifts != NULL ? unrolled + d * n : grad + at + d * sd;
                    const int64_t moment = ((b * K + k) * D + d) * n;
                    float *avg = in->exp_avg + moment, *avg_sq = in->exp_avg_sq + moment, *out = stepped + d * n;
                    float partial = 0.0f;
#pragma omp simd reduction(+ : partial)
                    for (int64_t i = 0; i < n; i++) {
                        const float xc = plane[i];
                        const float variation = half_variation_gradient(xc, nb[i], centre);
                        const float energy = slope[i] * xc;
                        /* Euler: x·∇R_B = α R_B, x·∇R_TV = 2 R_TV */
                        partial += xc * (lambda_b_over_alpha * energy + lambda_tv * variation);
                        float g = grad_or_zero(g_in[i]);
                        g = g + lambda_b * energy + lambda_tv * (2.0f * variation);
                        float m = avg[i], v = avg_sq[i];
                        const float stepped_value = adam_step(xc, g, &m, &v, in);
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
                for (int64_t i = 0; i < n; i++) scale[i] = ball_scale(norm[i], bound);
                for (int64_t d = 0; d < D; d++) {
                    const float *plane = x + at + d * sd, *from = stepped + d * n;
                    float *out = in->x_out + at + d * sd;
                    if (kept) {
#pragma omp simd
                        for (int64_t i = 0; i < n; i++) out[i] = from[i] * scale[i];
                    } else {
                        memcpy(out, plane, (size_t)n * sizeof(float));
                    }
                    if (in->feed != NULL)
                        roll_plane(in->feed + at + d * sd, out, H, W, wrap(next_shifts[2 * b], H), wrap(next_shifts[2 * b + 1], W));
                }
                in->plane_penalty[b * K + k] = sum;
            }
        free(scratch);
    }
    for (int64_t b = 0; b < B; b++) { /* in a fixed order, whatever the threads */
        double sum = 0.0;
        for (int64_t k = 0; k < K; k++) sum += in->plane_penalty[b * K + k];
        in->penalty[b] = (float)sum;
    }
    return failed ? -1 : 0;
}

/* Several inputs' updates in one call, so that a step crosses from Python into C once. total[b] gets
 * the sum of the inputs' penalties, added in input order. */
int kt_fused_updates(int64_t count, const struct kt_input *const *inputs, float *total, int64_t batch, int threads) {
    for (int64_t b = 0; b < batch; b++) total[b] = 0.0f;
    for (int64_t i = 0; i < count; i++) {
        const int status = fused_update(inputs[i], threads);
        if (status != 0) return status;
        for (int64_t b = 0; b < batch; b++) total[b] += inputs[i]->penalty[b];
    }
    return 0;
}

/* sizeof(struct kt_input), which native.py checks against its mirror before the first call. */
int64_t kt_input_size(void) { return (int64_t)sizeof(struct kt_input); }

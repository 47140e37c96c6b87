/* A chunk of per-clip maxima into one layer's accumulators, in one pass (see native_statistics.py).
 *
 * The same numbers as the numpy lines of ChannelStatistics._drain in statistics.py: the running
 * maximum and sum, the histogram over edges shared by the layer's channels, the
 * top k clips per channel, the per-class maximum and the per-class sum and count. numpy needs about twenty passes
 * over the chunk for these; here the chunk is walked once, row by row.
 *
 * values is [n, c], row-major (one row per clip). NaN spreads into the maximum, the sum
 * and the per-class maximum as numpy's maximum does; non-finite values are not counted
 * in the histogram and NaN ranks below every number in the top k.
 */
#include <math.h>
#include <stdint.h>

/* a ranks above b: larger, or a number where b is NaN (numpy sorts NaN last) */
static inline int ranks_above(float a, float b) { return a > b || (isnan(b) && !isnan(a)); }

/* numpy's maximum: NaN, once there, stays */
static inline float nan_max(float kept, float value) { return (value > kept || value != value) && kept == kept ? value : kept; }

#define LANES 16

/* How many of the n values are finite; when any are, their minimum and maximum go to low_high[0..1]. The first loop keeps LANES partial extremes, which skip NaN by their comparisons
 * and vectorize; infinities are rare and take a second, exact loop. */
int64_t kt_finite_range(const float *values, int64_t n, double *low_high) {
    float lows[LANES], highs[LANES];
    int64_t numbers[LANES];
    for (int l = 0; l < LANES; l++) lows[l] = INFINITY, highs[l] = -INFINITY, numbers[l] = 0;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            const float v = values[i + l];
            lows[l] = v < lows[l] ? v : lows[l];
            highs[l] = v > highs[l] ? v : highs[l];
            numbers[l] += v == v;
        }
    for (; i < n; i++) {
        const float v = values[i];
        lows[0] = v < lows[0] ? v : lows[0];
        highs[0] = v > highs[0] ? v : highs[0];
        numbers[0] += v == v;
    }
    float low = INFINITY, high = -INFINITY;
    int64_t count = 0;
    for (int l = 0; l < LANES; l++) {
        low = lows[l] < low ? lows[l] : low;
        high = highs[l] > high ? highs[l] : high;
        count += numbers[l];
    }
    if (isinf(low) || isinf(high)) {
        low = INFINITY, high = -INFINITY, count = 0;
        for (i = 0; i < n; i++) {
            const float v = values[i];
            if (!isfinite(v)) continue;
            count++;
            low = v < low ? v : low;
            high = v > high ? v : high;
        }
    }
    low_high[0] = low;
    low_high[1] = high;
    return count;
}

/* The histogram bin of each of a row's values: bin[j] with edge[b] <= v < edge[b + 1] (the last bin
 * closed on the right, as np.histogram) and counted[j] = 0 for a non-finite v. `edge` holds, for each
 * float64 edge, the smallest float32 at or above it, so float32 comparisons with it are exact
 * comparisons with the edge. Arithmetic guesses the bin; a step either way, decided by the edges,
 * makes it exact where bins are much wider than float32's spacing (`regular_edges`: the guess is then
 * off by far less than a bin). The loop vectorizes. */
static void bin_row(const float *restrict row, int64_t c, const float *restrict edge, int32_t bins,
                    float inverse_width, int32_t *restrict bin, int32_t *restrict counted) {
    const int32_t last = bins - 1;
    const float bottom = edge[0];
    for (int64_t j = 0; j < c; j++) {
        const float v = row[j];
        const float zero_if_finite = v - v; /* (an int flag here keeps GCC 12 from vectorizing) */
        float position = zero_if_finite == 0.0f ? (v - bottom) * inverse_width : 0.0f;
        position = position < 0.0f ? 0.0f : position;
        int32_t b = (int32_t)position;
        b = b > last ? last : b;
        b -= (int32_t)(v < edge[b]);
        b = b < 0 ? 0 : b;
        b += (int32_t)(v >= edge[b + 1]);
        bin[j] = b > last ? last : b;
        counted[j] = (int32_t)(zero_if_finite == 0.0f);
    }
}

/* Bins at least 1e-5 of the edges' magnitude wide (about 80 float32 steps): `bin_row`'s guess is then
 * within a hundredth of a bin. Narrower bins take `bin_row_exactly`. */
static int regular_edges(const float *edge, int64_t bins) {
    const float magnitude = fabsf(edge[0]) > fabsf(edge[bins]) ? fabsf(edge[0]) : fabsf(edge[bins]);
    return (edge[bins] - edge[0]) / (float)bins > 1e-5f * magnitude;
}

static void bin_row_exactly(const float *row, int64_t c, const float *edge, int32_t bins, int32_t *bin,
                            int32_t *counted) {
    for (int64_t j = 0; j < c; j++) {
        int32_t b = 0;
        while (b < bins - 1 && row[j] >= edge[b + 1]) b++;
        bin[j] = b;
        counted[j] = isfinite(row[j]);
    }
}

/* Inserts v at stream position p into one channel's descending top k (kept entries in use),
 * after the entries it does not rank above: a tie keeps the earlier clip first. */
static inline void insert_top(float *tv, int64_t *ti, int64_t k, int64_t kept, float v, int64_t p) {
    if (kept == k && !ranks_above(v, tv[k - 1])) return;
    int64_t at = kept < k ? kept : k - 1;
    while (at > 0 && ranks_above(v, tv[at - 1])) {
        tv[at] = tv[at - 1];
        ti[at] = ti[at - 1];
        at--;
    }
    tv[at] = v;
    ti[at] = p;
}

/* A value can enter a full top k only at or above this (-inf when the k-th is NaN); insert_top decides. */
static inline float entry_bar(float kth) { return isnan(kth) ? -INFINITY : kth; }

#define BLOCK 256

/* values [n, c] for clips at stream positions index [n] (ascending, after every clip seen before) with
 * labels [n] (-1: none). Updates maximum [c], sum [c] (float64; chunk_sum [c] is scratch), counts
 * [c, bins] over edge [bins + 1] (see bin_row), the top k [c, k] (kept entries in use; bar [c] is
 * scratch), per_class [classes, c] (maximum), class_sum [classes, c] (float64, added clip after clip
 * as numpy's add.at does) and class_count [classes]. Returns the entries now kept per channel:
 * min(k, kept + n). */
int64_t kt_channel_update(const float *values, int64_t n, int64_t c, const int64_t *index, const int64_t *labels,
                          float *maximum, double *sum, double *chunk_sum, const float *edge, int64_t bins,
                          int64_t *counts, float *top_values, int64_t *top_index, int64_t k, int64_t kept,
                          float *bar, float *per_class, int64_t classes, double *class_sum, int64_t *class_count) {
    const int regular = regular_edges(edge, bins);
    const float inverse_width = regular ? (float)bins / (edge[bins] - edge[0]) : 0.0f;
    int32_t bin[BLOCK], counted[BLOCK];
    for (int64_t j = 0; j < c; j++) {
        chunk_sum[j] = 0.0;
        bar[j] = kept == k ? entry_bar(top_values[j * k + k - 1]) : -INFINITY;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = values + i * c;
        for (int64_t j = 0; j < c; j++) {
            maximum[j] = nan_max(maximum[j], row[j]);
            chunk_sum[j] += row[j];
        }
        for (int64_t start = 0; start < c; start += BLOCK) {
            const int64_t width = c - start < BLOCK ? c - start : BLOCK;
            if (regular)
                bin_row(row + start, width, edge, (int32_t)bins, inverse_width, bin, counted);
            else
                bin_row_exactly(row + start, width, edge, (int32_t)bins, bin, counted);
            int64_t *block_counts = counts + start * bins;
            for (int64_t j = 0; j < width; j++) block_counts[j * bins + bin[j]] += counted[j];
        }
        if (labels[i] >= 0 && labels[i] < classes) {
            float *by_class = per_class + labels[i] * c;
            double *class_total = class_sum + labels[i] * c;
            for (int64_t j = 0; j < c; j++) {
                by_class[j] = nan_max(by_class[j], row[j]);
                class_total[j] += (double)row[j];
            }
            class_count[labels[i]]++;
        }
        if (kept < k) {
            for (int64_t j = 0; j < c; j++) insert_top(top_values + j * k, top_index + j * k, k, kept, row[j], index[i]);
            if (++kept == k)
                for (int64_t j = 0; j < c; j++) bar[j] = entry_bar(top_values[j * k + k - 1]);
            continue;
        }
        for (int64_t j = 0; j < c; j++) {
            if (!(row[j] >= bar[j])) continue; /* NaN never enters a full top k */
            insert_top(top_values + j * k, top_index + j * k, k, k, row[j], index[i]);
            bar[j] = entry_bar(top_values[j * k + k - 1]);
        }
    }
    /* the chunk's sum first, then the running sum: numpy's values.sum(axis=0) added at once */
    for (int64_t j = 0; j < c; j++) sum[j] += chunk_sum[j];
    return kept;
}

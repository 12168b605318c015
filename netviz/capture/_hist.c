/*
 * One-pass histograms of a dense float32/float64 array on fixed bin grids,
 * for netviz's histogram probes on CPU (see netviz/capture/_fused_hist.py,
 * which compiles this file at first use, and netviz/capture/histogram.py for
 * the grids and the layout of the counts).
 *
 * Every function ADDS the counts of x[0..n) to out[] (float64, exact up to
 * 2**53 per bin), so several tensors (a module's parameter gradients) fill
 * one histogram without being concatenated. out[] holds the finite bins in
 * ascending value order, then the NaN, +Inf and -Inf counts.
 *
 * Log grid (netviz_hist_log_*): the bin of a finite value is read off its bit
 * pattern. IEEE magnitudes order like their bit patterns, and bits >> shift
 * (shift = mantissa bits - log2(bins per octave)) is octave * per_octave +
 * the top mantissa bits: one subtraction and one shift give the magnitude
 * bin. Bins are half-open [lo, hi) in value space, as numpy.histogram's: a
 * negative x = -m lies in [-b, -a) when a < m <= b, which is the magnitude
 * bin of the pattern just below m's (bits - 1). Zero (also -0.0) has its own
 * bin.
 *
 * Linear grid (netviz_hist_lin_*): bin = floor((x - lo) / width), then
 * corrected by comparing x with the float64 edges themselves, so a value
 * exactly on an edge lands where numpy.histogram puts it.
 *
 * Threads (OpenMP, which must be PyTorch's own runtime: the loader checks)
 * take contiguous runs of the array; each counts into LANES private
 * histograms (consecutive elements go to different lanes, so a run of equal
 * bins does not serialise on one counter), merged at the end.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#define MAX_THREADS 256
#define LANES 4
/* below this many elements a parallel region costs more than it saves */
#define PARALLEL_MIN (1 << 16)

/* Adds the counts of IDXFN(x, i, ...) over i in [0, n) to out[0..nf), over threads. */
#define HIST_DRIVER(IDXFN, ...)                                                    \
    int nt = n >= PARALLEL_MIN ? omp_get_max_threads() : 1;                        \
    if (nt > MAX_THREADS) nt = MAX_THREADS;                                        \
    if (nt < 1) nt = 1;                                                            \
    int64_t *parts = (int64_t *)calloc((size_t)nt * LANES * (size_t)nf, sizeof(int64_t)); \
    if (!parts) return -1;                                                         \
    int used = 1;                                                                  \
    _Pragma("omp parallel num_threads(nt) if(nt > 1)")                             \
    {                                                                              \
        int t = omp_get_thread_num(), T_ = omp_get_num_threads();                  \
        int64_t lo_i = n * t / T_, hi_i = n * (t + 1) / T_;                        \
        int64_t *h = parts + (size_t)t * LANES * (size_t)nf;                       \
        int64_t i = lo_i;                                                          \
        for (; i + LANES <= hi_i; i += LANES) {                                    \
            h[IDXFN(x, i, __VA_ARGS__)]++;                                         \
            h[nf + IDXFN(x, i + 1, __VA_ARGS__)]++;                                \
            h[2 * nf + IDXFN(x, i + 2, __VA_ARGS__)]++;                            \
            h[3 * nf + IDXFN(x, i + 3, __VA_ARGS__)]++;                            \
        }                                                                          \
        for (; i < hi_i; i++) h[IDXFN(x, i, __VA_ARGS__)]++;                       \
        if (t == 0) used = T_;                                                     \
    }                                                                              \
    for (int64_t k = 0; k < nf; k++) {                                             \
        int64_t s = 0;                                                             \
        for (int64_t j = 0; j < (int64_t)used * LANES; j++) s += parts[j * nf + k]; \
        out[k] += (double)s;                                                       \
    }                                                                              \
    free(parts);                                                                   \
    return 0;

/* LOG_FN(name, T, UINT, SIGN, EXP): log grid with nm magnitude bins per sign;
 * lo = bit pattern of the smallest magnitude edge, shift as above.
 * Layout (nf = 2 nm + 8): 0 = [-inf, -max), 1..nm negative magnitudes
 * (descending), nm+1 = [-min, 0), nm+2 = zero, nm+3 = (0, min),
 * nm+4..2nm+3 positive magnitudes, 2nm+4 = [max, inf), then NaN, +Inf, -Inf.
 * Returns 0, or -1 when out of memory (out untouched).
 */
#define LOG_FN(name, idx, T, UINT, SIGN, EXP)                                      \
    static inline int64_t idx(const T *x, int64_t i, UINT lo, int shift, int64_t nm) { \
        UINT b;                                                                    \
        memcpy(&b, x + i, sizeof b);                                               \
        UINT u = b & ~(UINT)(SIGN);                                                \
        int neg = (b & (UINT)(SIGN)) != 0;                                         \
        if (u >= (UINT)(EXP))                                                      \
            return u > (UINT)(EXP) ? 2 * nm + 5 : (neg ? 2 * nm + 7 : 2 * nm + 6); \
        if (u == 0) return nm + 2;                                                 \
        UINT v = u - (UINT)neg;                                                    \
        int64_t c = v < lo ? 0 : (int64_t)((v - lo) >> shift) + 1;                 \
        if (c > nm + 1) c = nm + 1;                                                \
        return neg ? nm + 1 - c : nm + 3 + c;                                      \
    }                                                                              \
    int name(const T *x, int64_t n, uint64_t lo_bits, int shift, int64_t nm, double *out) { \
        const UINT lo = (UINT)lo_bits;                                             \
        const int64_t nf = 2 * nm + 8;                                             \
        if (n <= 0) return 0;                                                      \
        HIST_DRIVER(idx, lo, shift, nm)                                            \
    }

/* LIN_FN: linear grid, nb bins between e[0] and e[nb]; layout (nf = nb + 5):
 * 0 = below e[0], 1..nb the bins, nb+1 = at or above e[nb], then NaN, +Inf, -Inf. */
#define LIN_FN(name, idx, T, UINT, SIGN, EXP)                                      \
    static inline int64_t idx(const T *x, int64_t i, const double *e, int64_t nb, double inv) { \
        UINT b;                                                                    \
        memcpy(&b, x + i, sizeof b);                                               \
        UINT u = b & ~(UINT)(SIGN);                                                \
        if (u >= (UINT)(EXP))                                                      \
            return u > (UINT)(EXP) ? nb + 2 : ((b & (UINT)(SIGN)) ? nb + 4 : nb + 3); \
        double v = (double)x[i];                                                   \
        double t = (v - e[0]) * inv;                                               \
        int64_t k = t < 0 ? -1 : (t >= (double)nb ? nb : (int64_t)t);             \
        while (k >= 0 && v < e[k]) k--;                                            \
        while (k < nb && v >= e[k + 1]) k++;                                       \
        return k + 1;                                                              \
    }                                                                              \
    int name(const T *x, int64_t n, const double *e, int64_t nb, double *out) {    \
        const int64_t nf = nb + 5;                                                 \
        const double inv = (double)nb / (e[nb] - e[0]);                            \
        if (n <= 0) return 0;                                                      \
        HIST_DRIVER(idx, e, nb, inv)                                               \
    }

LOG_FN(netviz_hist_log_f32, log_index_f32, float, uint32_t, 0x80000000u, 0x7f800000u)
LOG_FN(netviz_hist_log_f64, log_index_f64, double, uint64_t, 0x8000000000000000ull,
       0x7ff0000000000000ull)
LIN_FN(netviz_hist_lin_f32, lin_index_f32, float, uint32_t, 0x80000000u, 0x7f800000u)
LIN_FN(netviz_hist_lin_f64, lin_index_f64, double, uint64_t, 0x8000000000000000ull,
       0x7ff0000000000000ull)

/* the OpenMP runtime's thread count, to check that it is PyTorch's */
int netviz_hist_omp_max_threads(void) { return omp_get_max_threads(); }
void netviz_hist_omp_set_num_threads(int n) { omp_set_num_threads(n); }

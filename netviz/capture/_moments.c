/*
 * One-pass raw moments of a dense float32/float64 array, for netviz's
 * activation statistics on CPU (see netviz/capture/_fused.py, which compiles
 * this file at first use, and netviz/capture/stats.py for the layout).
 *
 * The array is cut into blocks of BLOCK elements. Each block is read once
 * from memory for counts, sums, |sums|, extremes and the spread (one
 * vectorised loop: `omp simd` reductions, exact IEEE semantics, no
 * fast-math); blocks holding NaN or infinities, or whose spread would lose
 * digits to cancellation, are read again from L1 cache (see BLOCK_FN).
 * Blocks are merged in double precision with Chan et al.'s parallel update; threads (OpenMP, which must be
 * PyTorch's own runtime: the loader checks) take contiguous runs of blocks and
 * are merged in thread order.
 *
 * out[0..8] = numel, nonfinite, sum, centre (finite mean), dev (sqrt of the sum
 * of squared deviations from centre), min, max (of finite elements; +inf/-inf
 * when there are none), l1 (sum of |finite|), nonzero (finite non-zeros).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <omp.h>

#define BLOCK 1024
#define MAX_THREADS 256
/* below this many blocks a parallel region costs more than it saves */
#define PARALLEL_BLOCKS 64

typedef struct {
    double n_f, sum, mean, m2, mn, mx, l1, nz;
} acc_t;

static void acc_init(acc_t *a) {
    a->n_f = 0; a->sum = 0; a->mean = 0; a->m2 = 0;
    a->mn = INFINITY; a->mx = -INFINITY; a->l1 = 0; a->nz = 0;
}

static void acc_merge(acc_t *a, const acc_t *b) {
    if (b->n_f > 0) {
        if (a->n_f == 0) {
            a->mean = b->mean;
            a->m2 = b->m2;
            a->n_f = b->n_f;
        } else {
            double n = a->n_f + b->n_f, d = b->mean - a->mean;
            a->mean += d * (b->n_f / n);
            a->m2 += b->m2 + d * d * (a->n_f * b->n_f / n);
            a->n_f = n;
        }
    }
    a->sum += b->sum;
    a->l1 += b->l1;
    a->nz += b->nz;
    if (b->mn < a->mn) a->mn = b->mn;
    if (b->mx > a->mx) a->mx = b->mx;
}

/* BLOCK_FN(name, T, UINT, EXP_MASK, ABS): the per-block kernel for element type T.
 *
 * A first loop assumes every element is finite and takes everything in one
 * read: sums of t = v - K and t^2 around the block's first element K (a value
 * of the data, so a large common offset cancels exactly), |v|, non-zeros and
 * extremes. Any NaN or infinity makes the sum of t non-finite; such a block
 * (rare) is done again by a loop that masks non-finite elements out. The
 * spread is then sum(t^2) - sum(t)^2 / n, unless K lies so far from the block
 * mean that this difference would lose digits (or the block had non-finite
 * elements): then the deviations from the mean c are summed once more, from
 * L1 cache (corrected two-pass algorithm of Chan, Golub & LeVeque:
 * e = sum(v - c) fixes the rounding of c).
 */
#define BLOCK_FN(name, T, UINT, EXP_MASK, ABS)                                     \
    static void name(const T *p, int64_t m, acc_t *out) {                          \
        const T K = p[0];                                                          \
        T s = 0, q = 0, l1 = 0, nz = 0, nf = (T)m;                                 \
        T mn = (T)INFINITY, mx = -(T)INFINITY;                                     \
        _Pragma("omp simd reduction(+:s,q,l1,nz) reduction(min:mn) reduction(max:mx)") \
        for (int64_t i = 0; i < m; i++) {                                          \
            T v = p[i];                                                            \
            T t = v - K;                                                           \
            s += t;                                                                \
            q += t * t;                                                            \
            l1 += ABS(v);                                                          \
            nz += v != 0 ? (T)1 : (T)0;                                            \
            mn = v < mn ? v : mn;                                                  \
            mx = v > mx ? v : mx;                                                  \
        }                                                                          \
        out->l1 = l1; out->nz = nz; out->mn = mn; out->mx = mx; out->n_f = nf;     \
        if (isfinite(s) && isfinite(q)                                             \
            && (double)s * (double)s <= 0.9 * (double)m * (double)q) {             \
            /* all finite, and sum(t^2) keeps at least a tenth of its digits */    \
            out->sum = m * (double)K + (double)s;                                  \
            out->mean = (double)K + (double)s / m;                                 \
            out->m2 = (double)q - (double)s * (double)s / m;                       \
            if (out->m2 < 0) out->m2 = 0;                                          \
            return;                                                                \
        }                                                                          \
        T c;                                                                       \
        if (isfinite(s)) {                                                         \
            c = (T)((double)K + (double)s / m);                                    \
        } else {                                                                   \
            s = 0; l1 = 0; nz = 0; nf = 0; mn = (T)INFINITY; mx = -(T)INFINITY;    \
            _Pragma("omp simd reduction(+:s,l1,nz,nf) reduction(min:mn) reduction(max:mx)") \
            for (int64_t i = 0; i < m; i++) {                                      \
                T v = p[i];                                                        \
                UINT bits;                                                         \
                memcpy(&bits, &v, sizeof bits);                                    \
                int fin = (bits & EXP_MASK) != EXP_MASK;                           \
                T a = fin ? v : (T)0;                                              \
                T lo = fin ? v : (T)INFINITY, hi = fin ? v : -(T)INFINITY;         \
                s += a;                                                            \
                l1 += ABS(a);                                                      \
                nz += a != 0 ? (T)1 : (T)0;                                        \
                nf += fin ? (T)1 : (T)0;                                           \
                mn = lo < mn ? lo : mn;                                            \
                mx = hi > mx ? hi : mx;                                            \
            }                                                                      \
            out->l1 = l1; out->nz = nz; out->mn = mn; out->mx = mx; out->n_f = nf; \
            c = nf > 0 ? s / nf : (T)0;                                            \
        }                                                                          \
        T e = 0, d2 = 0;                                                           \
        if (nf == (T)m) {                                                          \
            _Pragma("omp simd reduction(+:e,d2)")                                  \
            for (int64_t i = 0; i < m; i++) {                                      \
                T t = p[i] - c;                                                    \
                e += t;                                                            \
                d2 += t * t;                                                       \
            }                                                                      \
        } else {                                                                   \
            _Pragma("omp simd reduction(+:e,d2)")                                  \
            for (int64_t i = 0; i < m; i++) {                                      \
                T v = p[i];                                                        \
                UINT bits;                                                         \
                memcpy(&bits, &v, sizeof bits);                                    \
                T t = (bits & EXP_MASK) != EXP_MASK ? v - c : (T)0;                \
                e += t;                                                            \
                d2 += t * t;                                                       \
            }                                                                      \
        }                                                                          \
        out->sum = nf * (double)c + (double)e;                                     \
        out->mean = nf > 0 ? (double)c + (double)e / nf : 0.0;                     \
        out->m2 = nf > 0 ? (double)d2 - (double)e * (double)e / nf : 0.0;          \
        if (out->m2 < 0) out->m2 = 0;                                              \
    }

BLOCK_FN(block_f32, float, uint32_t, 0x7f800000u, fabsf)
BLOCK_FN(block_f64, double, uint64_t, 0x7ff0000000000000ull, fabs)

#define MOMENTS_FN(name, T, block)                                                 \
    void name(const T *x, int64_t n, double *out) {                                \
        int64_t nb = (n + BLOCK - 1) / BLOCK;                                      \
        int nt = nb >= PARALLEL_BLOCKS ? omp_get_max_threads() : 1;                \
        if (nt > MAX_THREADS) nt = MAX_THREADS;                                    \
        if (nt < 1) nt = 1;                                                        \
        acc_t parts[MAX_THREADS];                                                  \
        int used = 1;                                                              \
        _Pragma("omp parallel num_threads(nt) if(nt > 1)")                         \
        {                                                                          \
            int t = omp_get_thread_num(), T_ = omp_get_num_threads();              \
            int64_t lo = nb * t / T_, hi = nb * (t + 1) / T_;                      \
            acc_t a, b;                                                            \
            acc_init(&a);                                                          \
            for (int64_t j = lo; j < hi; j++) {                                    \
                int64_t start = j * BLOCK;                                         \
                int64_t m = n - start < BLOCK ? n - start : BLOCK;                 \
                block(x + start, m, &b);                                           \
                acc_merge(&a, &b);                                                 \
            }                                                                      \
            parts[t] = a;                                                          \
            if (t == 0) used = T_;                                                 \
        }                                                                          \
        acc_t a;                                                                   \
        acc_init(&a);                                                              \
        for (int t = 0; t < used; t++) acc_merge(&a, &parts[t]);                   \
        out[0] = (double)n;                                                        \
        out[1] = (double)n - a.n_f;                                                \
        out[2] = a.sum;                                                            \
        out[3] = a.mean;                                                           \
        out[4] = sqrt(a.m2);                                                       \
        out[5] = a.mn;                                                             \
        out[6] = a.mx;                                                             \
        out[7] = a.l1;                                                             \
        out[8] = a.nz;                                                             \
    }

MOMENTS_FN(netviz_moments_f32, float, block_f32)
MOMENTS_FN(netviz_moments_f64, double, block_f64)

/* the OpenMP runtime's thread count, to check that it is PyTorch's */
int netviz_omp_max_threads(void) { return omp_get_max_threads(); }
void netviz_omp_set_num_threads(int n) { omp_set_num_threads(n); }

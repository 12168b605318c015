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
 * Squares of large or tiny values would overflow or lose their digits to
 * underflow: where the largest finite magnitude lies outside [LO, HI] for
 * the element type (see SCALE_LIMITS), the array is read a second time with
 * every value multiplied by a power of two S that brings it near 1 (exact),
 * counts and extremes still taken from the unscaled values, and the sums are
 * divided by S in double precision at the end (LAPACK's nrm2 scales the same
 * way). Ordinary data is read once.
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

/* BLOCK_FN(name, T, UINT, EXP_MASK, ABS, W): the per-block kernel for element type T.
 *
 * W(v) is the value summed: v itself, or v * S for the scaled second read
 * (sums, |sums| and spread are then in units of 1/S; non-zeros and extremes
 * always come from v).
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
#define BLOCK_FN(name, T, UINT, EXP_MASK, ABS, W)                                  \
    static void name(const T *p, int64_t m, T S, acc_t *out) {                     \
        (void)S;                                                                   \
        const T K = W(p[0]);                                                       \
        T s = 0, q = 0, l1 = 0, nz = 0, nf = (T)m;                                 \
        T mn = (T)INFINITY, mx = -(T)INFINITY;                                     \
        _Pragma("omp simd reduction(+:s,q,l1,nz) reduction(min:mn) reduction(max:mx)") \
        for (int64_t i = 0; i < m; i++) {                                          \
            T v = p[i];                                                            \
            T t = W(v) - K;                                                        \
            s += t;                                                                \
            q += t * t;                                                            \
            l1 += ABS(W(v));                                                       \
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
                T a = fin ? W(v) : (T)0;                                           \
                T lo = fin ? v : (T)INFINITY, hi = fin ? v : -(T)INFINITY;         \
                s += a;                                                            \
                l1 += ABS(a);                                                      \
                nz += (fin && v != 0) ? (T)1 : (T)0;                               \
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
                T t = W(p[i]) - c;                                                 \
                e += t;                                                            \
                d2 += t * t;                                                       \
            }                                                                      \
        } else {                                                                   \
            _Pragma("omp simd reduction(+:e,d2)")                                  \
            for (int64_t i = 0; i < m; i++) {                                      \
                T v = p[i];                                                        \
                UINT bits;                                                         \
                memcpy(&bits, &v, sizeof bits);                                    \
                T t = (bits & EXP_MASK) != EXP_MASK ? W(v) - c : (T)0;             \
                e += t;                                                            \
                d2 += t * t;                                                       \
            }                                                                      \
        }                                                                          \
        out->sum = nf * (double)c + (double)e;                                     \
        out->mean = nf > 0 ? (double)c + (double)e / nf : 0.0;                     \
        out->m2 = nf > 0 ? (double)d2 - (double)e * (double)e / nf : 0.0;          \
        if (out->m2 < 0) out->m2 = 0;                                              \
    }

#define PLAIN(v) (v)
#define SCALED(v) ((v) * S)
BLOCK_FN(block_f32, float, uint32_t, 0x7f800000u, fabsf, PLAIN)
BLOCK_FN(block_f32_scaled, float, uint32_t, 0x7f800000u, fabsf, SCALED)
BLOCK_FN(block_f64, double, uint64_t, 0x7ff0000000000000ull, fabs, PLAIN)
BLOCK_FN(block_f64_scaled, double, uint64_t, 0x7ff0000000000000ull, fabs, SCALED)

/* SCALE_LIMITS: magnitudes [2^LO_EXP, 2^HI_EXP] of the largest finite value
 * that a plain read handles exactly: with values up to 2^HI_EXP no block sum
 * of squares (1024 terms of at most (2 * 2^HI_EXP)^2) overflows, and with the
 * largest value at least 2^LO_EXP a spread of one unit in the last place
 * still has a normal square. Outside, the array is read again scaled.
 */
#define F32_LO_EXP (-30)
#define F32_HI_EXP 50
#define F32_MAX_SHIFT 126
#define F64_LO_EXP (-400)
#define F64_HI_EXP 500
#define F64_MAX_SHIFT 1022

#define MOMENTS_FN(name, T, block, block_scaled, LO_EXP, HI_EXP, MAX_SHIFT)       \
    static void name##_run(const T *x, int64_t n, T S, int scaled, acc_t *res) {   \
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
                if (scaled)                                                        \
                    block_scaled(x + start, m, S, &b);                             \
                else                                                               \
                    block(x + start, m, S, &b);                                    \
                acc_merge(&a, &b);                                                 \
            }                                                                      \
            parts[t] = a;                                                          \
            if (t == 0) used = T_;                                                 \
        }                                                                          \
        acc_init(res);                                                             \
        for (int t = 0; t < used; t++) acc_merge(res, &parts[t]);                  \
    }                                                                              \
    /* the moments of x from a's first read: read again scaled if need be, fill out */ \
    static void name##_finish(const T *x, int64_t n, acc_t a, double *out) {       \
        double inv = 1.0; /* 1 / S */                                              \
        if (a.n_f > 0) {                                                           \
            double amax = fabs(a.mn) > fabs(a.mx) ? fabs(a.mn) : fabs(a.mx);       \
            int e;                                                                 \
            frexp(amax, &e); /* amax = f * 2^e, 0.5 <= f < 1 */                   \
            if (amax > 0 && (e > HI_EXP || e < LO_EXP)) {                          \
                if (e > MAX_SHIFT) e = MAX_SHIFT;                                  \
                if (e < -MAX_SHIFT) e = -MAX_SHIFT;                                \
                double mn = a.mn, mx = a.mx, nz = a.nz;                            \
                name##_run(x, n, (T)ldexp(1.0, -e), 1, &a);                        \
                a.mn = mn; a.mx = mx; a.nz = nz;                                   \
                inv = ldexp(1.0, e);                                               \
            }                                                                      \
        }                                                                          \
        out[0] = (double)n;                                                        \
        out[1] = (double)n - a.n_f;                                                \
        out[2] = a.sum * inv;                                                      \
        out[3] = a.mean * inv;                                                     \
        out[4] = sqrt(a.m2) * inv;                                                 \
        out[5] = a.mn;                                                             \
        out[6] = a.mx;                                                             \
        out[7] = a.l1 * inv;                                                       \
        out[8] = a.nz;                                                             \
    }                                                                              \
    void name(const T *x, int64_t n, double *out) {                                \
        acc_t a;                                                                   \
        name##_run(x, n, (T)1, 0, &a);                                             \
        name##_finish(x, n, a, out);                                               \
    }

MOMENTS_FN(netviz_moments_f32, float, block_f32, block_f32_scaled, F32_LO_EXP, F32_HI_EXP,
           F32_MAX_SHIFT)
MOMENTS_FN(netviz_moments_f64, double, block_f64, block_f64_scaled, F64_LO_EXP, F64_HI_EXP,
           F64_MAX_SHIFT)

/* the OpenMP runtime's thread count, to check that it is PyTorch's */
int netviz_omp_max_threads(void) { return omp_get_max_threads(); }
void netviz_omp_set_num_threads(int n) { omp_set_num_threads(n); }

/* Sums of squares of many arrays at once (gradient and weight norms):
 * out[i] = sum of ptrs[i][0..lens[i]) squared, in double; f64[i] says whether
 * array i holds doubles (else floats). Float blocks of BLOCK elements are
 * summed in float (at most 64 terms per SIMD lane: relative error below
 * 4e-6) unless that sum is not finite (overflow, or NaN/Inf in the data) or
 * the block's largest magnitude is below 2^-40 (squares lose digits to
 * underflow): then the block is summed again in double, where no square of
 * a float overflows or underflows, and NaN/Inf propagate as in the exact sum.
 * Blocks merge in double; large arrays are split over PyTorch's OpenMP
 * threads in contiguous runs, merged in thread order (deterministic).
 */
static double sumsq_block_f32(const float *p, int64_t m) {
    float q = 0, mx = 0;
    _Pragma("omp simd reduction(+:q) reduction(max:mx)")
    for (int64_t i = 0; i < m; i++) {
        float v = p[i], a = fabsf(v);
        q += v * v;
        mx = a > mx ? a : mx;
    }
    if (isfinite(q) && !(mx > 0 && mx < 0x1p-40f)) return (double)q;
    double d = 0;
    _Pragma("omp simd reduction(+:d)")
    for (int64_t i = 0; i < m; i++) {
        double v = (double)p[i];
        d += v * v;
    }
    return d;
}

static double sumsq_block_f64(const double *p, int64_t m) {
    double d = 0;
    _Pragma("omp simd reduction(+:d)")
    for (int64_t i = 0; i < m; i++) d += p[i] * p[i];
    return d;
}

static double sumsq_one(const void *x, int64_t n, int f64) {
    int64_t nb = (n + BLOCK - 1) / BLOCK;
    int nt = nb >= PARALLEL_BLOCKS ? omp_get_max_threads() : 1;
    if (nt > MAX_THREADS) nt = MAX_THREADS;
    if (nt < 1) nt = 1;
    double parts[MAX_THREADS];
    int used = 1;
    _Pragma("omp parallel num_threads(nt) if(nt > 1)")
    {
        int t = omp_get_thread_num(), T_ = omp_get_num_threads();
        int64_t lo = nb * t / T_, hi = nb * (t + 1) / T_;
        double s = 0;
        for (int64_t j = lo; j < hi; j++) {
            int64_t start = j * BLOCK;
            int64_t m = n - start < BLOCK ? n - start : BLOCK;
            s += f64 ? sumsq_block_f64((const double *)x + start, m)
                     : sumsq_block_f32((const float *)x + start, m);
        }
        parts[t] = s;
        if (t == 0) used = T_;
    }
    double s = 0;
    for (int t = 0; t < used; t++) s += parts[t];
    return s;
}

void netviz_sumsq(const void **ptrs, const int64_t *lens, const int32_t *f64, int64_t count,
                  double *out) {
    for (int64_t i = 0; i < count; i++) out[i] = sumsq_one(ptrs[i], lens[i], f64[i]);
}

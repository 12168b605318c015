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
 *
 * Moments and counts in one read (netviz_mh_*): an activation that has both
 * the activation_stats and the activation_hist probe is read from memory
 * once. This file includes _moments.c; each of its blocks (BLOCK elements,
 * 4 or 8 KiB) is read from memory by the moments kernel, and the histogram's
 * index loop and counters then read it again from L1 cache. Blocks, threads
 * and merge order are those of netviz_moments_*, so the moments are the
 * moments kernel's (to the last bits of a sum where the compiler contracts a
 * multiply-add differently after inlining).
 */
#include <stdlib.h>
#include "_moments.c"

#ifndef LANES
#define LANES 4
#endif
#ifndef CTR
#define CTR int64_t
#endif
#define CTR_T CTR
/* below this many elements a parallel region costs more than it saves */
#define PARALLEL_MIN (1 << 16)
#define HIST_BLOCK 512

/* Each thread counts blocks of BLOCK elements: a vectorised loop (`omp
 * simd`, branch-free) writes the block's bin indices to a small buffer, then
 * a scalar loop adds them to LANES private histograms (consecutive elements go
 * to different lanes, so a run of equal bins does not serialise on one
 * counter). INDEX_BLOCK(p, m, ix) fills ix[0..m) for the block at p; FIX(p, j,
 * k) may correct index k of element j in the scalar loop. Counts of all
 * threads and lanes are summed into out[0..nf) at the end.
 * Returns 0, or -1 when out of memory (out untouched). */
#define HIST_DRIVER(T, UINT, SINT, BITS, EXP, INDEX_BLOCK, FIX) \
    int nt = n >= PARALLEL_MIN ? omp_get_max_threads() : 1; \
    if (nt > MAX_THREADS) nt = MAX_THREADS; \
    if (nt < 1) nt = 1; \
    CTR *parts = (CTR *)calloc((size_t)nt * LANES * (size_t)nf, sizeof(CTR)); \
    if (!parts) return -1; \
    int used = 1; \
    _Pragma("omp parallel num_threads(nt) if(nt > 1)") \
    { \
        int t = omp_get_thread_num(), T_ = omp_get_num_threads(); \
        int64_t lo_i = n * t / T_, hi_i = n * (t + 1) / T_; \
        CTR *h = parts + (size_t)t * LANES * (size_t)nf; \
        int32_t ix[HIST_BLOCK]; \
        for (int64_t start = lo_i; start < hi_i; start += HIST_BLOCK) { \
            const T *p = x + start; \
            int64_t m = hi_i - start < HIST_BLOCK ? hi_i - start : HIST_BLOCK; \
            COUNT_BLOCK(T, UINT, SINT, BITS, EXP, INDEX_BLOCK, FIX, p, m, ix, h, 0); \
        } \
        if (t == 0) used = T_; \
    } \
    SUM_PARTS(parts, used, nf, out); \
    return 0;

/* the block's bin indices (vectorised), then LANES private counters h */
#define COUNT_BLOCK(T, UINT, SINT, BITS, EXP, INDEX_BLOCK, FIX, p, m_, ix, h, zeros) \
    do { \
        INDEX_BLOCK(T, UINT, SINT, BITS, EXP, p, m_, ix); \
        const int64_t kept_ = (zeros) ? SKIP_ZEROS(FIX, ix, m_, h) : (m_); \
        int64_t j = 0; \
        for (; j + LANES <= kept_; j += LANES) { \
            for (int l_ = 0; l_ < LANES; l_++) (h)[l_ * nf + FIX(p, j + l_, (ix)[j + l_])]++; \
        } \
        for (; j < kept_; j++) (h)[FIX(p, j, (ix)[j])]++; \
    } while (0)

#if defined(__AVX512F__) && !defined(NETVIZ_NO_SKIP)
#include <immintrin.h>
/* Log grid: drops the zero bin's indices (ReLU outputs: half the elements)
 * from ix[0..m), adds their number to h[zb] and returns how many are left:
 * the scalar loop then adds only those, one counter each. */
static inline int64_t drop_bin(int32_t *ix, int64_t m, int32_t zb, CTR_T *h) {
    int64_t c = 0, j = 0;
    const __m512i z = _mm512_set1_epi32(zb);
    for (; j + 16 <= m; j += 16) {
        __m512i v = _mm512_loadu_si512((const void *)(ix + j));
        __mmask16 k = _mm512_cmpneq_epi32_mask(v, z);
        _mm512_storeu_si512((void *)(ix + c), _mm512_maskz_compress_epi32(k, v));
        c += __builtin_popcount((unsigned)k);
    }
    for (; j < m; j++) {
        int32_t v = ix[j];
        ix[c] = v;
        c += v != zb;
    }
    h[zb] += (CTR_T)(m - c);
    return c;
}
#define SKIP_NO_FIX(ix, m, h) drop_bin(ix, m, (int32_t)(nm + 2), h) /* log grid */
#else
#define SKIP_NO_FIX(ix, m, h) (m)
#endif
#define SKIP_LIN_FIX(ix, m, h) (m) /* linear grid: zero is in no bin of its own */
#define SKIP_ZEROS(FIX, ix, m, h) SKIP_##FIX(ix, m, h)

/* adds the counters of `used` threads x LANES to out[0..nf), frees them */
#define SUM_PARTS(parts, used, nf, out) \
    do { \
        for (int64_t k = 0; k < (nf); k++) { \
            int64_t s_ = 0; \
            for (int64_t j = 0; j < (int64_t)(used) * LANES; j++) s_ += (parts)[j * (nf) + k]; \
            (out)[k] += (double)s_; \
        } \
        free(parts); \
    } while (0)

/* FUSED_DRIVER: the moments of x into mom[0..9) (MOM: the netviz_moments_*
 * function they match, BLK its block function) and the counts added to
 * out[0..nf), in one read: the blocks, thread split and merge order of
 * MOM##_run. */
#define FUSED_DRIVER(T, UINT, SINT, BITS, EXP, INDEX_BLOCK, FIX, MOM, BLK) \
    const int64_t nblk = (n + BLOCK - 1) / BLOCK; \
    int nt = nblk >= PARALLEL_BLOCKS ? omp_get_max_threads() : 1; \
    if (nt > MAX_THREADS) nt = MAX_THREADS; \
    if (nt < 1) nt = 1; \
    CTR *parts = (CTR *)calloc((size_t)nt * LANES * (size_t)nf, sizeof(CTR)); \
    if (!parts) return -1; \
    acc_t accs[MAX_THREADS]; \
    int used = 1; \
    _Pragma("omp parallel num_threads(nt) if(nt > 1)") \
    { \
        int t = omp_get_thread_num(), T_ = omp_get_num_threads(); \
        int64_t b_lo = nblk * t / T_, b_hi = nblk * (t + 1) / T_; \
        CTR *h = parts + (size_t)t * LANES * (size_t)nf; \
        int32_t ix[BLOCK]; \
        acc_t a, b; \
        acc_init(&a); \
        for (int64_t jb = b_lo; jb < b_hi; jb++) { \
            const T *p = x + jb * BLOCK; \
            int64_t m = n - jb * BLOCK < BLOCK ? n - jb * BLOCK : BLOCK; \
            BLK(p, m, (T)1, &b); \
            acc_merge(&a, &b); \
            /* a quarter or more zeros (ReLU): count them from the moments' \
             * non-zeros, not one by one */ \
            COUNT_BLOCK(T, UINT, SINT, BITS, EXP, INDEX_BLOCK, FIX, p, m, ix, h, \
                        4 * (b.n_f - b.nz) >= m); \
        } \
        accs[t] = a; \
        if (t == 0) used = T_; \
    } \
    acc_t all; \
    acc_init(&all); \
    for (int t = 0; t < used; t++) acc_merge(&all, &accs[t]); \
    MOM##_finish(x, n, all, mom); \
    SUM_PARTS(parts, used, nf, out); \
    return 0;

#define NO_FIX(p, j, k) (k)

/* LOG_FN(name, T, UINT, SINT, BITS, EXP): log grid with nm magnitude bins per
 * sign; lo = bit pattern of the smallest magnitude edge, shift as above.
 * Layout (nf = 2 nm + 8): 0 = [-inf, -max), 1..nm negative magnitudes
 * (descending), nm+1 = [-min, 0), nm+2 = zero, nm+3 = (0, min),
 * nm+4..2nm+3 positive magnitudes, 2nm+4 = [max, inf), then NaN, +Inf, -Inf.
 * The index arithmetic is signed (SINT): below lo, d >> shift is negative.
 */
#define LOG_FN(name, T, UINT, SINT, BITS, EXP) \
    int name(const T *x, int64_t n, uint64_t lo_bits, int shift, int64_t nm_, double *out) { \
        const SINT lo = (SINT)lo_bits, nm = (SINT)nm_; \
        const int64_t nf = 2 * nm_ + 8; \
        if (n <= 0) return 0; \
        HIST_DRIVER(T, UINT, SINT, BITS, EXP, LOG_BLOCK, NO_FIX) \
    }
#define LOG_BLOCK(T, UINT, SINT, BITS, EXP, p, m, ix) \
    _Pragma("omp simd") \
    for (int64_t j = 0; j < (m); j++) { \
        UINT b; \
        memcpy(&b, (p) + j, sizeof b); \
        SINT neg = (SINT)(b >> (BITS - 1)); \
        SINT u = (SINT)(b & ~((UINT)1 << (BITS - 1))); \
        SINT c = ((u - neg - lo) >> shift) + 1; \
        c = c < 0 ? 0 : c; \
        c = c > nm + 1 ? nm + 1 : c; \
        SINT k = nm + 3 + c - neg * (2 + 2 * c); \
        k = u == 0 ? nm + 2 : k; \
        SINT sp = u > (SINT)(EXP) ? 2 * nm + 5 : 2 * nm + 6 + neg; \
        (ix)[j] = (int32_t)(u >= (SINT)(EXP) ? sp : k); \
    }

/* LIN_FN: linear grid, nb bins between e[0] and e[nb]; layout (nf = nb + 5):
 * 0 = below e[0], 1..nb the bins, nb+1 = at or above e[nb], then NaN, +Inf, -Inf.
 * The vectorised loop guesses floor((x - e[0]) / width); the scalar loop
 * moves the guess to the bin whose float64 edges hold x (LIN_FIX). */
#define LIN_FN(name, T, UINT, SINT, BITS, EXP) \
    int name(const T *x, int64_t n, const double *e, int64_t nb_, double *out) { \
        const int32_t nb = (int32_t)nb_; \
        const int64_t nf = nb_ + 5; \
        const double e0 = e[0], inv = (double)nb_ / (e[nb_] - e[0]); \
        if (n <= 0) return 0; \
        HIST_DRIVER(T, UINT, SINT, BITS, EXP, LIN_BLOCK, LIN_FIX) \
    }
#define LIN_BLOCK(T, UINT, SINT, BITS, EXP, p, m, ix) \
    _Pragma("omp simd") \
    for (int64_t j = 0; j < (m); j++) { \
        UINT b; \
        memcpy(&b, (p) + j, sizeof b); \
        SINT neg = (SINT)(b >> (BITS - 1)); \
        SINT u = (SINT)(b & ~((UINT)1 << (BITS - 1))); \
        double t = ((double)(p)[j] - e0) * inv; \
        t = t < -1.0 ? -1.0 : t; \
        t = t > (double)nb ? (double)nb : t; \
        int32_t k = (int32_t)(t + 1.0); /* floor(t) + 1: 0 .. nb + 1 */ \
        int32_t sp = u > (SINT)(EXP) ? nb + 2 : nb + 3 + (int32_t)neg; \
        (ix)[j] = u >= (SINT)(EXP) ? sp : k; \
    }
#define LIN_FIX(p, j, k) lin_fix((double)(p)[j], (k), e, nb)

static inline int32_t lin_fix(double v, int32_t k, const double *e, int32_t nb) {
    if (k > nb + 1) return k; /* NaN or an infinity */
    /* bin k holds [e[k-1], e[k]) with e[-1] = -inf, e[nb+1] = +inf */
    while (k > 0 && v < e[k - 1]) k--;
    while (k <= nb && v >= e[k]) k++;
    return k;
}

/* netviz_mh_log_* / netviz_mh_lin_*: moments into mom[0..9) (as netviz_moments_*)
 * and counts added to out[]; the other arguments as LOG_FN's / LIN_FN's. */
#define MH_LOG_FN(name, T, UINT, SINT, BITS, EXP, MOM, BLK) \
    int name(const T *x, int64_t n, uint64_t lo_bits, int shift, int64_t nm_, double *mom, \
             double *out) { \
        const SINT lo = (SINT)lo_bits, nm = (SINT)nm_; \
        const int64_t nf = 2 * nm_ + 8; \
        FUSED_DRIVER(T, UINT, SINT, BITS, EXP, LOG_BLOCK, NO_FIX, MOM, BLK) \
    }
#define MH_LIN_FN(name, T, UINT, SINT, BITS, EXP, MOM, BLK) \
    int name(const T *x, int64_t n, const double *e, int64_t nb_, double *mom, double *out) { \
        const int32_t nb = (int32_t)nb_; \
        const int64_t nf = nb_ + 5; \
        const double e0 = e[0], inv = (double)nb_ / (e[nb_] - e[0]); \
        FUSED_DRIVER(T, UINT, SINT, BITS, EXP, LIN_BLOCK, LIN_FIX, MOM, BLK) \
    }

LOG_FN(netviz_hist_log_f32, float, uint32_t, int32_t, 32, 0x7f800000)
LOG_FN(netviz_hist_log_f64, double, uint64_t, int64_t, 64, 0x7ff0000000000000ll)
LIN_FN(netviz_hist_lin_f32, float, uint32_t, int32_t, 32, 0x7f800000)
LIN_FN(netviz_hist_lin_f64, double, uint64_t, int64_t, 64, 0x7ff0000000000000ll)
MH_LOG_FN(netviz_mh_log_f32, float, uint32_t, int32_t, 32, 0x7f800000, netviz_moments_f32, block_f32)
MH_LOG_FN(netviz_mh_log_f64, double, uint64_t, int64_t, 64, 0x7ff0000000000000ll,
          netviz_moments_f64, block_f64)
MH_LIN_FN(netviz_mh_lin_f32, float, uint32_t, int32_t, 32, 0x7f800000, netviz_moments_f32, block_f32)
MH_LIN_FN(netviz_mh_lin_f64, double, uint64_t, int64_t, 64, 0x7ff0000000000000ll,
          netviz_moments_f64, block_f64)

/* Many tensors, one call (a step's parameter gradients): tensor i (ptrs[i],
 * lens[i] elements, doubles where f64[i] else floats) is counted into
 * histogram seg[i] of out[nseg][nf]. The threads split the elements of all
 * tensors together evenly (one parallel region per call, not per tensor);
 * each counts into its LANES private counters and adds them to the shared
 * int64 totals (atomically) where its run moves on to another histogram. */
#define PIECE_LOG(T, UINT, SINT, BITS, EXP, lo_, shift_)                           \
    do {                                                                           \
        const SINT lo = (SINT)(lo_), nm = (SINT)nm_;                               \
        const int shift = (shift_);                                                \
        const T *xs = (const T *)ptrs[i] + a0;                                     \
        for (int64_t s0 = 0; s0 < a1 - a0; s0 += HIST_BLOCK) {                     \
            const T *p = xs + s0;                                                  \
            int64_t m = a1 - a0 - s0 < HIST_BLOCK ? a1 - a0 - s0 : HIST_BLOCK;     \
            COUNT_BLOCK(T, UINT, SINT, BITS, EXP, LOG_BLOCK, NO_FIX, p, m, ix, h, 0); \
        }                                                                          \
    } while (0)
#define PIECE_LIN(T, UINT, SINT, BITS, EXP)                                        \
    do {                                                                           \
        const T *xs = (const T *)ptrs[i] + a0;                                     \
        for (int64_t s0 = 0; s0 < a1 - a0; s0 += HIST_BLOCK) {                     \
            const T *p = xs + s0;                                                  \
            int64_t m = a1 - a0 - s0 < HIST_BLOCK ? a1 - a0 - s0 : HIST_BLOCK;     \
            COUNT_BLOCK(T, UINT, SINT, BITS, EXP, LIN_BLOCK, LIN_FIX, p, m, ix, h, 0); \
        }                                                                          \
    } while (0)
#define MANY_DRIVER(PIECE_F32, PIECE_F64)                                          \
    int64_t total = 0;                                                             \
    for (int64_t i = 0; i < count; i++) total += lens[i];                          \
    int nt = total >= PARALLEL_MIN ? omp_get_max_threads() : 1;                    \
    if (nt > MAX_THREADS) nt = MAX_THREADS;                                        \
    if (nt < 1) nt = 1;                                                            \
    int64_t *sums = (int64_t *)calloc((size_t)nseg * (size_t)nf, sizeof(int64_t)); \
    CTR *lanes = (CTR *)calloc((size_t)nt * LANES * (size_t)nf, sizeof(CTR));      \
    if (!sums || !lanes) {                                                         \
        free(sums);                                                                \
        free(lanes);                                                               \
        return -1;                                                                 \
    }                                                                              \
    _Pragma("omp parallel num_threads(nt) if(nt > 1)")                             \
    {                                                                              \
        int t = omp_get_thread_num(), T_ = omp_get_num_threads();                  \
        int64_t lo_i = total * t / T_, hi_i = total * (t + 1) / T_;                \
        CTR *h = lanes + (size_t)t * LANES * (size_t)nf;                           \
        int32_t ix[HIST_BLOCK];                                                    \
        int64_t base = 0; /* first element of tensor i in the joint range */       \
        int32_t cur = -1; /* the histogram h holds counts of */                    \
        for (int64_t i = 0; i < count && base < hi_i; base += lens[i], i++) {      \
            int64_t a0 = lo_i > base ? lo_i - base : 0;                            \
            int64_t a1 = hi_i - base < lens[i] ? hi_i - base : lens[i];            \
            if (a1 <= a0) continue;                                                \
            if (seg[i] != cur) {                                                   \
                if (cur >= 0) FLUSH_LANES(h, sums + (size_t)cur * nf);             \
                cur = seg[i];                                                      \
            }                                                                      \
            if (f64[i])                                                            \
                PIECE_F64;                                                         \
            else                                                                   \
                PIECE_F32;                                                         \
        }                                                                          \
        if (cur >= 0) FLUSH_LANES(h, sums + (size_t)cur * nf);                     \
    }                                                                              \
    for (int64_t k = 0; k < nseg * nf; k++) out[k] += (double)sums[k];             \
    free(sums);                                                                    \
    free(lanes);                                                                   \
    return 0;
/* adds LANES private counters to dst[0..nf) (atomically: threads may share
 * a histogram) and zeroes them */
#define FLUSH_LANES(h, dst)                                                        \
    do {                                                                           \
        for (int64_t k = 0; k < nf; k++) {                                         \
            int64_t s_ = 0;                                                        \
            for (int l_ = 0; l_ < LANES; l_++) {                                   \
                s_ += (int64_t)(h)[l_ * nf + k];                                   \
                (h)[l_ * nf + k] = 0;                                              \
            }                                                                      \
            if (s_) __atomic_fetch_add(&(dst)[k], s_, __ATOMIC_RELAXED);           \
        }                                                                          \
    } while (0)

int netviz_hist_log_many(const void **ptrs, const int64_t *lens, const int32_t *f64,
                         const int32_t *seg, int64_t count, int64_t nseg, uint64_t lo32,
                         int shift32, uint64_t lo64, int shift64, int64_t nm_, double *out) {
    const int64_t nf = 2 * nm_ + 8;
    MANY_DRIVER(PIECE_LOG(float, uint32_t, int32_t, 32, 0x7f800000, lo32, shift32),
                PIECE_LOG(double, uint64_t, int64_t, 64, 0x7ff0000000000000ll, lo64, shift64))
}

int netviz_hist_lin_many(const void **ptrs, const int64_t *lens, const int32_t *f64,
                         const int32_t *seg, int64_t count, int64_t nseg, const double *e,
                         int64_t nb_, double *out) {
    const int32_t nb = (int32_t)nb_;
    const int64_t nf = nb_ + 5;
    const double e0 = e[0], inv = (double)nb_ / (e[nb_] - e[0]);
    MANY_DRIVER(PIECE_LIN(float, uint32_t, int32_t, 32, 0x7f800000),
                PIECE_LIN(double, uint64_t, int64_t, 64, 0x7ff0000000000000ll))
}

/* the OpenMP runtime's thread count, to check that it is PyTorch's */
int netviz_hist_omp_max_threads(void) { return omp_get_max_threads(); }
void netviz_hist_omp_set_num_threads(int n) { omp_set_num_threads(n); }

// A packed single-precision GEMM for CPUs with AVX-512, where Debian's OpenBLAS 0.3.21 cannot go:
// it does not know recent AMD and Intel models, and where its AVX-512 kernel is unsafe the machine
// forces its Haswell (AVX2) kernel, which tops out at half of a 512-bit FMA unit's peak.
//
// The structure is Goto's / BLIS's: C is computed in MR x NR tiles by a micro-kernel that keeps
// the tile in registers and streams k; B is packed in KC x NR micro-panels (one stays in L1 while
// every MR-row panel of A passes it), A in MR x KC micro-panels of an MC x KC block (in L2).
// Each element of C sums its products in k order, one FMA chain per block of KC, so the result does
// not depend on how the caller splits C's rows or columns across threads.
#include "ckernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

enum {
    MR = 8,     // rows of a C tile: eight broadcasts of A per k
    NR = 48,    // columns of a C tile: three 16-float vectors of B per k (24 accumulators of 32)
    KC = 128,   // depth of a block: a B micro-panel (24 KB) and an A micro-panel (4 KB) in L1
    MC = 128,   // A block (64 KB) in L2
    NC = 1536,  // B block (768 KB) in L2, reused by every A block
};

int bb_sgemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

// Eight rows of A, eight k each, transposed into the panel: dst[k MR + i] = rows[i][k] (MR = 8).
__attribute__((target("avx512f")))
static inline void pack_a_rows8(const float *src, long lda, float *dst) {
    __m256 r[8], t[8], s[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lda);
    for (int i = 0; i < 8; i += 2) { t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]); t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); }
    for (int h = 0; h < 8; h += 4) {  // rows h..h+3: s[h + q] holds k = q and q + 4 of them
        s[h] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(dst + q * MR, _mm256_permute2f128_ps(s[q], s[q + 4], 0x20));
        _mm256_storeu_ps(dst + (q + 4) * MR, _mm256_permute2f128_ps(s[q], s[q + 4], 0x31));
    }
}

// Ap[panel][k][i] = A(i0 + panel*MR + i, p0 + k), zero beyond the last row.
__attribute__((target("avx512f")))
static void pack_a(int trans, const float *a, long lda, int i0, int mc, int p0, int kc, float *ap) {
    for (int r = 0; r < mc; r += MR) {
        const int rows = mc - r < MR ? mc - r : MR;
        float *dst = ap + (long)r * kc;
        if (trans) {  // A(i, k) = a[k lda + i]: MR contiguous floats per k
            for (int k = 0; k < kc; k++) {
                const float *src = a + (long)(p0 + k) * lda + i0 + r;
                int i = 0;
                for (; i < rows; i++) dst[k * MR + i] = src[i];
                for (; i < MR; i++) dst[k * MR + i] = 0;
            }
        } else if (rows == MR) {  // A(i, k) = a[i lda + k]: 8 x 8 blocks transposed, then the last k one by one
            // (a float at a time, these stores were 4% of conv4's training step)
            const float *src = a + (long)(i0 + r) * lda + p0;
            int k = 0;
            for (; k + 8 <= kc; k += 8) pack_a_rows8(src + k, lda, dst + k * MR);
            for (; k < kc; k++)
                for (int i = 0; i < MR; i++) dst[k * MR + i] = src[i * lda + k];
        } else {      // a last panel of fewer rows: each row read front to back
            for (int i = 0; i < MR; i++) {
                if (i < rows) {
                    const float *src = a + (long)(i0 + r + i) * lda + p0;
                    for (int k = 0; k < kc; k++) dst[k * MR + i] = src[k];
                } else {
                    for (int k = 0; k < kc; k++) dst[k * MR + i] = 0;
                }
            }
        }
    }
}

// A 16 x 16 block transposed in registers: r[i] holds row i before, column i after.
__attribute__((target("avx512f")))
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) { t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]); t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]); }
    for (int i = 0; i < 16; i += 4) {
        r[i + 0] = _mm512_shuffle_ps(t[i + 0], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i + 0], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

// Columns j..j+cols (cols <= 16) of op(B) = bᵀ into their panel: column j + i of op(B) is row i of
// src (ldb apart), k = 0..<kc along it. 16 x 16 blocks transposed in registers: element by element,
// the packing cost about as much as the arithmetic of a 64-row weight gradient (each packed value
// feeds 128 FLOPs).
__attribute__((target("avx512f")))
static void pack_bt_columns(const float *src, long ldb, int kc, int j, int cols, float *bp) {
    float *dst = bp + (long)(j / NR) * NR * kc + j % NR;
    if (cols < 16) {
        for (int i = 0; i < cols; i++)
            for (int k = 0; k < kc; k++) dst[(long)k * NR + i] = src[(long)i * ldb + k];
        return;
    }
    const int k16 = kc / 16 * 16;
    for (int k = 0; k < k16; k += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (long)i * ldb + k);
        transpose16(r);
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + (long)(k + i) * NR, r[i]);
    }
    for (int i = 0; i < 16; i++)
        for (int k = k16; k < kc; k++) dst[(long)k * NR + i] = src[(long)i * ldb + k];
}

// The last panel's columns nc..<its end, zero (the micro-kernel computes whole tiles).
static void zero_panel_tail(int kc, int nc, float *bp) {
    const int full = nc / NR * NR;
    if (full < nc)
        for (int k = 0; k < kc; k++)
            for (int j = nc - full; j < NR; j++) bp[(long)full * kc + k * NR + j] = 0;
}

// Bp[panel][k][j] = B(p0 + k, j0 + panel*NR + j), zero beyond the last column.
__attribute__((target("avx512f")))
static void pack_b(int trans, const float *b, long ldb, int p0, int kc, int j0, int nc, float *bp) {
    const int full = nc / NR * NR;
    if (trans) {  // B(k, j) = b[j ldb + k]: each column of op(B) is a row of b
        for (int j = 0; j < nc; j += 16)
            pack_bt_columns(b + (long)(j0 + j) * ldb + p0, ldb, kc, j, nc - j < 16 ? nc - j : 16, bp);
    } else {      // B(k, j) = b[k ldb + j]: each row of b read front to back, NR floats per panel
        for (int k = 0; k < kc; k++) {
            const float *src = b + (long)(p0 + k) * ldb + j0;
            for (int s = 0; s < full; s += NR) memcpy(bp + (long)s * kc + k * NR, src + s, sizeof(float) * NR);
        }
        if (full < nc)
            for (int k = 0; k < kc; k++)
                memcpy(bp + (long)full * kc + k * NR, b + (long)(p0 + k) * ldb + j0 + full, sizeof(float) * (nc - full));
    }
    zero_panel_tail(kc, nc, bp);
}

// B as the im2col columns of a same-shape convolution (stride 1, output planes the input's size),
// read from the images as B is packed instead of from a materialised matrix. Row (c, ti, tj) of the
// columns is image plane c moved by (ti - pad_h) W + (tj - pad_w) floats, the positions whose
// source falls off the plane zero: the values bb_im2col writes.
typedef struct {
    const bb_conv_geometry *g;
    const float *x;        // the g->batch images the columns are made from
    const int32_t *keep;   // per tap, per plane position: -1 where the moved source lies inside the plane
} conv_columns;

// dst[0..<len] = columns[row][pos..<pos + len], one image's plane at a time: a run of the moved
// plane under the tap's mask. Masked loads never touch the lanes they leave out, so a source moved
// off the first or last image is not read.
__attribute__((target("avx512f")))
static void conv_columns_run(const conv_columns *s, long row, long pos, int len, float *dst) {
    const bb_conv_geometry *g = s->g;
    const int taps = g->kernel_h * g->kernel_w, c = (int)(row / taps), t = (int)(row % taps);
    const long hw = (long)g->height * g->width;
    const long shift = (long)(t / g->kernel_w - g->pad_h) * g->width + (t % g->kernel_w - g->pad_w);
    const int32_t *keep = s->keep + t * hw;
    long n = pos / hw, p = pos % hw;
    while (len > 0) {
        const int seg = hw - p < len ? (int)(hw - p) : len;
        const float *src = s->x + (n * g->channels + c) * hw + p + shift;
        const int32_t *kp = keep + p;
        for (int q = 0; q < seg; q += 16) {
            const int lanes = seg - q < 16 ? seg - q : 16;
            const __mmask16 m = (__mmask16)((1u << lanes) - 1);
            const __mmask16 kept = _mm512_mask_cmpneq_epi32_mask(m, _mm512_maskz_loadu_epi32(m, kp + q), _mm512_setzero_si512());
            _mm512_mask_storeu_ps(dst + q, m, _mm512_maskz_loadu_ps(kept, src + q));
        }
        dst += seg;
        len -= seg;
        n++;
        p = 0;
    }
}

// pack_b with B = the columns (trans 0: B(k, j) = columns[k][j], the forward's product) or their
// transpose (trans 1: B(k, j) = columns[j][k], the weight gradient's): the same panels, made from
// the images.
__attribute__((target("avx512f")))
static void pack_b_conv(int trans, const conv_columns *s, int p0, int kc, int j0, int nc, float *bp) {
    if (trans) {
        float rows[16 * KC];  // 16 rows of the columns, kc long: transposed into the panel as pack_b does
        for (int j = 0; j < nc; j += 16) {
            const int cols = nc - j < 16 ? nc - j : 16;
            for (int i = 0; i < cols; i++) conv_columns_run(s, j0 + j + i, p0, kc, rows + i * KC);
            pack_bt_columns(rows, KC, kc, j, cols, bp);
        }
    } else {
        float row[NC];  // one row of the columns, nc long, cut into the panels as pack_b cuts b's rows
        const int full = nc / NR * NR;
        for (int k = 0; k < kc; k++) {
            conv_columns_run(s, p0 + k, j0, nc, row);
            for (int j = 0; j < full; j += NR) memcpy(bp + (long)j * kc + k * NR, row + j, sizeof(float) * NR);
            if (full < nc) memcpy(bp + (long)full * kc + k * NR, row + full, sizeof(float) * (nc - full));
        }
    }
    zero_panel_tail(kc, nc, bp);
}

// The 8 x 48 tile of Ap Bp over kc, then C = alpha tile + beta C on its rows x cols corner
// (C is not read when beta is 0, so it may hold garbage or NaN then).
__attribute__((target("avx512f")))
static void micro_kernel(int kc, const float *ap, const float *bp, float *c, long ldc, int rows, int cols,
                         float alpha, float beta) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00,
           c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00,
           c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00,
           c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), b2 = _mm512_loadu_ps(bp + 32);
        __m512 a;
#define ROW(i) a = _mm512_set1_ps(ap[i]); \
        c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0); c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1); c##i##2 = _mm512_fmadd_ps(a, b2, c##i##2);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
        ap += MR;
        bp += NR;
    }
    const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
    __m512 tile[MR][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32},
                          {c40, c41, c42}, {c50, c51, c52}, {c60, c61, c62}, {c70, c71, c72}};
    if (rows == MR && cols == NR) {
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            for (int v = 0; v < 3; v++) {
                __m512 r = _mm512_mul_ps(al, tile[i][v]);
                if (beta != 0) r = _mm512_fmadd_ps(be, _mm512_loadu_ps(ci + 16 * v), r);
                _mm512_storeu_ps(ci + 16 * v, r);
            }
        }
        return;
    }
    // An edge tile: whole vectors where they fit, masked ones at the ragged end.
    for (int i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        for (int v = 0; v < 3 && 16 * v < cols; v++) {
            const int lanes = cols - 16 * v < 16 ? cols - 16 * v : 16;
            const __mmask16 m = (__mmask16)((1u << lanes) - 1);
            __m512 r = _mm512_mul_ps(al, tile[i][v]);
            if (beta != 0) r = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m, ci + 16 * v), r);
            _mm512_mask_storeu_ps(ci + 16 * v, m, r);
        }
    }
}

// The calling thread's packing buffers (A's block and B's, MC x KC and (NC + NR) x KC floats),
// kept for the thread's life and freed when it ends (Dispatch retires idle workers). Allocated and
// freed per call, B's 0.5-0.8 MB went back to the kernel and was faulted in afresh (perf on
// train-conv4: page faults under the packing). NULL when out of memory.
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;
static void make_pack_key(void) { pthread_key_create(&pack_key, free); }

static float *pack_buffers(void) {
    pthread_once(&pack_once, make_pack_key);
    float *p = pthread_getspecific(pack_key);
    if (!p && (p = aligned_alloc(64, sizeof(float) * (size_t)(MC + NC + NR) * KC))) pthread_setspecific(pack_key, p);
    return p;
}

// The blocked product; B packed from the matrix b (ldb) or, when conv is given, from its images.
static void sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda,
                  const float *b, long ldb, const conv_columns *conv, float beta, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // no products: C = beta C
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(long)i * ldc + j] = beta == 0 ? 0 : beta * c[(long)i * ldc + j];
        return;
    }
    float *ap = pack_buffers();
    if (!ap) abort();  // 860 KB, once a thread: only an exhausted machine fails here
    float *bp = ap + MC * KC;
    for (int j0 = 0; j0 < n; j0 += NC) {
        const int nc = n - j0 < NC ? n - j0 : NC;
        for (int p0 = 0; p0 < k; p0 += KC) {
            const int kc = k - p0 < KC ? k - p0 : KC;
            // The first k block applies the caller's beta; later ones add to what it wrote.
            const float betaBlock = p0 == 0 ? beta : 1;
            if (conv) pack_b_conv(trans_b, conv, p0, kc, j0, nc, bp);
            else pack_b(trans_b, b, ldb, p0, kc, j0, nc, bp);
            for (int i0 = 0; i0 < m; i0 += MC) {
                const int mc = m - i0 < MC ? m - i0 : MC;
                pack_a(trans_a, a, lda, i0, mc, p0, kc, ap);
                for (int s = 0; s < nc; s += NR) {
                    const int cols = nc - s < NR ? nc - s : NR;
                    for (int r = 0; r < mc; r += MR) {
                        const int rows = mc - r < MR ? mc - r : MR;
                        micro_kernel(kc, ap + (long)r * kc, bp + (long)s * kc, c + (long)(i0 + r) * ldc + j0 + s, ldc,
                                     rows, cols, alpha, betaBlock);
                    }
                }
            }
        }
    }
}

void bb_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda,
              const float *b, long ldb, float beta, float *c, long ldc) {
    sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, NULL, beta, c, ldc);
}

int bb_sgemm_conv(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda,
                  const bb_conv_geometry *g, const float *x, float beta, float *c, long ldc) {
    if (!bb_sgemm_available()) return 0;
    if (!bb_same_shape(g)) return 0;
    const long patch = (long)g->channels * g->kernel_h * g->kernel_w, positions = (long)g->batch * g->height * g->width;
    // op(B) is k x n: the columns [patch, positions], or their transpose.
    if (trans_b ? (n != patch || k != positions) : (k != patch || n != positions)) return 0;
    int32_t *keep = bb_tap_masks(g, 1);
    if (!keep) return 0;
    const conv_columns s = {g, x, keep};
    sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, NULL, 0, &s, beta, c, ldc);
    free(keep);
    return 1;
}
#else
int bb_sgemm_available(void) { return 0; }
void bb_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda,
              const float *b, long ldb, float beta, float *c, long ldc) {
    (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda;
    (void)b; (void)ldb; (void)beta; (void)c; (void)ldc;
    abort();  // callers check bb_sgemm_available() first
}
int bb_sgemm_conv(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda,
                  const bb_conv_geometry *g, const float *x, float beta, float *c, long ldc) {
    (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda;
    (void)g; (void)x; (void)beta; (void)c; (void)ldc;
    return 0;
}
#endif

#include "ckernels.h"
#include <math.h>
#include <string.h>
#include <stdlib.h>

#if defined(__x86_64__) && defined(__linux__)
// ISA levels, not CPU models: "arch=haswell" would dispatch on the model and leave AMD CPUs on the
// baseline code (seen on an EPYC: 2x slower im2col).
#define DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DISPATCH
#endif

// Eight floats as one value: one AVX register in the AVX2/AVX-512 clones, two SSE registers in the
// baseline one. memcpy makes the loads and stores unaligned-safe and compiles to single moves.
// They are handled through macros: a function passing 256-bit vectors by value would have a
// different calling convention in the baseline clone than in the AVX ones.
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
#define load8(p) ({ v8f v_; memcpy(&v_, (p), sizeof v_); v_; })
#define store8(p, v) do { const v8f s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
#define splat8(x) ({ const float x_ = (x); (v8f){x_, x_, x_, x_, x_, x_, x_, x_}; })
#define hsum8(v) ({ const v8f h_ = (v); ((h_[0] + h_[4]) + (h_[1] + h_[5])) + ((h_[2] + h_[6]) + (h_[3] + h_[7])); })
// Lanes of `v` where `keep` holds, zero elsewhere: a select without a branch.
#define where8(keep, v) ((v8f)((v8i)(v) & (keep)))

// Reductions are written with explicit vectors: the compiler keeps an array of partial sums in
// scalar registers and memory (seen: spilled vmovss loops at a tenth of the bandwidth), since
// without -ffast-math it may not reorder float additions itself.

// Rows of a convolution's im2col are short (11 floats for a 3x3 kernel on 13x13): a vector loop
// plus a scalar remainder spends most of its time on the remainder, so the last eight floats are
// handled as one (overlapping) vector instead.
static inline void copy_row(float *d, const float *s, int n) {
    if (n < 8) { for (int i = 0; i < n; i++) d[i] = s[i]; return; }
    for (int i = 0; i + 8 <= n; i += 8) store8(d + i, load8(s + i));
    if (n % 8) store8(d + n - 8, load8(s + n - 8));
}

// d += s. The overlapping tail is computed from d's values before any store, so positions that
// two vectors cover get the same sum twice rather than s added twice.
static inline void add_row(float *d, const float *s, int n) {
    if (n < 8) { for (int i = 0; i < n; i++) d[i] += s[i]; return; }
    const v8f tail = load8(d + n - 8) + load8(s + n - 8);
    for (int i = 0; i < n - 8; i += 8) store8(d + i, load8(d + i) + load8(s + i));
    store8(d + n - 8, tail);
}

// Output columns ow whose input column ow*sw - pw + j lies inside the image: lo..<hi.
static inline void valid_columns(const bb_conv_geometry *g, int j, int *lo, int *hi) {
    int l = 0, h = g->out_w;
    while (l < g->out_w && l * g->stride_w - g->pad_w + j < 0) l++;
    while (h > l && (h - 1) * g->stride_w - g->pad_w + j >= g->width) h--;
    *lo = l; *hi = h;
}

// Loops run (channel, kernel row, kernel column) outermost and images innermost, so each row of
// `cols` is written front to back: writing 288 rows 62 KB apart image by image thrashed the TLB
// and ran at a third of the memory bandwidth.
// A "same" convolution (stride 1, output as large as the input) shifts whole planes: for kernel
// tap (i, j) the image's row of cols is the plane moved by (i - ph) W + (j - pw) floats, with the
// positions whose source falls off the plane (rows above or below, columns wrapped to the
// neighbouring row) zeroed. One pass of eight-float vectors per plane, the positions to keep a
// mask built once per tap: the copies per output row (14 floats on conv4's second layer, 7 on its
// third) were mostly remainders, and a memcpy plus memsets per plane were mostly call overhead.
int bb_same_shape(const bb_conv_geometry *g) {
    // (Then the kernel is 2 p + 1 wide; a padding as wide as the plane would shift rows off it.)
    return g->stride_h == 1 && g->stride_w == 1 && g->out_h == g->height && g->out_w == g->width
        && g->pad_h < g->height && g->pad_w < g->width;
}

// keep[p] = -1 where position p of an h x w plane, moved by (di, dj), lands inside the plane.
static void shift_mask(int h, int w, int di, int dj, int32_t *keep) {
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++)
            keep[r * w + c] = r + di >= 0 && r + di < h && c + dj >= 0 && c + dj < w ? -1 : 0;
}

// Eight positions from p on: src[p + l] where keep[p + l], else 0. src[p + l] is read only where
// kept unless all eight lie in [lo, hi) (memory that may be read).
#define SHIFTED8(src, keep, p, lo, hi) ({ \
    const float *s_ = (src) + (p); const int32_t *k_ = (keep) + (p); v8f v_; \
    if (s_ >= (lo) && s_ + 8 <= (hi)) { v8i m_; memcpy(&m_, k_, sizeof m_); v_ = where8(m_, load8(s_)); } \
    else for (int l_ = 0; l_ < 8; l_++) v_[l_] = k_[l_] ? s_[l_] : 0; \
    v_; })

// d[p] = plane[p + shift] where keep[p], else 0, for p < hw (reads in [lo, hi) only). The last
// eight positions are one overlapping vector (writing the same values twice).
static inline void shift_plane(float *d, const float *plane, long shift, const int32_t *keep, long hw,
                               const float *lo, const float *hi) {
    if (hw < 8) { for (long p = 0; p < hw; p++) d[p] = keep[p] ? plane[p + shift] : 0; return; }
    for (long p = 0; p + 8 <= hw; p += 8) store8(d + p, SHIFTED8(plane + shift, keep, p, lo, hi));
    if (hw % 8) store8(d + hw - 8, SHIFTED8(plane + shift, keep, hw - 8, lo, hi));
}

// plane[q] += src[q - shift] where keep[q], for q < hw (src read in [lo, hi) only). The
// overlapping last vector is summed from the plane's values before any store, as in add_row.
static inline void add_shifted_plane(float *plane, const float *src, long shift, const int32_t *keep, long hw,
                                     const float *lo, const float *hi) {
    if (hw < 8) { for (long q = 0; q < hw; q++) if (keep[q]) plane[q] += src[q - shift]; return; }
    const v8f tail = load8(plane + hw - 8) + SHIFTED8(src - shift, keep, hw - 8, lo, hi);
    for (long q = 0; q + 8 <= hw; q += 8) store8(plane + q, load8(plane + q) + SHIFTED8(src - shift, keep, q, lo, hi));
    if (hw % 8) store8(plane + hw - 8, tail);
}

// The masks of every tap (kernel_h kernel_w planes of hw), moved by +(tap offset) for im2col
// (`sign` 1: output position p reads input p + shift) or -(tap offset) for col2im (input q takes
// output q - shift). NULL when out of memory.
int32_t *bb_tap_masks(const bb_conv_geometry *g, int sign) {
    const long hw = (long)g->height * g->width;
    int32_t *keep = malloc(sizeof(int32_t) * (size_t)(g->kernel_h * g->kernel_w) * (size_t)hw);
    if (!keep) return NULL;
    for (int i = 0; i < g->kernel_h; i++)
        for (int j = 0; j < g->kernel_w; j++)
            shift_mask(g->height, g->width, sign * (i - g->pad_h), sign * (j - g->pad_w), keep + (i * g->kernel_w + j) * hw);
    return keep;
}

// im2col (`adjoint` 0: cols from x) or col2im (1: x from cols, each input plane summing its taps'
// shifted rows in the order the general loop adds them, so the sums are the same) of a same-shape
// convolution. 0 when out of memory (the caller takes the general loop).
static int same_planes(const bb_conv_geometry *g, float *x, float *cols, int n0, int n1, int adjoint) {
    const long hw = (long)g->height * g->width, positions = (long)g->batch * hw;
    const long x_size = positions * g->channels, cols_size = x_size * g->kernel_h * g->kernel_w;
    int32_t *keep = bb_tap_masks(g, adjoint ? -1 : 1);
    if (!keep) return 0;
    if (adjoint) memset(x + (long)n0 * g->channels * hw, 0, sizeof(float) * (n1 - n0) * g->channels * hw);
    for (int c = 0; c < g->channels; c++)
        for (int i = 0; i < g->kernel_h; i++)
            for (int j = 0; j < g->kernel_w; j++) {
                const long row = ((long)c * g->kernel_h + i) * g->kernel_w + j;
                const long shift = (long)(i - g->pad_h) * g->width + (j - g->pad_w);
                const int32_t *tap = keep + (i * g->kernel_w + j) * hw;
                for (int n = n0; n < n1; n++) {
                    float *plane = x + ((long)n * g->channels + c) * hw, *r = cols + row * positions + n * hw;
                    if (adjoint) add_shifted_plane(plane, r, shift, tap, hw, cols, cols + cols_size);
                    else shift_plane(r, plane, shift, tap, hw, x, x + x_size);
                }
            }
    free(keep);
    return 1;
}

DISPATCH
void bb_im2col(const bb_conv_geometry *g, const float *x, float *cols, int n0, int n1) {
    if (bb_same_shape(g) && same_planes(g, (float *)x, cols, n0, n1, 0)) return;
    const long ohw = (long)g->out_h * g->out_w;
    const long positions = (long)g->batch * ohw;
    const long plane_size = (long)g->height * g->width;
    for (int c = 0; c < g->channels; c++) {
        for (int i = 0; i < g->kernel_h; i++) {
            for (int j = 0; j < g->kernel_w; j++) {
                int lo, hi;
                valid_columns(g, j, &lo, &hi);
                const long row = ((long)c * g->kernel_h + i) * g->kernel_w + j;
                for (int n = n0; n < n1; n++) {
                    const float *plane = x + ((long)n * g->channels + c) * plane_size;
                    float *dst = cols + row * positions + n * ohw;
                    for (int oh = 0; oh < g->out_h; oh++) {
                        const int ih = oh * g->stride_h - g->pad_h + i;
                        float *d = dst + (long)oh * g->out_w;
                        if (ih < 0 || ih >= g->height) {
                            for (int ow = 0; ow < g->out_w; ow++) d[ow] = 0;
                            continue;
                        }
                        const float *src = plane + (long)ih * g->width - g->pad_w + j;
                        for (int ow = 0; ow < lo; ow++) d[ow] = 0;
                        if (g->stride_w == 1) {
                            copy_row(d + lo, src + lo, hi - lo);
                        } else {
                            for (int ow = lo; ow < hi; ow++) d[ow] = src[ow * g->stride_w];
                        }
                        for (int ow = hi; ow < g->out_w; ow++) d[ow] = 0;
                    }
                }
            }
        }
    }
}

DISPATCH
void bb_col2im(const bb_conv_geometry *g, const float *cols, float *x, int n0, int n1) {
    if (bb_same_shape(g) && same_planes(g, x, (float *)cols, n0, n1, 1)) return;
    const long ohw = (long)g->out_h * g->out_w;
    const long positions = (long)g->batch * ohw;
    const long plane_size = (long)g->height * g->width;
    memset(x + (long)n0 * g->channels * plane_size, 0, sizeof(float) * (n1 - n0) * g->channels * plane_size);
    for (int c = 0; c < g->channels; c++) {
        for (int i = 0; i < g->kernel_h; i++) {
            for (int j = 0; j < g->kernel_w; j++) {
                int lo, hi;
                valid_columns(g, j, &lo, &hi);
                const long row = ((long)c * g->kernel_h + i) * g->kernel_w + j;
                for (int n = n0; n < n1; n++) {
                    float *plane = x + ((long)n * g->channels + c) * plane_size;
                    const float *src = cols + row * positions + n * ohw;
                    for (int oh = 0; oh < g->out_h; oh++) {
                        const int ih = oh * g->stride_h - g->pad_h + i;
                        if (ih < 0 || ih >= g->height) continue;
                        float *d = plane + (long)ih * g->width - g->pad_w + j;
                        const float *s = src + (long)oh * g->out_w;
                        if (g->stride_w == 1) {
                            add_row(d + lo, s + lo, hi - lo);
                        } else {
                            for (int ow = lo; ow < hi; ow++) d[ow * g->stride_w] += s[ow];
                        }
                    }
                }
            }
        }
    }
}

// Branch-free selection: on random data a compare-and-branch mispredicts half the time, which
// made max pooling ten times slower than the memory traffic it needs. NaN wins, so a diverging
// run shows NaN instead of hiding it.
#define TAKE_MAX(v, idx) do { const int gt_ = ((v) > best) | ((v) != (v)); \
    best = gt_ ? (v) : best; at = gt_ ? (idx) : at; } while (0)

DISPATCH
void bb_maxpool(const float *x, float *y, int32_t *argmax, int p0, int p1,
                int h, int w, int kh, int kw, int sh, int sw) {
    const int oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1;
    for (int p = p0; p < p1; p++) {
        const long base = (long)p * h * w;
        const float *xp = x + base;
        float *yp = y + (long)p * oh * ow;
        int32_t *ap = argmax + (long)p * oh * ow;
        if (kh == 2 && kw == 2 && sh == 2 && sw == 2) {
            for (int i = 0; i < oh; i++) {
                const float *r0 = xp + (2 * i) * w, *r1 = r0 + w;
                const int i0 = (2 * i) * w;
                for (int j = 0; j < ow; j++) {
                    float best = r0[2 * j];
                    int at = i0 + 2 * j;
                    TAKE_MAX(r0[2 * j + 1], i0 + 2 * j + 1);
                    TAKE_MAX(r1[2 * j], i0 + w + 2 * j);
                    TAKE_MAX(r1[2 * j + 1], i0 + w + 2 * j + 1);
                    yp[i * ow + j] = best;
                    ap[i * ow + j] = (int32_t)(base + at);
                }
            }
            continue;
        }
        for (int i = 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
                int at = i * sh * w + j * sw;
                float best = xp[at];
                for (int a = 0; a < kh; a++) {
                    const int row = (i * sh + a) * w + j * sw;
                    for (int b = 0; b < kw; b++) TAKE_MAX(xp[row + b], row + b);
                }
                yp[i * ow + j] = best;
                ap[i * ow + j] = (int32_t)(base + at);
            }
        }
    }
}

DISPATCH
void bb_relu_backward(const float *g, const float *x, float *out, long n, float slope) {
    for (long i = 0; i < n; i++) out[i] = x[i] > 0 ? g[i] : slope * g[i];
}

DISPATCH
void bb_leaky_relu(const float *x, float *y, long n, float slope) {
    for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : slope * x[i];
}

DISPATCH
float bb_sum(const float *x, long n) {
    // Blocks of 1024 summed in two vector accumulators, blocks added in double: fast, and a
    // million equal terms stay accurate where one running float sum drifts by 1%.
    double total = 0;
    long i = 0;
    while (i < n) {
        const long end = i + 1024 < n ? i + 1024 : n;
        v8f a = splat8(0), b = splat8(0);
        for (; i + 16 <= end; i += 16) { a += load8(x + i); b += load8(x + i + 8); }
        float block = hsum8(a + b);
        for (; i < end; i++) block += x[i];
        total += block;
    }
    return (float)total;
}

DISPATCH
void bb_conv_output(const float *ycol, float *y, int channels, int batch, int r, const float *bias, int relu,
                    int n0, int n1) {
    for (int n = n0; n < n1; n++) {
        for (int o = 0; o < channels; o++) {
            const float *src = ycol + ((long)o * batch + n) * r;
            float *dst = y + ((long)n * channels + o) * r;
            const float b = bias ? bias[o] : 0.0f;
            if (relu) {
                for (int k = 0; k < r; k++) { const float v = src[k] + b; dst[k] = v > 0 ? v : 0; }
            } else {
                for (int k = 0; k < r; k++) dst[k] = src[k] + b;
            }
        }
    }
}

DISPATCH
void bb_conv_grad_columns(const float *g, const float *relu_output, float *gycol, float *bias_grad,
                          int batch, int channels, int r, int o0, int o1) {
    for (int o = o0; o < o1; o++) {
        double total = 0;
        for (int n = 0; n < batch; n++) {
            const float *src = g + ((long)n * channels + o) * r;
            float *dst = gycol + ((long)o * batch + n) * r;
            if (relu_output) {
                const float *yo = relu_output + ((long)n * channels + o) * r;
                for (int k = 0; k < r; k++) dst[k] = yo[k] > 0 ? src[k] : 0.0f;
            } else {
                memcpy(dst, src, sizeof(float) * r);
            }
            if (bias_grad) {
                v8f acc = splat8(0);
                int k = 0;
                for (; k + 8 <= r; k += 8) acc += load8(dst + k);
                float s = hsum8(acc);
                for (; k < r; k++) s += dst[k];
                total += s;
            }
        }
        if (bias_grad) bias_grad[o] = (float)total;
    }
}

// Direct convolution for a patch of few rows (a 1- or 3-channel first layer): im2col + GEMM has
// an inner dimension of 9 or 27 there, so the GEMM streams the columns as often as it computes on
// them. Here each image's planes are copied once, zero-padded, and every output row of eight
// channels is summed in registers from shifted rows of the copy. Stride 1, out_w >= 8 (the last
// vector of a row overlaps the one before it rather than running a scalar remainder).
static void pad_images(const bb_conv_geometry *g, const float *x, float *p, int n0, int n1) {
    const int pw = g->width + 2 * g->pad_w, ph = g->height + 2 * g->pad_h;
    const long planes = (long)(n1 - n0) * g->channels;
    memset(p, 0, sizeof(float) * planes * pw * ph);
    for (long q = 0; q < planes; q++) {
        const float *src = x + ((long)n0 * g->channels + q) * g->height * g->width;
        float *dst = p + q * pw * ph + (long)g->pad_h * pw + g->pad_w;
        for (int r = 0; r < g->height; r++) memcpy(dst + (long)r * pw, src + (long)r * g->width, sizeof(float) * g->width);
    }
}

// Output rows oh..<oh+rows (rows 1 or 2) of eight channels of one image, from its padded planes
// p and the block's weights wt (tap-major, eight channels a tap). Tap by tap, one broadcast weight
// feeds both rows' accumulators, so two rows cost one broadcast per two FMAs where a row alone
// costs one per FMA (the loads, not the FMAs, bound this loop). kh, kw and rows are constants where
// this is inlined, so the loops unroll and the 8 x rows accumulators stay in registers.
static inline __attribute__((always_inline)) void conv_direct_rows(const bb_conv_geometry *g, const float *p,
        const float *wt, const float *b, int relu, float *y, int ob, int oh, const int rows, const int kh, const int kw) {
    const int c_in = g->channels, oh_count = g->out_h, ow_count = g->out_w;
    const int pw = g->width + 2 * g->pad_w, ph = g->height + 2 * g->pad_h;
    for (int ow = 0; ow < ow_count; ow += 8) {
        const int s = ow + 8 <= ow_count ? ow : ow_count - 8;
        v8f acc[2][8];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < 8; k++) acc[r][k] = splat8(b[k]);
        for (int c = 0; c < c_in; c++) {
            for (int i = 0; i < kh; i++) {
                const float *row = p + ((long)c * ph + oh + i) * pw + s;
                for (int j = 0; j < kw; j++) {
                    v8f v[2];
                    for (int r = 0; r < rows; r++) v[r] = load8(row + (long)r * pw + j);
                    const float *wk = wt + ((c * kh + i) * kw + j) * 8;
                    for (int k = 0; k < 8; k++) {
                        const v8f wv = splat8(wk[k]);
                        for (int r = 0; r < rows; r++) acc[r][k] += wv * v[r];
                    }
                }
            }
        }
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < ob; k++) {
                const v8f v = relu ? where8(acc[r][k] > splat8(0.0f), acc[r][k]) : acc[r][k];
                store8(y + ((long)k * oh_count + oh + r) * ow_count + s, v);
            }
    }
}

// A plane's sum and sum of squares (m[0], m[1]), a batch norm's statistics of it: eight lanes,
// then the lanes' sum and the tail. One definition, inlined into every kernel that makes them, so
// that a convolution's sums of its output planes are the norm's own, bit for bit.
static inline __attribute__((always_inline)) void plane_moments(const float *xp, long hw, float *m) {
    v8f a1 = splat8(0), a2 = splat8(0);
    float t1 = 0, t2 = 0;
    long i = 0;
    for (; i + 8 <= hw; i += 8) { const v8f v = load8(xp + i); a1 += v; a2 += v * v; }
    for (; i < hw; i++) { t1 += xp[i]; t2 += xp[i] * xp[i]; }
    m[0] = t1 + hsum8(a1);
    m[1] = t2 + hsum8(a2);
}

// plane_moments of planes xp, xp + hw, ... (`count` of them) into m, m + 2, ...: four at a time,
// each plane's sums made in its own order, so the same bits; the four chains of additions run side
// by side (one plane alone waits on its adds' latency).
static inline __attribute__((always_inline)) void planes_moments(const float *xp, long count, long hw, float *m) {
    long p = 0;
    for (; p + 4 <= count; p += 4) {
        const float *x0 = xp + p * hw, *x1 = x0 + hw, *x2 = x1 + hw, *x3 = x2 + hw;
        v8f a[4] = {splat8(0), splat8(0), splat8(0), splat8(0)}, b[4] = {splat8(0), splat8(0), splat8(0), splat8(0)};
        long i = 0;
        for (; i + 8 <= hw; i += 8) {
            const v8f v0 = load8(x0 + i), v1 = load8(x1 + i), v2 = load8(x2 + i), v3 = load8(x3 + i);
            a[0] += v0; b[0] += v0 * v0;
            a[1] += v1; b[1] += v1 * v1;
            a[2] += v2; b[2] += v2 * v2;
            a[3] += v3; b[3] += v3 * v3;
        }
        for (int q = 0; q < 4; q++) {
            const float *xq = xp + (p + q) * hw;
            float t1 = 0, t2 = 0;
            for (long j = i; j < hw; j++) { t1 += xq[j]; t2 += xq[j] * xq[j]; }
            m[2 * (p + q)] = t1 + hsum8(a[q]);
            m[2 * (p + q) + 1] = t2 + hsum8(b[q]);
        }
    }
    for (; p < count; p++) plane_moments(xp + p * hw, hw, m + 2 * p);
}

// One image: y [O, OH, OW] from its padded planes p, eight output channels and two rows at a time.
static inline __attribute__((always_inline)) void conv_direct_image(const bb_conv_geometry *g, const float *p,
        const float *w, const float *bias, int relu, float *y, const int kh, const int kw) {
    const int c_in = g->channels, o_count = g->out_channels, oh_count = g->out_h, ow_count = g->out_w;
    const int patch = c_in * kh * kw;
    for (int o0 = 0; o0 < o_count; o0 += 8) {
        const int ob = o_count - o0 < 8 ? o_count - o0 : 8;
        // The block's weights tap by tap, eight channels each (zero past the last channel).
        float wt[32 * 8], b[8];
        for (int t = 0; t < patch; t++)
            for (int k = 0; k < 8; k++) wt[t * 8 + k] = k < ob ? w[(long)(o0 + k) * patch + t] : 0.0f;
        for (int k = 0; k < 8; k++) b[k] = bias && k < ob ? bias[o0 + k] : 0.0f;
        float *yb = y + (long)o0 * oh_count * ow_count;
        int oh = 0;
        for (; oh + 2 <= oh_count; oh += 2) conv_direct_rows(g, p, wt, b, relu, yb, ob, oh, 2, kh, kw);
        if (oh < oh_count) conv_direct_rows(g, p, wt, b, relu, yb, ob, oh, 1, kh, kw);
    }
}

DISPATCH
void bb_conv_direct(const bb_conv_geometry *g, const float *x, const float *w, const float *bias, int relu, float *y,
                    float *p, float *moments, int n0, int n1) {
    const long r = (long)g->out_h * g->out_w, out = g->out_channels * r;
    for (int n = n0; n < n1; n++) {
        pad_images(g, x, p, n, n + 1);
        if (g->kernel_h == 3 && g->kernel_w == 3) conv_direct_image(g, p, w, bias, relu, y + n * out, 3, 3);
        else conv_direct_image(g, p, w, bias, relu, y + n * out, g->kernel_h, g->kernel_w);
        // The image's output is still in cache: its planes' moments cost a pass over L2, not memory.
        if (moments) planes_moments(y + n * out, g->out_channels, r, moments + 2L * n * g->out_channels);
    }
}

// The weight and bias gradients of images 0..<images (padded planes p, output gradient gy masked
// where relu_output <= 0 when given): per output channel and input channel, one accumulator per
// tap, fed by the same shifted rows as the forward. Image by image, and in each image channel by
// channel, so gy is read front to back as one stream (channel by channel over the images, each
// 3 KB plane of gy was a stream of its own the prefetcher had to find again, and the loop waited
// on those loads); the accumulators wait in `accs` between an image's planes, and each still adds
// its products in the order of the images, rows and columns, so the sums are the same.
static inline __attribute__((always_inline)) void conv_direct_weight_grad(const bb_conv_geometry *g, const float *p,
        const float *gy, const float *relu_output, float *gw, float *bias_grad, float *accs, int images, const int kh, const int kw) {
    const int c_in = g->channels, o_count = g->out_channels, oh_count = g->out_h, ow_count = g->out_w;
    const int pw = g->width + 2 * g->pad_w, ph = g->height + 2 * g->pad_h, taps = kh * kw;
    const long r = (long)oh_count * ow_count;
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    // Lanes of a row's last (overlapping) vector that the vector before it did not count.
    const int covered = ow_count % 8 ? 8 - ow_count % 8 : 0;
    const v8i fresh = lane >= (v8i){covered, covered, covered, covered, covered, covered, covered, covered};
    float *bias_accs = accs + 8L * o_count * c_in * taps;  // then one per output channel
    memset(accs, 0, sizeof(float) * 8 * ((size_t)o_count * c_in * taps + o_count));
    for (int n = 0; n < images; n++) {
        for (int o = 0; o < o_count; o++) {
            const float *gn = gy + ((long)n * o_count + o) * r;
            const float *yn = relu_output ? relu_output + ((long)n * o_count + o) * r : NULL;
            v8f bias_acc = load8(bias_accs + 8L * o);
            for (int c = 0; c < c_in; c++) {
                float *kept = accs + 8L * ((long)o * c_in + c) * taps;
                v8f acc[32];
                for (int t = 0; t < taps; t++) acc[t] = load8(kept + 8 * t);
                const float *pc = p + ((long)n * c_in + c) * ph * pw;
                for (int oh = 0; oh < oh_count; oh++) {
                    for (int ow = 0; ow < ow_count; ow += 8) {
                        const int s = ow + 8 <= ow_count ? ow : ow_count - 8;
                        v8f gz = load8(gn + (long)oh * ow_count + s);
                        if (yn) gz = where8(load8(yn + (long)oh * ow_count + s) > splat8(0.0f), gz);
                        if (s != ow) gz = where8(fresh, gz);
                        if (c == 0) bias_acc += gz;
                        for (int i = 0; i < kh; i++) {
                            const float *row = pc + (long)(oh + i) * pw + s;
                            for (int j = 0; j < kw; j++) acc[i * kw + j] += gz * load8(row + j);
                        }
                    }
                }
                for (int t = 0; t < taps; t++) store8(kept + 8 * t, acc[t]);
            }
            store8(bias_accs + 8L * o, bias_acc);
        }
    }
    for (long e = 0; e < (long)o_count * c_in * taps; e++) gw[e] = hsum8(load8(accs + 8 * e));
    if (bias_grad)
        for (int o = 0; o < o_count; o++) bias_grad[o] = hsum8(load8(bias_accs + 8L * o));
}

DISPATCH
void bb_conv_direct_weight_grad(const bb_conv_geometry *g, const float *x, const float *gy, const float *relu_output,
                                float *gw, float *bias_grad, float *p, float *accs, int n0, int n1) {
    pad_images(g, x, p, n0, n1);
    const long out = (long)g->out_channels * g->out_h * g->out_w;
    const float *gn = gy + n0 * out, *yn = relu_output ? relu_output + n0 * out : NULL;
    if (g->kernel_h == 3 && g->kernel_w == 3) conv_direct_weight_grad(g, p, gn, yn, gw, bias_grad, accs, n1 - n0, 3, 3);
    else conv_direct_weight_grad(g, p, gn, yn, gw, bias_grad, accs, n1 - n0, g->kernel_h, g->kernel_w);
}

DISPATCH
void bb_fill_block(float *y, long ld, const float *row, int r0, int r1, int c0, int c1) {
    for (int r = r0; r < r1; r++) memcpy(y + r * ld + c0, row + c0, sizeof(float) * (c1 - c0));
}

DISPATCH
void bb_relu_block(float *y, long ld, int r0, int r1, int c0, int c1) {
    for (int r = r0; r < r1; r++) {
        float *yr = y + r * ld;
        for (int c = c0; c < c1; c++) yr[c] = yr[c] > 0 ? yr[c] : 0.0f;
    }
}

DISPATCH
void bb_linear_grad(const float *g, const float *relu_output, float *gz, float *bias_grad, int rows, int cols) {
    if (bias_grad) for (int c = 0; c < cols; c++) bias_grad[c] = 0;
    for (int r = 0; r < rows; r++) {
        const float *gr = g + (long)r * cols;
        const float *src = gr;
        if (relu_output) {
            const float *yr = relu_output + (long)r * cols;
            float *zr = gz + (long)r * cols;
            for (int c = 0; c < cols; c++) zr[c] = yr[c] > 0 ? gr[c] : 0.0f;
            src = zr;
        }
        if (bias_grad) for (int c = 0; c < cols; c++) bias_grad[c] += src[c];
    }
}

DISPATCH
void bb_sgd_update(float *p, const float *g, float *v, long n, float lr, float mu, float wd, int nesterov) {
    if (!v) {
        for (long i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
        return;
    }
    if (nesterov) {
        for (long i = 0; i < n; i++) {
            const float d = g[i] + wd * p[i];
            const float vi = mu * v[i] + d;
            v[i] = vi;
            p[i] -= lr * (d + mu * vi);
        }
    } else {
        for (long i = 0; i < n; i++) {
            const float vi = mu * v[i] + g[i] + wd * p[i];
            v[i] = vi;
            p[i] -= lr * vi;
        }
    }
}

DISPATCH
void bb_adam_update(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2, float eps,
                    float wd, int decoupled, float c1, float c2) {
    const float inv_c1 = 1.0f / c1, inv_c2 = 1.0f / c2;
    for (long i = 0; i < n; i++) {
        const float d = decoupled ? g[i] : g[i] + wd * p[i];
        const float mi = b1 * m[i] + (1 - b1) * d;
        const float vi = b2 * v[i] + (1 - b2) * d * d;
        m[i] = mi;
        v[i] = vi;
        const float step = (mi * inv_c1) / (sqrtf(vi * inv_c2) + eps);
        p[i] -= lr * (step + (decoupled ? wd * p[i] : 0.0f));
    }
}

// Batch normalisation walks memory in order, image by image, accumulating per-channel sums: walking
// one channel at a time jumps across the batch in 3 KB pieces and ran at a third of the bandwidth.

DISPATCH
void bb_plane_moments(const float *y, long p0, long p1, long hw, float *moments) {
    planes_moments(y + p0 * hw, p1 - p0, hw, moments + 2 * p0);
}

DISPATCH
void bb_bn_sums(const float *x, const float *g, const float *scale, const float *shift, const float *mean, int relu,
                int n0, int n1, int channels, long hw, double *s1, double *s2) {
    for (int b = n0; b < n1; b++) {
        for (int c = 0; c < channels; c++) {
            const long base = ((long)b * channels + c) * hw;
            const float *xp = x + base;
            if (!g) {  // statistics of x: sums and sums of squares, a few planes at a time
                float m[8];
                const int planes = channels - c < 4 ? channels - c : 4;
                planes_moments(xp, planes, hw, m);
                for (int q = 0; q < planes; q++) { s1[c + q] += m[2 * q]; s2[c + q] += m[2 * q + 1]; }
                c += planes - 1;
                continue;
            }
            // Gradient sums: of gz and of gz (x - mean), gz masked by the fused ReLU (with no ReLU
            // the threshold is -inf and every element passes).
            const float *gp = g + base;
            const float sc = scale[c], sh = shift[c], m = mean[c];
            const float floor_ = relu ? 0.0f : -INFINITY;
            const v8f vsc = splat8(sc), vsh = splat8(sh), vm = splat8(m), vfl = splat8(floor_);
            v8f a1 = splat8(0), a2 = splat8(0);
            float t1 = 0, t2 = 0;
            long i = 0;
            for (; i + 8 <= hw; i += 8) {
                const v8f xv = load8(xp + i);
                const v8f gz = where8(xv * vsc + vsh > vfl, load8(gp + i));
                a1 += gz; a2 += gz * (xv - vm);
            }
            for (; i < hw; i++) {
                const float gz = xp[i] * sc + sh > floor_ ? gp[i] : 0.0f;
                t1 += gz; t2 += gz * (xp[i] - m);
            }
            s1[c] += t1 + hsum8(a1); s2[c] += t2 + hsum8(a2);
        }
    }
}

DISPATCH
void bb_bn_apply(const float *x, float *y, const float *scale, const float *shift, int relu, int n0, int n1, int channels, long hw) {
    for (int b = n0; b < n1; b++) {
        for (int c = 0; c < channels; c++) {
            const long base = ((long)b * channels + c) * hw;
            const float *xp = x + base;
            float *yp = y + base;
            const float sc = scale[c], sh = shift[c];
            if (relu) {
                for (long i = 0; i < hw; i++) yp[i] = fmaxf(xp[i] * sc + sh, 0.0f);
            } else {
                for (long i = 0; i < hw; i++) yp[i] = xp[i] * sc + sh;
            }
        }
    }
}

DISPATCH
void bb_bn_grad_apply(const float *g, const float *x, float *dx, const float *scale, const float *shift, const float *mean,
                      const float *invstd, const float *mean_g, const float *mean_gxhat, int relu,
                      int n0, int n1, int channels, long hw) {
    for (int b = n0; b < n1; b++) {
        for (int c = 0; c < channels; c++) {
            const long base = ((long)b * channels + c) * hw;
            const float *gp = g + base, *xp = x + base;
            float *dp = dx + base;
            const float sc = scale[c], sh = shift[c], m = mean[c], is = invstd[c], mb = mean_g[c], mg = mean_gxhat[c];
            const float floor_ = relu ? 0.0f : -INFINITY;
            const v8f vsc = splat8(sc), vsh = splat8(sh), vm = splat8(m), vfl = splat8(floor_), vmb = splat8(mb), vk = splat8(is * mg);
            long i = 0;
            for (; i + 8 <= hw; i += 8) {
                const v8f xv = load8(xp + i);
                const v8f gz = where8(xv * vsc + vsh > vfl, load8(gp + i));
                store8(dp + i, vsc * (gz - vmb - (xv - vm) * vk));
            }
            for (; i < hw; i++) {
                const float xv = xp[i];
                const float gz = xv * sc + sh > floor_ ? gp[i] : 0.0f;
                dp[i] = sc * (gz - mb - (xv - m) * is * mg);
            }
        }
    }
}

// Batch normalisation's affine map, the ReLU and max pooling in one pass over x (windows that do
// not overlap): the pooled output and its flat input indices are what bb_bn_apply then bb_maxpool
// write (each element by the same expression, the first maximum of a window on ties), without the
// full-size activation between them: that pass wrote and re-read 4 bytes an element. x's value at
// each maximum is kept too (xmax), so the backward reads pooled arrays, not x, for its sums. After
// the ReLU no value is NaN, so the windows need no NaN rule. 2x2 windows run eight outputs at a
// time: a window's four candidates are the even and odd lanes of two rows, taken in bb_maxpool's
// order; a row's last eight outputs are one (overlapping) vector, so only rows of under eight
// outputs run scalar.
#define EVEN8(a, b) __builtin_shufflevector((a), (b), 0, 2, 4, 6, 8, 10, 12, 14)
#define ODD8(a, b) __builtin_shufflevector((a), (b), 1, 3, 5, 7, 9, 11, 13, 15)
#define SELECT8(keep, a, b) ((v8f)(((v8i)(a) & (keep)) | ((v8i)(b) & ~(keep))))
#define SELECT8I(keep, a, b) (((a) & (keep)) | ((b) & ~(keep)))
#define SPLAT8I(x) ({ const int x_ = (x); (v8i){x_, x_, x_, x_, x_, x_, x_, x_}; })

DISPATCH
void bb_bn_relu_maxpool(const float *x, float *y, int32_t *argmax, float *xmax, const float *scale, const float *shift,
                        int channels, int p0, int p1, int h, int w, int kh, int kw, int sh, int sw) {
    const int oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1;
    for (int p = p0; p < p1; p++) {
        const long base = (long)p * h * w, out = (long)p * oh * ow;
        const float *xp = x + base;
        float *yp = y + out, *mp = xmax + out;
        int32_t *ap = argmax + out;
        const float sc = scale[p % channels], sf = shift[p % channels];
#define BN_RELU(v) fmaxf((v) * sc + sf, 0.0f)
        // Rows of eight outputs or more run whole vectors (the last one overlapping); rows of four
        // to seven (a 14-wide plane) read 16 floats from each of their two input rows, running
        // into the rows below (which exist for every output row but the last: that one runs
        // scalar), and store only their own outputs.
        const int vectorRows = ow >= 8 ? oh : ow >= 4 ? oh - 1 : 0;
        if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && vectorRows > 0) {
            const v8f vsc = splat8(sc), vsf = splat8(sf), zero = splat8(0);
            const v8i lanes = {0, 2, 4, 6, 8, 10, 12, 14}, right = SPLAT8I(1), below = SPLAT8I(w), diagonal = SPLAT8I(w + 1);
            for (int i = 0; i < vectorRows; i++) {
                const float *r0 = xp + (2 * i) * w, *r1 = r0 + w;
                const int i0 = (2 * i) * w;
                for (int j = 0; j < ow; j += 8) {
                    if (j + 8 > ow && ow >= 8) j = ow - 8;
                    const v8f a = load8(r0 + 2 * j), b = load8(r0 + 2 * j + 8), c = load8(r1 + 2 * j), d = load8(r1 + 2 * j + 8);
                    const v8f xe0 = EVEN8(a, b), xo0 = ODD8(a, b), xe1 = EVEN8(c, d), xo1 = ODD8(c, d);
                    v8f e0 = xe0 * vsc + vsf, o0 = xo0 * vsc + vsf, e1 = xe1 * vsc + vsf, o1 = xo1 * vsc + vsf;
                    e0 = where8(e0 > zero, e0); o0 = where8(o0 > zero, o0); e1 = where8(e1 > zero, e1); o1 = where8(o1 > zero, o1);
                    v8f best = e0, at_x = xe0;
                    v8i at = SPLAT8I(0), gt = o0 > best;
                    best = SELECT8(gt, o0, best); at_x = SELECT8(gt, xo0, at_x); at = SELECT8I(gt, right, at);
                    gt = e1 > best;
                    best = SELECT8(gt, e1, best); at_x = SELECT8(gt, xe1, at_x); at = SELECT8I(gt, below, at);
                    gt = o1 > best;
                    best = SELECT8(gt, o1, best); at_x = SELECT8(gt, xo1, at_x); at = SELECT8I(gt, diagonal, at);
                    const v8i index = SPLAT8I((int)base + i0 + 2 * j) + lanes + at;
                    if (ow >= 8) {
                        store8(yp + i * ow + j, best);
                        store8(mp + i * ow + j, at_x);
                        memcpy(ap + i * ow + j, &index, sizeof index);
                    } else {
                        memcpy(yp + i * ow, &best, ow * sizeof(float));
                        memcpy(mp + i * ow, &at_x, ow * sizeof(float));
                        memcpy(ap + i * ow, &index, ow * sizeof(int32_t));
                    }
                }
            }
        }
        for (int i = kh == 2 && kw == 2 && sh == 2 && sw == 2 ? vectorRows : 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
                int at = i * sh * w + j * sw;
                float best = BN_RELU(xp[at]);
                for (int a = 0; a < kh; a++) {
                    const int row = (i * sh + a) * w + j * sw;
                    for (int b = 0; b < kw; b++) TAKE_MAX(BN_RELU(xp[row + b]), row + b);
                }
                yp[i * ow + j] = best;
                mp[i * ow + j] = xp[at];
                ap[i * ow + j] = (int32_t)(base + at);
            }
        }
#undef BN_RELU
    }
}

// The fused op's gradient sums over planes p0..<p1, added into s1[c] and s2[c]: of gz and of
// gz (x - mean), where gz is g at a window's maximum that passed the ReLU; every other element's
// gradient is zero, so only the pooled arrays are read (a quarter of the elements for 2x2).
DISPATCH
void bb_bn_relu_maxpool_sums(const float *g, const float *xmax, const float *scale, const float *shift, const float *mean,
                             int channels, int p0, int p1, long pooled, double *s1, double *s2) {
    for (int p = p0; p < p1; p++) {
        const int c = p % channels;
        const float *gp = g + (long)p * pooled, *xp = xmax + (long)p * pooled;
        const float sc = scale[c], sf = shift[c], m = mean[c];
        const v8f vsc = splat8(sc), vsf = splat8(sf), vm = splat8(m), zero = splat8(0);
        v8f a1 = splat8(0), a2 = splat8(0);
        float t1 = 0, t2 = 0;
        long i = 0;
        for (; i + 8 <= pooled; i += 8) {
            const v8f xv = load8(xp + i);
            const v8f gz = where8(xv * vsc + vsf > zero, load8(gp + i));
            a1 += gz; a2 += gz * (xv - vm);
        }
        for (; i < pooled; i++) {
            const float gz = xp[i] * sc + sf > 0.0f ? gp[i] : 0.0f;
            t1 += gz; t2 += gz * (xp[i] - m);
        }
        s1[c] += t1 + hsum8(a1); s2[c] += t2 + hsum8(a2);
    }
}

// dx of the fused op for planes p0..<p1: every element first as bb_bn_grad_apply computes it with
// a zero gradient, then each window's maximum that passed the ReLU with its gradient, by the
// expression bb_bn_grad_apply uses at that position (its vector body and its scalar tail round
// differently), so dx is the unfused backward's.
DISPATCH
void bb_bn_relu_maxpool_grad(const float *g, const int32_t *argmax, const float *xmax, const float *x, float *dx,
                             const float *scale, const float *shift, const float *mean, const float *invstd, const float *mean_g,
                             const float *mean_gxhat, int channels, int p0, int p1, long hw, long pooled) {
    const long vectorEnd = hw / 8 * 8;
    for (int p = p0; p < p1; p++) {
        const int c = p % channels;
        const long base = (long)p * hw;
        const float *xp = x + base;
        float *dp = dx + base;
        const float sc = scale[c], sf = shift[c], m = mean[c], is = invstd[c], mb = mean_g[c], mg = mean_gxhat[c];
        const float k = is * mg;
        const v8f vsc = splat8(sc), vm = splat8(m), vmb = splat8(mb), vk = splat8(k), zero = splat8(0);
        long i = 0;
        for (; i < vectorEnd; i += 8) store8(dp + i, vsc * (zero - vmb - (load8(xp + i) - vm) * vk));
        for (; i < hw; i++) dp[i] = sc * (0.0f - mb - (xp[i] - m) * is * mg);
        // Eight windows at a time: their values made as vectors (the same expressions, so the
        // same bits), then stored at the maxima that passed the ReLU, lane by lane. One window at
        // a time, the scalar loop around each value was most of this pass.
        const v8f vsf = splat8(sf), vis = splat8(is), vmg = splat8(mg);
        long q = (long)p * pooled;
        const long qEnd = (long)(p + 1) * pooled;
        for (; q + 8 <= qEnd; q += 8) {
            const v8f xv = load8(xmax + q), gv = load8(g + q);
            const v8i kept = xv * vsc + vsf > zero;
            if (!(kept[0] | kept[1] | kept[2] | kept[3] | kept[4] | kept[5] | kept[6] | kept[7])) continue;
            const v8f body = vsc * (gv - vmb - (xv - vm) * vk), tail = vsc * (gv - vmb - (xv - vm) * vis * vmg);
            for (int l = 0; l < 8; l++) {
                if (!kept[l]) continue;
                const long at = argmax[q + l];
                dx[at] = at - base < vectorEnd ? body[l] : tail[l];
            }
        }
        for (; q < qEnd; q++) {
            const float xv = xmax[q];
            if (!(xv * sc + sf > 0.0f)) continue;
            const long at = argmax[q];
            dx[at] = at - base < vectorEnd ? sc * (g[q] - mb - (xv - m) * k) : sc * (g[q] - mb - (xv - m) * is * mg);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GEMM shapes OpenBLAS handles poorly (measured 10-25 GFLOP/s against 100+ for square ones): the
// weight gradient of a first convolution (a few rows and columns, a huge inner dimension) and
// products with a tiny inner dimension (a first convolution's forward, a classifier's backward).

DISPATCH
void bb_gemm_nt_long_k(const float *a, const float *b, float *c, int m0, int m1, int n, long k) {
    // C[i, j] = sum_t A[i, t] B[j, t] for rows m0..<m1 (at most 1024 outputs in all), blocked over
    // t so that a block of every row of B stays in L1/L2 while each row of A streams past it
    // once; block sums are added in double. Two rows of A against four of B at a time: eight
    // accumulators for six loads (one row against one took two loads per FMA).
    enum { KB = 1024 };
    double partial[1024];
    const int rows = m1 - m0;
    for (int e = 0; e < rows * n; e++) partial[e] = 0;
    for (long t0 = 0; t0 < k; t0 += KB) {
        const long tn = k - t0 < KB ? k - t0 : KB, tv = tn / 8 * 8;
        for (int i = 0; i < rows; i += 2) {
            const int two = i + 1 < rows;
            const float *a0 = a + (long)(m0 + i) * k + t0, *a1 = two ? a0 + k : a0;
            for (int j = 0; j < n; j += 4) {
                const int cols = n - j < 4 ? n - j : 4;
                const float *bj[4];
                for (int q = 0; q < 4; q++) bj[q] = b + (long)(j + (q < cols ? q : 0)) * k + t0;
                v8f s00 = splat8(0), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
                for (long t = 0; t < tv; t += 8) {
                    const v8f x0 = load8(a0 + t), x1 = load8(a1 + t);
                    const v8f y0 = load8(bj[0] + t), y1 = load8(bj[1] + t), y2 = load8(bj[2] + t), y3 = load8(bj[3] + t);
                    s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
                    s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
                }
                float r[2][4] = {{hsum8(s00), hsum8(s01), hsum8(s02), hsum8(s03)}, {hsum8(s10), hsum8(s11), hsum8(s12), hsum8(s13)}};
                for (long t = tv; t < tn; t++)
                    for (int q = 0; q < 4; q++) { r[0][q] += a0[t] * bj[q][t]; r[1][q] += a1[t] * bj[q][t]; }
                for (int q = 0; q < cols; q++) {
                    partial[i * n + j + q] += r[0][q];
                    if (two) partial[(i + 1) * n + j + q] += r[1][q];
                }
            }
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < n; j++) c[(long)(m0 + i) * n + j] = (float)partial[i * n + j];
}

// The machine's FMA ceiling: 12 accumulators hide the FMA latency (4-5 cycles at 2 per cycle).
#if defined(__x86_64__)
#include <immintrin.h>

#define FMA_ROUNDS(type, set1, fmadd, add, reduce) \
    type a0 = set1(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0; \
    const type m = set1(0.999999f), c = set1(1e-7f); \
    for (long i = 0; i < iterations; i++) { \
        a0 = fmadd(a0, m, c); a1 = fmadd(a1, m, c); a2 = fmadd(a2, m, c); a3 = fmadd(a3, m, c); \
        a4 = fmadd(a4, m, c); a5 = fmadd(a5, m, c); a6 = fmadd(a6, m, c); a7 = fmadd(a7, m, c); \
        a8 = fmadd(a8, m, c); a9 = fmadd(a9, m, c); a10 = fmadd(a10, m, c); a11 = fmadd(a11, m, c); \
    } \
    type s = add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7))); \
    s = add(s, add(add(a8, a9), add(a10, a11))); \
    return reduce(s);

__attribute__((target("avx512f"))) static float fma_loop_512(long iterations) {
    FMA_ROUNDS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps)
}

__attribute__((target("avx2,fma"))) static float reduce256(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float s = 0;
    for (int i = 0; i < 8; i++) s += lanes[i];
    return s;
}

__attribute__((target("avx2,fma"))) static float fma_loop_256(long iterations) {
    FMA_ROUNDS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, reduce256)
}

int bb_fma_width(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
    return 0;
}

float bb_fma_loop(long iterations) {
    switch (bb_fma_width()) {
    case 16: return fma_loop_512(iterations);
    case 8: return fma_loop_256(iterations);
    default: return 0;
    }
}
#else
int bb_fma_width(void) { return 0; }
float bb_fma_loop(long iterations) { (void)iterations; return 0; }
#endif

// MARK: The linear probe's objective

typedef double v8d __attribute__((vector_size(64)));
#define load8d(p) ({ v8d v_; memcpy(&v_, (p), sizeof v_); v_; })
#define store8d(p, v) do { const v8d s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
#define splat8d(x) ({ const double x_ = (x); (v8d){x_, x_, x_, x_, x_, x_, x_, x_}; })
#define hsum8d(v) ({ const v8d h_ = (v); ((h_[0] + h_[4]) + (h_[1] + h_[5])) + ((h_[2] + h_[6]) + (h_[3] + h_[7])); })

// The objective as three passes over a run of rows, so that its two products can split across
// threads by class (each class's logits and gradient row are sums of their own) while every sum
// keeps one order whatever the split: the logits of every row, then the softmax residual row by
// row, then the gradient; or as one pass doing the three a block at a time (bb_logistic_rows), the
// same sums in the same order. Each pass takes rows R at a time (R a constant where the helpers are
// inlined, so their loops unroll): the rows widened once into `rows`, each class's weights or
// gradient row read and written once for all R rows.

static inline __attribute__((always_inline)) void widen_rows(const float *x, const int R, int d, double *rows) {
    for (int r = 0; r < R; r++) {
        const float *source = x + (long)r * d;
        double *row = rows + (long)r * d;
        int j = 0;
        for (; j + 8 <= d; j += 8) store8d(row + j, __builtin_convertvector(load8(source + j), v8d));
        for (; j < d; j++) row[j] = source[j];
    }
}

// Classes c..<c + C (C a constant, up to LOGISTIC_CLASSES) at once: every widened row vector is
// loaded once for the C classes (one class at a time, each FMA needed its own load of the row,
// and the loads, not the FMAs, set the pace: 30% of the core's Double peak). Each accumulator
// still adds its products in the order of j, so blocking the classes changes no sum.
enum { LOGISTIC_CLASSES = 4 };

// z[r k + c'] = W_c' . row_r + b_c' for the R rows and classes c' in c..<c + C.
static inline __attribute__((always_inline)) void logits_classes(const double *rows, const int R, const int C, int d, int k,
                                                                 const double *wt, const double *b, int c, double *z) {
    v8d a[BB_LOGISTIC_ROWS][LOGISTIC_CLASSES];
    for (int r = 0; r < R; r++) for (int q = 0; q < C; q++) a[r][q] = splat8d(0);
    int j = 0;
    for (; j + 8 <= d; j += 8) {
        v8d rv[BB_LOGISTIC_ROWS];
        for (int r = 0; r < R; r++) rv[r] = load8d(rows + (long)r * d + j);
        for (int q = 0; q < C; q++) {
            const v8d wv = load8d(wt + (long)(c + q) * d + j);
            for (int r = 0; r < R; r++) a[r][q] += rv[r] * wv;
        }
    }
    for (int q = 0; q < C; q++) {
        const double *w = wt + (long)(c + q) * d;
        for (int r = 0; r < R; r++) {
            double s = hsum8d(a[r][q]);
            for (int t = j; t < d; t++) s += rows[(long)r * d + t] * w[t];
            z[r * k + c + q] = s + b[c + q];
        }
    }
}

// z[r k + c] = W_c . row_r + b_c for the R rows and classes c0..<c1.
static inline __attribute__((always_inline)) void logits_block(const double *rows, const int R, int d, int k, const double *wt,
                                                               const double *b, int c0, int c1, double *z) {
    int c = c0;
    for (; c + LOGISTIC_CLASSES <= c1; c += LOGISTIC_CLASSES) logits_classes(rows, R, LOGISTIC_CLASSES, d, k, wt, b, c, z);
    switch (c1 - c) {  // the rest at once too, each count a constant
    case 3: logits_classes(rows, R, 3, d, k, wt, b, c, z); break;
    case 2: logits_classes(rows, R, 2, d, k, wt, b, c, z); break;
    case 1: logits_classes(rows, R, 1, d, k, wt, b, c, z); break;
    }
}

// gt[c'] += z[r k + c'] row_r and gb[c'] += z[r k + c'] for the R rows (in order) and classes c'
// in c..<c + C.
static inline __attribute__((always_inline)) void gradient_classes(const double *rows, const int R, const int C, int d, int k,
                                                                   const double *z, int c, double *gt, double *gb) {
    v8d p[BB_LOGISTIC_ROWS][LOGISTIC_CLASSES];
    for (int q = 0; q < C; q++)
        for (int r = 0; r < R; r++) { p[r][q] = splat8d(z[r * k + c + q]); gb[c + q] += z[r * k + c + q]; }
    int j = 0;
    for (; j + 8 <= d; j += 8) {
        v8d rv[BB_LOGISTIC_ROWS];
        for (int r = 0; r < R; r++) rv[r] = load8d(rows + (long)r * d + j);
        // One chain of R dependent FMAs per class: C chains side by side.
        for (int q = 0; q < C; q++) {
            double *g = gt + (long)(c + q) * d + j;
            v8d acc = load8d(g);
            for (int r = 0; r < R; r++) acc += p[r][q] * rv[r];
            store8d(g, acc);
        }
    }
    for (; j < d; j++)
        for (int q = 0; q < C; q++)
            for (int r = 0; r < R; r++) gt[(long)(c + q) * d + j] += z[r * k + c + q] * rows[(long)r * d + j];
}

// gt[c] += z[r k + c] row_r and gb[c] += z[r k + c] for the R rows (in order) and classes c0..<c1.
static inline __attribute__((always_inline)) void gradient_block(const double *rows, const int R, int d, int k, const double *z,
                                                                 int c0, int c1, double *gt, double *gb) {
    int c = c0;
    for (; c + LOGISTIC_CLASSES <= c1; c += LOGISTIC_CLASSES) gradient_classes(rows, R, LOGISTIC_CLASSES, d, k, z, c, gt, gb);
    switch (c1 - c) {
    case 3: gradient_classes(rows, R, 3, d, k, z, c, gt, gb); break;
    case 2: gradient_classes(rows, R, 2, d, k, z, c, gt, gb); break;
    case 1: gradient_classes(rows, R, 1, d, k, z, c, gt, gb); break;
    }
}

DISPATCH
void bb_logistic_logits(const float *x, int m, int d, int k, const double *wt, const double *b, int c0, int c1,
                        double *z, double *rows) {
    int i = 0;
    for (; i + BB_LOGISTIC_ROWS <= m; i += BB_LOGISTIC_ROWS) {
        widen_rows(x + (long)i * d, BB_LOGISTIC_ROWS, d, rows);
        logits_block(rows, BB_LOGISTIC_ROWS, d, k, wt, b, c0, c1, z + (long)i * k);
    }
    for (; i < m; i++) {
        widen_rows(x + (long)i * d, 1, d, rows);
        logits_block(rows, 1, d, k, wt, b, c0, c1, z + (long)i * k);
    }
}

// Cross-entropy through log-sum-exp of the R rows' logits z, summed row by row; z becomes the
// residual (softmax - onehot) * scale.
static inline __attribute__((always_inline)) double residual_block(const int32_t *y, const int R, int k, double scale, double *z) {
    double loss = 0;
    for (int r = 0; r < R; r++) {
        double *zr = z + r * k;
        double top = zr[0];
        for (int c = 1; c < k; c++) top = zr[c] > top ? zr[c] : top;
        const int label = y[r];
        const double margin = zr[label] - top;
        double sum = 0;
        for (int c = 0; c < k; c++) { zr[c] = exp(zr[c] - top); sum += zr[c]; }
        loss += (log(sum) - margin) * scale;
        for (int c = 0; c < k; c++) zr[c] = zr[c] / sum * scale;
        zr[label] -= scale;
    }
    return loss;
}

// The loss is summed per block of rows, then block after block, in both forms of the objective.
// Compiled for the same targets as bb_logistic_rows, so that its arithmetic contracts into the
// same fused multiply-adds.
DISPATCH
double bb_logistic_residual(const int32_t *y, int m, int k, double scale, double *z) {
    double loss = 0;
    int i = 0;
    for (; i + BB_LOGISTIC_ROWS <= m; i += BB_LOGISTIC_ROWS) loss += residual_block(y + i, BB_LOGISTIC_ROWS, k, scale, z + (long)i * k);
    for (; i < m; i++) loss += residual_block(y + i, 1, k, scale, z + (long)i * k);
    return loss;
}

DISPATCH
void bb_logistic_gradient(const float *x, int m, int d, int k, const double *z, int c0, int c1, double *gt, double *gb,
                          double *rows) {
    int i = 0;
    for (; i + BB_LOGISTIC_ROWS <= m; i += BB_LOGISTIC_ROWS) {
        widen_rows(x + (long)i * d, BB_LOGISTIC_ROWS, d, rows);
        gradient_block(rows, BB_LOGISTIC_ROWS, d, k, z + (long)i * k, c0, c1, gt, gb);
    }
    for (; i < m; i++) {
        widen_rows(x + (long)i * d, 1, d, rows);
        gradient_block(rows, 1, d, k, z + (long)i * k, c0, c1, gt, gb);
    }
}

// The three passes block by block, on one thread: each block's rows widened once for both
// products while they are in L1/L2 (x read once).
static inline __attribute__((always_inline)) double logistic_block(const float *x, const int32_t *y, const int R, int d, int k,
                                                                   const double *wt, const double *b, double scale, double *gt,
                                                                   double *gb, double *rows, double *z) {
    widen_rows(x, R, d, rows);
    logits_block(rows, R, d, k, wt, b, 0, k, z);
    const double loss = residual_block(y, R, k, scale, z);
    gradient_block(rows, R, d, k, z, 0, k, gt, gb);
    return loss;
}

DISPATCH
double bb_logistic_rows(const float *x, const int32_t *y, int m, int d, int k, const double *wt, const double *b,
                        double scale, double *gt, double *gb, double *scratch) {
    double *rows = scratch, *z = scratch + (long)BB_LOGISTIC_ROWS * d;
    double loss = 0;
    int i = 0;
    for (; i + BB_LOGISTIC_ROWS <= m; i += BB_LOGISTIC_ROWS)
        loss += logistic_block(x + (long)i * d, y + i, BB_LOGISTIC_ROWS, d, k, wt, b, scale, gt, gb, rows, z);
    for (; i < m; i++) loss += logistic_block(x + (long)i * d, y + i, 1, d, k, wt, b, scale, gt, gb, rows, z);
    return loss;
}

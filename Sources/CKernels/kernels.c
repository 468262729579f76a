#include "ckernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
// ISA levels, not CPU models: "arch=haswell" would dispatch on the model and leave AMD CPUs on the
// baseline code (seen on an EPYC: 2x slower im2col).
#define DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DISPATCH
#endif

// Eight floats as one value: one AVX register in the AVX2/AVX-512 clones, two SSE registers in the
// baseline one. memcpy makes the loads and stores unaligned-safe and compiles to single moves.
typedef float v8f __attribute__((vector_size(32)));
static inline v8f load8(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
static inline void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

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
DISPATCH
void bb_im2col(const bb_conv_geometry *g, const float *x, float *cols, int n0, int n1) {
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
    // Blocks of 1024 summed with 16 independent lanes (the compiler keeps them in vector
    // registers; without -ffast-math it may not reorder one accumulator), blocks added in double:
    // fast, and a million equal terms stay accurate where one running float sum drifts by 1%.
    double total = 0;
    long i = 0;
    while (i < n) {
        const long end = i + 1024 < n ? i + 1024 : n;
        float acc[16] = {0};
        for (; i + 16 <= end; i += 16)
            for (int k = 0; k < 16; k++) acc[k] += x[i + k];
        float block = 0;
        for (; i < end; i++) block += x[i];
        for (int k = 0; k < 16; k++) block += acc[k];
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
                float acc[8] = {0};
                int k = 0;
                for (; k + 8 <= r; k += 8)
                    for (int l = 0; l < 8; l++) acc[l] += dst[k + l];
                float s = 0;
                for (; k < r; k++) s += dst[k];
                for (int l = 0; l < 8; l++) s += acc[l];
                total += s;
            }
        }
        if (bias_grad) bias_grad[o] = (float)total;
    }
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

DISPATCH
void bb_batchnorm_forward(const float *x, const float *gamma, const float *beta, float *y, float *mean_out, float *invstd_out,
                          int n, int channels, long hw, float eps, int relu, int c0, int c1) {
    const double count = (double)n * (double)hw;
    for (int c = c0; c < c1; c++) {
        double s = 0, s2 = 0;
        for (int b = 0; b < n; b++) {
            const float *xp = x + ((long)b * channels + c) * hw;
            float a1[8] = {0}, a2[8] = {0};
            long i = 0;
            for (; i + 8 <= hw; i += 8)
                for (int l = 0; l < 8; l++) { const float v = xp[i + l]; a1[l] += v; a2[l] += v * v; }
            float t1 = 0, t2 = 0;
            for (; i < hw; i++) { t1 += xp[i]; t2 += xp[i] * xp[i]; }
            for (int l = 0; l < 8; l++) { t1 += a1[l]; t2 += a2[l]; }
            s += t1; s2 += t2;
        }
        const double m = s / count;
        double var = s2 / count - m * m;
        if (var < 0) var = 0;
        const float invstd = (float)(1.0 / sqrt(var + eps));
        mean_out[c] = (float)m;
        invstd_out[c] = invstd;
        const float scale = gamma[c] * invstd, shift = beta[c] - (float)m * scale;
        for (int b = 0; b < n; b++) {
            const float *xp = x + ((long)b * channels + c) * hw;
            float *yp = y + ((long)b * channels + c) * hw;
            if (relu) {
                for (long i = 0; i < hw; i++) { const float v = xp[i] * scale + shift; yp[i] = v > 0 ? v : 0.0f; }
            } else {
                for (long i = 0; i < hw; i++) yp[i] = xp[i] * scale + shift;
            }
        }
    }
}

DISPATCH
void bb_batchnorm_backward(const float *g, const float *x, const float *gamma, const float *beta, const float *mean,
                           const float *invstd, float *dx, float *dgamma, float *dbeta,
                           int n, int channels, long hw, int relu, int c0, int c1) {
    // The ReLU's mask is recomputed from x (one multiply-add) rather than read from the output:
    // one array fewer to stream, twice.
    const double count = (double)n * (double)hw;
    for (int c = c0; c < c1; c++) {
        const float m = mean[c], is = invstd[c];
        const float scale = gamma[c] * is, shift = beta[c] - m * scale;
        double sg = 0, sgx = 0;
        for (int b = 0; b < n; b++) {
            const long base = ((long)b * channels + c) * hw;
            const float *gp = g + base, *xp = x + base;
            float a1[8] = {0}, a2[8] = {0};
            long i = 0;
            for (; i + 8 <= hw; i += 8)
                for (int l = 0; l < 8; l++) {
                    const float xv = xp[i + l];
                    const float gz = (!relu || xv * scale + shift > 0) ? gp[i + l] : 0.0f;
                    a1[l] += gz; a2[l] += gz * (xv - m);
                }
            float t1 = 0, t2 = 0;
            for (; i < hw; i++) {
                const float gz = (!relu || xp[i] * scale + shift > 0) ? gp[i] : 0.0f;
                t1 += gz; t2 += gz * (xp[i] - m);
            }
            for (int l = 0; l < 8; l++) { t1 += a1[l]; t2 += a2[l]; }
            sg += t1; sgx += t2;
        }
        const float db = (float)sg, dg = (float)(sgx * is);      // dgamma = sum gz * xhat
        if (dbeta) dbeta[c] = db;
        if (dgamma) dgamma[c] = dg;
        if (!dx) continue;
        // dx = gamma * invstd * (gz - mean(gz) - xhat * mean(gz xhat))
        const float mb = (float)(db / count), mg = (float)(dg / count);
        for (int b = 0; b < n; b++) {
            const long base = ((long)b * channels + c) * hw;
            const float *gp = g + base, *xp = x + base;
            float *dp = dx + base;
            for (long i = 0; i < hw; i++) {
                const float xv = xp[i];
                const float gz = (!relu || xv * scale + shift > 0) ? gp[i] : 0.0f;
                dp[i] = scale * (gz - mb - (xv - m) * is * mg);
            }
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
    // t so that a block of every row of B stays in L2 while each row of A streams past it once;
    // block sums are added in double.
    enum { KB = 1024 };
    double partial[1024];
    const int rows = m1 - m0;
    for (int e = 0; e < rows * n; e++) partial[e] = 0;
    for (long t0 = 0; t0 < k; t0 += KB) {
        const long tn = k - t0 < KB ? k - t0 : KB;
        for (int i = 0; i < rows; i++) {
            const float *ai = a + (long)(m0 + i) * k + t0;
            for (int j = 0; j < n; j++) {
                const float *bj = b + (long)j * k + t0;
                float acc[16] = {0};
                long t = 0;
                for (; t + 16 <= tn; t += 16)
                    for (int l = 0; l < 16; l++) acc[l] += ai[t + l] * bj[t + l];
                float s = 0;
                for (; t < tn; t++) s += ai[t] * bj[t];
                for (int l = 0; l < 16; l++) s += acc[l];
                partial[i * n + j] += s;
            }
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < n; j++) c[(long)(m0 + i) * n + j] = (float)partial[i * n + j];
}

// Hot loops of the engine that Swift, compiled for baseline x86-64 (SSE2), cannot make fast:
// each is compiled several times (AVX-512, AVX2 + FMA, baseline) and the loader picks the best
// for the CPU at run time, so one binary runs everywhere and uses the vector units it finds.
#ifndef BENCHBENCH_CKERNELS_H
#define BENCHBENCH_CKERNELS_H

#include <stdint.h>

typedef struct {
    int batch, channels, height, width;
    int out_channels, kernel_h, kernel_w;
    int stride_h, stride_w, pad_h, pad_w;
    int out_h, out_w;
} bb_conv_geometry;

/// Writes the im2col columns of images n0..<n1: cols[(c,i,j), (n,oh,ow)], row length batch*out_h*out_w.
void bb_im2col(const bb_conv_geometry *g, const float *x, float *cols, int n0, int n1);
/// Accumulates columns back into images n0..<n1 (which are overwritten): the adjoint of im2col.
void bb_col2im(const bb_conv_geometry *g, const float *cols, float *x, int n0, int n1);

/// Max pooling of planes p0..<p1 (no padding), writing each maximum's flat input index.
void bb_maxpool(const float *x, float *y, int32_t *argmax, int p0, int p1,
                int h, int w, int kh, int kw, int sh, int sw);

/// out = x > 0 ? g : slope * g.
void bb_relu_backward(const float *g, const float *x, float *out, long n, float slope);
/// y = x > 0 ? x : slope * x.
void bb_leaky_relu(const float *x, float *y, long n, float slope);
/// Sum of n floats (several accumulators, so it vectorises and stays accurate).
float bb_sum(const float *x, long n);
/// y[j, i, :] = x[i, j, :] (+ bias[i] when bias is not NULL), for j in j0..<j1; x is [a, b, r].
void bb_swap_axes(const float *x, float *y, int a, int b, int r, const float *bias, int j0, int j1);

#endif

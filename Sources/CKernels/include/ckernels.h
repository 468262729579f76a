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
/// Whether g is a "same" convolution (stride 1, output planes the input's size), whose im2col rows
/// are whole planes moved by each tap's offset.
int bb_same_shape(const bb_conv_geometry *g);
/// For a same-shape g, keep[tap][p] = -1 where plane position p moved by the tap's offset (sign 1,
/// im2col) or against it (sign -1, col2im) lands inside the plane, else 0; malloc'ed (the caller
/// frees it), NULL when out of memory.
int32_t *bb_tap_masks(const bb_conv_geometry *g, int sign);

/// Max pooling of planes p0..<p1 (no padding), writing each maximum's flat input index.
void bb_maxpool(const float *x, float *y, int32_t *argmax, int p0, int p1,
                int h, int w, int kh, int kw, int sh, int sw);

/// out = x > 0 ? g : slope * g.
void bb_relu_backward(const float *g, const float *x, float *out, long n, float slope);
/// y = x > 0 ? x : slope * x.
void bb_leaky_relu(const float *x, float *y, long n, float slope);
/// Sum of n floats (several accumulators, so it vectorises and stays accurate).
float bb_sum(const float *x, long n);
/// A convolution's output from its GEMM result: y[n, o, :] = act(ycol[o, n, :] + bias[o]) for
/// images n0..<n1, where act is ReLU when `relu` is non-zero and bias may be NULL.
void bb_conv_output(const float *ycol, float *y, int channels, int batch, int r, const float *bias, int relu,
                    int n0, int n1);
/// The backward GEMMs' view of an output gradient, for channels o0..<o1: gycol[o, n, :] = g[n, o, :],
/// masked where relu_output <= 0 when relu_output is not NULL, with bias_grad[o] = sum of gycol[o]
/// when bias_grad is not NULL. One pass instead of mask, reorder and reduction.
void bb_conv_grad_columns(const float *g, const float *relu_output, float *gycol, float *bias_grad,
                          int batch, int channels, int r, int o0, int o1);

/// Direct convolution of images n0..<n1 (stride 1, a patch channels*kernel_h*kernel_w under 32
/// rows, out_w >= 8): y[n, o] = act(sum over c, i, j of w[o, c, i, j] x[n, c, oh+i-ph, ow+j-pw]
/// + bias[o]), act ReLU when `relu`, bias may be NULL. `scratch`: (H + 2 pad_h)(W + 2 pad_w) C floats.
/// With `moments` not NULL, also each output plane's sum and sum of squares, as bb_plane_moments
/// makes them, at moments[2 (n O + o)] and the float after it.
void bb_conv_direct(const bb_conv_geometry *g, const float *x, const float *w, const float *bias, int relu, float *y,
                    float *scratch, float *moments, int n0, int n1);
/// The same convolution's weight gradient gw [O, C, KH, KW] and (when not NULL) bias gradient [O]
/// over images n0..<n1 only (written, not added to), from gy [N, O, OH, OW] masked where
/// relu_output <= 0 when relu_output is not NULL. `scratch`: (n1 - n0) times the forward's;
/// `accumulators`: 8 (O C KH KW + O) floats.
void bb_conv_direct_weight_grad(const bb_conv_geometry *g, const float *x, const float *gy, const float *relu_output,
                                float *gw, float *bias_grad, float *scratch, float *accumulators, int n0, int n1);

/// Copies row[c0..<c1] into rows r0..<r1 of y (leading dimension ld): a bias laid down for a
/// GEMM to add to, block by block where the GEMM's threads will find it in their caches.
void bb_fill_block(float *y, long ld, const float *row, int r0, int r1, int c0, int c1);
/// ReLU in place on rows r0..<r1, columns c0..<c1 of y (leading dimension ld).
void bb_relu_block(float *y, long ld, int r0, int r1, int c0, int c1);
/// A dense layer's output gradient made ready for its GEMMs in one pass: gz = g masked where
/// relu_output <= 0 (when relu_output is not NULL; gz unused otherwise), and bias_grad = column
/// sums of the masked gradient (when bias_grad is not NULL).
void bb_linear_grad(const float *g, const float *relu_output, float *gz, float *bias_grad, int rows, int cols);

/// SGD step in place (PyTorch's formulation): d = g + wd p; v = mu v + d; p -= lr (nesterov ? d + mu v : v).
/// Without momentum (v NULL): p -= lr d.
void bb_sgd_update(float *p, const float *g, float *v, long n, float lr, float mu, float wd, int nesterov);
/// Adam / AdamW step in place; c1 and c2 are the bias corrections 1 - b1^t and 1 - b2^t.
void bb_adam_update(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2, float eps,
                    float wd, int decoupled, float c1, float c2);

/// Each plane p0..<p1 of y (hw floats each): its sum and sum of squares at moments[2p] and
/// moments[2p + 1], the values bb_bn_sums adds into a channel's statistics for that plane.
void bb_plane_moments(const float *y, long p0, long p1, long hw, float *moments);
/// Per-channel sums over images n0..<n1 of x [n, channels, hw], added into s1 and s2: with g NULL,
/// of x and x squared; otherwise of gz and gz (x - mean), gz = g masked where x scale + shift <= 0
/// when `relu` (a fused ReLU's backward).
void bb_bn_sums(const float *x, const float *g, const float *scale, const float *shift, const float *mean, int relu,
                int n0, int n1, int channels, long hw, double *s1, double *s2);
/// y = x scale[c] + shift[c] (then ReLU) for images n0..<n1.
void bb_bn_apply(const float *x, float *y, const float *scale, const float *shift, int relu, int n0, int n1, int channels, long hw);
/// dx = scale (gz - mean_g - xhat mean_gxhat) for images n0..<n1, xhat = (x - mean) invstd.
void bb_bn_grad_apply(const float *g, const float *x, float *dx, const float *scale, const float *shift, const float *mean,
                      const float *invstd, const float *mean_g, const float *mean_gxhat, int relu,
                      int n0, int n1, int channels, long hw);

/// Batch norm's affine map (x scale[c] + shift[c]), ReLU and max pooling over planes p0..<p1 of
/// x [planes, h, w] (channel c = plane % channels), windows kh x kw at strides sh >= kh, sw >= kw:
/// y and argmax (flat input index of each maximum, the first on ties) as bb_bn_apply then
/// bb_maxpool would write them, and xmax, x at each maximum.
void bb_bn_relu_maxpool(const float *x, float *y, int32_t *argmax, float *xmax, const float *scale, const float *shift,
                        int channels, int p0, int p1, int h, int w, int kh, int kw, int sh, int sw);
/// The fused op's gradient sums for planes p0..<p1 (`pooled` outputs each), added into s1 and s2:
/// of gz and gz (x - mean), gz = g at maxima where xmax scale + shift > 0.
void bb_bn_relu_maxpool_sums(const float *g, const float *xmax, const float *scale, const float *shift, const float *mean,
                             int channels, int p0, int p1, long pooled, double *s1, double *s2);
/// The fused op's dx for planes p0..<p1 (hw elements, `pooled` outputs each): bb_bn_grad_apply's
/// values with gz placed at the maxima.
void bb_bn_relu_maxpool_grad(const float *g, const int32_t *argmax, const float *xmax, const float *x, float *dx,
                             const float *scale, const float *shift, const float *mean, const float *invstd, const float *mean_g,
                             const float *mean_gxhat, int channels, int p0, int p1, long hw, long pooled);

/// C[i, j] = sum_t A[i, t] B[j, t] (A [m, k], B [n, k], row-major) for rows m0..<m1: few rows
/// and columns, long inner dimension.
void bb_gemm_nt_long_k(const float *a, const float *b, float *c, int m0, int m1, int n, long k);

/// Whether `bb_sgemm` runs on this CPU (it needs AVX-512F).
int bb_sgemm_available(void);
/// C = alpha op(A) op(B) + beta C, row-major (op(A) m x k, op(B) k x n, leading dimensions as
/// stored), single-threaded: a packed AVX-512 GEMM (gemm.c). C is not read when beta is 0.
void bb_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda,
              const float *b, long ldb, float beta, float *c, long ldc);
/// bb_sgemm with B the im2col columns of the g->batch images at x (trans_b 0: B = columns
/// [patch, positions], a convolution's forward product; 1: op(B) = columnsᵀ, its weight gradient),
/// made from the images while B is packed instead of read from a materialised matrix: the same
/// products in the same order as bb_im2col then bb_sgemm, so the same result to the bit. Same-shape
/// convolutions only (stride 1, output planes the input's size); returns 0, computing nothing, for
/// any other geometry, shapes that are not its columns, a CPU without AVX-512, or no memory.
int bb_sgemm_conv(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda,
                  const bb_conv_geometry *g, const float *x, float beta, float *c, long ldc);

/// Floats per FMA instruction of the widest vectors this CPU runs: 16 (AVX-512), 8 (AVX2 with
/// FMA), or 0 where there is no fused multiply-add (the ceiling is then not measured).
int bb_fma_width(void);
/// `iterations` rounds of 12 independent fused multiply-adds of the widest vectors (no memory
/// traffic, no dependency chain shorter than 12): 12 x width x 2 FLOPs a round. Returns a value
/// made from the accumulators so the loop is not optimised away.
float bb_fma_loop(long iterations);

/// Rows the linear probe's objective (bb_logistic_logits, bb_logistic_gradient) takes at a time:
/// each class's weights and gradient row are read once per block. Measured on a 2-core Xeon (54,000 x 576 x 10): 4 rows 21 GFLOP/s, 8 rows 18 (their 37 KB
/// of widened rows crowd L1), 1 row 14; two Double GEMMs over the whole matrix 6.6.
#define BB_LOGISTIC_ROWS 4

/// Rows 0..<m of a multinomial logistic regression's data term, in Double from Float features x
/// ([m, d]) and labels y: returns scale x the rows' summed cross-entropy of z = W x + b, and adds
/// scale x (softmax(z) - onehot) ⊗ x to gt ([k, d], the weights' gradient transposed, like wt)
/// and the residual to gb ([k]). scratch holds BB_LOGISTIC_ROWS x (d + k) doubles.
double bb_logistic_rows(const float *x, const int32_t *y, int m, int d, int k, const double *wt, const double *b,
                        double scale, double *gt, double *gb, double *scratch);
/// The same in three passes, the first and last of which can split the classes across threads
/// (each sum has one order however they are split; the results are bb_logistic_rows's to the
/// bit). rows: BB_LOGISTIC_ROWS x d doubles of scratch per thread.
/// z[r k + c] = W_c . x_r + b_c for classes c0..<c1 (wt [k, d]: the weights transposed).
void bb_logistic_logits(const float *x, int m, int d, int k, const double *wt, const double *b, int c0, int c1,
                        double *z, double *rows);
/// Returns scale x the rows' summed cross-entropy of the logits z ([m, k]), which become the
/// residual scale x (softmax(z) - onehot).
double bb_logistic_residual(const int32_t *y, int m, int k, double scale, double *z);
/// Adds the residual z ⊗ x to gt ([k, d], the weights' gradient transposed) and z's column sums to
/// gb ([k]), for classes c0..<c1.
void bb_logistic_gradient(const float *x, int m, int d, int k, const double *z, int c0, int c1, double *gt, double *gb,
                          double *rows);

/// A job's chunk: fn(ctx, i) for chunk i.
typedef void (*bb_task_fn)(void *ctx, long chunk);
/// Runs fn(ctx, i) for i in 0..<chunks on the calling thread and up to threads - 1 of the engine's
/// workers (pool.c), returning when all are done: 1. Refused, nothing run: 0 when called from
/// inside a job or with fewer than 2 chunks or threads (run them on this thread), -1 while another
/// thread's job runs or no worker could be started (run them another way).
int bb_parallel_run(long chunks, int threads, bb_task_fn fn, void *ctx);

#endif

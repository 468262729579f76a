import CBLAS
import CKernels
import Foundation

/// Geometry of a 2-D convolution over NCHW input with an [O, C, KH, KW] kernel. Rectangular
/// kernels, strides and padding are independent per axis, so a 1-D signal is an H = 1 image.
public struct ConvGeometry: Hashable, Sendable {
    public var batch, channels, height, width: Int
    public var outChannels, kernelH, kernelW: Int
    public var strideH, strideW, padH, padW: Int

    public var outH: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    public var outW: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    /// Rows of the im2col matrix: one per (channel, kernel row, kernel column).
    var patch: Int { channels * kernelH * kernelW }
    /// Columns of the im2col matrix: one per output position of the whole batch.
    var positions: Int { batch * outH * outW }
    public var inputShape: [Int] { [batch, channels, height, width] }
    public var outputShape: [Int] { [batch, outChannels, outH, outW] }
    public var weightShape: [Int] { [outChannels, channels, kernelH, kernelW] }
    var flops: Double { 2 * Double(outChannels) * Double(patch) * Double(positions) }

    public init(input: [Int], weight: [Int], stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) {
        require(input.count == 4 && weight.count == 4,
                "conv2d: input \(describe(input)) must be [N, C, H, W] and weight \(describe(weight)) [O, C, KH, KW]")
        require(input[1] == weight[1],
                "conv2d: input \(describe(input)) has \(input[1]) channels but weight \(describe(weight)) expects \(weight[1])")
        require(stride.0 > 0 && stride.1 > 0 && padding.0 >= 0 && padding.1 >= 0,
                "conv2d: stride \(stride) must be positive and padding \(padding) non-negative")
        (batch, channels, height, width) = (input[0], input[1], input[2], input[3])
        (outChannels, kernelH, kernelW) = (weight[0], weight[2], weight[3])
        (strideH, strideW, padH, padW) = (stride.0, stride.1, padding.0, padding.1)
        require(height + 2 * padH >= kernelH && width + 2 * padW >= kernelW,
                "conv2d: kernel \(kernelH)x\(kernelW) is larger than the padded input \(describe(input))")
    }
}

extension Kernels {
    static func cGeometry(_ g: ConvGeometry) -> bb_conv_geometry {
        bb_conv_geometry(batch: Int32(g.batch), channels: Int32(g.channels), height: Int32(g.height), width: Int32(g.width),
                         out_channels: Int32(g.outChannels), kernel_h: Int32(g.kernelH), kernel_w: Int32(g.kernelW),
                         stride_h: Int32(g.strideH), stride_w: Int32(g.strideW), pad_h: Int32(g.padH), pad_w: Int32(g.padW),
                         out_h: Int32(g.outH), out_w: Int32(g.outW))
    }

    /// Images to columns: cols[(c, i, j), (n, oh, ow)] = x[n, c, oh*sh - ph + i, ow*sw - pw + j]
    /// (zero outside). Images are independent, so large batches are split across cores.
    static func im2col(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>) {
        var cg = cGeometry(g)
        KernelProfiler.shared.measure("im2col", dims(g.batch, g.channels, g.height, g.width),
                                      bytes: Double(4 * (g.patch * g.positions + g.batch * g.channels * g.height * g.width))) {
            parallelRanges(g.batch, grain: max(1, 131_072 / max(1, g.patch * g.outH * g.outW))) { lo, hi in
                bb_im2col(&cg, x, cols, Int32(lo), Int32(hi))
            }
        }
    }

    /// Columns back to images, accumulating overlapping patches: the adjoint of `im2col`.
    /// `x` is overwritten.
    static func col2im(_ g: ConvGeometry, _ cols: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>) {
        var cg = cGeometry(g)
        KernelProfiler.shared.measure("col2im", dims(g.batch, g.channels, g.height, g.width),
                                      bytes: Double(4 * (g.patch * g.positions + g.batch * g.channels * g.height * g.width))) {
            parallelRanges(g.batch, grain: max(1, 131_072 / max(1, g.patch * g.outH * g.outW))) { lo, hi in
                bb_col2im(&cg, cols, x, Int32(lo), Int32(hi))
            }
        }
    }

    /// im2col(x) in a buffer of its own.
    static func columns(_ g: ConvGeometry, _ x: UnsafePointer<Float>) -> TensorStorage {
        let cols = TensorStorage(uninitializedCount: g.patch * g.positions)
        im2col(g, x, cols.pointer)
        return cols
    }

    /// gy [N, O, OH, OW] reordered to [O, N, OH, OW], the layout the backward GEMMs read; masked
    /// where `reluOutput` <= 0 when given (a fused ReLU's backward), and with the bias gradient
    /// written to `biasGrad` when given, all in one pass.
    static func gradColumns(_ g: ConvGeometry, _ gy: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>? = nil,
                            biasGrad: UnsafeMutablePointer<Float>? = nil) -> TensorStorage {
        let out = TensorStorage(uninitializedCount: g.outChannels * g.positions)
        let r = g.outH * g.outW
        KernelProfiler.shared.measure("conv_grad_columns", dims(g.batch, g.outChannels, r), bytes: Double(4 * g.outChannels * g.positions * (reluOutput == nil ? 2 : 3))) {
            parallelRanges(g.outChannels, grain: max(1, 65_536 / max(1, g.positions))) { lo, hi in
                bb_conv_grad_columns(gy, reluOutput, out.pointer, biasGrad, Int32(g.batch), Int32(g.outChannels), Int32(r), Int32(lo), Int32(hi))
            }
        }
        return out
    }

    /// y[N, O, OH, OW] = act(conv(x, w) + bias) via im2col + one GEMM over the whole batch; the
    /// bias and ReLU are applied while the GEMM's result is reordered to NCHW. Returns the im2col
    /// columns, which the weight gradient needs again.
    static func conv2dForward(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, relu: Bool, _ y: UnsafeMutablePointer<Float>) -> TensorStorage {
        let cols = columns(g, x)
        let ycol = TensorStorage(uninitializedCount: g.outChannels * g.positions)
        gemm(transA: false, transB: false, m: g.outChannels, n: g.positions, k: g.patch, w, cols.pointer, ycol.pointer)
        let r = g.outH * g.outW
        KernelProfiler.shared.measure("conv_output", dims(g.batch, g.outChannels, r), bytes: Double(8 * g.outChannels * g.positions)) {
            parallelRanges(g.batch, grain: max(1, 65_536 / max(1, g.outChannels * r))) { lo, hi in
                bb_conv_output(ycol.pointer, y, Int32(g.outChannels), Int32(g.batch), Int32(r), bias, relu ? 1 : 0, Int32(lo), Int32(hi))
            }
        }
        return cols
    }

    /// gx = J_xᵀ gy: GEMM to columns, then col2im. `gyColumns` is gy channel-major.
    static func conv2dBackwardData(_ g: ConvGeometry, _ gyColumns: TensorStorage, _ w: UnsafePointer<Float>,
                                   _ gx: UnsafeMutablePointer<Float>) {
        // OpenBLAS's Wᵀ-times-columns is 30% slower than the same product with Wᵀ laid out
        // (measured single-threaded at 288x7744x64: 43 vs 56 GFLOP/s); the transpose is tiny.
        let wt = TensorStorage(uninitializedCount: g.patch * g.outChannels)
        transpose2D(w, wt.pointer, batch: 1, rows: g.outChannels, cols: g.patch)
        let cols = TensorStorage(uninitializedCount: g.patch * g.positions)
        gemm(transA: false, transB: false, m: g.patch, n: g.positions, k: g.outChannels, wt.pointer, gyColumns.pointer, cols.pointer)
        col2im(g, cols.pointer, gx)
    }

    /// gw = gy ⋅ im2col(x)ᵀ, summed over the batch in one GEMM.
    static func conv2dBackwardWeight(_ g: ConvGeometry, _ columns: TensorStorage, _ gyColumns: TensorStorage,
                                     _ gw: UnsafeMutablePointer<Float>) {
        gemm(transA: false, transB: true, m: g.outChannels, n: g.patch, k: g.positions, gyColumns.pointer, columns.pointer, gw)
    }
}

/// Runs `body(lo, hi)` over a split of 0..<n across `Parallelism.threads`, in chunks of at least
/// `grain` items; with too little work it runs inline (Dispatch costs a few microseconds a call).
func parallelRanges(_ n: Int, grain: Int, _ body: (Int, Int) -> Void) {
    let chunks = min(Parallelism.threads, n / max(grain, 1))
    if chunks < 2 {
        body(0, n)
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: chunks) { c in body(n * c / chunks, n * (c + 1) / chunks) }
    }
}

/// How the engine uses the cores.
///
/// All parallelism is the engine's own: kernels, GEMMs included, split their work across
/// `threads` Dispatch workers, and OpenBLAS runs single-threaded inside each piece. OpenBLAS's own
/// thread pool busy-waits between calls, and on a 2-core machine its spinning worker took the
/// second core from the engine's parallel loops (im2col ran at half speed); splitting GEMMs
/// ourselves measured as fast as OpenBLAS's threading at the training steps' shapes.
public enum Parallelism {
    nonisolated(unsafe) public static var threads = ProcessInfo.processInfo.activeProcessorCount

    /// Makes OpenBLAS single-threaded once, before the first GEMM.
    static let blasSingleThreaded: Void = openblas_set_num_threads(1)
}

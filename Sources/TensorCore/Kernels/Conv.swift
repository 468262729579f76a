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
    var inputShape: [Int] { [batch, channels, height, width] }
    var outputShape: [Int] { [batch, outChannels, outH, outW] }
    var weightShape: [Int] { [outChannels, channels, kernelH, kernelW] }
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
    /// Images to columns: cols[(c, i, j), (n, oh, ow)] = x[n, c, oh*sh - ph + i, ow*sw - pw + j]
    /// (zero outside). Images are independent, so large batches are split across cores.
    static func im2col(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>) {
        let ohw = g.outH * g.outW
        KernelProfiler.shared.measure("im2col", dims(g.batch, g.channels, g.height, g.width),
                                      bytes: Double(4 * (g.patch * g.positions + g.batch * g.channels * g.height * g.width))) {
            parallelFor(g.batch, grain: max(1, 262_144 / max(1, g.patch * ohw))) { n in
                for c in 0..<g.channels {
                    let plane = x + (n * g.channels + c) * g.height * g.width
                    for i in 0..<g.kernelH {
                        for j in 0..<g.kernelW {
                            let row = (c * g.kernelH + i) * g.kernelW + j
                            let dst = cols + row * g.positions + n * ohw
                            for oh in 0..<g.outH {
                                let ih = oh * g.strideH - g.padH + i
                                let d = dst + oh * g.outW
                                if ih < 0 || ih >= g.height { d.update(repeating: 0, count: g.outW); continue }
                                let src = plane + ih * g.width
                                if g.strideW == 1 {
                                    // Contiguous run with zero borders: the common 3x3, stride 1 case.
                                    let lo = max(0, g.padW - j), hi = min(g.outW, g.width + g.padW - j)
                                    if lo > 0 { d.update(repeating: 0, count: lo) }
                                    if hi > lo { d.advanced(by: lo).update(from: src + (lo - g.padW + j), count: hi - lo) }
                                    if hi < g.outW { d.advanced(by: max(hi, lo)).update(repeating: 0, count: g.outW - max(hi, lo)) }
                                } else {
                                    for ow in 0..<g.outW {
                                        let iw = ow * g.strideW - g.padW + j
                                        d[ow] = iw >= 0 && iw < g.width ? src[iw] : 0
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Columns back to images, accumulating overlapping patches: the adjoint of `im2col`.
    /// `x` is overwritten.
    static func col2im(_ g: ConvGeometry, _ cols: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>) {
        let ohw = g.outH * g.outW
        KernelProfiler.shared.measure("col2im", dims(g.batch, g.channels, g.height, g.width),
                                      bytes: Double(4 * (g.patch * g.positions + g.batch * g.channels * g.height * g.width))) {
            parallelFor(g.batch, grain: max(1, 262_144 / max(1, g.patch * ohw))) { n in
                for c in 0..<g.channels {
                    let plane = x + (n * g.channels + c) * g.height * g.width
                    plane.update(repeating: 0, count: g.height * g.width)
                    for i in 0..<g.kernelH {
                        for j in 0..<g.kernelW {
                            let row = (c * g.kernelH + i) * g.kernelW + j
                            let src = cols + row * g.positions + n * ohw
                            for oh in 0..<g.outH {
                                let ih = oh * g.strideH - g.padH + i
                                if ih < 0 || ih >= g.height { continue }
                                let dst = plane + ih * g.width
                                let s = src + oh * g.outW
                                if g.strideW == 1 {
                                    let lo = max(0, g.padW - j), hi = min(g.outW, g.width + g.padW - j)
                                    if hi > lo {
                                        let d = dst + (lo - g.padW + j)
                                        for ow in 0..<(hi - lo) { d[ow] += s[lo + ow] }
                                    }
                                } else {
                                    for ow in 0..<g.outW {
                                        let iw = ow * g.strideW - g.padW + j
                                        if iw >= 0 && iw < g.width { dst[iw] += s[ow] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reorders [A, B, R] to [B, A, R] (the batch and channel axes around a GEMM).
    static func swapLeadingAxes(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, a: Int, b: Int, r: Int) {
        KernelProfiler.shared.measure("swap_axes", dims(a, b, r), bytes: Double(8 * a * b * r)) {
            parallelFor(b, grain: max(1, 65_536 / max(1, a * r))) { j in
                for i in 0..<a { (y + (j * a + i) * r).update(from: x + (i * b + j) * r, count: r) }
            }
        }
    }

    /// y[N, O, OH, OW] = conv(x, w) via im2col + one GEMM over the whole batch.
    static func conv2dForward(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                              _ y: UnsafeMutablePointer<Float>) {
        let cols = TensorStorage(uninitializedCount: g.patch * g.positions)
        let ycol = TensorStorage(uninitializedCount: g.outChannels * g.positions)
        im2col(g, x, cols.pointer)
        gemm(transA: false, transB: false, m: g.outChannels, n: g.positions, k: g.patch, w, cols.pointer, ycol.pointer)
        swapLeadingAxes(ycol.pointer, y, a: g.outChannels, b: g.batch, r: g.outH * g.outW)
    }

    /// gx = J_x^T gy: GEMM to columns, then col2im.
    static func conv2dBackwardData(_ g: ConvGeometry, _ gy: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                   _ gx: UnsafeMutablePointer<Float>) {
        let gycol = TensorStorage(uninitializedCount: g.outChannels * g.positions)
        let cols = TensorStorage(uninitializedCount: g.patch * g.positions)
        swapLeadingAxes(gy, gycol.pointer, a: g.batch, b: g.outChannels, r: g.outH * g.outW)
        gemm(transA: true, transB: false, m: g.patch, n: g.positions, k: g.outChannels, w, gycol.pointer, cols.pointer)
        col2im(g, cols.pointer, gx)
    }

    /// gw = gy ⋅ im2col(x)^T, summed over the batch in one GEMM.
    static func conv2dBackwardWeight(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ gy: UnsafePointer<Float>,
                                     _ gw: UnsafeMutablePointer<Float>) {
        let gycol = TensorStorage(uninitializedCount: g.outChannels * g.positions)
        let cols = TensorStorage(uninitializedCount: g.patch * g.positions)
        swapLeadingAxes(gy, gycol.pointer, a: g.batch, b: g.outChannels, r: g.outH * g.outW)
        im2col(g, x, cols.pointer)
        gemm(transA: false, transB: true, m: g.outChannels, n: g.patch, k: g.positions, gycol.pointer, cols.pointer, gw)
    }
}

/// Runs `body(i)` for i in 0..<n, split across the cores in chunks of at least `grain` items when
/// there is enough work; below that it runs inline (Dispatch costs a few microseconds).
func parallelFor(_ n: Int, grain: Int, _ body: (Int) -> Void) {
    let chunks = min(coreCount, n / max(grain, 1))
    if chunks < 2 {
        for i in 0..<n { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = n * c / chunks, hi = n * (c + 1) / chunks
            for i in lo..<hi { body(i) }
        }
    }
}

let coreCount = ProcessInfo.processInfo.activeProcessorCount

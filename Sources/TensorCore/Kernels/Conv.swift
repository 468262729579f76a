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
    /// Floats of one image's zero-padded planes (a direct convolution's scratch).
    var paddedImage: Int { channels * (height + 2 * padH) * (width + 2 * padW) }

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

    /// Whether a convolution runs chunk by chunk (`ConvChunks`) rather than on one im2col matrix of
    /// the whole batch: when that matrix would not stay in the caches. Materialised, the 58 MB
    /// columns of conv4's second layer (batch 128) were written by im2col, read back by the GEMM
    /// from memory, and read once more by the weight gradient; chunked, each chunk's columns are
    /// made, used and (for the weight gradient) made again while they sit in L2/L3. Small ones
    /// (a 1-channel first layer, the 3x3 last one) keep the matrix: their GEMMs want all of it.
    /// A patch of fewer than 32 rows (a 1-channel first layer's 9) stays whole at any size: its
    /// weight gradient, a few rows and columns over all positions, is the long-K loop's work, and
    /// per-chunk GEMMs with 9 columns measured at 29 GFLOP/s (FixMatch's 512-image batch).
    static func chunked(_ g: ConvGeometry) -> Bool { g.patch >= 32 && g.patch * g.positions * 4 > 8 << 20 }

    /// Whether a chunk's GEMM makes its im2col columns from the images while it packs them
    /// (`bb_sgemm_conv`, the engine's own GEMM) instead of reading a materialised matrix: conv4's
    /// chunks at 14x14 wrote 2.3 MB of columns each that the GEMM then read back to pack, twice a
    /// step (the forward and the weight gradient's remake). The same products in the same order, so
    /// the same results to the bit; BENCHBENCH_IMPLICIT_GEMM=0 in the environment keeps the
    /// materialised path, to time one against the other in one build.
    static let implicitColumns = GEMMImplementation.current == .own && ProcessInfo.processInfo.environment["BENCHBENCH_IMPLICIT_GEMM"] != "0"

    /// C = A op(B) on the calling thread for a chunk of images, B the chunk's im2col columns (transB:
    /// their transpose, the weight gradient's product): made while the GEMM packs them where
    /// `implicitColumns` and the geometry allow, else written to `columns` by im2col first. Timed as
    /// phases 0 (im2col) and 1 (the GEMM) of `clock`.
    static func columnsGEMM(_ h: ConvGeometry, images x: UnsafePointer<Float>, transB: Bool, m: Int, n: Int, k: Int,
                            _ a: UnsafePointer<Float>, lda: Int, columns: UnsafeMutablePointer<Float>,
                            _ c: UnsafeMutablePointer<Float>, ldc: Int, _ clock: inout PhaseClock) {
        var ch = cGeometry(h)
        var implicit = false
        clock.time(1) {
            implicit = implicitColumns && bb_sgemm_conv(0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1, a, lda, &ch, x, 0, c, ldc) != 0
        }
        guard !implicit else { return }
        clock.time(0) { bb_im2col(&ch, x, columns, 0, Int32(h.batch)) }
        clock.time(1) {
            serialGEMM(transA: false, transB: transB, m: m, n: n, k: k, a, lda: lda, columns, ldb: h.positions, c, ldc: ldc)
        }
    }

    /// The forward also runs chunk by chunk when a chunk is one image: the GEMM's result is then
    /// already that image's NCHW output, so it is written in place and the reorder pass is saved
    /// (a 1-channel first layer on 28x28 images: 25 MB read and written less per step).
    static func chunkedForward(_ g: ConvGeometry) -> Bool { chunked(g) || ConvChunks(g).perChunk == 1 }

    /// Whether a convolution runs direct (`bb_conv_direct`) instead of by im2col + GEMM: stride 1
    /// and a patch of fewer than 32 rows (a 1- or 3-channel first layer). There the GEMM's inner
    /// dimension is the patch (9 for conv4's first layer), so it streams its operands about as
    /// often as it computes on them; the direct loop sums two output rows of eight channels in
    /// registers from shifted rows of the padded image. Measured at conv4's first layer, 2 threads
    /// (Xeon, AVX-512), medians of three interleaved rounds: the weight gradient 29-48 GFLOP/s
    /// against 16-28 by the GEMM. The forward (one row at a time: 31-52; two rows: 50-53; the
    /// per-image GEMM: 24-74, noisier) is bound by writing its output, not by arithmetic: 12.8 MB
    /// at 64 images in about 1.1 ms, where one thread's fill of the same 12.8 MB takes 1.4 ms.
    static func direct(_ g: ConvGeometry) -> Bool { g.strideH == 1 && g.strideW == 1 && g.patch < 32 && g.outW >= 8 }

    /// y = act(conv(x, w) + bias) by the direct loop, images split across cores; with `moments`,
    /// also each output plane's sum and sum of squares (`PlaneMoments`).
    static func conv2dDirect(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                             bias: UnsafePointer<Float>?, relu: Bool, _ y: UnsafeMutablePointer<Float>,
                             moments: UnsafeMutablePointer<Float>? = nil) {
        var cg = cGeometry(g)
        KernelProfiler.shared.measure("conv_direct", dims(g.batch, g.channels, g.outChannels, g.height * 1000 + g.width), flops: g.flops) {
            parallelRanges(g.batch, grain: max(1, 65_536 / max(1, g.outChannels * g.outH * g.outW))) { lo, hi in
                let scratch = TensorStorage(uninitializedCount: g.paddedImage)
                withExtendedLifetime(scratch) {
                    bb_conv_direct(&cg, x, w, bias, relu ? 1 : 0, y, scratch.pointer, moments, Int32(lo), Int32(hi))
                }
            }
        }
    }

    /// The moments of images lo..<hi's output planes, `r` floats each, of y [N, O, r].
    private static func outputMoments(_ y: UnsafePointer<Float>, images: Range<Int>, channels: Int, r: Int,
                                      _ moments: UnsafeMutablePointer<Float>?) {
        guard let moments else { return }
        bb_plane_moments(y, images.lowerBound * channels, images.upperBound * channels, r, moments)
    }

    /// The weight gradient gw [O, C, KH, KW] and bias gradient gb [O] (when given) of a direct
    /// convolution, from gy masked where `reluOutput` <= 0 (a fused ReLU's backward) when given: one
    /// pass over gy, without the channel-major copy the GEMM path makes. The batch is cut into
    /// chunks of whole images by the geometry alone; each chunk's sums are written apart and added
    /// in chunk order, so the result is the same at any thread count.
    static func conv2dDirectWeightGrad(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ gy: UnsafePointer<Float>,
                                       reluOutput: UnsafePointer<Float>?, _ gw: UnsafeMutablePointer<Float>,
                                       biasGrad gb: UnsafeMutablePointer<Float>?) {
        var cg = cGeometry(g)
        let perChunk = max(1, min(g.batch, 8_192 / max(1, g.outH * g.outW)))
        let count = (g.batch + perChunk - 1) / perChunk
        let (weights, size) = (g.outChannels * g.patch, g.outChannels * g.patch + g.outChannels)
        let partial = TensorStorage(uninitializedCount: count * size)
        KernelProfiler.shared.measure("conv_direct_weight", dims(g.batch, g.channels, g.outChannels, g.height * 1000 + g.width), flops: g.flops) {
            parallelRanges(count, grain: 1) { lo, hi in
                // The chunk's padded images, then eight lanes of accumulators per sum.
                let scratch = TensorStorage(uninitializedCount: g.paddedImage * perChunk + 8 * size)
                withExtendedLifetime(scratch) {
                    for c in lo..<hi {
                        let out = partial.pointer + c * size
                        bb_conv_direct_weight_grad(&cg, x, gy, reluOutput, out, out + weights, scratch.pointer,
                                                   scratch.pointer + g.paddedImage * perChunk,
                                                   Int32(c * perChunk), Int32(min(g.batch, (c + 1) * perChunk)))
                    }
                }
            }
            for e in 0..<(gb == nil ? weights : size) {
                var total = partial.pointer[e]
                for c in 1..<count { total += partial.pointer[c * size + e] }
                if e < weights { gw[e] = total } else { gb![e - weights] = total }
            }
        }
    }

    /// y[N, O, OH, OW] = act(conv(x, w) + bias): direct where `direct(g)` (unless `chunked` is
    /// given), else via im2col + GEMM, the bias and ReLU applied while the GEMM's result is
    /// reordered to NCHW. Returns the im2col columns when it made them
    /// for the whole batch (the weight gradient reuses them), nil when it worked chunk by chunk.
    /// With `moments`, also each output plane's sum and sum of squares (`PlaneMoments`), made
    /// image by image or chunk by chunk right after that part of y is written, while it is in cache.
    static func conv2dForward(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, relu: Bool, _ y: UnsafeMutablePointer<Float>,
                              chunked: Bool? = nil, moments: UnsafeMutablePointer<Float>? = nil) -> TensorStorage? {
        if chunked == nil && direct(g) {
            conv2dDirect(g, x, w, bias: bias, relu: relu, y, moments: moments)
            return nil
        }
        let r = g.outH * g.outW
        guard chunked ?? chunkedForward(g) else {
            let cols = columns(g, x)
            let ycol = TensorStorage(uninitializedCount: g.outChannels * g.positions)
            gemm(transA: false, transB: false, m: g.outChannels, n: g.positions, k: g.patch, w, cols.pointer, ycol.pointer)
            KernelProfiler.shared.measure("conv_output", dims(g.batch, g.outChannels, r), bytes: Double(8 * g.outChannels * g.positions)) {
                parallelRanges(g.batch, grain: max(1, 65_536 / max(1, g.outChannels * r))) { lo, hi in
                    bb_conv_output(ycol.pointer, y, Int32(g.outChannels), Int32(g.batch), Int32(r), bias, relu ? 1 : 0, Int32(lo), Int32(hi))
                    outputMoments(y, images: lo..<hi, channels: g.outChannels, r: r, moments)
                }
            }
            return cols
        }
        let chunks = ConvChunks(g)
        chunks.run(scratch: [g.patch * chunks.maxPositions, g.outChannels * chunks.maxPositions],
                   phases: ["im2col", "gemm_nn", "conv_output"]) { c, scratch, clock in
            let (h, n0) = (chunks.geometry(c), chunks.images(c).lowerBound)
            // One image's [O, R] product is its NCHW output: written in place, bias and ReLU applied there.
            let yn = y + n0 * g.outChannels * r
            let product = h.batch == 1 ? yn : scratch[1]
            columnsGEMM(h, images: x + n0 * g.channels * g.height * g.width, transB: false, m: g.outChannels, n: h.positions, k: g.patch,
                        w, lda: g.patch, columns: scratch[0], product, ldc: h.positions, &clock)
            if h.batch > 1 || bias != nil || relu {
                clock.time(2) {
                    bb_conv_output(product, yn, Int32(g.outChannels), Int32(h.batch), Int32(r), bias, relu ? 1 : 0, 0, Int32(h.batch))
                }
            }
            outputMoments(y, images: chunks.images(c), channels: g.outChannels, r: r, moments)
        }
        return nil
    }

    /// gx = J_xᵀ gy: GEMM to columns, then col2im (chunk by chunk where `chunked`). `gyColumns`
    /// is gy channel-major.
    static func conv2dBackwardData(_ g: ConvGeometry, _ gyColumns: TensorStorage, _ w: UnsafePointer<Float>,
                                   _ gx: UnsafeMutablePointer<Float>, chunked: Bool? = nil) {
        // OpenBLAS's Wᵀ-times-columns is 30% slower than the same product with Wᵀ laid out
        // (measured single-threaded at 288x7744x64: 43 vs 56 GFLOP/s), so for it Wᵀ is written
        // out first. The engine's own GEMM reads Wᵀ from W as it packs A, the same panels either
        // way (the transpose, 0.13 ms a call on conv4's 64x576 weights, was 0.6% of its step).
        let transposed = GEMMImplementation.current != .own
        let wt = transposed ? TensorStorage(uninitializedCount: g.patch * g.outChannels) : nil
        if let wt { transpose2D(w, wt.pointer, batch: 1, rows: g.outChannels, cols: g.patch) }
        let (a, lda) = wt.map { (UnsafePointer($0.pointer), g.outChannels) } ?? (w, g.patch)
        guard chunked ?? Kernels.chunked(g) else {
            let cols = TensorStorage(uninitializedCount: g.patch * g.positions)
            withExtendedLifetime(wt) {
                gemm(transA: !transposed, transB: false, m: g.patch, n: g.positions, k: g.outChannels, a, gyColumns.pointer, cols.pointer)
            }
            col2im(g, cols.pointer, gx)
            return
        }
        let chunks = ConvChunks(g)
        let r = g.outH * g.outW
        chunks.run(scratch: [g.patch * chunks.maxPositions], phases: ["gemm_nn", "col2im"]) { c, scratch, clock in
            let (h, n0) = (chunks.geometry(c), chunks.images(c).lowerBound)
            var ch = cGeometry(h)
            clock.time(0) {
                withExtendedLifetime(wt) {
                    serialGEMM(transA: !transposed, transB: false, m: g.patch, n: h.positions, k: g.outChannels,
                               a, lda: lda, gyColumns.pointer + n0 * r, ldb: g.positions, scratch[0], ldc: h.positions)
                }
            }
            clock.time(1) { bb_col2im(&ch, scratch[0], gx + n0 * g.channels * g.height * g.width, 0, Int32(h.batch)) }
        }
    }

    /// gw = gy ⋅ im2col(x)ᵀ, summed over the batch: one GEMM over `columns` when the forward kept
    /// them, otherwise chunk by chunk (columns made again) with the chunks' sums added in chunk
    /// order, so the result does not depend on the number of threads.
    static func conv2dBackwardWeight(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ columns: TensorStorage?,
                                     _ gyColumns: TensorStorage, _ gw: UnsafeMutablePointer<Float>, chunked: Bool? = nil) {
        guard chunked ?? Kernels.chunked(g) else {
            let cols = columns ?? Kernels.columns(g, x)
            gemm(transA: false, transB: true, m: g.outChannels, n: g.patch, k: g.positions, gyColumns.pointer, cols.pointer, gw)
            return
        }
        let chunks = ConvChunks(g)
        let (r, size) = (g.outH * g.outW, g.outChannels * g.patch)
        let partial = TensorStorage(uninitializedCount: chunks.count * size)
        chunks.run(scratch: [g.patch * chunks.maxPositions], phases: ["im2col", "gemm_nt"]) { c, scratch, clock in
            let (h, n0) = (chunks.geometry(c), chunks.images(c).lowerBound)
            columnsGEMM(h, images: x + n0 * g.channels * g.height * g.width, transB: true, m: g.outChannels, n: g.patch, k: h.positions,
                        gyColumns.pointer + n0 * r, lda: g.positions, columns: scratch[0], partial.pointer + c * size, ldc: g.patch, &clock)
        }
        KernelProfiler.shared.measure("sum_chunks", dims(chunks.count, size), bytes: Double(4 * (chunks.count + 1) * size)) {
            parallelRanges(size, grain: 16_384) { lo, hi in
                for e in lo..<hi { gw[e] = partial.pointer[e] }
                for c in 1..<chunks.count {
                    let p = partial.pointer + c * size
                    for e in lo..<hi { gw[e] += p[e] }
                }
            }
        }
    }
}

/// A convolution's batch cut into chunks of whole images, about 1,024 output positions each: enough
/// columns for an efficient GEMM while a chunk's im2col columns (2.4 MB for a 64-channel 3x3 layer)
/// stay in the caches. The cut depends on the geometry only, never on the number of threads.
struct ConvChunks {
    let g: ConvGeometry
    let perChunk: Int
    let count: Int

    init(_ g: ConvGeometry) {
        self.g = g
        perChunk = max(1, min(g.batch, 1024 / max(1, g.outH * g.outW)))
        count = (g.batch + perChunk - 1) / perChunk
    }

    var maxPositions: Int { perChunk * g.outH * g.outW }
    func images(_ c: Int) -> Range<Int> { c * perChunk ..< min(g.batch, (c + 1) * perChunk) }
    /// The geometry of chunk c's images alone.
    func geometry(_ c: Int) -> ConvGeometry {
        var h = g
        h.batch = images(c).count
        return h
    }

    /// Runs `body(chunk, scratch, clock)` for every chunk on the engine's threads, which take the
    /// next chunk as they finish one; each thread has its own scratch buffers of the given sizes.
    /// The seconds the threads spend in each phase (`clock.time(phase)`) are recorded with the
    /// profiler as shares of the wall time, so a breakdown still names im2col, GEMM and the rest.
    func run(scratch sizes: [Int], phases: [StaticString],
             _ body: (Int, [UnsafeMutablePointer<Float>], inout PhaseClock) -> Void) {
        let workers = min(Parallelism.threads, count)
        let lock = NSLock()
        var next = 0
        var phaseSeconds = [Double](repeating: 0, count: phases.count)
        let start = KernelProfiler.now()
        withoutActuallyEscaping(body) { body in
            Parallelism.perform(workers) { _ in
                let buffers = sizes.map { TensorStorage(uninitializedCount: $0) }
                let pointers = buffers.map(\.pointer)
                var clock = PhaseClock(phases: phases.count)
                // The buffers must outlive the loop: released after their last use (taking the
                // pointers), they went back to the pool while in use, and another thread's
                // scratch could be the same memory (seen: results that changed run to run).
                withExtendedLifetime(buffers) {
                    while true {
                        lock.lock(); let c = next; next += 1; lock.unlock()
                        guard c < count else { break }
                        body(c, pointers, &clock)
                    }
                }
                lock.lock()
                for p in phaseSeconds.indices { phaseSeconds[p] += clock.seconds[p] }
                lock.unlock()
            }
        }
        let wall = Double(KernelProfiler.now() - start) * 1e-9
        let busy = max(phaseSeconds.reduce(0, +), 1e-12)
        let positions = Double(g.positions)
        for (p, name) in phases.enumerated() {
            KernelProfiler.shared.record(name, dims(g.batch, g.channels, g.outChannels, g.height * 1000 + g.width),
                                         flops: name.description.hasPrefix("gemm") ? g.flops : 0,
                                         bytes: name.description.hasPrefix("gemm") ? 0 : 4 * positions * Double(g.patch),
                                         seconds: wall * phaseSeconds[p] / busy)
        }
    }
}

/// Seconds a thread spends in each phase of its chunks.
struct PhaseClock {
    var seconds: [Double]
    init(phases: Int) { seconds = [Double](repeating: 0, count: phases) }

    @inline(__always)
    mutating func time(_ phase: Int, _ body: () -> Void) {
        let start = KernelProfiler.now()
        body()
        seconds[phase] += Double(KernelProfiler.now() - start) * 1e-9
    }
}

/// Runs `body(lo, hi)` over a split of 0..<n across `Parallelism.threads`: up to `perThread`
/// ranges a thread of at least `grain` items each, taken by the threads as they finish one; with
/// too little work it runs inline (waking a worker costs microseconds). One range a thread, a
/// kernel waited at its end whenever the host slowed one vCPU or one half had more work (perf on
/// train-conv4: about 4% of the step's CPU time was a thread waiting on the other). Callers whose
/// ranges each redo shared work (a GEMM split by rows packs all of B) ask for one.
func parallelRanges(_ n: Int, grain: Int, perThread: Int = 4, _ body: (Int, Int) -> Void) {
    let pieces = Parallelism.threads < 2 ? 1 : min(Parallelism.threads * perThread, n / max(grain, 1))
    if pieces < 2 {
        body(0, n)
        return
    }
    Parallelism.perform(pieces) { c in body(n * c / pieces, n * (c + 1) / pieces) }
}

/// How the engine uses the cores.
///
/// All parallelism is the engine's own: kernels, GEMMs included, split their work across
/// `threads` workers, and OpenBLAS runs single-threaded inside each piece. OpenBLAS's own
/// thread pool busy-waits between calls, and on a 2-core machine its spinning worker took the
/// second core from the engine's parallel loops (im2col ran at half speed); splitting GEMMs
/// ourselves measured as fast as OpenBLAS's threading at the training steps' shapes.
public enum Parallelism {
    nonisolated(unsafe) public static var threads = ProcessInfo.processInfo.activeProcessorCount

    /// Makes OpenBLAS single-threaded once, before the first GEMM.
    static let blasSingleThreaded: Void = openblas_set_num_threads(1)

    /// Runs `body(i)` for i in 0..<count, in parallel, returning when all are done: on the
    /// engine's workers (`bb_parallel_run`, CKernels/pool.c), which keep polling for a while
    /// between jobs instead of sleeping as Dispatch's do (a sleeping vCPU took tens of
    /// microseconds to wake for every kernel); inline when called from inside a job (its
    /// workers are busy with it); through Dispatch when another thread's job holds the workers
    /// (concurrent trials). The one way the engine and its callers (the linear probe, augmentation)
    /// use the cores.
    public static func perform(_ count: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var task = body
            let ran = withUnsafeMutablePointer(to: &task) { context in
                bb_parallel_run(count, Int32(threads), { context, i in
                    // invariant: bb_parallel_run hands each chunk the context it was given, non-nil
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
                }, context)
            }
            switch ran {
            case 1: return
            case 0: for i in 0..<count { body(i) }
            default: DispatchQueue.concurrentPerform(iterations: count, execute: body)
            }
        }
    }
}

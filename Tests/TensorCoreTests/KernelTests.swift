import Foundation
import Testing
@testable import TensorCore

/// Fast kernels against the naive Double reference on random shapes, odd sizes included.
@Suite struct KernelTests {
    var rng = RNG(seed: 11)

    func close(_ t: Tensor, _ r: Ref, _ tol: Double = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(t.shape == r.shape, sourceLocation: sourceLocation)
        let scale = max(1, r.data.map(Swift.abs).max() ?? 1)
        let err = zip(t.scalars, r.data).map { Swift.abs(Double($0) - $1) }.max() ?? 0
        #expect(err <= tol * scale, "max error \(err)", sourceLocation: sourceLocation)
    }

    @Test mutating func gemmOddShapes() {
        for (m, n, k) in [(1, 1, 1), (7, 13, 5), (33, 17, 65), (64, 3, 129)] {
            let a = randomRef([m, k], &rng), b = randomRef([k, n], &rng)
            close(matmul(a.tensor, b.tensor), Ref.matmul(a, b))
            close(matmul(a.tensor.transposed(), b.tensor, transposeA: true), Ref.matmul(a, b))
        }
    }

    @Test mutating func gemmSplitAcrossThreadsByRowsAndByColumns() {
        // Large enough to be split (rows when m >= n, columns otherwise), every transpose.
        for (m, n, k) in [(101, 90, 70), (40, 203, 80)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = randomRef(ta ? [k, m] : [m, k], &rng), b = randomRef(tb ? [n, k] : [k, n], &rng)
                close(matmul(a.tensor, b.tensor, transposeA: ta, transposeB: tb), Ref.matmul(a, b, ta: ta, tb: tb))
            }
        }
    }

    @Test mutating func fusedLinearBiasAndReLUOnSplitBlocks() {
        // Bias and ReLU are applied per GEMM thread block: rows split (m >= n) and columns split.
        for (rows, inputs, outputs) in [(300, 200, 100), (40, 200, 300)] {
            let x = randomRef([rows, inputs], &rng), w = randomRef([outputs, inputs], &rng), b = randomRef([outputs], &rng)
            close(linear(x.tensor, w.tensor, bias: b.tensor, relu: true), (Ref.matmul(x, w, tb: true) + b).map { max($0, 0) })
            close(linear(x.tensor, w.tensor, bias: b.tensor), Ref.matmul(x, w, tb: true) + b)
        }
    }

    @Test mutating func gemmShapeRoutedToOurLoop() {
        // Few rows and columns with a long inner dimension (a first conv's weight gradient) leave
        // OpenBLAS for a loop of ours; odd sizes exercise the block and vector remainders.
        let a = randomRef([5, 9001], &rng), b = randomRef([3, 9001], &rng)
        // Counted since a mark, not after a reset: other tests use the profiler at the same time.
        let mark = KernelProfiler.shared.mark()
        close(matmul(a.tensor, b.tensor, transposeB: true), Ref.matmul(a, b, tb: true), 1e-5)
        #expect(KernelProfiler.shared.snapshot(since: mark).contains { $0.key.name == "gemm_nt_long_k" && $0.key.dims == SIMD4(5, 3, 9001, 0) })
    }

    @Test mutating func convForwardRandomGeometries() {
        for _ in 0..<6 {
            let c = 1 + rng.int(3), o = 1 + rng.int(4), kh = 1 + rng.int(3), kw = 1 + rng.int(4)
            let s = (1 + rng.int(2), 1 + rng.int(3)), p = (rng.int(2), rng.int(2))
            let h = kh + rng.int(6), w = kw + rng.int(7)
            let x = randomRef([1 + rng.int(3), c, h, w], &rng), wt = randomRef([o, c, kh, kw], &rng)
            close(conv2d(x.tensor, wt.tensor, stride: s, padding: p), Ref.conv2d(x, wt, stride: s, padding: p))
        }
    }

    @Test mutating func convBackwardKernelsAreAdjoints() {
        // <conv(x, w), gy> = <x, bwdData(gy, w)> = <w, bwdWeight(x, gy)> on a large, parallel-split batch.
        let geo = ConvGeometry(input: [9, 3, 13, 11], weight: [5, 3, 3, 2], stride: (2, 1), padding: (1, 1))
        let x = Tensor.randn(geo.inputShape, rng: &rng), w = Tensor.randn(geo.weightShape, rng: &rng)
        let gy = Tensor.randn(geo.outputShape, rng: &rng)
        let lhs = Double((conv2d(x, w, geo) * gy).sum().item)
        let viaData = Double((x * conv2dBackwardData(gy, w, geo)).sum().item)
        let viaWeight = Double((w * conv2dBackwardWeight(x, gy, geo)).sum().item)
        #expect(Swift.abs(lhs - viaData) < 1e-3 * Swift.abs(lhs) + 1e-3)
        #expect(Swift.abs(lhs - viaWeight) < 1e-3 * Swift.abs(lhs) + 1e-3)
    }

    @Test mutating func poolingOddShapes() {
        let x = randomRef([3, 5, 9, 7], &rng)
        close(maxPool2d(x.tensor, kernel: (3, 3), stride: (2, 2)), x.pool(kernel: (3, 3), stride: (2, 2)) { $0.max()! })
        close(avgPool2d(x.tensor, kernel: (2, 3)), x.pool(kernel: (2, 3), stride: (2, 3)) { $0.reduce(0, +) / 6 })
    }

    @Test func maxPoolPropagatesNaNAndPicksFirstOfTies() {
        let x = Tensor(shape: [1, 1, 2, 4], scalars: [1, 1, 0, .nan, 1, 0, 0, 2]).requiringGrad()
        let y = maxPool2d(x)
        #expect(y.scalars[0] == 1 && y.scalars[1].isNaN)
        let g = gradients(of: y, wrt: [x], seed: Tensor(shape: [1, 1, 1, 2], scalars: [1, 1]))[0]
        #expect(g.scalars == [1, 0, 0, 1, 0, 0, 0, 0])
    }

    /// Max pooling's gradient scatters plane by plane across cores: the same sums, bit for bit,
    /// as one serial scatter of the same index (overlapping 3x3 windows at stride 2, so an input
    /// receives several terms; enough planes that the scatter splits), and the autodiff gradient
    /// is that scatter.
    @Test mutating func segmentedScatterEqualsTheSerialOne() {
        let shape = [416, 5, 9, 7]
        let x = randomRef(shape, &rng).tensor.requiringGrad()
        let g = PoolGeometry(input: shape, kernel: (3, 3), stride: (2, 2), op: "test")
        let index = IndexBuffer(uninitializedCount: g.planes * g.outH * g.outW)
        var pooled = [Float](repeating: 0, count: index.count)
        Kernels.maxPool(g, x.storage.pointer, &pooled, index.pointer)
        let gy = randomRef([shape[0], shape[1], g.outH, g.outW], &rng).tensor
        var serial = [Float](repeating: .nan, count: x.count), split = serial
        Kernels.scatterAddFlat(gy.storage.pointer, index.pointer, index.count, &serial, x.count)
        Kernels.scatterAddFlat(gy.storage.pointer, index.pointer, index.count, &split, x.count, segments: g.planes)
        #expect(serial == split)
        #expect(serial.allSatisfy { $0.isFinite }, "every element written")
        let viaAutodiff = gradients(of: maxPool2d(x, kernel: (3, 3), stride: (2, 2)), wrt: [x], seed: gy)[0]
        #expect(viaAutodiff.scalars == split)
    }

    /// The fused batch norm, ReLU and max pooling against the unfused ops it replaces: the same
    /// output and statistics bit for bit (each element by the same expression, the same first
    /// maximum on ties), and the same gradients: dx bit for bit wherever the gradient sums round
    /// to the same floats, and within a few units of the last place in any case (they add the
    /// same terms in a different order). Shapes: 2x2 windows eight outputs at a time with a
    /// scalar tail (37 columns: 18 outputs, one column left over; 370-element planes, so dx's
    /// scalar tail holds maxima too), rows of seven and of four outputs (vectors reading into the
    /// rows below, the last row scalar), rows of three (scalar), a 1x2
    /// signal window, windows with gaps between them; enough images for the passes to split
    /// across cores; gamma of both signs; ties of zeros where whole windows are rectified away.
    @Test mutating func fusedBatchNormReluMaxPoolEqualsTheUnfusedOps() {
        let cases: [([Int], (Int, Int), (Int, Int))] = [([5, 3, 10, 37], (2, 2), (2, 2)), ([6, 4, 14, 14], (2, 2), (2, 2)),
                                                        ([3, 5, 9, 8], (2, 2), (2, 2)), ([6, 4, 7, 7], (2, 2), (2, 2)),
                                                        ([40, 3, 1, 21], (1, 2), (1, 2)), ([3, 2, 8, 11], (2, 3), (3, 4))]
        for (shape, kernel, stride) in cases {
            let x = randomRef(shape, &rng).tensor.requiringGrad()
            let gamma = randomRef([shape[1]], &rng, low: -1.5, high: 1.5).tensor.requiringGrad()
            let beta = randomRef([shape[1]], &rng, low: -1, high: 0.5).tensor.requiringGrad()
            let fused = batchNormReluMaxPool(x, gamma: gamma, beta: beta, kernel: kernel, stride: stride)
            let norm = batchNorm(x, gamma: gamma, beta: beta, relu: true)
            let unfused = maxPool2d(norm.output, kernel: kernel, stride: stride)
            #expect(fused.output.shape == unfused.shape)
            #expect(fused.output.scalars == unfused.scalars, "\(shape)")
            #expect(fused.mean.scalars == norm.mean.scalars && fused.variance.scalars == norm.variance.scalars)
            let gy = randomRef(unfused.shape, &rng).tensor
            let a = gradients(of: fused.output, wrt: [x, gamma, beta], seed: gy)
            let b = gradients(of: unfused, wrt: [x, gamma, beta], seed: gy)
            for (k, name) in ["dx", "dgamma", "dbeta"].enumerated() {
                let scale = b[k].scalars.map(Swift.abs).max() ?? 1
                let err = zip(a[k].scalars, b[k].scalars).map { Swift.abs($0 - $1) }.max() ?? 0
                #expect(err <= 1e-6 * scale, "\(name) of \(shape): \(err) against \(scale)")
            }
        }
    }

    @Test mutating func sumIsAccurateOverLongRuns() {
        // 1e6 values of 0.1: a single running Float sum drifts by ~1%; partial sums stay close.
        let t = Tensor(repeating: 0.1, shape: [1_000_000])
        #expect(Swift.abs(t.sum().item - 100_000) < 5)
    }

    @Test mutating func broadcastAndReduceEveryPattern() {
        let shapes: [([Int], [Int])] = [([5, 7], [7]), ([5, 7], [5, 1]), ([2, 3, 4, 5], [1, 3, 1, 1]), ([3, 1, 5], [1, 4, 1]), ([6], [])]
        for (sa, sb) in shapes {
            let a = randomRef(sa, &rng), b = randomRef(sb, &rng)
            close(a.tensor * b.tensor, a * b)
            close((a * b).tensor.sum(to: sb), (a * b).sum(to: sb))
        }
        let x = randomRef([4, 5, 6], &rng)
        close(x.tensor.permuted([1, 2, 0]), x.permuted([1, 2, 0]))
        close(x.tensor.max(axis: 1, keepDims: true), x.max(axis: 1))
    }

    @Test mutating func softmaxIsStableForLargeLogits() {
        let x = Tensor(shape: [1, 3], scalars: [1000, 1001, 999])
        let p = x.softmax().scalars
        #expect(p.allSatisfy { $0.isFinite })
        #expect(Swift.abs(p.reduce(0, +) - 1) < 1e-6)
        #expect(softmaxCrossEntropy(logits: x, labels: [1]).item.isFinite)
    }
}

@Suite struct RuntimeTests {
    @Test func bestCoreFromFlags() {
        let avx512: Set = ["sse3", "ssse3", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        #expect(BLASRuntime.bestCore(flags: avx512, vendor: "GenuineIntel") == "SkylakeX")
        #expect(BLASRuntime.bestCore(flags: avx512.union(["avx512_bf16"]), vendor: "GenuineIntel") == "SkylakeX")
        #expect(BLASRuntime.tier(of: "CooperLake") == BLASRuntime.tier(of: "SkylakeX"))
        #expect(BLASRuntime.bestCore(flags: ["sse3", "ssse3", "sse4_2", "avx", "avx2", "fma"], vendor: "AuthenticAMD") == "Zen")
        #expect(BLASRuntime.bestCore(flags: ["sse3", "ssse3", "sse4_2", "avx", "avx2", "fma"], vendor: "GenuineIntel") == "Haswell")
        #expect(BLASRuntime.bestCore(flags: ["sse3"], vendor: "GenuineIntel") == "Prescott")
        #expect(BLASRuntime.bestCore(flags: [], vendor: "") == nil)
        // Zen and Haswell kernels are the same tier: no re-exec between them.
        #expect(BLASRuntime.tier(of: "Zen") == BLASRuntime.tier(of: "Haswell"))
        #expect(BLASRuntime.tier(of: "Prescott")! < BLASRuntime.tier(of: "SkylakeX")!)
    }

    @Test func prescottFallbackOnAnAVX512XeonIsCorrected() {
        let sapphireRapids: Set = ["sse3", "ssse3", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                   "avx512dq", "avx512cd", "avx512_bf16", "amx_tile"]
        #expect(BLASRuntime.recommendation(current: "Prescott", flags: sapphireRapids, vendor: "GenuineIntel", userChoice: nil) == "SkylakeX")
        #expect(BLASRuntime.recommendation(current: "Prescott", flags: sapphireRapids, vendor: "GenuineIntel", userChoice: "Haswell") == nil,
                "a user-set OPENBLAS_CORETYPE is always respected")
        #expect(BLASRuntime.recommendation(current: "SkylakeX", flags: sapphireRapids, vendor: "GenuineIntel", userChoice: nil) == nil)
        #expect(BLASRuntime.recommendation(current: "CooperLake", flags: sapphireRapids, vendor: "GenuineIntel", userChoice: nil) == nil)
        #expect(BLASRuntime.recommendation(current: "Zen", flags: ["avx2", "fma", "avx", "sse4_2", "ssse3", "sse3"], vendor: "AuthenticAMD", userChoice: nil) == nil)
        #expect(BLASRuntime.recommendation(current: "Sandybridge", flags: ["avx2", "fma", "avx", "sse4_2", "ssse3", "sse3"], vendor: "AuthenticAMD", userChoice: nil) == "Zen")
    }

    @Test func coreNameIsReported() {
        #expect(!BLASRuntime.coreName.isEmpty)
        #expect(BLASRuntime.threads >= 1)
    }

    @Test func profilerCountsKernelCalls() {
        // An isolated profiler: the shared one counts whatever else runs at the same time.
        let profiler = KernelProfiler()
        for _ in 0..<3 { profiler.measure("gemm_nn", SIMD4(8, 3, 4, 0), flops: 192) {} }
        let entry = profiler.snapshot().first { $0.key.name == "gemm_nn" && $0.key.dims == SIMD4(8, 3, 4, 0) }
        #expect(entry?.entry.calls == 3 && entry?.entry.flops == 576)
        let mark = profiler.mark()
        profiler.measure("gemm_nn", SIMD4(8, 3, 4, 0), flops: 192) {}
        #expect(profiler.snapshot(since: mark).map { $0.entry.calls } == [1])
        // And the engine's GEMM reports to the shared one, with 2·m·n·k FLOPs per call.
        let shared = KernelProfiler.shared.mark()
        _ = matmul(Tensor(repeating: 1, shape: [8, 4]), Tensor(repeating: 1, shape: [4, 3]))
        let counted = KernelProfiler.shared.snapshot(since: shared).first { $0.key.name == "gemm_nn" && $0.key.dims == SIMD4(8, 3, 4, 0) }
        #expect((counted?.entry.calls ?? 0) >= 1 && counted.map { $0.entry.flops.truncatingRemainder(dividingBy: 192) == 0 } ?? false)
    }

    @Test func rngStreamsAreDeterministicAndDistinct() {
        var a = RNG(seed: 1, key: "trial", stream: "init"), b = RNG(seed: 1, key: "trial", stream: "init")
        var c = RNG(seed: 1, key: "trial", stream: "split")
        let xa = (0..<4).map { _ in a.next() }, xb = (0..<4).map { _ in b.next() }, xc = (0..<4).map { _ in c.next() }
        #expect(xa == xb)
        #expect(xa != xc)
        var n = RNG(seed: 2)
        let samples = (0..<20_000).map { _ in Double(n.normal()) }
        let mean = samples.reduce(0, +) / 20_000
        let variance = samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20_000
        #expect(Swift.abs(mean) < 0.03 && Swift.abs(variance - 1) < 0.05)
    }
}

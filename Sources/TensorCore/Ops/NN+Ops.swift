import CKernels

// MARK: - Softmax and cross-entropy

extension Tensor {
    /// log(softmax(x)) along the last axis, computed stably in one fused pass.
    public func logSoftmax() -> Tensor {
        require(rank >= 1, "logSoftmax: needs rank 1 or more")
        let n = shape[rank - 1]
        var out = Tensor(uninitialized: shape)
        Kernels.logSoftmax(storage.pointer, out.storage.pointer, rows: count / Swift.max(n, 1), n: n)
        out.node = nil
        return Tensor.result(.logSoftmax, [self], out)
    }

    /// softmax along the last axis.
    public func softmax() -> Tensor { logSoftmax().exp() }
}

/// Mean cross-entropy of logits [B, C] against integer labels, fused with the softmax.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int32]) -> Tensor {
    require(logits.rank == 2 && logits.shape[0] == labels.count,
            "softmaxCrossEntropy: logits \(describe(logits.shape)) need one row per label (\(labels.count) labels)")
    let classes = logits.shape[1]
    for y in labels { require(y >= 0 && Int(y) < classes, "softmaxCrossEntropy: label \(y) is out of range for \(classes) classes") }
    let probs = TensorStorage(uninitializedCount: logits.count)
    let loss = labels.withUnsafeBufferPointer {
        Kernels.softmaxCrossEntropy(logits.storage.pointer, $0.baseAddress!, probs.pointer, rows: labels.count, n: classes)
    }
    return Tensor.result(.softmaxCrossEntropy(labels: labels, probs: probs), [logits], Tensor(loss))
}

/// Mean cross-entropy of logits [B, C] against target distributions [B, C] (soft labels).
/// Differentiable in both arguments.
public func softmaxCrossEntropy(logits: Tensor, targets: Tensor) -> Tensor {
    require(logits.shape == targets.shape && logits.rank == 2,
            "softmaxCrossEntropy: logits \(describe(logits.shape)) and targets \(describe(targets.shape)) must be the same [B, C]")
    return -(targets * logits.logSoftmax()).sum() * (1 / Float(logits.shape[0]))
}

// MARK: - Convolution and pooling

/// 2-D convolution (cross-correlation) of x [N, C, H, W] with w [O, C, KH, KW], plus an optional
/// per-channel bias [O] and an optional ReLU. Bias and ReLU are applied inside the kernel's final
/// copy rather than in passes of their own, and the ReLU's backward is fused likewise.
public func conv2d(_ x: Tensor, _ w: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                   relu: Bool = false, moments: PlaneMoments? = nil) -> Tensor {
    conv2d(x, w, ConvGeometry(input: x.shape, weight: w.shape, stride: stride, padding: padding), bias: bias, relu: relu,
           moments: moments)
}

/// The sum and sum of squares of each [H, W] plane of a convolution's output, made by the
/// convolution right after it writes each image's (or chunk's) output, while that is still in
/// cache. A training-mode batch norm given them (`batchNorm`, `batchNormReluMaxPool`) takes its
/// statistics from them instead of its own pass over the whole activation (conv4's first: 25.7 MB
/// at batch 128). They are the values the norm's own pass makes for each plane (one C definition,
/// `bb_plane_moments`), added plane by plane in the same order, so the statistics are the same bits.
public final class PlaneMoments {
    private var storage: TensorStorage?
    /// The output they describe: only a norm of that very tensor uses them.
    private weak var source: TensorStorage?

    public init() {}

    /// Room for the moments of `output` [N, C, H, W]'s planes; returns where they go.
    func prepare(for output: Tensor) -> UnsafeMutablePointer<Float> {
        let storage = TensorStorage(uninitializedCount: 2 * output.shape[0] * output.shape[1])
        (self.storage, source) = (storage, output.storage)
        return storage.pointer
    }

    /// The moments of x's planes when these were made for x, else nil (the norm then makes its own).
    func of(_ x: Tensor) -> TensorStorage? { source != nil && source === x.storage ? storage : nil }
}

/// With `moments`, the convolution also fills them with its output planes' sums and sums of
/// squares, for the batch norm that follows it (`PlaneMoments`).
public func conv2d(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry, bias: Tensor? = nil, relu: Bool = false,
                   moments: PlaneMoments? = nil) -> Tensor {
    require(x.shape == g.inputShape && w.shape == g.weightShape,
            "conv2d: input \(describe(x.shape)) and weight \(describe(w.shape)) do not match the geometry \(describe(g.inputShape)), \(describe(g.weightShape))")
    if let bias { require(bias.shape == [g.outChannels], "conv2d: bias \(describe(bias.shape)) must be [\(g.outChannels)]") }
    var out = Tensor(uninitialized: g.outputShape)
    let momentsOut = moments?.prepare(for: out)
    let columns = KernelProfiler.shared.measure("conv2d", dims(g.batch, g.channels, g.outChannels, g.height * 1000 + g.width), flops: g.flops) {
        Kernels.conv2dForward(g, x.storage.pointer, w.storage.pointer, bias: bias?.storage.pointer, relu: relu, out.storage.pointer,
                              moments: momentsOut)
    }
    out.node = nil
    return Tensor.result(.conv2d(g, columns: columns, relu: relu), bias.map { [x, w, $0] } ?? [x, w], out)
}

/// The gradient of `conv2d` (without ReLU) with respect to its input: J_xᵀ gy.
public func conv2dBackwardData(_ gy: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
    conv2dBackwardData(gy, w, g, gyColumns: nil)
}

/// The gradient of `conv2d` (without ReLU) with respect to its weight.
public func conv2dBackwardWeight(_ x: Tensor, _ gy: Tensor, _ g: ConvGeometry) -> Tensor {
    conv2dBackwardWeight(x, gy, g, columns: nil, gyColumns: nil)
}

/// `gyColumns`, when the caller has it, is gy already reordered channel-major (`Kernels.gradColumns`).
func conv2dBackwardData(_ gy: Tensor, _ w: Tensor, _ g: ConvGeometry, gyColumns: TensorStorage?) -> Tensor {
    var out = Tensor(uninitialized: g.inputShape)
    KernelProfiler.shared.measure("conv2d_bwd_data", dims(g.batch, g.channels, g.outChannels, g.height * 1000 + g.width), flops: g.flops) {
        Kernels.conv2dBackwardData(g, gyColumns ?? Kernels.gradColumns(g, gy.storage.pointer), w.storage.pointer, out.storage.pointer)
    }
    out.node = nil
    return Tensor.result(.conv2dBackwardData(g), [gy, w], out)
}

/// A direct convolution's (`Kernels.direct`) reads gy itself and ignores both.
func conv2dBackwardWeight(_ x: Tensor, _ gy: Tensor, _ g: ConvGeometry, columns: TensorStorage?, gyColumns: TensorStorage?) -> Tensor {
    var out = Tensor(uninitialized: g.weightShape)
    KernelProfiler.shared.measure("conv2d_bwd_weight", dims(g.batch, g.channels, g.outChannels, g.height * 1000 + g.width), flops: g.flops) {
        if Kernels.direct(g) {
            Kernels.conv2dDirectWeightGrad(g, x.storage.pointer, gy.storage.pointer, reluOutput: nil, out.storage.pointer, biasGrad: nil)
            return
        }
        Kernels.conv2dBackwardWeight(g, x.storage.pointer, columns,
                                     gyColumns ?? Kernels.gradColumns(g, gy.storage.pointer), out.storage.pointer)
    }
    out.node = nil
    return Tensor.result(.conv2dBackwardWeight(g), [x, gy], out)
}

/// Max pooling over windows of x [N, C, H, W] (no padding, floor mode).
public func maxPool2d(_ x: Tensor, kernel: (Int, Int) = (2, 2), stride: (Int, Int)? = nil) -> Tensor {
    let g = PoolGeometry(input: x.shape, kernel: kernel, stride: stride ?? kernel, op: "maxPool2d")
    let outShape = [x.shape[0], x.shape[1], g.outH, g.outW]
    var out = Tensor(uninitialized: outShape)
    let index = IndexBuffer(uninitializedCount: out.count)
    index.segments = g.planes
    Kernels.maxPool(g, x.storage.pointer, out.storage.pointer, index.pointer)
    out.node = nil
    // Recorded as a gather of the maxima, so its gradient (a scatter) and second derivative come free.
    return Tensor.result(.gather(index), [x], out)
}

/// Average pooling over windows of x [N, C, H, W] (no padding, floor mode).
public func avgPool2d(_ x: Tensor, kernel: (Int, Int) = (2, 2), stride: (Int, Int)? = nil) -> Tensor {
    avgPool(x, PoolGeometry(input: x.shape, kernel: kernel, stride: stride ?? kernel, op: "avgPool2d"))
}

func avgPool(_ x: Tensor, _ g: PoolGeometry) -> Tensor {
    var out = Tensor(uninitialized: [x.shape[0], x.shape[1], g.outH, g.outW])
    Kernels.avgPool(g, x.storage.pointer, out.storage.pointer)
    out.node = nil
    return Tensor.result(.avgPool(g), [x], out)
}

func avgPoolBackward(_ gy: Tensor, _ g: PoolGeometry, inputShape: [Int]) -> Tensor {
    var out = Tensor(uninitialized: inputShape)
    Kernels.avgPoolBackward(g, gy.storage.pointer, out.storage.pointer)
    out.node = nil
    return Tensor.result(.avgPoolBackward(g), [gy], out)
}

// MARK: - Composites

extension Tensor {
    /// Per-channel mean and biased variance over every axis but `axis` (batch-norm statistics),
    /// both keeping the reduced axes as extent 1 so they broadcast back.
    public func momentStatistics(keepingAxis axis: Int = 1) -> (mean: Tensor, variance: Tensor) {
        let a = Shape.axis(axis, rank: rank, op: "momentStatistics")
        let axes = (0..<rank).filter { $0 != a }
        let mean = self.mean(axes: axes, keepDims: true)
        let centered = self - mean
        return (mean, (centered * centered).mean(axes: axes, keepDims: true))
    }

    /// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
    public func dropout(_ p: Float, rng: inout RNG) -> Tensor {
        require(p >= 0 && p < 1, "dropout: probability \(p) must be in [0, 1)")
        if p == 0 { return self }
        var mask = Tensor(uninitialized: shape)
        let keep = 1 / (1 - p)
        mask.withUnsafeMutableBufferPointer { m in for i in m.indices { m[i] = rng.uniform() < p ? 0 : keep } }
        return self * mask
    }

    /// x / ||x|| along `axis` (the last by default), with eps inside the root for zero vectors.
    public func l2Normalized(axis: Int = -1, eps: Float = 1e-12) -> Tensor {
        self / ((self * self).sum(axis: axis, keepDims: true) + eps).sqrt()
    }
}

/// Cosine similarity of matching rows along the last axis: [..., D] x [..., D] -> [...].
public func cosineSimilarity(_ a: Tensor, _ b: Tensor, eps: Float = 1e-8) -> Tensor {
    (a.l2Normalized(eps: eps) * b.l2Normalized(eps: eps)).sum(axis: -1)
}

/// All pairwise cosine similarities of rows: [N, D] x [M, D] -> [N, M].
public func pairwiseCosineSimilarity(_ a: Tensor, _ b: Tensor, eps: Float = 1e-8) -> Tensor {
    matmul(a.l2Normalized(eps: eps), b.l2Normalized(eps: eps), transposeB: true)
}

// MARK: - Batch normalisation

/// Per-channel sums over the batch, split by images across the engine's threads (each thread
/// its own partial sums, added in order so the result does not depend on timing).
private func channelSums(_ n: Int, _ c: Int, _ hw: Int, _ body: (Int, Int, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void)
    -> (s1: [Double], s2: [Double]) {
    let chunks = max(1, min(Parallelism.threads, n / max(1, 16_384 / max(1, c * hw))))
    var partial = [Double](repeating: 0, count: chunks * 2 * c)
    partial.withUnsafeMutableBufferPointer { p in
        let base = p.baseAddress!
        parallelRanges(chunks, grain: 1) { lo, hi in
            for k in lo..<hi { body(n * k / chunks, n * (k + 1) / chunks, base + 2 * c * k, base + 2 * c * k + c) }
        }
    }
    var s1 = [Double](repeating: 0, count: c), s2 = s1
    for k in 0..<chunks {
        for j in 0..<c { s1[j] += partial[2 * c * k + j]; s2[j] += partial[2 * c * k + c + j] }
    }
    return (s1, s2)
}

/// A training-mode batch's statistics per channel of x [N, C, ...] (one pass over x) and the
/// affine map they give: y = x scale + shift.
private struct BatchStatistics {
    let mean: TensorStorage, invstd: TensorStorage
    var variance: Tensor
    var scale: [Float], shift: [Float]

    /// With `moments` (x's planes' sums, `PlaneMoments`), no pass over x: the same sums, added in
    /// the same order.
    init(_ x: Tensor, gamma: Tensor, beta: Tensor, eps: Float, moments: PlaneMoments?) {
        let (n, c) = (x.shape[0], x.shape[1])
        let hw = x.count / max(n * c, 1)
        let count = Double(n * hw)
        let px = x.storage.pointer
        let planes = moments?.of(x)
        let (s1, s2) = channelSums(n, c, hw) { lo, hi, a, b in
            guard let m = planes?.pointer else {
                bb_bn_sums(px, nil, nil, nil, nil, 0, Int32(lo), Int32(hi), Int32(c), hw, a, b)
                return
            }
            // bb_bn_sums's additions: image by image, channel by channel, each plane's float sums into Doubles.
            for p in lo * c ..< hi * c {
                a[p % c] += Double(m[2 * p])
                b[p % c] += Double(m[2 * p + 1])
            }
        }
        (mean, invstd) = (TensorStorage(uninitializedCount: c), TensorStorage(uninitializedCount: c))
        variance = Tensor(uninitialized: [c])
        (scale, shift) = ([Float](repeating: 0, count: c), [Float](repeating: 0, count: c))
        let (pm, pi) = (mean.pointer, invstd.pointer)
        let (pg, pb) = (gamma.storage.pointer, beta.storage.pointer)
        variance.withUnsafeMutableBufferPointer { v in
            for j in 0..<c {
                let m = s1[j] / count
                let biased = max(s2[j] / count - m * m, 0)
                let inv = 1 / (biased + Double(eps)).squareRoot()
                pm[j] = Float(m)
                pi[j] = Float(inv)
                v[j] = Float(biased)
                scale[j] = pg[j] * Float(inv)
                shift[j] = pb[j] - Float(m) * scale[j]
            }
        }
    }

    /// The batch mean as a tensor of its own (the op keeps `mean` for its backward).
    var meanTensor: Tensor { Tensor(shape: [mean.count], storage: mean.copy()) }
}

private func requireBatchNormShapes(_ x: Tensor, _ gamma: Tensor, _ beta: Tensor, op: String) {
    require(x.rank >= 2 && gamma.shape == [x.shape[1]] && beta.shape == [x.shape[1]],
            "\(op): input \(describe(x.shape)) needs gamma and beta of shape [\(x.rank >= 2 ? x.shape[1] : 0)], got \(describe(gamma.shape)) and \(describe(beta.shape))")
}

/// Batch normalisation in training mode over axis 1 of x [N, C, ...] with the batch's statistics,
/// then y = gamma xhat + beta and an optional ReLU, in two passes over x (one with x's `moments`).
/// Returns the output and the batch mean and biased variance per channel (constants, for running
/// estimates).
public func batchNorm(_ x: Tensor, gamma: Tensor, beta: Tensor, eps: Float = 1e-5, relu: Bool = false,
                      moments: PlaneMoments? = nil) -> (output: Tensor, mean: Tensor, variance: Tensor) {
    requireBatchNormShapes(x, gamma, beta, op: "batchNorm")
    let (n, c) = (x.shape[0], x.shape[1])
    let hw = x.count / max(n * c, 1)
    var y = Tensor(uninitialized: x.shape)
    let px = x.storage.pointer, py = y.storage.pointer
    // Bytes moved: x read for the statistics (not with its moments) and to normalise, y written.
    let stats = KernelProfiler.shared.measure("batchnorm", dims(n, c, hw), bytes: Double((moments?.of(x) == nil ? 12 : 8) * x.count)) {
        let stats = BatchStatistics(x, gamma: gamma, beta: beta, eps: eps, moments: moments)
        parallelRanges(n, grain: max(1, 16_384 / max(1, c * hw))) { lo, hi in
            bb_bn_apply(px, py, stats.scale, stats.shift, relu ? 1 : 0, Int32(lo), Int32(hi), Int32(c), hw)
        }
        return stats
    }
    y.node = nil
    let out = Tensor.result(.batchNorm(eps: eps, relu: relu, mean: stats.mean, invstd: stats.invstd), [x, gamma, beta], y)
    return (out, stats.meanTensor, stats.variance)
}

/// `batchNorm(relu: true)` then `maxPool2d` over windows that do not overlap (stride >= kernel
/// on both axes), as one op: the same output, statistics and gradients (up to the order of the
/// gradient sums), without the full-size activation between them. Forward: the statistics pass
/// (none with x's `moments`), then one pass that normalises, rectifies and pools, writing only the
/// pooled output and its maxima's indices. First-order backward: the gradient sums read only the maxima, and dx is one
/// pass with the pooled gradient placed at the maxima (no scatter into a zeroed full-size
/// gradient, no masked full-size passes). The recorded backward is the unfused rules' steps.
public func batchNormReluMaxPool(_ x: Tensor, gamma: Tensor, beta: Tensor, eps: Float = 1e-5, kernel: (Int, Int) = (2, 2),
                                 stride: (Int, Int)? = nil, moments: PlaneMoments? = nil) -> (output: Tensor, mean: Tensor, variance: Tensor) {
    requireBatchNormShapes(x, gamma, beta, op: "batchNormReluMaxPool")
    let stride = stride ?? kernel
    let geo = PoolGeometry(input: x.shape, kernel: kernel, stride: stride, op: "batchNormReluMaxPool")
    require(stride.0 >= kernel.0 && stride.1 >= kernel.1,
            "batchNormReluMaxPool: windows \(kernel) at stride \(stride) overlap; use batchNorm then maxPool2d")
    let (n, c) = (x.shape[0], x.shape[1])
    var y = Tensor(uninitialized: [n, c, geo.outH, geo.outW])
    let index = IndexBuffer(uninitializedCount: y.count), xmax = TensorStorage(uninitializedCount: y.count)
    index.segments = geo.planes
    let px = x.storage.pointer, py = y.storage.pointer, pi = index.pointer, pm = xmax.pointer
    let stats = KernelProfiler.shared.measure("batchnorm_relu_maxpool", dims(n, c, geo.height, geo.width),
                                              bytes: Double((moments?.of(x) == nil ? 8 : 4) * x.count + 12 * y.count)) {
        let stats = BatchStatistics(x, gamma: gamma, beta: beta, eps: eps, moments: moments)
        parallelRanges(geo.planes, grain: max(1, 65_536 / (geo.height * geo.width))) { lo, hi in
            bb_bn_relu_maxpool(px, py, pi, pm, stats.scale, stats.shift, Int32(c), Int32(lo), Int32(hi), Int32(geo.height),
                               Int32(geo.width), Int32(geo.kernelH), Int32(geo.kernelW), Int32(geo.strideH), Int32(geo.strideW))
        }
        return stats
    }
    y.node = nil
    let out = Tensor.result(.batchNormReluMaxPool(eps: eps, pool: geo, mean: stats.mean, invstd: stats.invstd, index: index, xmax: xmax),
                            [x, gamma, beta], y)
    return (out, stats.meanTensor, stats.variance)
}

/// Batch normalisation with given statistics (evaluation mode: running mean and variance):
/// y = gamma (x - mean) / sqrt(variance + eps) + beta, then an optional ReLU. One fused pass when
/// nothing needs gradients; the same as differentiable ops otherwise.
public func batchNormInference(_ x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, eps: Float = 1e-5,
                               relu: Bool = false) -> Tensor {
    let c = x.rank >= 2 ? x.shape[1] : 0
    require(x.rank >= 2 && [gamma, beta, mean, variance].allSatisfy { $0.shape == [c] },
            "batchNormInference: input \(describe(x.shape)) needs gamma, beta, mean and variance of shape [\(c)]")
    let recording = GradMode.isEnabled && [x, gamma, beta, mean, variance].contains { $0.requiresGrad }
    if recording {
        var statShape = [Int](repeating: 1, count: x.rank)
        statShape[1] = c
        let scale = gamma.reshaped(statShape) / (variance.reshaped(statShape) + eps).sqrt()
        let y = (x - mean.reshaped(statShape)) * scale + beta.reshaped(statShape)
        return relu ? y.relu() : y
    }
    let n = x.shape[0], hw = x.count / max(n * c, 1)
    var scale = [Float](repeating: 0, count: c), shift = scale
    for j in 0..<c {
        scale[j] = gamma.storage.pointer[j] / (variance.storage.pointer[j] + eps).squareRoot()
        shift[j] = beta.storage.pointer[j] - mean.storage.pointer[j] * scale[j]
    }
    let y = Tensor(uninitialized: x.shape)
    let (px, py) = (x.storage.pointer, y.storage.pointer)
    KernelProfiler.shared.measure("batchnorm_inference", dims(n, c, hw), bytes: Double(8 * x.count)) {
        parallelRanges(n, grain: max(1, 16_384 / max(1, c * hw))) { lo, hi in
            bb_bn_apply(px, py, scale, shift, relu ? 1 : 0, Int32(lo), Int32(hi), Int32(c), hw)
        }
    }
    return y
}

/// The affine map y = x scale + shift that training-mode batch norm applied, from its kept batch
/// statistics: the same values `BatchStatistics` computed.
private func batchNormAffine(gamma: Tensor, beta: Tensor, mean: TensorStorage, invstd: TensorStorage) -> (scale: [Float], shift: [Float]) {
    let scale = (0..<mean.count).map { gamma.storage.pointer[$0] * invstd.pointer[$0] }
    return (scale, (0..<mean.count).map { beta.storage.pointer[$0] - mean.pointer[$0] * scale[$0] })
}

/// The first-order backward of `batchNorm`: one pass for the two gradient sums, one for dx.
func batchNormBackward(_ g: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: TensorStorage, invstd: TensorStorage,
                       relu: Bool, needs: [Bool]) -> [Tensor?] {
    let (n, c) = (x.shape[0], x.shape[1])
    let hw = x.count / max(n * c, 1)
    let (scale, shift) = batchNormAffine(gamma: gamma, beta: beta, mean: mean, invstd: invstd)
    let (pg, px) = (g.storage.pointer, x.storage.pointer)
    return KernelProfiler.shared.measure("batchnorm_backward", dims(n, c, hw), bytes: Double(16 * x.count)) {
        let sums = channelSums(n, c, hw) { lo, hi, a, b in
            bb_bn_sums(px, pg, scale, shift, mean.pointer, relu ? 1 : 0, Int32(lo), Int32(hi), Int32(c), hw, a, b)
        }
        return batchNormGradients(sums, x: x, invstd: invstd, needs: needs) { dx, meanG, meanGXhat in
            parallelRanges(n, grain: max(1, 16_384 / max(1, c * hw))) { lo, hi in
                bb_bn_grad_apply(pg, px, dx, scale, shift, mean.pointer, invstd.pointer, meanG, meanGXhat, relu ? 1 : 0,
                                 Int32(lo), Int32(hi), Int32(c), hw)
            }
        }
    }
}

/// dgamma, dbeta and dx of batch norm from the gradient sums (of gz and of gz (x - mean)):
/// dgamma = invstd sum gz (x - mean), dbeta = sum gz, and `fill` writes dx given the means of gz
/// and of gz xhat.
private func batchNormGradients(_ sums: (s1: [Double], s2: [Double]), x: Tensor, invstd: TensorStorage, needs: [Bool],
                                fill: (UnsafeMutablePointer<Float>, [Float], [Float]) -> Void) -> [Tensor?] {
    let c = x.shape[1]
    let count = Float(x.count / max(c, 1))
    let dg = (0..<c).map { Float(sums.s2[$0]) * invstd.pointer[$0] }
    let dgamma = needs[1] ? Tensor(shape: [c], scalars: dg) : nil
    let dbeta = needs[2] ? Tensor(shape: [c], scalars: sums.s1.map { Float($0) }) : nil
    guard needs[0] else { return [nil, dgamma, dbeta] }
    let dx = Tensor(uninitialized: x.shape)
    fill(dx.storage.pointer, sums.s1.map { Float($0) / count }, dg.map { $0 / count })
    return [dx, dgamma, dbeta]
}

/// The first-order backward of `batchNormReluMaxPool`: the gradient sums over the maxima only,
/// then one pass for dx.
func batchNormReluMaxPoolBackward(_ g: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, pool geo: PoolGeometry, mean: TensorStorage,
                                  invstd: TensorStorage, index: IndexBuffer, xmax: TensorStorage, needs: [Bool]) -> [Tensor?] {
    let (n, c) = (x.shape[0], x.shape[1])
    let hw = geo.height * geo.width, pooled = geo.outH * geo.outW
    let (scale, shift) = batchNormAffine(gamma: gamma, beta: beta, mean: mean, invstd: invstd)
    let (pg, px, pi, pm) = (g.storage.pointer, x.storage.pointer, index.pointer, xmax.pointer)
    return withExtendedLifetime(index) {
        KernelProfiler.shared.measure("batchnorm_relu_maxpool_backward", dims(n, c, geo.height, geo.width),
                                      bytes: Double(8 * x.count + 16 * g.count)) {
            let sums = channelSums(n, c, pooled) { lo, hi, a, b in
                bb_bn_relu_maxpool_sums(pg, pm, scale, shift, mean.pointer, Int32(c), Int32(lo * c), Int32(hi * c), pooled, a, b)
            }
            return batchNormGradients(sums, x: x, invstd: invstd, needs: needs) { dx, meanG, meanGXhat in
                parallelRanges(geo.planes, grain: max(1, 16_384 / max(1, hw))) { lo, hi in
                    bb_bn_relu_maxpool_grad(pg, pi, pm, px, dx, scale, shift, mean.pointer, invstd.pointer, meanG, meanGXhat, Int32(c),
                                            Int32(lo), Int32(hi), hw, pooled)
                }
            }
        }
    }
}

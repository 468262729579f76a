/// The one table of gradient rules. Given an op, its inputs, its output and the gradient of the
/// loss with respect to that output, returns the gradient for each input that `needs` one.
///
/// Every rule is written with differentiable ops, so when the backward pass is recorded
/// (`createGraph`) the gradients are themselves differentiable. Constants derived from values
/// (masks, signs) are computed under `noGrad`: their derivative is zero almost everywhere.
func gradientRule(_ op: Op, inputs x: [Tensor], output y: Tensor, grad g: Tensor, needs: [Bool]) -> [Tensor?] {
    func only(_ i: Int, _ make: () -> Tensor) -> Tensor? { needs[i] ? make() : nil }
    switch op {
    case .leaf:
        return []

    case .add:
        return [only(0) { g.sum(to: x[0].shape) }, only(1) { g.sum(to: x[1].shape) }]
    case .sub:
        return [only(0) { g.sum(to: x[0].shape) }, only(1) { (-g).sum(to: x[1].shape) }]
    case .mul:
        return [only(0) { (g * x[1]).sum(to: x[0].shape) }, only(1) { (g * x[0]).sum(to: x[1].shape) }]
    case .div:
        return [only(0) { (g / x[1]).sum(to: x[0].shape) },
                only(1) { (-(g * x[0]) / (x[1] * x[1])).sum(to: x[1].shape) }]

    case .neg: return [-g]
    case .exp: return [g * y]
    case .log: return [g / x[0]]
    case .sqrt: return [g * 0.5 / y]
    case .abs: return [g * noGrad { x[0].sign() }]
    case .sigmoid: return [g * y * (1 - y)]
    case .tanh: return [g * (1 - y * y)]
    case .pow(let p): return [g * p * x[0].pow(p - 1)]
    case .scale(let s): return [g * s]
    case .shift: return [g]
    case .leakyRelu(let slope): return [reluGrad(g, x[0], slope: slope)]
    case .reluGrad(let slope):
        // Linear in g with a constant mask: d/dg is the same masking; d/dx is zero almost everywhere.
        return [only(0) { reluGrad(g, x[1], slope: slope) }, only(1) { Tensor(zeros: x[1].shape) }]

    case .matmul(let ta, let tb):
        let a = x[0], b = x[1]
        let ga = only(0) { ta ? matmul(b, g, transposeA: tb, transposeB: true) : matmul(g, b, transposeB: !tb) }
        let gb = only(1) { tb ? matmul(g, a, transposeA: true, transposeB: ta) : matmul(a, g, transposeA: !ta) }
        return [ga, gb]

    case .linear(let relu):
        // y = act(x Wᵀ + b): mask g by the ReLU (y > 0 exactly where the pre-activation is), then
        // gx = gz W, gW = gzᵀ x, gb = column sums of gz.
        let hasBias = x.count == 3
        let gz: Tensor, gb: Tensor?
        if !GradMode.isEnabled && (relu || (hasBias && needs[2])) {
            // First order: masking and the bias gradient in one pass.
            let grad = hasBias && needs[2] ? Tensor(zeros: [y.shape[1]]) : nil
            gz = linearGradient(g, reluOutput: relu ? y : nil, biasGrad: grad)
            gb = grad
        } else {
            gz = relu ? reluGrad(g, y, slope: 0) : g
            gb = hasBias ? only(2) { gz.sum(to: [y.shape[1]]) } : nil
        }
        return [only(0) { matmul(gz, x[1]) }, only(1) { matmul(gz, x[0], transposeA: true) }] + (hasBias ? [gb] : [])

    case .sumTo: return [g.broadcast(to: x[0].shape)]
    case .broadcastTo: return [g.sum(to: x[0].shape)]
    case .maxAlong:
        // Split the gradient evenly between tied maxima, as the subgradient average.
        let mask = noGrad { () -> Tensor in
            let hit = x[0].equalMask(y.detached.broadcast(to: x[0].shape))
            return hit / hit.sum(to: y.shape)
        }
        return [g.broadcast(to: x[0].shape) * mask]

    case .reshape: return [g.reshaped(x[0].shape)]
    case .permute(let p):
        var inverse = [Int](repeating: 0, count: p.count)
        for (i, a) in p.enumerated() { inverse[a] = i }
        return [g.permuted(inverse)]
    case .concat(let axis):
        var start = 0
        return x.indices.map { i in
            defer { start += x[i].shape[axis] }
            return needs[i] ? g.slice(axis: axis, start, start + x[i].shape[axis]) : nil
        }
    case .slice(let axis, let start): return [g.padSlice(axis: axis, start: start, into: x[0].shape)]
    case .padSlice(let axis, let start, _): return [g.slice(axis: axis, start, start + x[0].shape[axis])]
    case .gather(let index): return [g.scatterAdd(index, into: x[0].shape)]
    case .scatterAdd(let index, _): return [g.gather(index, shape: x[0].shape)]

    case .logSoftmax:
        // d/dx = g - softmax(x) * sum(g) along the last axis; softmax(x) = exp(y).
        let rowShape = Array(g.shape.dropLast()) + [1]
        return [g - y.exp() * g.sum(to: rowShape)]
    case .softmaxCrossEntropy(let labels, let probs):
        let logits = x[0]
        let rows = logits.shape[0]
        let onehot = Tensor.oneHot(labels, classes: logits.shape[1])
        if !GradMode.isEnabled {
            // First order: the probabilities saved by the fused forward kernel.
            return [(Tensor(shape: logits.shape, storage: probs) - onehot) * (g / Float(rows))]
        }
        return [(logits.logSoftmax().exp() - onehot) * (g / Float(rows))]

    case .conv2d(let geo, let columns, let relu):
        // The forward's im2col columns are reused rather than recomputed, and both GEMM gradients
        // read gy in channel-major order, reordered once (both are caches of recorded values).
        let o = geo.outChannels
        if !GradMode.isEnabled {
            if Kernels.direct(geo) {
                // The direct loop reads gy as it is, masked by the ReLU, for the weight and bias
                // gradients at once; the channel-major copy is made only for an input that needs
                // a gradient (a first layer's does not).
                let gw = Tensor(uninitialized: geo.weightShape), gb = Tensor(uninitialized: [o])
                if needs[1] || (x.count == 3 && needs[2]) {
                    Kernels.conv2dDirectWeightGrad(geo, x[0].storage.pointer, g.storage.pointer, reluOutput: relu ? y.storage.pointer : nil,
                                                   gw.storage.pointer, biasGrad: x.count == 3 ? gb.storage.pointer : nil)
                }
                let gx = only(0) {
                    conv2dBackwardData(g, x[1], geo, gyColumns: Kernels.gradColumns(geo, g.storage.pointer, reluOutput: relu ? y.storage.pointer : nil))
                }
                return [gx, only(1) { gw }] + (x.count == 3 ? [only(2) { gb }] : [])
            }
            // First order: one pass masks gy by the fused ReLU, reorders it and sums the bias gradient.
            let gb = x.count == 3 && needs[2] ? Tensor(zeros: [o]) : nil
            let gyColumns = Kernels.gradColumns(geo, g.storage.pointer, reluOutput: relu ? y.storage.pointer : nil,
                                                biasGrad: gb?.storage.pointer)
            return [only(0) { conv2dBackwardData(g, x[1], geo, gyColumns: gyColumns) },
                    only(1) { conv2dBackwardWeight(x[0], g, geo, columns: columns, gyColumns: gyColumns) }] + (x.count == 3 ? [gb] : [])
        }
        // Recorded backward: the same steps as differentiable ops. y > 0 exactly where the
        // pre-activation is, so the output serves as the ReLU's mask. (A direct convolution's
        // weight gradient reads gz itself, not the channel-major copy.)
        let gz = relu ? reluGrad(g, y, slope: 0) : g
        let gyColumns = needs[0] || (needs[1] && !Kernels.direct(geo)) ? Kernels.gradColumns(geo, gz.storage.pointer) : nil
        let gb = x.count == 3 ? only(2) { gz.sum(to: [1, o, 1, 1]).reshaped([o]) } : nil
        return [only(0) { conv2dBackwardData(gz, x[1], geo, gyColumns: gyColumns) },
                only(1) { conv2dBackwardWeight(x[0], gz, geo, columns: columns, gyColumns: gyColumns) }] + (x.count == 3 ? [gb] : [])
    case .conv2dBackwardData(let geo):
        // y = J^T gy is bilinear in (gy, w).
        return [only(0) { conv2d(g, x[1], geo) }, only(1) { conv2dBackwardWeight(g, x[0], geo) }]
    case .conv2dBackwardWeight(let geo):
        return [only(0) { conv2dBackwardData(x[1], g, geo) }, only(1) { conv2d(x[0], g, geo) }]
    case .batchNorm(let eps, let relu, let mean, let invstd):
        if !GradMode.isEnabled {
            return batchNormBackward(g, x: x[0], gamma: x[1], beta: x[2], mean: mean, invstd: invstd, relu: relu, needs: needs)
        }
        return recordedBatchNormBackward(relu ? reluGrad(g, y, slope: 0) : g, x: x[0], gamma: x[1], eps: eps, needs: needs)
    case .batchNormReluMaxPool(let eps, let pool, let mean, let invstd, let index, let xmax):
        if !GradMode.isEnabled {
            return batchNormReluMaxPoolBackward(g, x: x[0], gamma: x[1], beta: x[2], pool: pool, mean: mean, invstd: invstd,
                                                index: index, xmax: xmax, needs: needs)
        }
        // Recorded: the unfused rules' steps, as differentiable ops. The ReLU's mask is needed at
        // the maxima only (every other element's gradient is zero), where the pooled output is the
        // rectified activation: mask there, scatter, then batch norm's formula.
        let gz = reluGrad(g, y, slope: 0).scatterAdd(index, into: x[0].shape)
        return recordedBatchNormBackward(gz, x: x[0], gamma: x[1], eps: eps, needs: needs)
    case .avgPool(let geo): return [avgPoolBackward(g, geo, inputShape: x[0].shape)]
    case .avgPoolBackward(let geo): return [avgPool(g, geo)]
    }
}

/// Training-mode batch norm's backward as differentiable ops, given the gradient at its
/// normalised output (after any ReLU's mask): the statistics are recomputed from x so that their
/// dependence on x is differentiated too.
private func recordedBatchNormBackward(_ gz: Tensor, x: Tensor, gamma: Tensor, eps: Float, needs: [Bool]) -> [Tensor?] {
    let c = x.shape[1]
    var statShape = [Int](repeating: 1, count: x.rank)
    statShape[1] = c
    let m = Float(x.count / c)
    let (mu, variance) = x.momentStatistics(keepingAxis: 1)
    let inv = 1 / (variance + eps).sqrt()
    let xhat = (x - mu) * inv
    let dbeta = gz.sum(to: statShape), dgamma = (gz * xhat).sum(to: statShape)
    return [needs[0] ? gamma.reshaped(statShape) * inv * (gz - dbeta * (1 / m) - xhat * dgamma * (1 / m)) : nil,
            needs[1] ? dgamma.reshaped([c]) : nil, needs[2] ? dbeta.reshaped([c]) : nil]
}

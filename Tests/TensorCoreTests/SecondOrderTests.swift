import Foundation
import Testing
@testable import TensorCore

/// Hessian-vector products through the recorded backward pass (what full second-order MAML needs),
/// checked against mixed second differences of the Double reference.
@Suite struct SecondOrderTests {
    var rng = RNG(seed: 3)

    @Test mutating func hvpThroughMatmulReluCrossEntropy() {
        let x = randomRef([5, 4], &rng), w1 = randomRef([4, 6], &rng), w2 = randomRef([6, 3], &rng)
        let labels: [Int32] = [0, 2, 1, 1, 0]
        checkHessianVector([x, w1, w2], engine: { t in
            softmaxCrossEntropy(logits: matmul(matmul(t[0], t[1]).relu(), t[2]), labels: labels)
        }, reference: { r in
            Ref.crossEntropy(Ref.matmul(Ref.matmul(r[0], r[1]).map { max($0, 0) }, r[2]), labels: labels)
        })
    }

    @Test mutating func hvpThroughConv2dAndPooling() {
        let x = randomRef([2, 2, 5, 5], &rng), w = randomRef([3, 2, 3, 3], &rng), v = randomRef([12, 2], &rng)
        let labels: [Int32] = [1, 0]
        checkHessianVector([x, w, v], engine: { t in
            let h = maxPool2d(conv2d(t[0], t[1], padding: (1, 1)).tanh(), kernel: (2, 2))
            return softmaxCrossEntropy(logits: matmul(h.reshaped([2, 12]), t[2]), labels: labels)
        }, reference: { r in
            let h = Ref.conv2d(r[0], r[1], stride: (1, 1), padding: (1, 1)).map(Foundation.tanh)
                .pool(kernel: (2, 2), stride: (2, 2)) { $0.max()! }
            return Ref.crossEntropy(Ref.matmul(Ref([2, 12], h.data), r[2]), labels: labels)
        })
    }

    @Test mutating func hvpThroughFusedLinearReLU() {
        let x = randomRef([4, 3], &rng), w = randomRef([5, 3], &rng), b = randomRef([5], &rng), v = randomRef([2, 5], &rng)
        let labels: [Int32] = [0, 1, 1, 0]
        checkHessianVector([x, w, b, v], engine: { t in
            softmaxCrossEntropy(logits: linear(linear(t[0], t[1], bias: t[2], relu: true), t[3]), labels: labels)
        }, reference: { r in
            let h = (Ref.matmul(r[0], r[1], tb: true) + r[2]).map { max($0, 0) }
            return Ref.crossEntropy(Ref.matmul(h, r[3], tb: true), labels: labels)
        })
    }

    @Test mutating func hvpThroughFusedBatchNormReLU() {
        let x = randomRef([4, 2, 1, 2], &rng), gamma = randomRef([2], &rng, low: 0.5, high: 1.5), beta = randomRef([2], &rng)
        let v = randomRef([4, 3], &rng)
        let labels: [Int32] = [0, 2, 1, 1]
        checkHessianVector([x, gamma, beta, v], engine: { t in
            let h = batchNorm(t[0], gamma: t[1], beta: t[2], relu: true).output
            return softmaxCrossEntropy(logits: matmul(h.reshaped([4, 4]), t[3]), labels: labels)
        }, reference: { r in
            let h = r[0].batchNorm(gamma: r[1], beta: r[2], relu: true)
            return Ref.crossEntropy(Ref.matmul(Ref([4, 4], h.data), r[3]), labels: labels)
        })
    }

    @Test mutating func hvpThroughFusedBatchNormReLUMaxPool() {
        let x = randomRef([3, 2, 2, 4], &rng), gamma = randomRef([2], &rng, low: 0.5, high: 1.5), beta = randomRef([2], &rng)
        let v = randomRef([4, 3], &rng)
        let labels: [Int32] = [0, 2, 1]
        checkHessianVector([x, gamma, beta, v], engine: { t in
            let h = batchNormReluMaxPool(t[0], gamma: t[1], beta: t[2]).output
            return softmaxCrossEntropy(logits: matmul(h.reshaped([3, 4]), t[3]), labels: labels)
        }, reference: { r in
            let pooled = r[0].batchNorm(gamma: r[1], beta: r[2], relu: true).pool(kernel: (2, 2), stride: (2, 2)) { $0.max()! }
            return Ref.crossEntropy(Ref.matmul(Ref([3, 4], pooled.data), r[3]), labels: labels)
        })
    }

    @Test mutating func hvpThroughFusedConvBiasReLU() {
        let x = randomRef([2, 1, 4, 4], &rng), w = randomRef([2, 1, 3, 3], &rng), b = randomRef([2], &rng), v = randomRef([8, 2], &rng)
        let labels: [Int32] = [1, 0]
        checkHessianVector([x, w, b, v], engine: { t in
            let h = conv2d(t[0], t[1], bias: t[2], relu: true)
            return softmaxCrossEntropy(logits: matmul(h.reshaped([2, 8]), t[3]), labels: labels)
        }, reference: { r in
            let h = (Ref.conv2d(r[0], r[1], stride: (1, 1), padding: (0, 0)) + Ref([1, 2, 1, 1], r[2].data)).map { max($0, 0) }
            return Ref.crossEntropy(Ref.matmul(Ref([2, 8], h.data), r[3]), labels: labels)
        })
    }

    @Test mutating func hvpThroughSoftTargetsAndNormalisation() {
        let a = randomRef([3, 4], &rng), t = randomRef([3, 4], &rng, low: 0, high: 1)
        checkHessianVector([a, t], engine: { x in
            softmaxCrossEntropy(logits: x[0].l2Normalized() * 3, targets: x[1].softmax())
        }, reference: { r in
            let n = r[0] / (r[0] * r[0]).sum(to: [3, 1]).map { ($0 + 1e-12).squareRoot() }
            let logits = n.map { $0 * 3 }
            return -(r[1].logSoftmax().map(Foundation.exp) * logits.logSoftmax()).sumAll() / 3
        })
    }

    @Test mutating func hvpThroughAvgPoolSigmoidAndDivision() {
        let x = randomRef([1, 2, 4, 4], &rng), d = randomRef([1, 2, 1, 1], &rng, low: 1, high: 2)
        checkHessianVector([x, d], engine: { t in
            (avgPool2d(t[0], kernel: (2, 2)).sigmoid() / t[1]).pow(2).sum()
        }, reference: { r in
            let p = r[0].pool(kernel: (2, 2), stride: (2, 2)) { $0.reduce(0, +) / 4 }.map { 1 / (1 + Foundation.exp(-$0)) }
            return (p / r[1]).map { $0 * $0 }.sumAll()
        })
    }

    /// Stride 2 and a rectangular 2 x 3 kernel, with padding on one axis only.
    @Test mutating func hvpThroughStridedRectangularConv() {
        let x = randomRef([2, 2, 5, 6], &rng), w = randomRef([3, 2, 2, 3], &rng), v = randomRef([3 * 2 * 3, 2], &rng)
        let labels: [Int32] = [1, 0]
        checkHessianVector([x, w, v], engine: { t in
            let h = conv2d(t[0], t[1], stride: (2, 2), padding: (0, 1)).tanh()
            return softmaxCrossEntropy(logits: matmul(h.reshaped([2, 18]), t[2]), labels: labels)
        }, reference: { r in
            let h = Ref.conv2d(r[0], r[1], stride: (2, 2), padding: (0, 1)).map(Foundation.tanh)
            return Ref.crossEntropy(Ref.matmul(Ref([2, 18], h.data), r[2]), labels: labels)
        })
    }

    /// Batch norm in training mode without the fused ReLU (its own backward, not the fused one).
    @Test mutating func hvpThroughBatchNormWithoutReLU() {
        let x = randomRef([4, 2, 1, 2], &rng), gamma = randomRef([2], &rng, low: 0.5, high: 1.5), beta = randomRef([2], &rng)
        let v = randomRef([4, 3], &rng)
        let labels: [Int32] = [0, 2, 1, 1]
        checkHessianVector([x, gamma, beta, v], engine: { t in
            let h = batchNorm(t[0], gamma: t[1], beta: t[2]).output.tanh()
            return softmaxCrossEntropy(logits: matmul(h.reshaped([4, 4]), t[3]), labels: labels)
        }, reference: { r in
            let h = r[0].batchNorm(gamma: r[1], beta: r[2], relu: false).map(Foundation.tanh)
            return Ref.crossEntropy(Ref.matmul(Ref([4, 4], h.data), r[3]), labels: labels)
        })
    }

    /// Batch norm in inference mode (running statistics as constants), as MAML's adapted networks
    /// are evaluated.
    @Test mutating func hvpThroughBatchNormInference() {
        let x = randomRef([3, 2, 1, 2], &rng), gamma = randomRef([2], &rng, low: 0.5, high: 1.5), beta = randomRef([2], &rng)
        let v = randomRef([4, 2], &rng)
        let mean: [Double] = [0.3, -0.2], variance: [Double] = [1.5, 0.7]
        let labels: [Int32] = [0, 1, 1]
        checkHessianVector([x, gamma, beta, v], engine: { t in
            let h = batchNormInference(t[0], gamma: t[1], beta: t[2], mean: Tensor(shape: [2], scalars: mean.map(Float.init)),
                                       variance: Tensor(shape: [2], scalars: variance.map(Float.init))).tanh()
            return softmaxCrossEntropy(logits: matmul(h.reshaped([3, 4]), t[3]), labels: labels)
        }, reference: { r in
            let inv = Ref([1, 2, 1, 1], variance.map { 1 / ($0 + 1e-5).squareRoot() })
            let h = ((r[0] - Ref([1, 2, 1, 1], mean)) * inv * Ref([1, 2, 1, 1], r[1].data) + Ref([1, 2, 1, 1], r[2].data)).map(Foundation.tanh)
            return Ref.crossEntropy(Ref.matmul(Ref([3, 4], h.data), r[3]), labels: labels)
        })
    }
}

import Foundation
import Testing
@testable import TensorCore

/// One finite-difference gradient test per op, on random inputs (odd sizes, broadcasting).
@Suite struct OpGradientTests {
    /// The check is relative: a gradient of 0.01 off by 18% fails it, where the former check
    /// (absolute error against max(1, largest)) let it pass at 2e-3.
    @Test func smallGradientsAreHeldToTheirOwnSize() {
        let engine: [Float] = [0.0118, -0.5], reference: [Double] = [0.01, -0.5]
        #expect(relativeError(engine, reference) > 0.1)
        let former = zip(engine, reference).map { Swift.abs(Double($0) - $1) }.max()! / max(1, 0.5)
        #expect(former <= 2e-3, "the former check passed it")
        #expect(relativeError([1e-9, 1], [0, 1]) < 1e-6, "near zero, elements are judged against a fraction of the largest")
    }

    var rng = RNG(seed: 1)

    @Test mutating func addSubMulDivBroadcast() {
        let a = randomRef([3, 4, 5], &rng), b = randomRef([4, 1], &rng)
        let pos = randomRef([4, 1], &rng, low: 0.5, high: 2)
        checkGradients([a, b], engine: { $0[0] + $0[1] }, reference: { $0[0] + $0[1] })
        checkGradients([a, b], engine: { $0[0] - $0[1] }, reference: { $0[0] - $0[1] })
        checkGradients([a, b], engine: { $0[0] * $0[1] }, reference: { $0[0] * $0[1] })
        checkGradients([a, pos], engine: { $0[0] / $0[1] }, reference: { $0[0] / $0[1] })
    }

    @Test mutating func broadcastGradientSumsToInputShape() {
        let a = randomRef([1, 3, 1], &rng), b = randomRef([2, 1, 4], &rng)
        checkGradients([a, b], engine: { $0[0] * $0[1] }, reference: { $0[0] * $0[1] })
    }

    @Test mutating func scalarOps() {
        let a = randomRef([7], &rng)
        checkGradients([a], engine: { 3 - $0[0] * 2 + 0.5 }, reference: { $0[0].map { 3 - $0 * 2 + 0.5 } })
        checkGradients([randomRef([5], &rng, low: 0.5, high: 2)], engine: { 2 / $0[0] }, reference: { $0[0].map { 2 / $0 } })
    }

    @Test mutating func unaryOps() {
        let x = randomRef([3, 5], &rng, low: -2, high: 2)
        let pos = randomRef([3, 5], &rng, low: 0.2, high: 3)
        checkGradients([x], engine: { -$0[0] }, reference: { $0[0].map { -$0 } })
        checkGradients([x], engine: { $0[0].exp() }, reference: { $0[0].map(Foundation.exp) })
        checkGradients([pos], engine: { $0[0].log() }, reference: { $0[0].map(Foundation.log) })
        checkGradients([pos], engine: { $0[0].sqrt() }, reference: { $0[0].map { $0.squareRoot() } })
        checkGradients([pos], engine: { $0[0].pow(2.5) }, reference: { $0[0].map { Foundation.pow($0, 2.5) } })
        checkGradients([x], engine: { $0[0].abs() }, reference: { $0[0].map(Swift.abs) })
        checkGradients([x], engine: { $0[0].relu() }, reference: { $0[0].map { Swift.max($0, 0) } })
        checkGradients([x], engine: { $0[0].leakyRelu(0.1) }, reference: { $0[0].map { $0 > 0 ? $0 : 0.1 * $0 } })
        checkGradients([x], engine: { $0[0].sigmoid() }, reference: { $0[0].map { 1 / (1 + Foundation.exp(-$0)) } })
        checkGradients([x], engine: { $0[0].tanh() }, reference: { $0[0].map(Foundation.tanh) })
    }

    @Test mutating func matmulWithTransposes() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomRef(ta ? [5, 3] : [3, 5], &rng), b = randomRef(tb ? [4, 5] : [5, 4], &rng)
            checkGradients([a, b], engine: { matmul($0[0], $0[1], transposeA: ta, transposeB: tb) },
                           reference: { Ref.matmul($0[0], $0[1], ta: ta, tb: tb) })
        }
        let a = randomRef([2, 3, 5], &rng), b = randomRef([2, 4, 5], &rng)
        checkGradients([a, b], engine: { matmul($0[0], $0[1], transposeB: true) },
                       reference: { Ref.matmul($0[0], $0[1], tb: true) })
    }

    @Test mutating func fusedLinearWithBiasAndReLU() {
        let x = randomRef([5, 4], &rng), w = randomRef([3, 4], &rng), b = randomRef([3], &rng)
        for relu in [false, true] {
            checkGradients([x, w, b], engine: { linear($0[0], $0[1], bias: $0[2], relu: relu) },
                           reference: { r in (Ref.matmul(r[0], r[1], tb: true) + r[2]).map { relu ? max($0, 0) : $0 } })
        }
        checkGradients([x, w], engine: { linear($0[0], $0[1]) }, reference: { Ref.matmul($0[0], $0[1], tb: true) })
    }

    @Test mutating func reductions() {
        let x = randomRef([3, 4, 5], &rng)
        checkGradients([x], engine: { $0[0].sum(axes: [0, 2]) }, reference: { Ref([4], $0[0].sum(to: [1, 4, 1]).data) })
        checkGradients([x], engine: { $0[0].mean(axis: 1, keepDims: true) },
                       reference: { $0[0].sum(to: [3, 1, 5]).map { $0 / 4 } })
        checkGradients([x], engine: { $0[0].sum().reshaped([1]) }, reference: { Ref([1], [$0[0].sumAll()]) })
        checkGradients([x], engine: { $0[0].max(axis: 2) }, reference: { Ref([3, 4], $0[0].max(axis: 2).data) })
        checkGradients([randomRef([1, 4], &rng)], engine: { $0[0].broadcast(to: [3, 4]) },
                       reference: { Ref([3, 4], Array(repeating: $0[0].data, count: 3).flatMap { $0 }) })
    }

    @Test mutating func layoutOps() {
        let x = randomRef([2, 3, 4], &rng)
        checkGradients([x], engine: { $0[0].reshaped([4, -1]) }, reference: { Ref([4, 6], $0[0].data) })
        checkGradients([x], engine: { $0[0].permuted([2, 0, 1]) }, reference: { $0[0].permuted([2, 0, 1]) })
        checkGradients([x], engine: { $0[0].transposed() }, reference: { $0[0].permuted([0, 2, 1]) })
        checkGradients([x], engine: { $0[0].slice(axis: 1, 1, 3) }, reference: { $0[0].slice(axis: 1, 1, 3) })
        let y = randomRef([2, 2, 4], &rng)
        checkGradients([x, y], engine: { concat($0, axis: 1) }, reference: { Ref.concat($0, axis: 1) })
        checkGradients([x], engine: { $0[0].gatherRows([1, 0, 1]) },
                       reference: { Ref.concat([$0[0].slice(axis: 0, 1, 2), $0[0].slice(axis: 0, 0, 1), $0[0].slice(axis: 0, 1, 2)], axis: 0) })
    }

    @Test mutating func softmaxFamily() {
        let x = randomRef([4, 6], &rng, low: -3, high: 3)
        checkGradients([x], engine: { $0[0].logSoftmax() }, reference: { $0[0].logSoftmax() })
        checkGradients([x], engine: { $0[0].softmax() }, reference: { $0[0].logSoftmax().map(Foundation.exp) })
        let labels: [Int32] = [2, 0, 5, 2]
        checkGradients([x], engine: { softmaxCrossEntropy(logits: $0[0], labels: labels).reshaped([1]) },
                       reference: { Ref([1], [Ref.crossEntropy($0[0], labels: labels)]) })
        let t = randomRef([4, 6], &rng, low: 0, high: 1)
        checkGradients([x, t], engine: { softmaxCrossEntropy(logits: $0[0], targets: $0[1]).reshaped([1]) },
                       reference: { Ref([1], [-($0[1] * $0[0].logSoftmax()).sumAll() / 4]) })
    }

    @Test mutating func conv2dAllGeometries() {
        // Square, strided and padded, rectangular kernel, and a 1-D signal as an H = 1 image.
        let cases: [([Int], [Int], (Int, Int), (Int, Int))] = [
            ([2, 3, 6, 5], [4, 3, 3, 3], (1, 1), (0, 0)),
            ([1, 2, 7, 7], [3, 2, 3, 3], (2, 2), (1, 1)),
            ([2, 2, 5, 6], [2, 2, 2, 3], (1, 2), (1, 0)),
            ([3, 1, 1, 11], [2, 1, 1, 4], (1, 2), (0, 1)),
        ]
        for (xs, ws, s, p) in cases {
            checkGradients([randomRef(xs, &rng), randomRef(ws, &rng)],
                           engine: { conv2d($0[0], $0[1], stride: s, padding: p) },
                           reference: { Ref.conv2d($0[0], $0[1], stride: s, padding: p) })
        }
    }

    @Test mutating func conv2dWithFusedBias() {
        let x = randomRef([2, 2, 5, 4], &rng), w = randomRef([3, 2, 3, 2], &rng), b = randomRef([3], &rng)
        checkGradients([x, w, b], engine: { conv2d($0[0], $0[1], bias: $0[2], padding: (1, 0)) },
                       reference: { Ref.conv2d($0[0], $0[1], stride: (1, 1), padding: (1, 0)) + Ref([1, 3, 1, 1], $0[2].data) })
    }

    @Test mutating func conv2dWithFusedBiasAndReLU() {
        let x = randomRef([2, 3, 5, 5], &rng), w = randomRef([4, 3, 3, 3], &rng), b = randomRef([4], &rng)
        checkGradients([x, w, b], engine: { conv2d($0[0], $0[1], bias: $0[2], padding: (1, 1), relu: true) },
                       reference: { (Ref.conv2d($0[0], $0[1], stride: (1, 1), padding: (1, 1)) + Ref([1, 4, 1, 1], $0[2].data)).map { max($0, 0) } })
    }

    @Test mutating func fusedBatchNormWithAndWithoutReLU() {
        let x = randomRef([3, 2, 2, 3], &rng), gamma = randomRef([2], &rng, low: 0.5, high: 1.5), beta = randomRef([2], &rng)
        for relu in [false, true] {
            checkGradients([x, gamma, beta], engine: { batchNorm($0[0], gamma: $0[1], beta: $0[2], relu: relu).output },
                           reference: { $0[0].batchNorm(gamma: $0[1], beta: $0[2], relu: relu) })
        }
    }

    @Test mutating func fusedBatchNormReluMaxPool() {
        // Odd sizes: 5x7 planes leave a row and a column outside the 2x2 windows; (3, 2) windows
        // at stride (3, 3) leave gaps between windows.
        for (shape, kernel, stride) in [([2, 2, 5, 7], (2, 2), (2, 2)), ([1, 2, 7, 8], (3, 2), (3, 3))] {
            let x = randomRef(shape, &rng), gamma = randomRef([shape[1]], &rng, low: -1.5, high: 1.5), beta = randomRef([shape[1]], &rng)
            checkGradients([x, gamma, beta], engine: { batchNormReluMaxPool($0[0], gamma: $0[1], beta: $0[2], kernel: kernel, stride: stride).output },
                           reference: { r in
                               r[0].batchNorm(gamma: r[1], beta: r[2], relu: true).pool(kernel: kernel, stride: stride) { $0.max()! }
                           })
        }
    }

    @Test mutating func batchNormInferenceFusedEqualsRecorded() {
        let x = randomRef([3, 2, 2, 3], &rng), g = randomRef([2], &rng), b = randomRef([2], &rng)
        let m = randomRef([2], &rng), v = randomRef([2], &rng, low: 0.5, high: 2)
        func reference(_ r: [Ref], relu: Bool) -> Ref {
            let inv = Ref([1, 2, 1, 1], zip(r[1].data, r[4].data).map { $0 / ($1 + 1e-5).squareRoot() })
            return ((r[0] - Ref([1, 2, 1, 1], r[3].data)) * inv + Ref([1, 2, 1, 1], r[2].data)).map { relu ? max($0, 0) : $0 }
        }
        for relu in [false, true] {
            // Fused (nothing requires gradients) against the Double reference ...
            let fused = batchNormInference(x.tensor, gamma: g.tensor, beta: b.tensor, mean: m.tensor, variance: v.tensor, relu: relu)
            for (a, e) in zip(fused.scalars, reference([x, g, b, m, v], relu: relu).data) { #expect(abs(Double(a) - e) < 1e-5) }
            // ... and the recorded path's gradients.
            checkGradients([x, g, b, m, v], wrt: [0, 1, 2],
                           engine: { batchNormInference($0[0], gamma: $0[1], beta: $0[2], mean: $0[3], variance: $0[4], relu: relu) },
                           reference: { reference($0, relu: relu) })
        }
    }

    @Test mutating func pooling() {
        let x = randomRef([2, 3, 5, 7], &rng)
        checkGradients([x], engine: { maxPool2d($0[0], kernel: (2, 2)) },
                       reference: { $0[0].pool(kernel: (2, 2), stride: (2, 2)) { $0.max()! } })
        checkGradients([x], engine: { maxPool2d($0[0], kernel: (3, 2), stride: (1, 2)) },
                       reference: { $0[0].pool(kernel: (3, 2), stride: (1, 2)) { $0.max()! } })
        checkGradients([x], engine: { avgPool2d($0[0], kernel: (2, 3)) },
                       reference: { $0[0].pool(kernel: (2, 3), stride: (2, 3)) { $0.reduce(0, +) / 6 } })
    }

    @Test mutating func normalisationComposites() {
        let x = randomRef([4, 3, 2, 2], &rng)
        checkGradients([x], engine: { $0[0].momentStatistics().variance },
                       reference: { r in
                           let mean = r[0].sum(to: [1, 3, 1, 1]).map { $0 / 16 }
                           let c = r[0] - mean
                           return (c * c).sum(to: [1, 3, 1, 1]).map { $0 / 16 }
                       })
        let v = randomRef([3, 5], &rng), u = randomRef([3, 5], &rng)
        func refNorm(_ r: Ref) -> Ref { r / (r * r).sum(to: [3, 1]).map { ($0 + 1e-12).squareRoot() } }
        checkGradients([v], engine: { $0[0].l2Normalized() }, reference: { refNorm($0[0]) })
        checkGradients([v, u], engine: { cosineSimilarity($0[0], $0[1]) },
                       reference: { Ref([3], (refNorm($0[0]) * refNorm($0[1])).sum(to: [3, 1]).data) })
    }

    @Test mutating func dropoutScalesKeptAndZeroesDropped() {
        let x = Tensor.uniform([200], 1, 2, rng: &rng).requiringGrad()
        var drng = RNG(seed: 5)
        let y = x.dropout(0.25, rng: &drng)
        let kept = y.scalars.filter { $0 != 0 }.count
        #expect(kept > 120 && kept < 180, "about 75% kept, got \(kept)")
        let g = gradients(of: y.sum(), wrt: [x])[0]
        for (gi, (yi, xi)) in zip(g.scalars, zip(y.scalars, x.scalars)) {
            #expect(Swift.abs(gi - yi / xi) < 1e-5)
            #expect(gi == 0 || Swift.abs(gi - 1 / 0.75) < 1e-5)
        }
    }
}

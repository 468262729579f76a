import Foundation
import Testing
@testable import NNCore
import TensorCore

@Suite struct ModuleTests {
    @Test func parameterPathsAreDotted() {
        var rng = RNG(seed: 1)
        let (net, features) = Backbone.conv4(inputShape: [1, 28, 28], width: 16, rng: &rng)
        #expect(features == 16)
        let paths = net.namedParameters().map(\.path)
        #expect(paths.contains("0.0.weight") && paths.contains("3.1.bias"))
        #expect(net.namedBuffers().map(\.path).contains("2.1.running_mean"))
        #expect(net(Tensor(zeros: [2, 1, 28, 28])).shape == [2, 16])
    }

    @Test func sequentialFusesConvAndReLUWithoutChangingResults() {
        var rng = RNG(seed: 12)
        let conv = Conv2D(2, 3, padding: (1, 1), rng: &rng)
        let fused = Sequential([conv, ReLU()])
        let x = Tensor.randn([2, 2, 5, 5], rng: &rng)
        var ctx = ForwardContext.eval
        let separate = conv.forward(x, &ctx).relu()
        #expect(fused(x).scalars == separate.scalars)
        let params = fused.trainableParameters()
        let (_, g1) = valueAndGradient(at: params) { p in var c = ForwardContext(training: true, overrides: p); return fused.forward(x, &c).sum() }
        let (_, g2) = valueAndGradient(at: params) { p in
            var c = ForwardContext(training: true, overrides: p)
            return c.child("0") { conv.forward(x, &$0) }.relu().sum()
        }
        for path in params.keys {
            for (a, b) in zip(g1[path]!.scalars, g2[path]!.scalars) { #expect(Swift.abs(a - b) < 1e-5, "\(path)") }
        }
    }

    @Test func sequentialFusesLinearAndReLUWithoutChangingResults() {
        var rng = RNG(seed: 13)
        let dense = Linear(4, 6, rng: &rng)
        dense.parameters["bias"] = Tensor.randn([6], rng: &rng)
        let fused = Sequential([dense, ReLU()])
        let x = Tensor.randn([3, 4], rng: &rng)
        var ctx = ForwardContext.eval
        let separate = (matmul(x, dense.parameters["weight"]!, transposeB: true) + dense.parameters["bias"]!).relu()
        for (a, b) in zip(fused(x).scalars, separate.scalars) { #expect(Swift.abs(a - b) < 1e-6) }
        #expect(dense.forward(x, &ctx).shape == [3, 6])
        let params = fused.trainableParameters()
        let (_, g1) = valueAndGradient(at: params) { p in var c = ForwardContext(training: true, overrides: p); return fused.forward(x, &c).sum() }
        let (_, g2) = valueAndGradient(at: params) { p in
            (matmul(x, p["0.weight"]!, transposeB: true) + p["0.bias"]!).relu().sum()
        }
        for path in params.keys {
            for (a, b) in zip(g1[path]!.scalars, g2[path]!.scalars) { #expect(Swift.abs(a - b) < 1e-5, "\(path)") }
        }
    }

    typealias TrainingRun = (sum: Tensor, gradients: [String: Tensor], statistics: [[Float]])

    /// One training-mode forward of `net` on x and one of `separate` (the same layers called one
    /// by one), each from the same running statistics: the output's sum, the parameters' gradients
    /// of it, and the running statistics each left.
    static func trainingRuns(_ net: Module, _ x: Tensor, separate: (inout ForwardContext) -> Tensor) -> (TrainingRun, TrainingRun) {
        let params = net.trainableParameters()
        let before = net.namedBuffers().map(\.tensor)
        let (y1, g1) = valueAndGradient(at: params) { p in var c = ForwardContext(training: true, overrides: p); return net.forward(x, &c).sum() }
        let first = net.namedBuffers().map(\.tensor.scalars)
        net.load(Dictionary(uniqueKeysWithValues: zip(net.namedBuffers().map(\.path), before)))
        let (y2, g2) = valueAndGradient(at: params) { p in var c = ForwardContext(training: true, overrides: p); return separate(&c).sum() }
        return ((y1, g1, first), (y2, g2, net.namedBuffers().map(\.tensor.scalars)))
    }

    /// BatchNorm, ReLU and a max pooling run as one fused op in training mode: the same output,
    /// running statistics and parameter gradients as the layers one by one; in evaluation mode the
    /// layers' own path, also the same. Overlapping windows are not fused.
    @Test func sequentialFusesBatchNormReLUAndMaxPoolWithoutChangingResults() {
        var rng = RNG(seed: 14)
        for pool in [MaxPool((2, 2)), MaxPool((3, 3), stride: (2, 2))] {
            let norm = BatchNorm(3), relu = ReLU()
            norm.parameters["weight"] = Tensor.randn([3], rng: &rng)
            norm.parameters["bias"] = Tensor.randn([3], rng: &rng)
            let net = Sequential([norm, relu, pool])
            let x = Tensor.randn([4, 3, 7, 6], rng: &rng)
            let (fused, separate) = Self.trainingRuns(net, x) { c in
                let h = c.child("0") { norm.forward(x, &$0) }
                return pool.forward(relu.forward(h, &c), &c)
            }
            #expect(fused.sum.item == separate.sum.item)
            #expect(fused.statistics == separate.statistics)
            for path in fused.gradients.keys {
                for (a, b) in zip(fused.gradients[path]!.scalars, separate.gradients[path]!.scalars) { #expect(Swift.abs(a - b) < 1e-5, "\(path)") }
            }
            var ctx = ForwardContext.eval
            #expect(net(x).scalars == pool.forward(relu.forward(norm.forward(x, &ctx), &ctx), &ctx).scalars)
        }
    }

    /// A convolution followed by batch norm in training mode hands the norm its output planes'
    /// moments (`PlaneMoments`): the same loss, running statistics and parameter gradients, bit for
    /// bit, as the convolution and the (fused) norm run apart, the norm making its own statistics;
    /// with the norm followed by a ReLU and a pooling, a ReLU alone, or nothing.
    @Test func sequentialGivesABatchNormItsConvolutionsMomentsWithoutChangingResults() {
        var rng = RNG(seed: 15)
        for (relu, pool) in [(true, MaxPool()), (true, nil), (false, nil)] {
            let conv = Conv2D(1, 5, padding: (1, 1), rng: &rng), norm = BatchNorm(5)
            norm.parameters["weight"] = Tensor.randn([5], rng: &rng)
            let net = Sequential([conv, norm] + (relu ? [ReLU()] : []) + (pool.map { [$0] } ?? []))
            let x = Tensor.randn([3, 1, 9, 10], rng: &rng)
            let (sequential, separate) = Self.trainingRuns(net, x) { c in
                let h = c.child("0") { conv.forward(x, &$0) }
                return c.child("1") { norm.forward(h, &$0, relu: relu, pool: pool) }
            }
            #expect(sequential.sum.item.bitPattern == separate.sum.item.bitPattern, "ReLU \(relu), pool \(pool != nil)")
            #expect(sequential.statistics == separate.statistics)
            for path in sequential.gradients.keys { #expect(sequential.gradients[path]!.scalars == separate.gradients[path]!.scalars, "\(path)") }
        }
    }

    @Test func forwardWithSubstitutedParameters() {
        var rng = RNG(seed: 2)
        let lin = Sequential([Linear(3, 2, rng: &rng)])
        let x = Tensor(shape: [1, 3], scalars: [1, 2, 3])
        var ctx = ForwardContext(training: false, overrides: [
            "0.weight": Tensor(shape: [2, 3], scalars: [1, 0, 0, 0, 1, 1]), "0.bias": Tensor(shape: [2], scalars: [10, 20])])
        #expect(lin.forward(x, &ctx).scalars == [11, 25])
        // The module's own parameters are untouched.
        #expect(lin.namedParameters().first { $0.path == "0.bias" }!.tensor.scalars == [0, 0])
    }

    @Test func loadReplacesByPath() {
        var rng = RNG(seed: 3)
        let m = Sequential([Linear(2, 2, rng: &rng)])
        m.load(["0.bias": Tensor(shape: [2], scalars: [4, 5])])
        #expect(m.trainableParameters()["0.bias"]!.scalars == [4, 5])
    }

    @Test func batchNormUsesBatchThenRunningStatistics() {
        let bn = BatchNorm(2, momentum: 0.5)
        let x = Tensor(shape: [2, 2], scalars: [1, 10, 3, 20])   // channel means 2, 15
        let y = bn(x, training: true)
        // Normalised per channel: (±1)/sqrt(1 + eps) and (±5)/sqrt(25 + eps).
        for (a, b) in zip(y.scalars, [-1, -1, 1, 1] as [Float]) { #expect(Swift.abs(a - b) < 1e-4) }
        #expect(bn.buffers["running_mean"]!.scalars == [1, 7.5])
        // Unbiased variances 2 and 50, halfway from 1.
        #expect(bn.buffers["running_var"]!.scalars == [1.5, 25.5])
        let e = bn(Tensor(shape: [1, 2], scalars: [1, 7.5]), training: false)
        #expect(e.scalars.allSatisfy { Swift.abs($0) < 1e-6 })
    }

    @Test func lstmCellMatchesHandComputation() {
        var rng = RNG(seed: 4)
        let cell = LSTMCell(1, 1, rng: &rng)
        cell.load(["weight_ih": Tensor(shape: [4, 1], scalars: [1, 2, 3, 4]),
                   "weight_hh": Tensor(shape: [4, 1], scalars: [0.5, 0.5, 0.5, 0.5]),
                   "bias": Tensor(shape: [4], scalars: [0, 0, 0, 0])])
        var ctx = ForwardContext.eval
        let (h, c) = cell.step(Tensor(shape: [1, 1], scalars: [1]), h: Tensor(shape: [1, 1], scalars: [1]),
                               c: Tensor(shape: [1, 1], scalars: [2]), &ctx)
        func s(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
        let cExpected = s(2.5) * 2 + s(1.5) * Foundation.tanh(3.5)
        #expect(Swift.abs(Double(c.item) - cExpected) < 1e-5)
        #expect(Swift.abs(Double(h.item) - s(4.5) * Foundation.tanh(cExpected)) < 1e-5)
    }

    @Test func cosineClassifierLogitsAreScaledCosines() {
        var rng = RNG(seed: 5)
        let head = CosineClassifier(2, 2, scale: 10, rng: &rng)
        head.load(["weight": Tensor(shape: [2, 2], scalars: [1, 0, 0, 3])])
        let logits = head(Tensor(shape: [1, 2], scalars: [2, 2]))
        for (a, b) in zip(logits.scalars, [Float(10 / 2.0.squareRoot()), Float(10 / 2.0.squareRoot())]) { #expect(Swift.abs(a - b) < 1e-4) }
        // Weight-normalised: each class's scaled cosine times its learned gain, 1 at the start.
        let normalised = CosineClassifier(2, 2, scale: 2, classGains: true, rng: &rng)
        normalised.load(["weight": Tensor(shape: [2, 2], scalars: [1, 0, 0, 3])])
        #expect(normalised.parameters["gain"]!.scalars == [1, 1])
        normalised.load(["gain": Tensor(shape: [2], scalars: [0.5, 3])])
        let gained = normalised(Tensor(shape: [2, 2], scalars: [2, 2, 0, -1]))
        let c = Float(1 / 2.0.squareRoot())
        let expected: [Float] = [2 * c * 0.5, 2 * c * 3, 0, -6]
        for (a, b) in zip(gained.scalars, expected) { #expect(Swift.abs(a - b) < 1e-4) }
    }
}

@Suite struct OptimizerTests {
    func oneParameterModel(_ value: Float) -> Module {
        let m = Module()
        m.parameters["w"] = Tensor(shape: [1], scalars: [value])
        return m
    }

    @Test func sgdMomentumAndNesterovFollowTheirRecurrences() {
        for nesterov in [false, true] {
            let m = oneParameterModel(1)
            let opt = SGD(learningRate: 0.1, momentum: 0.9, nesterov: nesterov, weightDecay: 0.01)
            var p = 1.0, v = 0.0
            for g in [0.5, -1.0, 2.0] {
                opt.update(m, gradients: ["w": Tensor(shape: [1], scalars: [Float(g)])])
                let d = g + 0.01 * p
                v = 0.9 * v + d
                p -= 0.1 * (nesterov ? d + 0.9 * v : v)
                #expect(Swift.abs(Double(m.parameters["w"]!.item) - p) < 1e-6)
            }
        }
    }

    @Test func adamAndAdamWFollowTheirRecurrences() {
        for decoupled in [false, true] {
            let m = oneParameterModel(1)
            let opt = Adam(learningRate: 0.01, weightDecay: 0.1, decoupled: decoupled)
            var p = 1.0, mom = 0.0, vel = 0.0
            for (t, g) in [0.5, -1.0, 2.0].enumerated() {
                opt.update(m, gradients: ["w": Tensor(shape: [1], scalars: [Float(g)])])
                let d = decoupled ? g : g + 0.1 * p
                mom = 0.9 * mom + 0.1 * d
                vel = 0.999 * vel + 0.001 * d * d
                let mh = mom / (1 - pow(0.9, Double(t + 1))), vh = vel / (1 - pow(0.999, Double(t + 1)))
                p -= 0.01 * (mh / (vh.squareRoot() + 1e-8) + (decoupled ? 0.1 * p : 0))
                #expect(Swift.abs(Double(m.parameters["w"]!.item) - p) < 1e-5)
            }
        }
    }

    /// A parameter large enough that its update splits across cores follows, element by
    /// element, the same recurrence as a one-element parameter (SGD with Nesterov momentum and
    /// Adam, two steps so the state carries over).
    @Test func largeParametersFollowTheElementwiseRecurrence() {
        let n = 3 * UpdateKernels.updateGrain + 7
        let start = (0..<n).map { Float(sin(Double($0))) }
        let grads = [(0..<n).map { Float(cos(Double($0) * 0.7)) }, (0..<n).map { Float(sin(Double($0) * 1.3)) }]
        let optimizers: [() -> Optimizer] = [{ SGD(learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01) },
                                             { Adam(learningRate: 0.01, weightDecay: 0.1, decoupled: true) }]
        for make in optimizers {
            let (big, opt) = (Module(), make())
            big.parameters["w"] = Tensor(shape: [n], scalars: start)
            for g in grads { opt.update(big, gradients: ["w": Tensor(shape: [n], scalars: g)]) }
            let updated = big.parameters["w"]!.scalars
            for i in [0, 1, UpdateKernels.updateGrain - 1, UpdateKernels.updateGrain, 2 * UpdateKernels.updateGrain + 3, n - 1] {
                let (one, single) = (oneParameterModel(start[i]), make())
                for g in grads { single.update(one, gradients: ["w": Tensor(shape: [1], scalars: [g[i]])]) }
                #expect(one.parameters["w"]!.item == updated[i], "element \(i)")
            }
        }
    }

    @Test func schedules() {
        let cosine = LearningRateSchedule(base: 1, shape: .cosine(total: 100, floor: 0))
        #expect(cosine.rate(at: 0) == 1)
        #expect(Swift.abs(cosine.rate(at: 50) - 0.5) < 1e-6)
        #expect(Swift.abs(cosine.rate(at: 100)) < 1e-6)
        let fix = LearningRateSchedule(base: 0.03, shape: .fixMatchCosine(total: 1000))
        #expect(Swift.abs(fix.rate(at: 1000) - 0.03 * Float(cos(7 * Double.pi / 16))) < 1e-6)
        let step = LearningRateSchedule(base: 1, shape: .step(every: 10, gamma: 0.1))
        #expect(step.rate(at: 9) == 1 && Swift.abs(step.rate(at: 25) - 0.01) < 1e-7)
        let warm = LearningRateSchedule(base: 2, warmupSteps: 4)
        #expect(warm.rate(at: 0) == 0.5 && warm.rate(at: 3) == 2 && warm.rate(at: 10) == 2)
    }

    @Test func emaTracksAndServesAsOverrides() {
        let m = oneParameterModel(0)
        var ema = EMA(of: m, decay: 0.5)
        m.parameters["w"] = Tensor(shape: [1], scalars: [4])
        ema.update(from: m)
        ema.update(from: m)
        #expect(ema.shadow["w"]!.item == 3)   // 0 -> 2 -> 3
        #expect(ema.context().overrides["w"]!.item == 3)
        // With warm-up, update n uses min(decay, (1 + n) / (10 + n)): 0.1 first, so 0.1·0 + 0.9·4.
        m.parameters["w"] = Tensor(shape: [1], scalars: [0])
        var warm = EMA(of: m, decay: 0.99, warmup: true)
        m.parameters["w"] = Tensor(shape: [1], scalars: [4])
        warm.update(from: m)
        #expect(abs(warm.shadow["w"]!.item - 4 * 0.9) < 1e-6 && abs(warm.currentDecay - 2.0 / 11) < 1e-6)
    }
}

@Suite struct LossTests {
    @Test func labelSmoothingMatchesItsDefinition() {
        let logits = Tensor(shape: [1, 3], scalars: [1, 2, 0.5])
        let logp = logits.logSoftmax().scalars.map(Double.init)
        let expected = -(0.9 + 0.1 / 3) * logp[1] - (0.1 / 3) * (logp[0] + logp[2])
        #expect(Swift.abs(Double(Loss.crossEntropy(logits, labels: [1], labelSmoothing: 0.1).item) - expected) < 1e-5)
    }

    @Test func klEntropyAndMSE() {
        let p = Tensor(shape: [1, 2], scalars: [0.25, 0.75]).log(), q = Tensor(shape: [1, 2], scalars: [0.5, 0.5]).log()
        let kl = 0.25 * log(0.5) + 0.75 * log(1.5)
        #expect(Swift.abs(Double(Loss.klDivergence(pLog: p, qLog: q).item) - kl) < 1e-6)
        #expect(Swift.abs(Double(Loss.entropy(logits: Tensor(shape: [1, 2], scalars: [0, 0])).item) - log(2)) < 1e-6)
        #expect(Loss.mse(Tensor(shape: [2], scalars: [1, 3]), Tensor(shape: [2], scalars: [0, 0])).item == 5)
    }

    @Test func infoNCEMatchesNaive() {
        var rng = RNG(seed: 8)
        let q = Tensor.randn([3, 4], rng: &rng), k = Tensor.randn([3, 4], rng: &rng), neg = Tensor.randn([2, 4], rng: &rng)
        let loss = Loss.infoNCE(queries: q, keys: k, negatives: neg, temperature: 0.5).item
        func unit(_ t: Tensor, _ i: Int) -> [Double] {
            let r = t.scalars[(i * 4)..<(i * 4 + 4)].map(Double.init)
            let n = r.map { $0 * $0 }.reduce(0, +).squareRoot()
            return r.map { $0 / n }
        }
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map(*).reduce(0, +) }
        var total = 0.0
        for i in 0..<3 {
            let logits = (0..<3).map { dot(unit(q, i), unit(k, $0)) / 0.5 } + (0..<2).map { dot(unit(q, i), unit(neg, $0)) / 0.5 }
            total += -logits[i] + log(logits.map(exp).reduce(0, +))
        }
        #expect(Swift.abs(Double(loss) - total / 3) < 1e-5)
    }
}

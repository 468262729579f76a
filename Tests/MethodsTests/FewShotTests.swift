import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

/// Three steps of few-shot method `M` on 6 glyph classes: loss finite, weights move, frozen stay.
@discardableResult
func fewShotSmoke<M: StepMethod>(_ m: M.Type, _ extra: [String: Any] = [:]) throws -> TrainedModel {
    let d = try Fixture.glyphs(classes: 6, instances: 10, test: 0)
    let base: [String: Any] = ["backbone": ["name": "conv4", "width": 8],
                               "training": ["steps": 3, "learningRate": 1e-3, "validateEvery": 0]]
    let config = try AnyMethod.apply(base.merging(extra) { $1 }, to: M.defaultConfig(budget: .all, classes: 6), method: M.id)
    let trained = try smokeTest(M.self, config: config, input: try Fixture.input(d, try Fixture.split(d, budget: .all, validation: 0), regime: .fewShot))
    #expect(trained.adapter != nil, "\(M.id) adapts its own way")
    return trained
}

/// A 3-way 2-shot episode of glyph images (labels 0..<3) and 3 queries.
func glyphEpisode(_ d: Dataset) -> EpisodeBatch {
    let byClass = (0..<3).map { c in d.trainLabels.indices.filter { d.trainLabels[$0] == Int32(c) } }
    let support = byClass.flatMap { Array($0[0..<2]) }, query = byClass.map { $0[2] }
    return EpisodeBatch(way: 3, support: d.trainImages.gatherRows(support), supportLabels: [0, 0, 1, 1, 2, 2],
                        query: d.trainImages.gatherRows(query), queryLabels: [0, 1, 2])
}

@Suite struct BaselineTests {
    @Test func smoke() throws {
        try fewShotSmoke(FineTuneBaseline.self, ["batchSize": 8])
        try fewShotSmoke(BaselinePlusPlus.self, ["batchSize": 8])
    }

    /// The adapter fits a new head on the support features with the encoder frozen: the network's
    /// weights do not change, and the head separates the support set it was fitted on.
    @Test func adapterFitsANewHeadOnAFrozenEncoder() throws {
        let d = try Fixture.glyphs(classes: 6, instances: 10, test: 0)
        for head in [BaselineHead.linear, .cosine] {
            var config = BaselineConfig()
            config.backbone = Fixture.tinyBackbone
            config.adapter.steps = 200
            var rng = RNG(seed: 2)
            let learner = try BaselineLearner(TrainingData(imageShape: d.imageShape, classCount: 6), config: config, head: head, rng: &rng)
            let before = Fixture.weights(learner.network)
            let e = glyphEpisode(d)
            let logits = learner.logits(support: e.support, supportLabels: e.supportLabels, way: 3, query: e.support, context: .eval)
            #expect(logits.shape == [6, 3])
            #expect(logits.argmaxRows() == [0, 0, 1, 1, 2, 2], "\(head): the fitted head separates its support set")
            #expect(Fixture.weights(learner.network) == before, "\(head): the encoder and base head are untouched")
            if head == .cosine {
                // The reference code's scale goes by the head's classes: 2 for these 6 base classes
                // (and an episode's 3), 10 over more than 200 (glyphs' 1,200 base classes).
                let base = learner.network.children[1].module as? CosineClassifier
                #expect(base?.scale == 2 && base?.parameters["gain"]?.shape == [6], "weight-normalised: a gain per class")
                let wide = try BaselineLearner(TrainingData(imageShape: d.imageShape, classCount: 1200), config: config, head: head, rng: &rng)
                #expect((wide.network.children[1].module as? CosineClassifier)?.scale == 10)
                #expect(BaselineHead.cosineScale(classes: 200) == 2 && BaselineHead.cosineScale(classes: 201) == 10)
            }
        }
    }
}

@Suite struct MatchingNetTests {
    @Test func smoke() throws {
        try fewShotSmoke(MatchingNet.self, ["trainWay": 3, "trainShot": 2, "trainQuery": 2])
        try fewShotSmoke(MatchingNet.self, ["trainWay": 3, "trainShot": 2, "trainQuery": 2, "fullContextEmbeddings": true])
    }

    @Test func attentionSumsToOneAndPredictionsAreAttentionMass() {
        var rng = RNG(seed: 1)
        let q = Tensor(shape: [3, 4], scalars: (0..<12).map { _ in rng.normal() })
        let s = Tensor(shape: [5, 4], scalars: (0..<20).map { _ in rng.normal() })
        let a = MatchingNet.attention(query: q, support: s)
        for i in 0..<3 { #expect(abs(a.scalars[(i * 5)..<(i * 5 + 5)].reduce(0, +) - 1) < 1e-5) }
        let p = MatchingNet.logProbabilities(attention: a, supportLabels: [0, 1, 1, 0, 1], way: 2).exp().scalars
        for i in 0..<3 {
            let row = Array(a.scalars[(i * 5)..<(i * 5 + 5)])
            #expect(abs(p[i * 2] - (row[0] + row[3])) < 1e-5 && abs(p[i * 2 + 1] - (row[1] + row[2] + row[4])) < 1e-5)
        }
        // A cosine scale is a softmax temperature: weights ∝ exp(scale·cos), still summing to one.
        let cos = pairwiseCosineSimilarity(q, s).scalars
        let sharp = MatchingNet.attention(query: q, support: s, scale: 10).scalars
        for i in 0..<3 {
            let e = cos[(i * 5)..<(i * 5 + 5)].map { Foundation.exp(10 * $0) }
            let z = e.reduce(0, +)
            #expect(zip(sharp[(i * 5)..<(i * 5 + 5)], e).allSatisfy { abs($0 - $1 / z) < 1e-5 })
        }
    }
}

@Suite struct MAMLTests {
    @Test func smoke() throws {
        try fewShotSmoke(MAML.self, ["trainWay": 3, "trainShot": 2, "trainQuery": 2, "tasksPerStep": 2, "innerLearningRate": 0.1])
        try fewShotSmoke(MAML.self, ["trainWay": 3, "trainShot": 2, "trainQuery": 2, "firstOrder": true, "innerLearningRate": 0.1])
    }

    /// A tiny MLP on 3-feature points, two inner steps.
    func tinyTask() throws -> (model: MAML.Model, episode: EpisodeBatch) {
        var config = MAML.Config()
        config.backbone = BackboneSpec(name: "mlp", hidden: [4])
        (config.trainWay, config.innerSteps, config.innerLearningRate) = (2, 2, 0.5)
        var rng = RNG(seed: 21)
        let model = try MAML.Model(TrainingData(imageShape: [1, 1, 3], classCount: 2), config: config, rng: &rng)
        func points(_ n: Int) -> Tensor { Tensor(shape: [n, 1, 1, 3], scalars: (0..<(3 * n)).map { _ in rng.normal() }) }
        return (model, EpisodeBatch(way: 2, support: points(4), supportLabels: [0, 1, 0, 1], query: points(4), queryLabels: [1, 0, 0, 1]))
    }

    func metaLoss(_ model: MAML.Model, _ e: EpisodeBatch, _ theta: [String: Tensor]) -> Double {
        let start = theta.mapValues { $0.detached.requiringGrad() }
        let fast = MAML.adapt(model.network, start: start, support: e.support, labels: e.supportLabels, way: 2, steps: 2, rate: 0.5,
                              secondOrder: false, .eval)
        return Double(Loss.crossEntropy(MAML.logits(model.network, e.query, way: 2, weights: fast, .eval), labels: e.queryLabels).item)
    }

    /// The second-order meta-gradient equals central finite differences of the query loss after
    /// two inner steps; the first-order one equals the query-loss gradient at the fast weights.
    @Test func metaGradientMatchesFiniteDifferences() throws {
        let (model, e) = try tinyTask()
        let theta = model.network.trainableParameters()
        func metaGradient(firstOrder: Bool) -> [String: Tensor] {
            return valueAndGradient(at: theta) { p in
                let fast = MAML.adapt(model.network, start: p, support: e.support, labels: e.supportLabels, way: 2, steps: 2, rate: 0.5,
                                      secondOrder: !firstOrder, .eval)
                return Loss.crossEntropy(MAML.logits(model.network, e.query, way: 2, weights: fast, .eval), labels: e.queryLabels)
            }.gradients
        }
        let second = metaGradient(firstOrder: false), first = metaGradient(firstOrder: true)
        let h: Float = 1e-2
        var worst = 0.0, differs = false
        for path in theta.keys.sorted() {
            for i in 0..<theta[path]!.count {
                func shifted(_ d: Float) -> Double {
                    var t = theta
                    var values = t[path]!.scalars
                    values[i] += d
                    t[path] = Tensor(shape: t[path]!.shape, scalars: values)
                    return metaLoss(model, e, t)
                }
                let fd = (shifted(h) - shifted(-h)) / Double(2 * h)
                let g = Double(second[path]!.scalars[i])
                worst = max(worst, abs(fd - g) / max(1e-2, abs(fd)))
                if abs(Double(first[path]!.scalars[i]) - g) > 1e-3 { differs = true }
            }
        }
        #expect(worst < 2e-2, "worst relative error \(worst)")
        #expect(differs, "the second-order term matters on this task, so the check tells the two apart")
        // FOMAML: the query-loss gradient at the fast weights, applied to θ.
        let start = theta.mapValues { $0.detached.requiringGrad() }
        let fast = MAML.adapt(model.network, start: start, support: e.support, labels: e.supportLabels, way: 2, steps: 2, rate: 0.5,
                              secondOrder: false, .eval).mapValues { $0.detached }
        let atFast = valueAndGradient(at: fast) { p in
            Loss.crossEntropy(MAML.logits(model.network, e.query, way: 2, weights: p, .eval), labels: e.queryLabels)
        }.gradients
        for path in theta.keys { #expect(zip(atFast[path]!.scalars, first[path]!.scalars).allSatisfy { abs($0 - $1) < 1e-5 }, "\(path)") }
    }

    /// The adapter adapts from the network's weights without changing them, and a way larger than
    /// the head repeats its rows.
    @Test func adapterLeavesTheWeightsAndHandlesOtherWays() throws {
        let (model, e) = try tinyTask()
        let before = Fixture.weights(model.network)
        let logits = model.logits(support: e.support, supportLabels: e.supportLabels, way: 2, query: e.query, context: .eval)
        #expect(logits.shape == [4, 2] && Fixture.weights(model.network) == before)
        let wide = MAML.logits(model.network, e.query, way: 3, weights: [:], .eval)
        #expect(wide.shape == [4, 3] && Array(wide.scalars[0..<1]) == Array(wide.scalars[2..<3]))
    }
}

@Suite struct MetaLSTMTests {
    @Test func smoke() throws {
        try fewShotSmoke(MetaLSTM.self, ["trainWay": 3, "trainShot": 2, "trainQuery": 2, "innerSteps": 2, "adaptSteps": 2])
    }

    /// With the input gate held at the learning rate and the forget gate at one, the update is SGD.
    @Test func fixedGatesReduceToSGD() {
        var rng = RNG(seed: 3)
        let theta = Tensor(shape: [2, 3], scalars: (0..<6).map { _ in rng.normal() })
        let g = Tensor(shape: [2, 3], scalars: (0..<6).map { _ in rng.normal() })
        let lr: Float = 0.05
        let gates = (wi: Tensor(zeros: [MetaLSTM.gateInputs, 1]), bi: Tensor(shape: [1], scalars: [log(lr / (1 - lr))]),
                     wf: Tensor(zeros: [MetaLSTM.gateInputs, 1]), bf: Tensor(shape: [1], scalars: [40]))
        let u = MetaLSTM.update(theta: theta, gradient: g, loss: 1.3, inputPrevious: Tensor(zeros: [6, 1]), forgetPrevious: Tensor(zeros: [6, 1]), gates: gates)
        let sgd = zip(theta.scalars, g.scalars).map { $0 - lr * $1 }
        #expect(u.theta.shape == [2, 3])
        #expect(zip(u.theta.scalars, sgd).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(u.input.scalars.allSatisfy { abs($0 - lr) < 1e-6 } && u.forget.scalars.allSatisfy { $0 == 1 })
    }

    @Test func preprocessingOfGradientsAndLosses() {
        let (a, b) = MetaLSTM.preprocess(-0.5)
        #expect(abs(a - log(0.5) / 10) < 1e-6 && b == -1)
        let (c, d) = MetaLSTM.preprocess(1e-6)
        #expect(c == -1 && abs(d - exp(10) * 1e-6) < 1e-6)
    }

    /// The gates and the initialisation both learn: the query loss reaches them through the updates.
    @Test func gatesReceiveTheMetaGradient() throws {
        let (_, e) = try MAMLTests().tinyTask()
        var config = MetaLSTM.Config()
        config.backbone = BackboneSpec(name: "mlp", hidden: [4])
        (config.trainWay, config.innerSteps) = (2, 2)
        var rng = RNG(seed: 5)
        let m = try MetaLSTM.Model(TrainingData(imageShape: [1, 1, 3], classCount: 2), config: config, rng: &rng)
        let g = valueAndGradient(at: m.network.trainableParameters()) { p in
            var ctx = ForwardContext(training: true, overrides: p)
            return m.step(TrainingBatch(episode: e), &ctx).loss
        }.gradients
        for path in ["1.wi", "1.bi", "1.wf", "1.bf", "0.1.weight"] { #expect(g[path]!.scalars.contains { $0 != 0 }, "\(path)") }
    }
}

@Suite struct SNAILTests {
    @Test func smoke() throws {
        try fewShotSmoke(SNAIL.self, ["trainWay": 3, "trainShot": 2, "trainQuery": 2, "filters": 8, "keySize": 4, "valueSize": 4])
    }

    func tinyModel() throws -> SNAIL.Model {
        var config = SNAIL.Config()
        config.backbone = BackboneSpec(name: "mlp", hidden: [6])
        (config.trainWay, config.trainShot, config.filters, config.keySize, config.valueSize) = (2, 3, 5, 4, 3)
        var rng = RNG(seed: 8)
        return try SNAIL.Model(TrainingData(imageShape: [1, 1, 3], classCount: 2), config: config, rng: &rng)
    }

    /// The output at a support step depends on that step and earlier ones only, and a query's
    /// output does not depend on the other queries.
    @Test func causality() throws {
        let model = try tinyModel()
        var rng = RNG(seed: 1)
        func points(_ n: Int) -> [Float] { (0..<(3 * n)).map { _ in rng.normal() } }
        let support = points(6), query = points(3)
        func run(_ s: [Float], _ labels: [Int32], _ q: [Float]) -> (queries: Tensor, prefix: Tensor) {
            var ctx = ForwardContext(training: false)
            return model.network.logits(support: Tensor(shape: [s.count / 3, 1, 1, 3], scalars: s), supportLabels: labels, way: 2,
                                        query: Tensor(shape: [q.count / 3, 1, 1, 3], scalars: q), &ctx)
        }
        let labels: [Int32] = [0, 1, 0, 1, 1, 0]
        let base = run(support, labels, query)
        // Change the last two support steps (images and labels): steps 0...3 keep their outputs.
        var changed = support
        for i in 12..<18 { changed[i] += 1 }
        let later = run(changed, [0, 1, 0, 1, 0, 1], query)
        #expect(Array(base.prefix.scalars[0..<8]) == Array(later.prefix.scalars[0..<8]))
        #expect(base.prefix.scalars[8..<12] != later.prefix.scalars[8..<12], "the check is only meaningful if later steps change")
        // A query alone scores as it did among the others.
        let alone = run(support, labels, Array(query[3..<6]))
        #expect(zip(alone.queries.scalars, base.queries.scalars[2..<4]).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    /// The episode sampler lists the support class by class; the adapter must not read it so (a
    /// class at a fixed step is a shortcut). Its logits are the network's with the support in the
    /// model's seeded order, which moves classes, and differ from reading it as listed; a training
    /// step draws its own order per episode.
    @Test func theSupportIsReadOutOfClassOrder() throws {
        let model = try tinyModel()
        var rng = RNG(seed: 2)
        let support = Tensor(shape: [6, 1, 1, 3], scalars: (0..<18).map { _ in rng.normal() })
        let query = Tensor(shape: [4, 1, 1, 3], scalars: (0..<12).map { _ in rng.normal() })
        let labels: [Int32] = [0, 0, 0, 1, 1, 1]
        let adapted = model.logits(support: support, supportLabels: labels, way: 2, query: query, context: ForwardContext(training: false))
        func read(_ order: [Int]) -> Tensor {
            var ctx = ForwardContext(training: false)
            return model.logits(support: support, supportLabels: labels, way: 2, query: query, order: order, &ctx)
        }
        var seeded = RNG(seed: model.orderSeed)
        let order = seeded.permutation(6)
        #expect(order.map { labels[$0] } != labels, "the seeded order moves classes")
        #expect(zip(adapted.scalars, read(order).scalars).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(zip(adapted.scalars, read(Array(0..<6)).scalars).contains { abs($0 - $1) > 1e-4 })
        // Training: the same episode read under two step streams gives two losses (two orders).
        let episode = EpisodeBatch(way: 2, support: support, supportLabels: labels, query: query, queryLabels: [0, 1, 1, 0])
        let losses = (0..<2).map { i -> Float in
            var ctx = ForwardContext(training: true, rng: RNG(seed: UInt64(i)))
            return model.step(TrainingBatch(episode: episode), &ctx).loss.item
        }
        #expect(abs(losses[0] - losses[1]) > 1e-6, "each training episode draws its own order")
    }

    /// A training step reads the first k support examples of every class, k uniform in
    /// 1…trainShot, shuffled; without `varyShot`, all of them.
    @Test func trainingReadsOneToTrainShotExamplesPerClass() throws {
        let model = try tinyModel()
        let labels: [Int32] = [0, 0, 0, 1, 1, 1]
        #expect(SNAIL.Model.firstShots(of: labels, 2) == [0, 1, 3, 4])
        #expect(SNAIL.Model.firstShots(of: [1, 0, 1, 0], 1) == [0, 1])
        var shots = Set<Int>()
        for seed in 0..<60 {
            var rng = RNG(seed: UInt64(seed))
            let order = model.trainingOrder(labels, rng: &rng)
            let k = order.count / 2
            #expect(order.count == 2 * k && Set(order) == Set(SNAIL.Model.firstShots(of: labels, k)))
            shots.insert(k)
        }
        #expect(shots == [1, 2, 3])
        var config = SNAIL.Config()
        config.backbone = BackboneSpec(name: "mlp", hidden: [6])
        (config.trainWay, config.trainShot, config.varyShot) = (2, 3, false)
        var rng = RNG(seed: 8)
        let fixed = try SNAIL.Model(TrainingData(imageShape: [1, 1, 3], classCount: 2), config: config, rng: &rng)
        #expect(Set(fixed.trainingOrder(labels, rng: &rng)) == Set(0..<6))
    }
}

@Suite struct MANNTests {
    @Test func smoke() throws {
        try fewShotSmoke(MANN.self, ["trainWay": 3, "trainShot": 2, "trainQuery": 2, "controllerSize": 8, "memorySlots": 6, "memoryWidth": 4, "readHeads": 2,
                                     "sequencesPerStep": 2])
    }

    @Test func smokeWithALearnedKeyStrength() throws {
        try fewShotSmoke(MANN.self, ["trainWay": 3, "trainShot": 2, "trainQuery": 2, "controllerSize": 8, "memorySlots": 6, "memoryWidth": 4,
                                     "readHeads": 2, "learnedKeyStrength": true, "sequencesPerStep": 2])
    }

    /// Least-recently-used addressing on a hand-built memory: reads are the softmax of cosines
    /// against the memory as the previous step left it, then the marked slot is cleared, the write
    /// mixes the previous read and least-used weights by σ(α), usage decays and accumulates, and
    /// the least-used slot is marked for the next step.
    @Test func leastRecentlyUsedAddressing() {
        var m = MANN.Memory(slots: 3, width: 2, heads: 1)
        let before: [Float] = [1, 0,  0, 1,  1, 1]
        m.slots = Tensor(shape: [1, 3, 2], scalars: before)
        m.reads = [Tensor(shape: [1, 3], scalars: [1, 0, 0])]
        (m.usage, m.leastUsed) = ([[1, 0.5, 0.1]], [[0, 0, 1]])
        let key = Tensor(shape: [1, 2], scalars: [0, 1])
        let out = m.step(keys: [key], writeGates: [Tensor(shape: [1, 1], scalars: [0.25])], usageDecay: 0.95)
        // Read first, from the old memory: cos(k, [1, 0]) = 0, cos(k, [0, 1]) = 1, cos(k, [1, 1]) = 1/√2.
        let cosines: [Float] = [0, 1, 1 / Float(2).squareRoot()]
        let z = cosines.map { exp($0) }.reduce(0, +)
        let reads = cosines.map { exp($0) / z }
        #expect(zip(m.reads[0].scalars, reads).allSatisfy { abs($0 - $1) < 1e-5 })
        let expectedOut = [reads[0] + reads[2], reads[1] + reads[2]]
        #expect(zip(out[0].scalars, expectedOut).allSatisfy { abs($0 - $1) < 1e-5 })
        // Then slot 2 cleared, and w = 0.25·[1, 0, 0] + 0.75·[0, 0, 1] writes w(i)·k.
        #expect(zip(m.slots.scalars, [1, 0.25,  0, 1,  0, 0.75]).allSatisfy { abs($0 - $1) < 1e-6 })
        let usage = zip(zip([0.95, 0.475, 0.095], reads), [0.25, 0, 0.75]).map { $0.0 + $0.1 + $1 }
        #expect(zip(m.usage[0], usage).allSatisfy { abs($0 - $1) < 1e-5 })
        let least = usage.indices.min { usage[$0] < usage[$1] }!
        #expect(m.leastUsed[0] == (0..<3).map { $0 == least ? 1 : 0 }, "the least-used slot is marked for the next step")
    }

    /// A key strength β sharpens the read: the weights are the softmax of β·cosine, and
    /// softplus (β = 1 + softplus) is exact and finite far from zero.
    @Test func keyStrengthScalesTheCosinesBeforeTheSoftmax() {
        var m = MANN.Memory(slots: 3, width: 2, heads: 1)
        m.slots = Tensor(shape: [1, 3, 2], scalars: [1, 0,  0, 1,  1, 1])
        let key = Tensor(shape: [1, 2], scalars: [0, 1])
        let beta: Float = 5
        let w = m.readWeights(key, strength: Tensor(shape: [1, 1], scalars: [beta])).scalars
        let logits = [0, 1, 1 / Float(2).squareRoot()].map { beta * $0 }
        let z = logits.map { exp($0) }.reduce(0, +)
        #expect(zip(w, logits.map { exp($0) / z }).allSatisfy { abs($0 - $1) < 1e-5 })
        let x = Tensor(shape: [1, 4], scalars: [-100, -1, 0.5, 100])
        let expected = x.scalars.map { Float(Foundation.log1p(Foundation.exp(Double($0)))) }
        #expect(zip(MANN.softplus(x).scalars, expected).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    /// The adapter scores all queries in one batched step from the support's final state; that
    /// equals stepping each query alone from that state, with the paper's reads and with learned
    /// key strengths (a step's logits come from reads made before its own write).
    @Test(arguments: [false, true]) func batchedQueriesEqualOneStepEach(learnedKeyStrength: Bool) {
        var rng = RNG(seed: 17)
        var config = MANN.Config()
        (config.trainWay, config.controllerSize, config.memorySlots, config.memoryWidth, config.readHeads) = (3, 8, 6, 4, 2)
        config.learnedKeyStrength = learnedKeyStrength
        let network = MANN.Network(body: Linear(5, 4, rng: &rng), features: 4, config: config, rng: &rng)
        func normal(_ rows: Int) -> Tensor { Tensor(shape: [rows, 4], scalars: (0..<(4 * rows)).map { _ in rng.normal() }) }
        let (support, queries) = (normal(5), normal(7))
        var ctx = ForwardContext(training: false)
        let (state, previous, _) = network.run(support, labels: network.labelRows([0, 1, 2, 0, 1]), rows: [3, 0, 4, 2, 1].map { [$0] }, &ctx)
        let batched = network.nextStepLogits(queries, previousLabel: previous, state, &ctx)
        #expect(batched.shape == [7, 3])
        for q in 0..<7 {
            let alone = network.step(queries.slice(axis: 0, q, q + 1), previousLabel: previous, state, &ctx).1
            #expect(zip(alone.scalars, batched.slice(axis: 0, q, q + 1).scalars).allSatisfy { abs($0 - $1) < 1e-5 }, "query \(q)")
        }
    }

    /// Sequences run side by side (the training minibatch) give each sequence what it gets run
    /// alone: the same logits at every step and the same memory, usage and least-used marks at the
    /// end; each sequence reads and writes only its own memory.
    @Test func sequencesSideBySideEqualEachAlone() {
        var rng = RNG(seed: 29)
        var config = MANN.Config()
        (config.trainWay, config.controllerSize, config.memorySlots, config.memoryWidth, config.readHeads) = (3, 8, 5, 4, 2)
        let network = MANN.Network(body: Linear(5, 4, rng: &rng), features: 4, config: config, rng: &rng)
        let length = 6
        let items = Tensor(shape: [3 * length, 4], scalars: (0..<(12 * length)).map { _ in rng.normal() })
        let labels: [Int32] = [0, 1, 2, 0, 1, 2,  2, 2, 1, 0, 0, 1,  1, 0, 2, 1, 0, 2]
        let orders = [[5, 0, 3, 1, 4, 2], [0, 1, 2, 3, 4, 5], [2, 4, 0, 5, 1, 3]]
        var ctx = ForwardContext(training: false)
        let together = network.run(items, labels: network.labelRows(labels), rows: MANN.Network.stepRows(orders: orders, length: length), &ctx)
        #expect(together.logits.count == length && together.logits[0].shape == [3, 3])
        for b in 0..<3 {
            let own = items.slice(axis: 0, b * length, (b + 1) * length)
            let alone = network.run(own, labels: network.labelRows(Array(labels[(b * length)..<((b + 1) * length)])),
                                    rows: orders[b].map { [$0] }, &ctx)
            for t in 0..<length {
                #expect(zip(alone.logits[t].scalars, together.logits[t].slice(axis: 0, b, b + 1).scalars).allSatisfy { abs($0 - $1) < 1e-5 },
                        "sequence \(b), step \(t)")
            }
            let slots = together.state.memory.slots.slice(axis: 0, b, b + 1).scalars
            #expect(zip(alone.state.memory.slots.scalars, slots).allSatisfy { abs($0 - $1) < 1e-5 }, "sequence \(b)'s memory")
            #expect(zip(alone.state.memory.usage[0], together.state.memory.usage[b]).allSatisfy { abs($0 - $1) < 1e-5 })
            #expect(alone.state.memory.leastUsed[0] == together.state.memory.leastUsed[b])
        }
    }

    /// A key cannot read what its own step wrote: a memory written only at this step reads as
    /// empty, and the next step reads it back.
    @Test func aStepReadsTheMemoryBeforeItsOwnWrite() {
        var m = MANN.Memory(slots: 4, width: 2, heads: 1)
        let key = Tensor(shape: [1, 2], scalars: [0.6, -0.8])
        let gate = Tensor(shape: [1, 1], scalars: [0])
        let first = m.step(keys: [key], writeGates: [gate], usageDecay: 0.95)
        #expect(first[0].scalars.allSatisfy { $0 == 0 }, "nothing was stored before this step")
        #expect(m.slots.scalars == [0.6, -0.8, 0, 0, 0, 0, 0, 0], "the first step wrote its key into least-used slot 0")
        let second = m.step(keys: [key], writeGates: [gate], usageDecay: 0.95)
        // The next step sees it: cosine 1 with slot 0, 0 with the empty slots.
        let e = Float(Foundation.exp(1.0)), w0 = e / (e + 3)
        #expect(zip(second[0].scalars, [0.6 * w0, -0.8 * w0]).allSatisfy { abs($0 - $1) < 1e-5 }, "\(second[0].scalars)")
    }
}

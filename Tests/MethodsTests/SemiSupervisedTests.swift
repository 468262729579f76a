import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

/// A method's defaults with tiny overrides (a width-8 conv4, three steps, batches of 8).
func tinyConfig<M: StepMethod>(_ m: M.Type, _ extra: [String: Any] = [:]) throws -> M.Config {
    let base: [String: Any] = ["backbone": ["name": "conv4", "width": 8],
                               "training": ["steps": 3, "learningRate": 0.05, "warmupSteps": 0, "validateEvery": 0, "emaDecay": 0.9],
                               "batchSize": 8]
    return try AnyMethod.apply(base.merging(extra) { $1 }, to: M.defaultConfig(budget: .perClass(4), classes: 4), method: M.id)
}

/// Three steps of `M` on glyphs with 4 labels per class: loss finite, weights move, frozen ones stay.
@discardableResult
func semiSupervisedSmoke<M: StepMethod>(_ m: M.Type, _ extra: [String: Any] = [:]) throws -> TrainedModel {
    let d = try Fixture.glyphs()
    let input = try Fixture.input(d, try Fixture.split(d, budget: .perClass(4)), regime: .semiSupervised)
    return try smokeTest(M.self, config: try tinyConfig(M.self, extra), input: input)
}

/// A batch of glyph images for a tiny MLP: two labeled, `unlabeled` per view.
func glyphBatch(_ d: Dataset, views: Int, unlabeled: Int = 4, step: Int = 0, steps: Int = 1) -> TrainingBatch {
    let x = d.trainImages.gatherRows([0, 1])
    let vs = (0..<views).map { v in d.trainImages.gatherRows((0..<unlabeled).map { 2 + v * unlabeled + $0 }) }
    return TrainingBatch(labeled: LabeledBatch(images: x, labels: Array(d.trainLabels[0..<2])),
                         unlabeled: UnlabeledBatch(views: vs, positions: Array(0..<unlabeled)), step: step, steps: steps)
}

let tinyMLP: [String: Any] = ["backbone": ["name": "mlp", "hidden": [8]], "dropout": 0.0]

@Suite struct PseudoLabelTests {
    @Test func smoke() throws { try semiSupervisedSmoke(PseudoLabel.self) }

    @Test func rampIsZeroThenLinearThenFlat() throws {
        var c = PseudoLabel.Config()
        (c.unlabeledWeight, c.rampStart, c.rampEnd) = (3, 0.1, 0.6)
        #expect(c.weight(step: 5, of: 100) == 0 && c.weight(step: 10, of: 100) == 0)
        #expect(abs(c.weight(step: 35, of: 100) - 1.5) < 1e-6)
        #expect(c.weight(step: 60, of: 100) == 3 && c.weight(step: 99, of: 100) == 3)
    }

    /// The target is the arg-max class of the same pass, and the loss is ℓ_x + α · H(ŷ, p).
    @Test func labelsAreTheArgmaxOfTheSamePass() throws {
        let d = try Fixture.glyphs()
        let config = try tinyConfig(PseudoLabel.self, tinyMLP)
        var rng = RNG(seed: 3)
        let model = try PseudoLabel.build(TrainingData(imageShape: d.imageShape, classCount: 4), config: config, rng: &rng)
        let batch = glyphBatch(d, views: 1, step: 99, steps: 100)
        var ctx = ForwardContext(training: false)
        let out = model.step(batch, &ctx)
        let logits = model.network(batch.unlabeled!.views[0])
        #expect(out.pseudoLabels?.predicted == logits.argmaxRows().map(Int32.init))
        let expected = Loss.crossEntropy(model.network(batch.labeled!.images), labels: batch.labeled!.labels).item
            + 3 * Loss.crossEntropy(logits, labels: logits.argmaxRows().map(Int32.init)).item
        #expect(abs(out.loss.item - expected) < 1e-4)
    }
}

@Suite struct PiModelTests {
    @Test func smoke() throws { try semiSupervisedSmoke(PiModel.self) }

    @Test func identicalViewsCostNothing() throws {
        let d = try Fixture.glyphs()
        var rng = RNG(seed: 3)
        let model = try PiModel.build(TrainingData(imageShape: d.imageShape, classCount: 4), config: try tinyConfig(PiModel.self, tinyMLP), rng: &rng)
        var batch = glyphBatch(d, views: 2, step: 9, steps: 10)
        var ctx = ForwardContext(training: false)
        #expect(model.step(batch, &ctx).scalars.first { $0.name == "loss_u" }!.value > 0)
        batch.unlabeled = UnlabeledBatch(views: [batch.unlabeled!.views[0], batch.unlabeled!.views[0]], positions: batch.unlabeled!.positions)
        let out = model.step(batch, &ctx)
        // Zero up to rounding (the two copies sit at different rows of one matrix product).
        #expect(out.scalars.first { $0.name == "loss_u" }!.value < 1e-12)
        #expect(abs(out.loss.item - out.scalars.first { $0.name == "loss_x" }!.value) < 1e-6)
    }

    @Test func maximumWeightIsScaledByTheLabeledFraction() throws {
        var rng = RNG(seed: 1)
        let d = try Fixture.glyphs()
        let (granted, _) = try TrainingData.granted(to: .semiSupervised, dataset: d, split: try Fixture.split(d, budget: .perClass(4)))
        let model = try PiModel.build(granted, config: try tinyConfig(PiModel.self), rng: &rng)
        let (m, u) = (granted.labeled!.count, granted.unlabeled!.count)
        #expect(abs(model.maxWeight - 100 * Float(m) / Float(m + u)) < 1e-4)
    }
}

@Suite struct MeanTeacherTests {
    @Test func smoke() throws { try semiSupervisedSmoke(MeanTeacher.self) }

    @Test func teacherIsTheEMAOfTheStudent() throws {
        let d = try Fixture.glyphs()
        var rng = RNG(seed: 3)
        let model = try MeanTeacher.build(TrainingData(imageShape: d.imageShape, classCount: 4), config: try tinyConfig(MeanTeacher.self, tinyMLP), rng: &rng)
        let before = model.teacher.shadow
        model.network.updateParameters { _, t in t = t + 1 }
        try model.prepare(step: 5, of: 100)
        model.afterUpdate()
        // α = min(1 − 1/6, 0.99) during the ramp-up.
        let alpha: Float = 1 - 1.0 / 6
        #expect(model.teacherDecay(afterStep: 5, of: 100) == alpha)
        #expect(model.teacherDecay(afterStep: 9000, of: 10000) == 0.999)
        for (path, student) in model.network.namedParameters() {
            let expected = zip(before[path]!.scalars, student.scalars).map { alpha * $0 + (1 - alpha) * $1 }
            #expect(zip(model.teacher.shadow[path]!.scalars, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "\(path)")
        }
        #expect(model.evaluationWeights?.keys.sorted() == before.keys.sorted())
    }

    @Test func noGradientReachesTheTeacherView() throws {
        let d = try Fixture.glyphs()
        var rng = RNG(seed: 3)
        let model = try MeanTeacher.build(TrainingData(imageShape: d.imageShape, classCount: 4), config: try tinyConfig(MeanTeacher.self, tinyMLP), rng: &rng)
        var batch = glyphBatch(d, views: 2, step: 99, steps: 100)
        let (student, teacher) = (batch.unlabeled!.views[0].requiringGrad(), batch.unlabeled!.views[1].requiringGrad())
        batch.unlabeled = UnlabeledBatch(views: [student, teacher], positions: batch.unlabeled!.positions)
        var ctx = ForwardContext(training: false)
        let g = gradients(of: model.step(batch, &ctx).loss, wrt: [student, teacher])
        #expect(g[0].scalars.contains { $0 != 0 } && g[1].scalars.allSatisfy { $0 == 0 })
    }
}

@Suite struct VATTests {
    @Test func smoke() throws { try semiSupervisedSmoke(VAT.self) }

    /// Iterated to convergence, the power iteration finds the dominant eigenvector of the Hessian
    /// of KL(p(x) ‖ p(x + r)) at r = 0, here estimated by central finite differences.
    @Test func directionIsTheDominantEigenvectorOfTheKLHessian() throws {
        let data = TrainingData(imageShape: [1, 2, 3], classCount: 3)
        var rng = RNG(seed: 11)
        var config = try tinyConfig(VAT.self, ["backbone": ["name": "mlp", "hidden": [5]]])
        config.xi = 1e-3
        let model = try VAT.build(data, config: config, rng: &rng)
        let x = Tensor(shape: [1, 1, 2, 3], scalars: (0..<6).map { _ in rng.normal() })
        let net = model.network
        let logP = net(x).logSoftmax()
        func kl(_ r: [Double]) -> Double {
            Double(Loss.klDivergence(pLog: logP, qLog: net(x + Tensor(shape: x.shape, scalars: r.map(Float.init))).logSoftmax()).item)
        }
        let h = 0.02, n = 6
        var hessian = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for j in 0..<n {
                func at(_ a: Double, _ b: Double) -> Double {
                    var r = [Double](repeating: 0, count: n)
                    r[i] += a; r[j] += b
                    return kl(r)
                }
                hessian[i][j] = (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h)
            }
        }
        var v = [Double](repeating: 1, count: n)
        for _ in 0..<500 {
            let w = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + hessian[i][$1] * v[$1] } }
            let norm = w.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = w.map { $0 / norm }
        }
        var drng = RNG(seed: 2)
        let d = VAT.adversarialDirection(net, x: x, logP: logP, xi: config.xi, iterations: 30, ForwardContext(training: false), rng: &drng)
        let cosine = zip(d.scalars, v).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        #expect(abs(cosine) > 0.99, "cosine \(cosine)")
        #expect(abs(d.scalars.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4, "unit norm per example")
    }
}

@Suite struct MixMatchTests {
    @Test func smoke() throws { try semiSupervisedSmoke(MixMatch.self) }

    @Test func guessIsTheSharpenedMeanOverViews() throws {
        let d = try Fixture.glyphs()
        var rng = RNG(seed: 3)
        let model = try MixMatch.build(TrainingData(imageShape: d.imageShape, classCount: 4), config: try tinyConfig(MixMatch.self, ["backbone": ["name": "mlp", "hidden": [8]]]), rng: &rng)
        let batch = glyphBatch(d, views: 2)
        let views = batch.unlabeled!.views
        let q = MixMatch.guess(model.network, views: views, temperature: 0.5, ForwardContext(training: false))
        let mean = (model.network(views[0]).softmax() + model.network(views[1]).softmax()) * 0.5
        #expect(zip(q.scalars, sharpen(mean, temperature: 0.5).scalars).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    /// Mixing rows of the identity: every row keeps at least half of its own weight (λ' ≥ ½) and
    /// the rest goes to one partner; inputs and targets use the same λ' and partner.
    @Test func mixUpKeepsEachRowCloserToItself() {
        var rng = RNG(seed: 5)
        let n = 16
        let eye = Tensor(shape: [n, n], scalars: (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 })
        let mixed = MixUp.shuffled(inputs: eye, targets: eye, alpha: 0.75, rng: &rng)
        #expect(mixed.inputs.scalars == mixed.targets.scalars)
        let m = mixed.inputs.scalars
        for i in 0..<n {
            let row = Array(m[(i * n)..<((i + 1) * n)])
            #expect(row[i] >= 0.5 && abs(row.reduce(0, +) - 1) < 1e-5)
            #expect(row.filter { $0 > 0 }.count <= 2)
        }
    }
}

@Suite struct ReMixMatchTests {
    @Test func smoke() throws { try semiSupervisedSmoke(ReMixMatch.self) }

    @Test func randomRotationsTurnEachRowByItsLabel() {
        var rng = RNG(seed: 4)
        let images = Tensor(shape: [6, 1, 3, 3], scalars: (0..<54).map(Float.init))
        let (rotated, labels) = Pretext.randomRotations(images, rng: &rng)
        #expect(Set(labels).count > 1)
        for i in 0..<6 {
            let expected = Pretext.rotate(images.gatherRows([i]), quarterTurns: Int(labels[i]))
            #expect(rotated.gatherRows([i]).scalars == expected.scalars)
        }
    }

    @Test func signalsNeedTheRotationLossOff() throws {
        let data = TrainingData(imageShape: [1, 1, 40], classCount: 3)
        var rng = RNG(seed: 1)
        #expect { try ReMixMatch.build(data, config: try tinyConfig(ReMixMatch.self), rng: &rng) } throws: { ($0 as? ConfigError)?.key == "rotationWeight" }
        _ = try ReMixMatch.build(data, config: try tinyConfig(ReMixMatch.self, ["rotationWeight": 0]), rng: &rng)
    }
}

@Suite struct LabelPropagationTests {
    @Test func smoke() throws {
        let trained = try semiSupervisedSmoke(LabelPropagation.self, ["refreshEvery": 1, "neighbours": 5])
        #expect(trained.summary.curves.contains { $0.name == "pseudo_label_accuracy" })
    }

    /// On a toy graph, conjugate gradient gives (I − αW)⁻¹Y (solved here by Gaussian elimination).
    @Test func diffusionEqualsTheClosedForm() {
        let raw: [[Float]] = [[0, 1, 0.5, 0, 0], [1, 0, 0.2, 0, 0], [0.5, 0.2, 0, 0.3, 0], [0, 0, 0.3, 0, 0.9], [0, 0, 0, 0.9, 0]]
        let graph = AffinityGraph(edges: raw.map { row in row.enumerated().filter { $0.element > 0 }.map { (node: $0.offset, weight: $0.element) } })
            .symmetricallyNormalized()
        let y: [Float] = [1, 0,  0, 0,  0, 0,  0, 0,  0, 1]
        let alpha: Float = 0.9
        let z = graph.diffuse(y, classes: 2, alpha: alpha, iterations: 50, tolerance: 1e-12)
        // Dense (I − αW) from the normalised graph.
        var a = [[Double]](repeating: [Double](repeating: 0, count: 5), count: 5)
        for i in 0..<5 {
            a[i][i] = 1
            for (j, w) in graph.edges[i] { a[i][j] -= Double(alpha * w) }
        }
        for c in 0..<2 {
            var m = a.enumerated().map { $0.element + [Double(y[$0.offset * 2 + c])] }
            for col in 0..<5 {
                let pivot = (col..<5).max { abs(m[$0][col]) < abs(m[$1][col]) }!
                m.swapAt(col, pivot)
                for r in 0..<5 where r != col {
                    let f = m[r][col] / m[col][col]
                    for k in col...5 { m[r][k] -= f * m[col][k] }
                }
            }
            for i in 0..<5 { #expect(abs(Double(z[i * 2 + c]) - m[i][5] / m[i][i]) < 1e-5, "node \(i) class \(c)") }
        }
        let labels = PropagatedLabels(scores: z, classes: 2)
        #expect(labels.labels == [0, 0, 0, 1, 1])
    }

    @Test func certaintyAndClassWeights() {
        let p = PropagatedLabels(scores: [1, 0,  0.5, 0.5,  0, 2,  3, 0], classes: 2)
        #expect(p.labels == [0, 0, 1, 0])
        #expect(abs(p.certainty[0] - 1) < 1e-6 && abs(p.certainty[1]) < 1e-6 && abs(p.certainty[2] - 1) < 1e-6)
        // Class 0 holds 3 nodes, class 1 one: ζ ∝ (1/3, 1), averaging one over the nodes.
        #expect(abs(p.classWeights[1] / p.classWeights[0] - 3) < 1e-5)
        #expect(abs((3 * p.classWeights[0] + p.classWeights[1]) / 4 - 1) < 1e-5)
    }

    @Test func nearestNeighbourGraphIsSymmetricWithoutSelfLoops() {
        let f = Tensor(shape: [4, 2], scalars: [1, 0,  0.9, 0.1,  0, 1,  0.1, 0.9])
        let g = AffinityGraph.nearestNeighbours(f, k: 1, gamma: 3)
        for i in 0..<4 {
            #expect(!g.edges[i].contains { $0.node == i })
            for (j, w) in g.edges[i] { #expect(g.edges[j].contains { $0.node == i && $0.weight == w }) }
        }
        #expect(g.edges[0].map(\.node) == [1] && g.edges[2].map(\.node) == [3])
    }
}

@Suite struct NoisyStudentTests {
    @Test func smoke() throws { try semiSupervisedSmoke(NoisyStudent.self) }

    /// From each generation's start the targets are the teacher's softmax(logits / T) on the
    /// unaugmented pool, in evaluation mode; before it there are none.
    @Test func studentTargetsAreTheTeachersSoftenedOutputs() throws {
        let d = try Fixture.glyphs()
        let (data, _) = try TrainingData.granted(to: .semiSupervised, dataset: d, split: try Fixture.split(d, budget: .perClass(4)))
        var config = try tinyConfig(NoisyStudent.self)
        config.temperature = 2
        var rng = RNG(seed: 3)
        let model = try NoisyStudent.build(data, config: config, rng: &rng)
        #expect(config.generationStarts(steps: 100) == [30, 65])
        try model.prepare(step: 29, of: 100)
        #expect(model.targets == nil)
        try model.prepare(step: 30, of: 100)
        var plain = RNG(seed: 0)
        let images = data.unlabeled!.images(at: [0, 1, 2], rng: &plain)
        let expected = (model.network(images) * 0.5).softmax()
        #expect(zip(model.targets!.gatherRows([0, 1, 2]).scalars, expected.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(model.generation == 1 && model.targets!.shape == [data.unlabeled!.count, 4])
    }
}

@Suite struct CoTrainingTests {
    @Test func smoke() throws { try semiSupervisedSmoke(CoTraining.self) }

    /// Network A is trained toward B's confident labels on A's view, and B toward A's.
    @Test func eachNetworkLearnsTheOthersLabels() throws {
        let d = try Fixture.glyphs()
        var rng = RNG(seed: 3)
        let model = try CoTraining.build(TrainingData(imageShape: d.imageShape, classCount: 4),
                                         config: try tinyConfig(CoTraining.self, ["backbone": ["name": "mlp", "hidden": [8]], "threshold": 0.3]), rng: &rng)
        let batch = glyphBatch(d, views: 2)
        var ctx = ForwardContext(training: false)
        let out = model.step(batch, &ctx)
        let (x, y, u) = (batch.labeled!.images, batch.labeled!.labels, batch.unlabeled!.views)
        let a = model.network.children[0].module, b = model.network.children[1].module
        let (ua, ub) = (a(u[0]), b(u[1]))
        let (ma, mb) = (ConfidenceMask(probabilities: ua.softmax(), threshold: 0.3), ConfidenceMask(probabilities: ub.softmax(), threshold: 0.3))
        #expect(ma.mask.contains(true) && mb.mask.contains(true) && ma.labels != mb.labels, "the check needs labels that differ")
        func ce(_ logits: Tensor, _ m: ConfidenceMask) -> Float { Loss.crossEntropy(logits, targets: m.targets(classes: 4)).item }
        // CE averages over the unlabeled rows only; the labeled rows are a separate term.
        let expected = Loss.crossEntropy(a(x), labels: y).item + Loss.crossEntropy(b(x), labels: y).item + ce(ua, mb) + ce(ub, ma)
        let swapped = Loss.crossEntropy(a(x), labels: y).item + Loss.crossEntropy(b(x), labels: y).item + ce(ua, ma) + ce(ub, mb)
        #expect(abs(out.loss.item - expected) < 1e-4)
        #expect(abs(out.loss.item - swapped) > 1e-3)
        #expect(out.pseudoLabels?.predicted == ma.labels)
    }
}

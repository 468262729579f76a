import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

@Suite struct FixMatchTests {
    func tinyConfig() -> FixMatch.Config {
        var c = FixMatch.Config()
        (c.backbone, c.batchSize, c.unlabeledRatio) = (Fixture.tinyBackbone, 8, 2)
        c.training = Fixture.tinyTraining(steps: 3)
        c.training.emaDecay = 0.9
        return c
    }

    @Test func smokeAndTheFrameworkAuditsPseudoLabels() throws {
        let d = try Fixture.glyphs()
        let input = try Fixture.input(d, try Fixture.split(d, budget: .perClass(4)), regime: .semiSupervised)
        var config = tinyConfig()
        config.threshold = 0.01   // every pseudo-label passes, so the audit has something to score
        let trained = try smokeTest(FixMatch.self, config: config, input: input)
        let names = Set(trained.summary.curves.map(\.name))
        #expect(names.isSuperset(of: ["loss", "loss_x", "loss_u", "mask_rate", "pseudo_label_accuracy"]))
        let audit = trained.summary.curves.filter { $0.name == "pseudo_label_accuracy" }.map(\.value)
        #expect(!audit.isEmpty && audit.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func maskKeepsConfidentRowsAndTheirArgmax() {
        let p = Tensor(shape: [3, 3], scalars: [0.96, 0.02, 0.02,  0.5, 0.3, 0.2,  0.01, 0.01, 0.98])
        let m = ConfidenceMask(probabilities: p, threshold: 0.95)
        #expect(m.labels == [0, 0, 2] && m.mask == [true, false, true])
        #expect(abs(m.rate - 2.0 / 3) < 1e-6)
        #expect(m.targets(classes: 3).scalars == [1, 0, 0,  0, 0, 0,  0, 0, 1])
    }

    /// The loss is ℓ_x + λ_u (1/μB) Σ mask · H(pseudo-label, strong); the pseudo-label comes from
    /// the weak view without a gradient, and the strong view carries it.
    @Test func lossAndGradientFlow() throws {
        let d = try Fixture.glyphs()
        var config = tinyConfig()
        config.backbone = BackboneSpec(name: "mlp", hidden: [8])
        (config.threshold, config.unlabeledWeight) = (0.3, 2)
        var rng = RNG(seed: 4)
        let model = try FixMatch.build(TrainingData(imageShape: d.imageShape, classCount: 4), config: config, rng: &rng)
        let x = d.trainImages.gatherRows([0, 1]), y = Array(d.trainLabels[0..<2])
        let weak = d.trainImages.gatherRows([2, 3, 4, 5]).requiringGrad()
        let strong = d.trainImages.gatherRows([6, 7, 8, 9]).requiringGrad()
        let batch = TrainingBatch(labeled: LabeledBatch(images: x, labels: y), unlabeled: UnlabeledBatch(views: [weak, strong], positions: [0, 1, 2, 3]))
        var ctx = ForwardContext(training: false)   // no batch statistics in an MLP: eval mode is deterministic
        let out = model.step(batch, &ctx)
        let (gWeak, gStrong) = { let g = gradients(of: out.loss, wrt: [weak, strong]); return (g[0], g[1]) }()
        #expect(gWeak.scalars.allSatisfy { $0 == 0 }, "no gradient reaches the weak view")
        #expect(gStrong.scalars.contains { $0 != 0 }, "the strong view is trained")

        // The same number by hand.
        let pw = model.network(weak.detached).softmax(), ps = model.network(strong.detached).logSoftmax(), px = model.network(x).logSoftmax()
        let mask = ConfidenceMask(probabilities: pw, threshold: 0.3)
        #expect(out.pseudoLabels?.predicted == mask.labels && out.pseudoLabels?.mask == mask.mask)
        var lossX: Float = 0, lossU: Float = 0
        for i in 0..<2 { lossX -= px.scalars[i * 4 + Int(y[i])] / 2 }
        for i in 0..<4 where mask.mask[i] { lossU -= ps.scalars[i * 4 + Int(mask.labels[i])] / 4 }
        #expect(abs(out.loss.item - (lossX + 2 * lossU)) < 1e-4)
        #expect(mask.mask.contains(true), "the check is only meaningful with some confident rows")
    }

    /// Version 2 runs the three parts as one batch-norm batch, as the paper does: in training mode
    /// the labeled images' logits depend on the unlabeled views beside them.
    @Test func labeledAndUnlabeledShareOneBatchNormBatch() throws {
        let d = try Fixture.glyphs()
        var rng = RNG(seed: 4)
        let model = try FixMatch.build(TrainingData(imageShape: d.imageShape, classCount: 4), config: tinyConfig(), rng: &rng)
        let x = d.trainImages.gatherRows([0, 1]), y = Array(d.trainLabels[0..<2])
        func lossX(weak: [Int]) -> Float {
            let u = UnlabeledBatch(views: [d.trainImages.gatherRows(weak), d.trainImages.gatherRows([6, 7, 8, 9])], positions: [0, 1, 2, 3])
            var ctx = ForwardContext(training: true, updatesRunningStatistics: false)
            let out = model.step(TrainingBatch(labeled: LabeledBatch(images: x, labels: y), unlabeled: u), &ctx)
            return out.scalars.first { $0.name == "loss_x" }!.value
        }
        #expect(lossX(weak: [2, 3, 4, 5]) == lossX(weak: [2, 3, 4, 5]))
        #expect(lossX(weak: [2, 3, 4, 5]) != lossX(weak: [10, 11, 12, 13]), "the weak view is part of the labeled images' batch statistics")
    }

    @Test func configErrorsNameTheKey() {
        var c = FixMatch.Config()
        c.threshold = 1.5
        #expect { try c.validate() } throws: { ($0 as? ConfigError)?.key == "threshold" }
        c = FixMatch.Config()
        c.unlabeledRatio = 0
        #expect { try c.validate() } throws: { ($0 as? ConfigError)?.key == "unlabeledRatio" }
    }

    @Test func paperDefaults() {
        let c = FixMatch.defaultConfig(budget: .perClass(10), classes: 10)
        #expect(c.threshold == 0.95 && c.unlabeledRatio == 7 && c.unlabeledWeight == 1)
        #expect(c.training.optimizer == .sgd && c.training.nesterov && c.training.momentum == 0.9 && c.training.learningRate == 0.03)
        #expect(c.training.schedule == .fixmatch && c.training.emaDecay == 0.999 && c.training.weightDecay == 5e-4)
    }
}

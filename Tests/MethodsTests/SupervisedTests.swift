import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

/// The checks every gradient-trained method gets: a few steps on tiny data give a finite loss,
/// trainable parameters move and a frozen one does not.
func smokeTest<M: StepMethod>(_ method: M.Type, config: M.Config, input: TrainingInput) throws -> TrainedModel {
    var rng = input.rng("init")
    let learner = try M.build(input.data, config: config, rng: &rng)
    let frozenPath = learner.network.namedParameters()[0].path
    learner.network.freeze(prefix: frozenPath)
    let before = Fixture.weights(learner.network)
    let trained = try Trainer.fit(learner, input: input, spec: config.training, method: M.id)
    let after = Fixture.weights(learner.network)
    #expect(trained.summary.finalLoss.isFinite, "\(M.id): loss is finite")
    #expect(before[frozenPath] == after[frozenPath], "\(M.id): the frozen \(frozenPath) did not move")
    // A convolution's bias ahead of batch norm gets no gradient (the normalisation cancels it), so
    // not every tensor must move; the weights must, the last layer's above all.
    let weights = before.keys.filter { $0 != frozenPath && $0.hasSuffix("weight") }
    let moved = weights.filter { before[$0] != after[$0] }
    #expect(moved.count == weights.count, "\(M.id): every trainable weight moved (\(moved.count) of \(weights.count))")
    return trained
}

@Suite struct SupervisedTests {
    @Test func smoke() throws {
        let d = try Fixture.glyphs()
        var config = Supervised.Config()
        (config.backbone, config.training, config.batchSize) = (Fixture.tinyBackbone, Fixture.tinyTraining(steps: 3), 16)
        _ = try smokeTest(Supervised.self, config: config, input: try Fixture.input(d, try Fixture.split(d, budget: .perClass(8)), regime: .supervised))
    }

    @Test func learns() throws {
        let d = try Fixture.glyphs()
        var config = Supervised.Config()
        (config.backbone, config.batchSize) = (Fixture.tinyBackbone, 32)
        config.training = TrainingSpec(steps: 40, learningRate: 0.05, warmupSteps: 5, validateEvery: 20)
        let trained = try Supervised.train(try Fixture.input(d, try Fixture.split(d, budget: .perClass(16)), regime: .supervised), config: config)
        #expect(trained.summary.finalLoss < Float(log(4.0)))
        let predicted = trained.classifier!(d.testImages).argmaxRows()
        let accuracy = Double(zip(predicted, d.testLabels).filter { $0 == Int($1) }.count) / Double(d.testLabels.count)
        // Four glyph classes: it classifies every test image (chance is 1/4).
        #expect(accuracy >= 0.999, "test accuracy \(accuracy), best validation \(trained.summary.best?.score ?? -1)")
    }

    /// A huge learning rate makes the loss non-finite: training stops with the reason, no crash.
    @Test func aDivergingRunStopsWithItsReason() throws {
        let d = try Fixture.glyphs()
        var config = Supervised.Config()
        (config.backbone, config.batchSize) = (BackboneSpec(name: "mlp", hidden: [16]), 16)
        config.training = TrainingSpec(steps: 40, learningRate: 1e12, nesterov: false, weightDecay: 0, schedule: .constant)
        #expect { _ = try Supervised.train(try Fixture.input(d, try Fixture.split(d, budget: .perClass(8)), regime: .supervised), config: config) } throws: {
            ($0 as? TrainingError)?.message.hasPrefix("training diverged: loss is") == true
        }
    }

    /// The step is cross-entropy of the network's logits on the labeled batch, nothing else.
    @Test func stepIsCrossEntropyOnTheLabeledBatch() throws {
        let d = try Fixture.glyphs()
        var config = Supervised.Config()
        config.backbone = BackboneSpec(name: "mlp", hidden: [8])
        config.labelSmoothing = 0.1
        var rng = RNG(seed: 3)
        let model = try Supervised.build(TrainingData(imageShape: d.imageShape, classCount: 4), config: config, rng: &rng)
        let x = d.trainImages.gatherRows([0, 1, 2]), y = Array(d.trainLabels[0..<3])
        var ctx = ForwardContext(training: true)
        let loss = model.step(TrainingBatch(labeled: LabeledBatch(images: x, labels: y)), &ctx).loss.item
        let logits = model.network(x).scalars
        var expected: Double = 0
        for i in 0..<3 {
            let row = logits[(i * 4)..<(i * 4 + 4)].map(Double.init)
            let m = row.max()!, lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
            for c in 0..<4 { expected -= (c == Int(y[i]) ? 0.9 + 0.025 : 0.025) * (row[c] - lse) / 3 }
        }
        #expect(abs(Double(loss) - expected) < 1e-4)
    }

    @Test func emaWeightsAreValidatedAndReturned() throws {
        let d = try Fixture.glyphs()
        let split = try Fixture.split(d, budget: .perClass(16))
        var config = Supervised.Config()
        (config.backbone, config.batchSize) = (Fixture.tinyBackbone, 32)
        config.training = Fixture.tinyTraining(steps: 10)
        let raw = try Supervised.train(try Fixture.input(d, split, regime: .supervised), config: config)
        config.training.emaDecay = 0.5
        var contexts: [Bool] = []
        let validator = Validator(metric: "val_accuracy") { _, ctx in contexts.append(!ctx.overrides.isEmpty); return 0 }
        let averaged = try Supervised.train(try Fixture.input(d, split, regime: .supervised, validator: validator), config: config)
        #expect(Fixture.weights(raw.classifier!) != Fixture.weights(averaged.classifier!))
        #expect(!contexts.isEmpty && contexts.allSatisfy { $0 }, "validation must see the EMA weights")
    }

    @Test func configErrorsNameTheKey() {
        var c = Supervised.Config()
        c.backbone.name = "resnet"
        #expect { try c.validate() } throws: { ($0 as? ConfigError)?.key == "backbone.name" }
        c = Supervised.Config()
        c.training.learningRate = 0
        #expect { try c.validate() } throws: { ($0 as? ConfigError)?.key == "training.learningRate" }
        c = Supervised.Config()
        c.training.schedule = .step
        #expect { try c.validate() } throws: { ($0 as? ConfigError)?.key == "training.decayEvery" }
    }

    @Test func aSelfSupervisedRegimeGrantsNoLabels() throws {
        let d = try Fixture.glyphs()
        let input = try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised)
        var config = Supervised.Config()
        config.backbone = Fixture.tinyBackbone
        #expect { _ = try Supervised.train(input, config: config) } throws: { "\($0)".contains("needs labeled examples") }
    }
}

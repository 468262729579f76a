import DataCore
import NNCore
import Testing
import TensorCore
@testable import Methods

@Suite struct TrainerTests {
    @Test func stopsWithAReasonWhenTheLossIsNotFinite() {
        let trainer = Trainer(steps: 10, schedule: LearningRateSchedule(base: 0.1), samplesPerStep: 1)
        #expect { _ = try trainer.run(step: { k, _ in k == 3 ? .nan : 1 }) } throws: { error in
            (error as? TrainingError)?.message == "training diverged: loss is nan at step 4 of 10 (learning rate 0.1)"
        }
    }

    @Test func validatesOnScheduleAndKeepsTheBest() throws {
        var scores = [0.5, 0.8, 0.6].makeIterator()
        var bestCalls = 0
        let trainer = Trainer(steps: 6, schedule: LearningRateSchedule(base: 1, shape: .cosine(total: 6, floor: 0)), samplesPerStep: 4,
                              validateEvery: 2, curveEvery: 3)
        let summary = try trainer.run(step: { _, lr in lr }, validate: { scores.next()! }, onBest: { bestCalls += 1 })
        #expect(summary.best?.step == 4 && summary.best?.score == 0.8)
        #expect(bestCalls == 2)
        #expect(summary.curves.filter { $0.name == "val_accuracy" }.map(\.step) == [2, 4, 6])
        #expect(summary.curves.filter { $0.name == "lr" }.map(\.step) == [3, 6])
        #expect(summary.steps == 6)
    }
}

@Suite struct SupervisedTests {
    func tinyGlyphs() throws -> Dataset {
        var c = GlyphsConfig()
        (c.classes, c.instancesPerClass, c.testInstancesPerClass, c.seed) = (4, 24, 6, 5)
        return try Glyphs.make(c)
    }

    @Test func learnsAboveChanceAndParametersMove() throws {
        let d = try tinyGlyphs()
        let split = try LabelSplit(labels: d.trainLabels, classes: 4, budget: .perClass(16), validationPerClass: 4, seed: 1,
                                   datasetHash: d.contentHash, datasetName: d.name)
        var config = Supervised.Config()
        (config.width, config.steps, config.batchSize, config.learningRate, config.warmupSteps, config.validateEvery) = (8, 40, 32, 0.05, 5, 20)
        var initRNG = RNG(seed: 1, key: "supervised/\(d.contentHash)/\(split.hash)", stream: "init")
        let before = Supervised.model(for: d, config: config, rng: &initRNG).net.namedParameters().flatMap { $0.tensor.scalars }
        let (model, _, summary) = try Supervised.train(dataset: d, split: split, config: config, seed: 1)
        let after = model.namedParameters().flatMap { $0.tensor.scalars }
        #expect(before.count == after.count && before != after)
        #expect(summary.finalLoss.isFinite && summary.finalLoss < Float(log(4.0)))
    }

    @Test func emaWeightsAreTheResult() throws {
        let d = try tinyGlyphs()
        let split = try LabelSplit(labels: d.trainLabels, classes: 4, budget: .perClass(16), validationPerClass: 4, seed: 1,
                                   datasetHash: d.contentHash, datasetName: d.name)
        var config = Supervised.Config()
        (config.width, config.steps, config.batchSize, config.warmupSteps) = (8, 10, 32, 2)
        let raw = try Supervised.train(dataset: d, split: split, config: config, seed: 1).model
        config.emaDecay = 0.5
        var contexts: [Bool] = []
        let averaged = try Supervised.train(dataset: d, split: split, config: config, seed: 1, validate: { _, ctx in
            contexts.append(!ctx.overrides.isEmpty); return 0
        }).model
        // Same training, so the raw weights agree; the returned weights are the average, not the last.
        #expect(raw.namedParameters().map(\.tensor.scalars) != averaged.namedParameters().map(\.tensor.scalars))
        #expect(!contexts.isEmpty && contexts.allSatisfy { $0 }, "validation must see the EMA weights")
    }

    @Test func configIsValidated() {
        var c = Supervised.Config()
        c.backbone = "resnet"
        #expect { try c.validate() } throws: { ($0 as? DataError)?.message.contains("backbone 'resnet'") == true }
        c = Supervised.Config()
        c.learningRate = 0
        #expect { try c.validate() } throws: { _ in true }
    }
}

import Foundation

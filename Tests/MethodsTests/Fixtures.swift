import DataCore
import Foundation
import NNCore
import TensorCore
@testable import Methods

/// Small procedural data and the inputs a regime grants, built as the trial executor builds them.
enum Fixture {
    static func glyphs(classes: Int = 4, instances: Int = 24, test: Int = 6, seed: UInt64 = 5) throws -> Dataset {
        var c = GlyphsConfig()
        (c.classes, c.instancesPerClass, c.testInstancesPerClass, c.seed) = (classes, instances, test, seed)
        return try Glyphs.make(c)
    }

    static func split(_ d: Dataset, budget: LabelBudget, validation: Int = 4) throws -> LabelSplit {
        try LabelSplit(labels: d.trainLabels, classes: d.classCount, budget: budget, validationPerClass: validation, seed: 1,
                       datasetHash: d.contentHash, datasetName: d.name)
    }

    /// Labeled pool (and for semi-supervised, the unlabeled pool and its hidden labels).
    static func input(_ d: Dataset, _ split: LabelSplit, regime: Regime, validator: Validator? = nil, seed: UInt64 = 1) throws -> TrainingInput {
        let (data, heldBack) = try TrainingData.granted(to: regime, dataset: d, split: split)
        return TrainingInput(data: data, seed: seed, key: "test/\(d.contentHash)/\(split.hash)", validator: validator, heldBack: heldBack)
    }

    /// Parameters by path, as plain numbers.
    static func weights(_ m: Module) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.path, $0.tensor.scalars) })
    }

    static func tinyTraining(steps: Int, learningRate: Float = 0.05) -> TrainingSpec {
        TrainingSpec(steps: steps, learningRate: learningRate, warmupSteps: 0)
    }

    static let tinyBackbone = BackboneSpec(name: "conv4", width: 8)
}

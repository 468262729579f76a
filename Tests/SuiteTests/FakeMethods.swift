import DataCore
@testable import Methods
import NNCore
import TensorCore

/// Methods of the regimes no real method covers yet, cheap enough for unit tests: an untrained
/// MLP encoder (random features are still features) and a summary of what "training" did.
struct FakeConfig: MethodConfig {
    var steps = 3
    var backbone = "mlp"
    var hidden = [8]
    var fail = false
    func validate() throws { if steps < 1 { throw DataError("fake: steps must be at least 1") } }
    var workload: Workload { Workload(steps: steps, samplesPerStep: 4, backbone: backbone, width: hidden.first ?? 0) }
}

func fakeTrain(_ input: TrainingInput, _ config: FakeConfig, classifier: Bool) throws -> TrainedModel {
    if config.fail { throw TrainingError(message: "training diverged: loss is nan at step 2 of 3 (fake)") }
    var rng = RNG(seed: input.seed, key: "fake", stream: "init")
    let (encoder, features) = Backbone.mlp(inputShape: input.data.imageShape, hidden: config.hidden, rng: &rng)
    let model = Sequential([encoder, Linear(features, input.data.classCount, rng: &rng)])
    let summary = TrainingSummary(steps: config.steps, seconds: 0.01, samplesPerSecond: 1200,
                                  curves: [CurvePoint(step: config.steps, name: "loss", value: 1.5)], best: nil, finalLoss: 1.5)
    return TrainedModel(Evaluables(classifier: classifier ? model : nil, encoder: model.children[0].module, encoderPath: "0",
                                   featureCount: features), summary: summary)
}

enum FakeSemiSupervised: Method {
    static let id = "fake-semi", regime = Regime.semiSupervised, version = "1", summary = "test double"
    static func defaultConfig(budget: LabelBudget, classes: Int) -> FakeConfig { FakeConfig() }
    static func train(_ input: TrainingInput, config: FakeConfig) throws -> TrainedModel { try fakeTrain(input, config, classifier: true) }
}

enum FakeFewShot: Method {
    static let id = "fake-fewshot", regime = Regime.fewShot, version = "1", summary = "test double"
    static func defaultConfig(budget: LabelBudget, classes: Int) -> FakeConfig { FakeConfig() }
    static func train(_ input: TrainingInput, config: FakeConfig) throws -> TrainedModel { try fakeTrain(input, config, classifier: false) }
}

enum FakeSelfSupervised: Method {
    static let id = "fake-ssl", regime = Regime.selfSupervised, version = "2", summary = "test double"
    static func defaultConfig(budget: LabelBudget, classes: Int) -> FakeConfig { FakeConfig() }
    static func train(_ input: TrainingInput, config: FakeConfig) throws -> TrainedModel {
        // Self-supervised methods see no labels: the regime must grant none.
        precondition(input.data.labeled == nil && input.data.unlabeled != nil, "a self-supervised method was given labels")
        return try fakeTrain(input, config, classifier: false)
    }
}

/// A self-supervised method whose own measure fails at evaluation (its `native` protocol).
enum FakeFailingMeasure: Method {
    static let id = "fake-failing-measure", regime = Regime.selfSupervised, version = "1", summary = "test double"
    static let measuresItself = true
    static func defaultConfig(budget: LabelBudget, classes: Int) -> FakeConfig { FakeConfig() }
    static func train(_ input: TrainingInput, config: FakeConfig) throws -> TrainedModel {
        var trainConfig = config
        trainConfig.fail = false
        let trained = try fakeTrain(input, trainConfig, classifier: false)
        var parts = trained.parts
        // `fail`: the measure throws; otherwise it is NaN, which must not be stored either.
        parts.measures = config.fail ? SelfMeasures(values: { _ in throw TrainingError(message: "the measure cannot be taken") })
                                     : SelfMeasures(values: { _ in [("reconstruction_error", .nan), ("inertia", 2)] })
        return TrainedModel(parts, summary: trained.summary)
    }
}

let testMethods = MethodRegistry.all + [AnyMethod(FakeSemiSupervised.self), AnyMethod(FakeFewShot.self), AnyMethod(FakeSelfSupervised.self),
                                        AnyMethod(FakeFailingMeasure.self)]

import DataCore
import NNCore
import TensorCore

/// The supervised baseline: a backbone and a linear head trained with cross-entropy on the labeled
/// part of the budget only. With a per-class budget it is the lower bound every semi-supervised
/// method must beat; with `all` labels, the upper bound.
public enum Supervised: StepMethod {
    public static let id = "supervised"
    public static let regime = Regime.supervised
    /// 2: the framework's streams (batch order and augmentation keys differ from version 1) and
    /// the nested `backbone` / `training` settings.
    public static let version = "2"
    public static let summary = "backbone + linear head, cross-entropy on the labeled examples only (the lower bound; with all labels, the upper bound)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        /// 1,450 steps of 128 fit the 5-minute budget for all of Fashion-MNIST on 2 cores (conv4-64).
        public var training = TrainingSpec(steps: 1450, learningRate: 0.1, warmupSteps: 100, validateEvery: 500)
        public var batchSize = 128
        public var labelSmoothing: Float = 0

        public init() {}

        public func validateOwn() throws {
            guard batchSize >= 1 else { throw ConfigError(key: "batchSize", "must be at least 1, got \(batchSize)") }
            guard labelSmoothing >= 0 && labelSmoothing < 1 else { throw ConfigError(key: "labelSmoothing", "must be in [0, 1), got \(labelSmoothing)") }
        }

        public var samplesPerStep: Int { batchSize }
    }

    /// With a per-class budget the step budget shrinks to about two passes per labeled example
    /// (at least 200 steps): more steps on a tiny set only overfit, at the same schedule shape.
    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config {
        var config = Config()
        if case .perClass(let n) = budget { config.training.steps = min(config.training.steps, max(200, n * classes * 2)) }
        config.training.validateEvery = max(1, config.training.steps / 8)
        return config
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Classifier {
        try Classifier(data, backbone: config.backbone, batchSize: config.batchSize, labelSmoothing: config.labelSmoothing, rng: &rng)
    }

    /// Backbone plus linear head, trained by cross-entropy on labeled batches.
    public final class Classifier: Learner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int
        let labelSmoothing: Float

        init(_ data: TrainingData, backbone: BackboneSpec, batchSize: Int, labelSmoothing: Float, rng: inout RNG) throws {
            (network, features) = try ClassifierNetwork.build(data, backbone: backbone, rng: &rng)
            self.labelSmoothing = labelSmoothing
            needs = StreamNeeds(labeled: (batchSize, .plain))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let x = batch.labeled!
            return StepOutput(loss: Loss.crossEntropy(network.forward(x.images, &ctx), labels: x.labels, labelSmoothing: labelSmoothing))
        }

        public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features) }
    }
}

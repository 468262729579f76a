import DataCore
import NNCore
import TensorCore

/// Rotation prediction (Gidaris et al., "Unsupervised Representation Learning by Predicting Image
/// Rotations", ICLR 2018): every unlabeled image is shown at 0°, 90°, 180° and 270° in the same
/// batch and a 4-way head on the backbone predicts which; the backbone's features are what
/// `linear`, `knn`, `finetune` and `episodes-linear` score. Paper defaults: all four rotations of
/// each image in one batch, SGD with Nesterov momentum 0.9, weight decay 5e-4, learning rate 0.1
/// with step decay.
///
/// Departures: the paper's network is a NIN/AlexNet trained for 100+ epochs; here the suite's
/// conv4 with a linear rotation head, 1,500 steps of 64 images (×4 rotations) with a cosine
/// schedule (about 1.6 epochs of Fashion-MNIST, what fits a CPU budget). The paper found later
/// layers of a deep network less useful than middle ones; conv4's last block is used as the
/// feature, as for every other method here.
public enum Rotation: StepMethod {
    public static let id = "rotation"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "predict which of four rotations was applied to an unlabeled image (Gidaris et al. 2018)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.1, warmupSteps: 50, validateEvery: 250)
        /// Unlabeled images per step (each shown in all four rotations).
        public var batchSize = 64
        /// Apply the weak augmentation before rotating.
        public var augment = true

        public init() {}

        public func validateOwn() throws {
            guard batchSize >= 1 else { throw ConfigError(key: "batchSize", "must be at least 1, got \(batchSize)") }
        }

        public var samplesPerStep: Int { batchSize * 4 }
    }

    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config { Config() }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        if let problem = Pretext.rotationProblem(imageShape: data.imageShape) { throw ConfigError(key: nil, problem) }
        return try Model(data, config: config, rng: &rng)
    }

    public final class Model: Learner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int

        init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (body, features) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            network = Sequential([body, Linear(features, 4, rng: &rng)])
            self.features = features
            needs = StreamNeeds(unlabeled: (config.batchSize, [config.augment ? .weak : .plain]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (images, labels) = Pretext.rotations(batch.unlabeled!.views[0])
            let logits = network.forward(images, &ctx)
            let loss = Loss.crossEntropy(logits, labels: labels)
            let predicted = logits.argmaxRows()
            let right = zip(predicted, labels).filter { $0 == Int($1) }.count
            return StepOutput(loss: loss, scalars: [("rotation_accuracy", Float(right) / Float(labels.count))])
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: nil, encoder: network.children[0].module, encoderPath: "0", featureCount: features)
        }
    }
}

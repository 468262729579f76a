import DataCore
import NNCore
import TensorCore

/// Rotation prediction (Gidaris et al., "Unsupervised Representation Learning by Predicting Image
/// Rotations", ICLR 2018): every unlabeled image is shown at 0°, 90°, 180° and 270° in the same
/// batch and the network predicts which; the lower part of the network is the representation
/// that `linear`, `knn`, `finetune` and `episodes-linear` score. Paper settings kept: all four
/// rotations of each image in one batch, SGD with Nesterov momentum 0.9, weight decay 5e-4,
/// learning rate 0.1. The paper's Table 1 (a RotNet of 4 conv blocks on CIFAR-10) finds the second
/// block's features best for classification (89.1% against 61.7% for the fourth, which
/// specialises in rotations), so with conv4 the representation is the output of the first
/// `featureBlocks` = 2 blocks (64 x 7 x 7 on 28 x 28 images) and the remaining blocks with a
/// linear layer form the rotation head.
///
/// Departures: the paper's network is a NIN trained for 100+ epochs with step decay; here the
/// suite's conv4, 1,500 steps of 64 images (x 4 rotations) with a cosine schedule (about 1.6
/// epochs of Fashion-MNIST: what fits a CPU budget). An `mlp` backbone has no blocks to cut: its
/// whole output is the representation.
public enum Rotation: StepMethod {
    public static let id = "rotation"
    public static let regime = Regime.selfSupervised
    /// 2: the representation is the first `featureBlocks` conv4 blocks (1: the whole backbone).
    public static let version = "2"
    public static let summary = "predict which of four rotations was applied to an unlabeled image (Gidaris et al. 2018)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.1, warmupSteps: 50, validateEvery: 250)
        /// Unlabeled images per step (each shown in all four rotations).
        public var batchSize = 64
        /// Apply the weak augmentation before rotating.
        public var augment = true
        /// conv4 blocks (1-4) whose output is the representation; the rest belong to the head.
        public var featureBlocks = 2

        public init() {}

        public func validateOwn() throws {
            guard batchSize >= 1 else { throw ConfigError(key: "batchSize", "must be at least 1, got \(batchSize)") }
            try PretextNetwork.checkBlocks(featureBlocks)
        }

        public var representationBlocks: Int? { featureBlocks }

        public var samplesPerStep: Int { batchSize * 4 }
        // Measured (selfsup.yaml and the default suite, 2-vCPU Xeon): about 1.2x a supervised step per image.
        public var stepCost: Double { 1.2 }
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        if let problem = Pretext.rotationProblem(imageShape: data.imageShape) { throw ConfigError(key: nil, problem) }
        return try Model(data, config: config, rng: &rng)
    }

    public final class Model: Learner {
        /// [representation, rest of the backbone, rotation classifier].
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int

        init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            (network, features) = try PretextNetwork.build(data, backbone: config.backbone, featureBlocks: config.featureBlocks, outputs: 4, rng: &rng)
            needs = StreamNeeds(unlabeled: (config.batchSize, [config.augment ? .weak : .plain]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (images, labels) = Pretext.rotations(batch.unlabeled!.views[0])
            return .classification(network.forward(images, &ctx), labels: labels, accuracyName: "rotation_accuracy")
        }

        public var evaluables: Evaluables { PretextNetwork.evaluables(network, features: features) }
    }
}

import DataCore
import NNCore
import TensorCore

/// SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
/// ICML 2020): two augmented views of each image pass through the encoder and a projection head
/// (an MLP with one hidden layer as wide as the features, ReLU, output `projection` = 128), and
/// NT-Xent with temperature τ pulls the two views together against the batch's other 2N − 2
/// embeddings. The representation is the encoder's output, before the head (the paper's finding
/// that it transfers better than the projection); `featureBlocks` < 4 reads it after the first
/// blocks instead (`EncoderCut`). Kept: the head, NT-Xent, τ = 0.5 (the paper's
/// CIFAR-10 setting), both views in one batch-norm batch (its global BN).
///
/// Departures, for a 2-core CPU: batches of 256 images (the paper: 4,096 with LARS); Adam with a
/// cosine schedule and the paper's weight decay 1e-6 instead of LARS, which the engine does not
/// have and which matters for the paper's large batches; 1,500 steps; the views are the suite's
/// strong augmentation (RandAugment-style operations and Cutout after a shift and flip) in place
/// of random resized crops, colour distortion and blur, which greyscale 28 × 28 images do not
/// support as the paper applies them.
public enum SimCLR: StepMethod {
    public static let id = "simclr"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "two augmented views agree through a projection head under NT-Xent (Chen et al. 2020)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 1e-3, optimizer: .adam, weightDecay: 1e-6, warmupSteps: 50,
                                           validateEvery: 250)
        /// Images per step (each in two views).
        public var batchSize = 256
        public var temperature: Float = 0.5
        /// Width of the projection head's output.
        public var projection = 128
        /// conv4 blocks (1-4) whose output is the representation evaluation scores (4: the encoder's
        /// output, the paper's); training does not depend on it (`EncoderCut`).
        public var featureBlocks = 4

        public init() {}

        public func validateOwn() throws {
            try PretextNetwork.checkBlocks(featureBlocks)
            try Check.atLeast(batchSize, 2, key: "batchSize")
            try Check.positive(temperature, key: "temperature")
            try Check.atLeast(projection, 1, key: "projection")
        }

        public var representationBlocks: Int? { featureBlocks }

        public var samplesPerStep: Int { 2 * batchSize }
    }

    public final class Model: ConfiguredLearner {
        /// [encoder, projection head].
        public let network: Sequential
        public let needs: StreamNeeds
        let cut: EncoderCut
        let features: Int
        let temperature: Float

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (encoder, width) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            cut = EncoderCut(featureBlocks: config.featureBlocks, backbone: config.backbone, imageShape: data.imageShape)
            let head = Sequential([Linear(width, width, rng: &rng), ReLU(), Linear(width, config.projection, rng: &rng)])
            (network, features, temperature) = (Sequential([encoder, head]), width, config.temperature)
            needs = StreamNeeds(unlabeled: (config.batchSize, [.strong, .strong]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let views = network.forwardParts(batch.unlabeled!.views, &ctx)
            let (loss, accuracy) = Contrastive.ntXent(views[0], views[1], temperature: temperature)
            return StepOutput(loss: loss, scalars: [("contrastive_accuracy", accuracy)])
        }

        public var evaluables: Evaluables {
            cut.evaluables(network, features: features)
        }
    }
}

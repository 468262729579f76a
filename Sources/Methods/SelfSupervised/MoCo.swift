import DataCore
import NNCore
import TensorCore

/// MoCo (He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR
/// 2020): a query encoder trained by InfoNCE (τ = 0.07) to pick its key, the other view of the
/// same image embedded by a momentum encoder, among a queue of K keys of earlier batches; the
/// momentum encoder is the exponential average of the query encoder (θ_k ← m θ_k + (1 − m) θ_q)
/// and receives no gradient; after each step the batch's keys are enqueued and the oldest
/// dequeued. The encoder is followed by a linear layer to 128 dimensions (MoCo v1) and the
/// representation is the query encoder's output before it (`featureBlocks` < 4 reads it after the
/// first blocks instead, `EncoderCut`). Shuffling BN is kept: queries and keys
/// pass through `shuffleGroups` separate batch-norm batches, the keys' rows shuffled across them
/// (the groups play the paper's GPUs). The queue starts with random unit vectors, as the
/// reference code does.
///
/// Departures, for a 2-core CPU: batches of 128 (the paper: 256), a queue of 4,096 keys (65,536,
/// about 32 of these batches, so no key is staler than the paper's), momentum m = 0.99 (the
/// paper's ablation, Table 1 of its §4.1, gives 59.2% at 0.99 against 59.0% at 0.999; over a
/// 1,500-step run the key encoder at 0.999 would still weigh the initial weights), SGD with the
/// paper's momentum 0.9 and weight decay 1e-4 at learning rate 0.03 with a cosine schedule, the
/// suite's strong augmentation for both views.
public enum MoCo: StepMethod {
    public static let id = "moco"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "InfoNCE against a momentum encoder's keys and a queue of negatives (He et al. 2020)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.03, nesterov: false, weightDecay: 1e-4, warmupSteps: 50, validateEvery: 250)
        public var batchSize = 128
        public var queueSize = 4096
        /// Momentum m of the key encoder.
        public var momentum: Float = 0.99
        public var temperature: Float = 0.07
        /// Width of the embedding.
        public var dimension = 128
        /// Batch-norm groups for shuffling BN (1: off).
        public var shuffleGroups = 2
        /// conv4 blocks (1-4) whose output is the representation evaluation scores (4: the encoder's
        /// output, the paper's); training does not depend on it (`EncoderCut`).
        public var featureBlocks = 4

        public init() {}

        public func validateOwn() throws {
            try PretextNetwork.checkBlocks(featureBlocks)
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(queueSize, 1, key: "queueSize")
            guard momentum >= 0 && momentum < 1 else { throw ConfigError(key: "momentum", "must be in [0, 1), got \(momentum)") }
            try Check.positive(temperature, key: "temperature")
            try Check.atLeast(dimension, 1, key: "dimension")
            try Check.atLeast(shuffleGroups, 1, key: "shuffleGroups")
        }

        public var representationBlocks: Int? { featureBlocks }

        public var samplesPerStep: Int { 2 * batchSize }
    }

    public final class Model: ConfiguredLearner {
        /// The query encoder: [encoder, linear embedding].
        public let network: Sequential
        public let needs: StreamNeeds
        let cut: EncoderCut
        let features: Int
        let config: Config
        /// The momentum (key) encoder, as weights by path of `network`.
        public private(set) var keyEncoder: EMA
        public private(set) var queue: FeatureQueue
        /// The keys of the step being trained, enqueued after its update.
        public private(set) var pendingKeys: Tensor?

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (encoder, width) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            cut = EncoderCut(featureBlocks: config.featureBlocks, backbone: config.backbone, imageShape: data.imageShape)
            (network, features, self.config) = (Sequential([encoder, Linear(width, config.dimension, rng: &rng)]), width, config)
            keyEncoder = EMA(of: network, decay: config.momentum)
            queue = FeatureQueue(capacity: config.queueSize, dimension: config.dimension)
            queue.enqueue(Tensor.randn([config.queueSize, config.dimension], rng: &rng).l2Normalized())
            needs = StreamNeeds(unlabeled: (config.batchSize, [.strong, .strong]))
        }

        /// The keys of `images`: the momentum encoder's embeddings, without a graph, through
        /// shuffled batch-norm groups (running statistics are the average's, not updated here).
        public func keys(_ images: Tensor, rng: inout RNG) -> Tensor {
            var order = Array(0..<images.shape[0])
            rng.shuffle(&order)
            var ctx = ForwardContext(training: true, rng: rng.derive("key"), overrides: keyEncoder.shadow, updatesRunningStatistics: false)
            return noGrad { Contrastive.groupedForward(network, images, groups: config.shuffleGroups, order: order, &ctx).l2Normalized() }
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let u = batch.unlabeled!
            let q = Contrastive.groupedForward(network, u.views[0], groups: config.shuffleGroups, &ctx).l2Normalized()
            let k = keys(u.views[1], rng: &ctx.rng)
            pendingKeys = k
            let (loss, accuracy) = Contrastive.infoNCE(queries: q, keys: k, negatives: queue.contents, temperature: config.temperature)
            return StepOutput(loss: loss, scalars: [("contrastive_accuracy", accuracy)])
        }

        /// The momentum update, then the step's keys replace the oldest in the queue.
        public func afterUpdate() {
            keyEncoder.update(from: network)
            if let k = pendingKeys { queue.enqueue(k) }
            pendingKeys = nil
        }

        public var evaluables: Evaluables {
            cut.evaluables(network, features: features)
        }
    }
}

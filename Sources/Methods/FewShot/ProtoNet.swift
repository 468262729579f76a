import DataCore
import NNCore
import TensorCore

/// Prototypical Networks (Snell et al., "Prototypical Networks for Few-shot Learning", NeurIPS
/// 2017). Episodic training on the base classes: each class's prototype is the mean embedding of
/// its support examples, and a query is classified by a softmax over negative squared Euclidean
/// distances to the prototypes. The same rule is the method's adapter for `episodes`. Paper
/// defaults: conv4-64, Adam at 1e-3 halved every 2,000 episodes, training with more ways than
/// testing (the paper's 60-way for Omniglot; here 20-way, `trainWay`), as many shots as at test
/// time (`trainShot`), 15 queries per class.
///
/// Departures: the paper trains until validation stops improving (about 20k+ episodes); the
/// default here is 2,000 episodes with the rate halved every 500 (`training.decayEvery`),
/// validated on validation-class episodes.
public enum ProtoNet: StepMethod {
    public static let id = "protonet"
    public static let regime = Regime.fewShot
    public static let version = "1"
    public static let adapts = true
    public static let summary = "class means of support embeddings as prototypes, squared Euclidean distance (Snell et al. 2017)"

    public struct Config: EpisodicConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec.adam(decayEvery: 500)
        public var trainWay = 20
        public var trainShot = 5
        public var trainQuery = 15

        public init() {}

        public func validateOwn() throws {
            try validateEpisodes()
        }

        public var samplesPerStep: Int { episodeSize }
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        try Model(data, config: config, rng: &rng)
    }

    public final class Model: Learner, FewShotAdapter {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int

        init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (body, features) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            (network, self.features) = (body, features)
            needs = StreamNeeds(episodes: config.episodeNeeds)
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let e = batch.episode!
            let logits = ProtoNet.logits(network, support: e.support, supportLabels: e.supportLabels, way: e.way, query: e.query, &ctx)
            return .classification(logits, labels: e.queryLabels, accuracyName: "episode_accuracy")
        }

        public func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, context: ForwardContext) -> Tensor {
            noGrad {
                var ctx = context
                return ProtoNet.logits(network, support: support, supportLabels: supportLabels, way: way, query: query, &ctx)
            }
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: nil, encoder: network, encoderPath: "", featureCount: features, adapter: self)
        }
    }

    /// Support and query embedded in one batch (one set of batch statistics, as the reference
    /// implementation does), prototypes as class means, logits −‖q − c_k‖².
    static func logits(_ encoder: Module, support: Tensor, supportLabels: [Int32], way: Int, query: Tensor,
                       _ ctx: inout ForwardContext) -> Tensor {
        let s = support.shape[0]
        let z = encoder.forward(concat([support, query], axis: 0), &ctx)
        let prototypes = classMeans(z.slice(axis: 0, 0, s), labels: supportLabels, classes: way)
        return -squaredDistances(z.slice(axis: 0, s, z.shape[0]), prototypes)
    }

    /// Row k: the mean of the rows of `x` labelled k (a matrix product with the averaging weights,
    /// so it is differentiable).
    public static func classMeans(_ x: Tensor, labels: [Int32], classes: Int) -> Tensor {
        var counts = [Float](repeating: 0, count: classes)
        for y in labels { counts[Int(y)] += 1 }
        var weights = [Float](repeating: 0, count: classes * labels.count)
        for (i, y) in labels.enumerated() { weights[Int(y) * labels.count + i] = 1 / counts[Int(y)] }
        return matmul(Tensor(shape: [classes, labels.count], scalars: weights), x)
    }

    /// ‖a_i − b_j‖² for every row pair: [A, B].
    public static func squaredDistances(_ a: Tensor, _ b: Tensor) -> Tensor {
        let aa = (a * a).sum(axis: 1, keepDims: true)
        let bb = (b * b).sum(axis: 1, keepDims: true).transposed()
        return aa + bb - matmul(a, b, transposeB: true) * 2
    }
}

import DataCore
import NNCore
import TensorCore

/// The streams a learner draws one step's batch from, with their sizes and views.
public struct StreamNeeds: Equatable, Sendable {
    public var labeled: (batchSize: Int, view: View)?
    public var unlabeled: (batchSize: Int, views: [View])?
    public var episodes: (way: Int, shot: Int, query: Int)?

    public init(labeled: (batchSize: Int, view: View)? = nil, unlabeled: (batchSize: Int, views: [View])? = nil,
                episodes: (way: Int, shot: Int, query: Int)? = nil) {
        (self.labeled, self.unlabeled, self.episodes) = (labeled, unlabeled, episodes)
    }

    public static func == (a: StreamNeeds, b: StreamNeeds) -> Bool {
        a.labeled?.batchSize == b.labeled?.batchSize && a.labeled?.view == b.labeled?.view
            && a.unlabeled?.batchSize == b.unlabeled?.batchSize && a.unlabeled?.views == b.unlabeled?.views
            && a.episodes?.way == b.episodes?.way && a.episodes?.shot == b.episodes?.shot && a.episodes?.query == b.episodes?.query
    }
}

/// One step's typed input: only the streams the learner asked for are filled.
public struct TrainingBatch {
    public var labeled: LabeledBatch?
    public var unlabeled: UnlabeledBatch?
    public var episode: EpisodeBatch?

    public init(labeled: LabeledBatch? = nil, unlabeled: UnlabeledBatch? = nil, episode: EpisodeBatch? = nil) {
        (self.labeled, self.unlabeled, self.episode) = (labeled, unlabeled, episode)
    }
}

/// Pseudo-labels a step assigned to its unlabeled batch, for the framework to audit against the
/// held-back labels (`pseudo_label_accuracy`); `mask` marks those the loss used.
public struct PseudoLabels {
    public var predicted: [Int32]
    public var mask: [Bool]?
    public init(predicted: [Int32], mask: [Bool]? = nil) { (self.predicted, self.mask) = (predicted, mask) }
}

/// What one step computed: the loss to differentiate and any named scalars to record.
public struct StepOutput {
    public var loss: Tensor
    /// Extra curves, e.g. `loss_x`, `loss_u`, `mask_rate` (recorded smoothed, like `loss`).
    public var scalars: [(name: String, value: Float)]
    public var pseudoLabels: PseudoLabels?

    public init(loss: Tensor, scalars: [(name: String, value: Float)] = [], pseudoLabels: PseudoLabels? = nil) {
        (self.loss, self.scalars, self.pseudoLabels) = (loss, scalars, pseudoLabels)
    }
}

/// A method's model and step: what a gradient-trained method writes. The trainer owns the rest.
public protocol Learner: AnyObject {
    associatedtype Network: Module
    /// Every parameter the optimizer trains (and the buffers EMA and best-weights keep), by path.
    var network: Network { get }
    var needs: StreamNeeds { get }
    /// The loss of one batch, with `ctx` in training mode carrying the differentiable parameters
    /// (read them through the network's layers, or `ctx.overrides[path]`).
    func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput
    /// After each optimizer update (momentum encoders, feature queues).
    func afterUpdate()
    /// The parts evaluation scores.
    var evaluables: Evaluables { get }
}

extension Learner {
    public func afterUpdate() {}
}

/// A method trained by gradient steps: it builds its learner; `train` is the framework's.
public protocol StepMethod: Method where Config: StepConfig {
    associatedtype Model: Learner
    static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model
}

extension StepMethod {
    public static func train(_ input: TrainingInput, config: Config) throws -> TrainedModel {
        try config.validate()
        var rng = input.rng("init")
        let learner = try build(input.data, config: config, rng: &rng)
        return try Trainer.fit(learner, input: input, spec: config.training, method: id)
    }
}

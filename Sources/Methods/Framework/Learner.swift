import DataCore
import NNCore
import TensorCore

/// The streams a learner draws one step's batch from, with their sizes and views.
public struct StreamNeeds: Equatable, Sendable {
    public var labeled: (batchSize: Int, view: View)?
    public var unlabeled: (batchSize: Int, views: [View])?
    public var episodes: (way: Int, shot: Int, query: Int)?
    /// Episodes per step (a meta-batch of tasks).
    public var episodesPerStep: Int

    public init(labeled: (batchSize: Int, view: View)? = nil, unlabeled: (batchSize: Int, views: [View])? = nil,
                episodes: (way: Int, shot: Int, query: Int)? = nil, episodesPerStep: Int = 1) {
        (self.labeled, self.unlabeled, self.episodes, self.episodesPerStep) = (labeled, unlabeled, episodes, episodesPerStep)
    }

    public static func == (a: StreamNeeds, b: StreamNeeds) -> Bool {
        a.labeled?.batchSize == b.labeled?.batchSize && a.labeled?.view == b.labeled?.view
            && a.unlabeled?.batchSize == b.unlabeled?.batchSize && a.unlabeled?.views == b.unlabeled?.views
            && a.episodes?.way == b.episodes?.way && a.episodes?.shot == b.episodes?.shot && a.episodes?.query == b.episodes?.query
            && a.episodesPerStep == b.episodesPerStep
    }
}

/// One step's typed input: only the streams the learner asked for are filled, and where the step
/// stands in the run (for ramp-ups).
public struct TrainingBatch {
    public var labeled: LabeledBatch?
    public var unlabeled: UnlabeledBatch?
    /// The step's episodes (one unless the learner asks for a meta-batch).
    public var episodes: [EpisodeBatch]
    /// This step (0-based) and the run's step budget.
    public var step: Int
    public var steps: Int

    public init(labeled: LabeledBatch? = nil, unlabeled: UnlabeledBatch? = nil, episode: EpisodeBatch? = nil, step: Int = 0, steps: Int = 1) {
        self.init(labeled: labeled, unlabeled: unlabeled, episodes: episode.map { [$0] } ?? [], step: step, steps: steps)
    }

    public init(labeled: LabeledBatch?, unlabeled: UnlabeledBatch?, episodes: [EpisodeBatch], step: Int = 0, steps: Int = 1) {
        (self.labeled, self.unlabeled, self.episodes, self.step, self.steps) = (labeled, unlabeled, episodes, step, steps)
    }

    /// The first episode.
    public var episode: EpisodeBatch? { episodes.first }
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

extension StepOutput {
    /// Cross-entropy of `logits` against `labels`, with the batch's accuracy recorded as `name`
    /// (`episode_accuracy`, `rotation_accuracy`, ...).
    public static func classification(_ logits: Tensor, labels: [Int32], accuracyName name: String) -> StepOutput {
        StepOutput(loss: Loss.crossEntropy(logits, labels: labels), scalars: [(name, accuracy(logits, labels))])
    }

    /// Fraction of rows whose arg-max is the label.
    public static func accuracy(_ logits: Tensor, _ labels: [Int32]) -> Float {
        Float(zip(logits.argmaxRows(), labels).filter { $0 == Int($1) }.count) / Float(max(1, labels.count))
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
    /// Before step `step` (0-based) of `steps`, outside any graph: work over a whole pool that is
    /// not a gradient step (label propagation's graph, a new teacher's pseudo-labels).
    func prepare(step: Int, of steps: Int) throws
    /// After each optimizer update (momentum encoders, feature queues).
    func afterUpdate()
    /// The parts evaluation scores.
    var evaluables: Evaluables { get }
    /// Weights by path that validation scores and training returns instead of the raw ones (a
    /// mean teacher's); nil: the framework's EMA when `emaDecay` is set, else the raw weights.
    var evaluationWeights: [String: Tensor]? { get }
}

extension Learner {
    public func prepare(step: Int, of steps: Int) throws {}
    public func afterUpdate() {}
    public var evaluationWeights: [String: Tensor]? { nil }
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

extension StepMethod {
    /// The config's own defaults at every budget (a method whose settings depend on the budget
    /// says so in its own `defaultConfig`).
    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config { Config() }
}

/// A learner made from the granted data and its method's config alone.
public protocol ConfiguredLearner: Learner {
    associatedtype Settings
    init(_ data: TrainingData, config: Settings, rng: inout RNG) throws
}

extension StepMethod where Model: ConfiguredLearner, Model.Settings == Config {
    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        try Model(data, config: config, rng: &rng)
    }
}

/// The config of a method trained on episodes of the base classes: their way, shot and queries.
public protocol EpisodicConfig: StepConfig {
    var trainWay: Int { get set }
    var trainShot: Int { get set }
    var trainQuery: Int { get set }
}

extension EpisodicConfig {
    public func validateEpisodes() throws {
        try Check.atLeast(trainWay, 2, key: "trainWay")
        try Check.atLeast(trainShot, 1, key: "trainShot")
        try Check.atLeast(trainQuery, 1, key: "trainQuery")
    }

    /// Images of one training episode.
    public var episodeSize: Int { trainWay * (trainShot + trainQuery) }

    public var episodeNeeds: (way: Int, shot: Int, query: Int) { (trainWay, trainShot, trainQuery) }
}

extension StepMethod where Config: EpisodicConfig {
    /// The defaults, at most as many ways as the base classes (a small class split trains at the
    /// way there is).
    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config {
        var c = Config()
        c.trainWay = max(2, min(c.trainWay, classes))
        return c
    }
}

import DataCore
import NNCore
import TensorCore

/// Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast
/// Adaptation of Deep Networks", ICML 2017). For each task of a meta-batch, fast weights
/// θ′ = θ − α ∇θ L_support(θ) (repeated `innerSteps` times) are computed functionally (the
/// network runs with them as substituted parameters) and the meta-loss is the query loss at θ′;
/// its gradient with respect to θ runs back through the inner updates, second-order terms
/// included (`firstOrder: true` drops them: FOMAML, the gradient at θ′ applied to θ). The adapter
/// runs the inner loop on an episode's support set (`adaptSteps` steps) and classifies the query
/// with the fast weights. Batch norm as in the paper: always the statistics of the batch at hand
/// (support during adaptation, query at evaluation), never running averages. Paper settings for
/// Omniglot: α = 0.4, one inner step in training and three at test, Adam at 1e-3 for the
/// meta-update, a linear head of `trainWay` outputs learned as part of θ.
///
/// Departures: a meta-batch of 4 tasks instead of 32 (CPU), and fewer meta-steps (2,000 instead of
/// 60,000); conv4 with max-pooling (the paper's miniImageNet variant) on the suite's images. An
/// episode with a different way than `trainWay` uses the head's first `way` rows (fewer) or its
/// rows repeated (more), a choice the paper never needed (it trains one model per setting).
public enum MAML: StepMethod {
    public static let id = "maml"
    public static let regime = Regime.fewShot
    public static let version = "1"
    public static let adapts = true
    public static let summary = "an initialisation from which a few gradient steps on the support set fit the task (Finn et al. 2017)"

    public struct Config: EpisodicConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec.adam()
        public var trainWay = 5
        public var trainShot = 1
        public var trainQuery = 15
        public var tasksPerStep = 4
        public var innerLearningRate: Float = 0.4
        public var innerSteps = 1
        public var adaptSteps = 3
        public var firstOrder = false

        public init() {}

        public func validateOwn() throws {
            try validateEpisodes()
            try Check.atLeast(tasksPerStep, 1, key: "tasksPerStep")
            try Check.positive(innerLearningRate, key: "innerLearningRate")
            try Check.atLeast(innerSteps, 1, key: "innerSteps")
            try Check.atLeast(adaptSteps, 1, key: "adaptSteps")
        }

        public var samplesPerStep: Int { tasksPerStep * episodeSize }
        // Measured (fewshot.yaml, conv4-64, 2-vCPU Xeon): a second-order meta-step 1.4x a supervised
        // step per image, first-order 1.1x; the adapter 2.2 forward passes per image at 3 steps.
        public var stepCost: Double { firstOrder ? 1.1 : 1.4 }
        public var adapterCost: Double { 1 + 0.4 * Double(adaptSteps) }
    }

    /// The fast weights after `steps` SGD steps of rate `rate` on the support loss from `start`
    /// (parameters by path; `context` supplies the mode, randomness and any other weights). With
    /// `secondOrder` the updates stay in the graph (their gradients are differentiated too);
    /// without, each gradient is a constant.
    public static func adapt(_ network: Module, start: [String: Tensor], support: Tensor, labels: [Int32], way: Int,
                             steps: Int, rate: Float, secondOrder: Bool, _ context: ForwardContext) -> [String: Tensor] {
        var fast = start
        let paths = start.keys.sorted()
        for _ in 0..<steps {
            let loss = Loss.crossEntropy(logits(network, support, way: way, weights: fast, context), labels: labels)
            let g = gradients(of: loss, wrt: paths.map { fast[$0]! }, createGraph: secondOrder)
            for (path, gradient) in zip(paths, g) { fast[path] = fast[path]! - (secondOrder ? gradient : gradient.detached) * rate }
        }
        return fast
    }

    /// The network's logits under `weights` (over the first `way` outputs of the head, repeated
    /// when the episode has more classes than the head), batch statistics of `x` itself.
    public static func logits(_ network: Module, _ x: Tensor, way: Int, weights: [String: Tensor], _ context: ForwardContext) -> Tensor {
        var c = context
        c.training = true
        c.updatesRunningStatistics = false
        c.overrides = context.overrides.merging(weights) { $1 }
        let out = network.forward(x, &c)
        let width = out.shape[1]
        return way == width ? out : concat((0..<way).map { out.slice(axis: 1, $0 % width, $0 % width + 1) }, axis: 1)
    }

    public final class Model: ConfiguredLearner, FewShotAdapter {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int
        let config: Config

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (body, features) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            network = Sequential([body, Linear(features, config.trainWay, rng: &rng)])
            (self.features, self.config) = (features, config)
            needs = StreamNeeds(episodes: config.episodeNeeds, episodesPerStep: config.tasksPerStep)
        }

        /// The mean query loss over the meta-batch at each task's fast weights.
        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            var losses: [Tensor] = [], accuracies: [Float] = []
            for e in batch.episodes {
                let fast = MAML.adapt(network, start: ctx.overrides, support: e.support, labels: e.supportLabels, way: e.way,
                                      steps: config.innerSteps, rate: config.innerLearningRate, secondOrder: !config.firstOrder, ctx)
                let q = MAML.logits(network, e.query, way: e.way, weights: fast, ctx)
                losses.append(Loss.crossEntropy(q, labels: e.queryLabels))
                accuracies.append(StepOutput.accuracy(q, e.queryLabels))
            }
            let loss = losses.dropFirst().reduce(losses[0], +) * (1 / Float(losses.count))
            // Every task of a meta-batch has as many queries, so the mean of the tasks' accuracies is the batch's.
            return StepOutput(loss: loss, scalars: [("episode_accuracy", accuracies.reduce(0, +) / Float(accuracies.count))])
        }

        public func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, context: ForwardContext) -> Tensor {
            // Start from the weights in `context` (the EMA's during validation) or the network's own.
            let start = Dictionary(uniqueKeysWithValues: network.namedParameters().map { ($0.path, (context.overrides[$0.path] ?? $0.tensor).detached.requiringGrad()) })
            let fast = MAML.adapt(network, start: start, support: support, labels: supportLabels, way: way,
                                  steps: config.adaptSteps, rate: config.innerLearningRate, secondOrder: false, context)
            return noGrad { MAML.logits(network, query, way: way, weights: fast.mapValues(\.detached), context) }
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: nil, encoder: network.children[0].module, encoderPath: "0", featureCount: features, adapter: self)
        }
    }
}

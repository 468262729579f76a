import DataCore
import NNCore
import TensorCore

/// The supervised baseline: a backbone and a linear head trained with cross-entropy on the labeled
/// part of the budget only. With a per-class budget it is the lower bound every semi-supervised
/// method must beat; with `all` labels, the upper bound.
public enum Supervised: Method {
    public static let id = "supervised"
    public static let regime = Regime.supervised
    public static let version = "1"
    public static let summary = "backbone + linear head, cross-entropy on the labeled examples only (the lower bound; with all labels, the upper bound)"

    public struct Config: MethodConfig {
        public var backbone = "conv4"
        public var width = 64
        public var hidden = [256]
        /// 1,450 steps of 128 fit the 5-minute budget for all of Fashion-MNIST on 2 cores (conv4-64).
        public var steps = 1450
        public var batchSize = 128
        public var learningRate: Float = 0.1
        public var momentum: Float = 0.9
        public var nesterov = true
        public var weightDecay: Float = 5e-4
        public var labelSmoothing: Float = 0
        public var warmupSteps = 100
        public var validateEvery = 500
        /// Decay of an exponential moving average of the weights used for validation and as the
        /// result (0: the raw weights). 0.999 is FixMatch's value.
        public var emaDecay: Float = 0

        public init() {}

        public func validate() throws {
            guard ["conv4", "mlp"].contains(backbone) else { throw DataError("supervised: backbone '\(backbone)' is not one of conv4, mlp") }
            guard width >= 1, steps >= 1, batchSize >= 1, !hidden.contains(where: { $0 < 1 }) else {
                throw DataError("supervised: width, hidden sizes, steps and batch size must be at least 1")
            }
            guard learningRate > 0, momentum >= 0, momentum < 1, weightDecay >= 0, labelSmoothing >= 0, labelSmoothing < 1 else {
                throw DataError("supervised: learning rate must be > 0, momentum and label smoothing in [0, 1), weight decay >= 0")
            }
            guard emaDecay >= 0 && emaDecay < 1 else { throw DataError("supervised: emaDecay \(emaDecay) must be 0 (off) or in (0, 1)") }
        }

        public var workload: Workload { Workload(steps: steps, samplesPerStep: batchSize, backbone: backbone, width: backbone == "mlp" ? hidden.first ?? 0 : width) }
    }

    /// With a per-class budget the step budget shrinks to about two passes per labeled example
    /// (at least 200 steps): more steps on a tiny set only overfit, at the same schedule shape.
    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config {
        var config = Config()
        if case .perClass(let n) = budget { config.steps = min(config.steps, max(200, n * classes * 2)) }
        config.validateEvery = max(1, config.steps / 8)
        return config
    }

    public static func train(_ input: TrainingInput, config: Config) throws -> TrainedModel {
        let (model, features, summary) = try train(dataset: input.dataset, split: input.split, config: config, seed: input.seed,
                                         validate: input.validate, observer: input.observer)
        let encoder = model.children[0].module
        return TrainedModel(classifier: model, encoder: encoder, encoderPath: "0", featureCount: features,
                            summary: summary)
    }
}

extension Supervised {
    /// Backbone plus linear head for `dataset`'s image shape and classes.
    public static func model(for dataset: Dataset, config: Config, rng: inout RNG) -> (net: Sequential, features: Int) {
        let (body, features) = config.backbone == "mlp"
            ? Backbone.mlp(inputShape: dataset.imageShape, hidden: config.hidden, rng: &rng)
            : Backbone.conv4(inputShape: dataset.imageShape, width: config.width, rng: &rng)
        return (Sequential([body, Linear(features, dataset.classCount, rng: &rng)]), features)
    }

    /// Trains on `split.labeled` (the whole non-validation part for `all`); `validate` scores the
    /// model in the context it is given (the EMA weights' when `emaDecay` is set) during training,
    /// and the best-scoring weights are the ones returned.
    public static func train(dataset: Dataset, split: LabelSplit, config: Config, seed: UInt64,
                             validate: ((Module, ForwardContext) -> Double)? = nil,
                             observer: TrainingObserver? = nil) throws -> (model: Sequential, features: Int, summary: TrainingSummary) {
        try config.validate()
        guard !split.labeled.isEmpty else { throw DataError("supervised: the label budget grants no labeled examples") }
        let key = "supervised/\(dataset.contentHash)/\(split.hash)"
        var initRNG = RNG(seed: seed, key: key, stream: "init")
        let (model, features) = model(for: dataset, config: config, rng: &initRNG)
        var batches = try BatchStream(indices: split.labeled, batchSize: min(config.batchSize, split.labeled.count),
                                      rng: RNG(seed: seed, key: key, stream: "batches"))
        let optimizer = SGD(learningRate: config.learningRate, momentum: config.momentum, nesterov: config.nesterov,
                            weightDecay: config.weightDecay)
        let schedule = LearningRateSchedule(base: config.learningRate, shape: .cosine(total: config.steps, floor: 0),
                                            warmupSteps: config.warmupSteps)
        let trainer = Trainer(steps: config.steps, schedule: schedule, samplesPerStep: batches.batchSize,
                              validateEvery: validate == nil ? 0 : config.validateEvery, observer: observer)
        var best: [String: Tensor]?
        var ema = config.emaDecay > 0 ? EMA(of: model, decay: config.emaDecay) : nil
        func current() -> [String: Tensor] {
            ema?.shadow ?? Dictionary(uniqueKeysWithValues: (model.namedParameters() + model.namedBuffers()).map { ($0.path, $0.tensor) })
        }
        var dropoutRNG = RNG(seed: seed, key: key, stream: "dropout")
        let summary = try trainer.run(step: { _, lr in
            optimizer.learningRate = lr
            let batch = batches.next()
            let x = dataset.trainImages.gatherRows(batch)
            let y = batch.map { dataset.trainLabels[$0] }
            let loss = supervisedStep(model, optimizer, x: x, labels: y, rng: dropoutRNG.derive("step"), labelSmoothing: config.labelSmoothing)
            ema?.update(from: model)
            return loss
        }, validate: validate.map { v in { v(model, ema?.context() ?? .eval) } }, onBest: {
            best = current()
        })
        model.load(best ?? current())
        return (model, features, summary)
    }
}

import DataCore
import NNCore
import TensorCore

/// Mean Teacher (Tarvainen & Valpola, "Mean teachers are better role models", NeurIPS 2017): a
/// teacher whose weights are the exponential moving average of the student's,
/// θ′ₜ = α θ′ₜ₋₁ + (1 − α) θₜ with α = min(1 − 1/(t + 1), α₀), gives targets on a differently
/// augmented view of each unlabeled image; the student is trained by cross-entropy on its labels
/// plus w(t) times the mean squared difference of the two softmax outputs. Paper settings: α₀ =
/// 0.99 during the ramp-up and 0.999 after, consistency weight 100 with the sigmoid ramp-up,
/// dropout 0.5, the teacher evaluated. No gradient reaches the teacher: it runs without a graph,
/// on its own weights, in training mode (its own noise) without touching running statistics.
///
/// Departures: the ramp-up is a fraction of the step budget (`rampUp`, the paper's first 80 of
/// 300 epochs as 0.27); conv4 instead of the paper's 13-layer network; weak augmentation only.
public enum MeanTeacher: StepMethod {
    public static let id = "mean-teacher"
    public static let regime = Regime.semiSupervised
    public static let version = "1"
    public static let summary = "an EMA teacher's predictions on another view are the student's consistency targets (Tarvainen & Valpola 2017)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.03, validateEvery: 250)
        public var batchSize = 64
        public var unlabeledRatio = 3
        public var consistencyWeight: Float = 100
        public var rampUp: Float = 0.27
        /// The teacher's EMA decay during the ramp-up and after it.
        public var rampUpDecay: Float = 0.99
        public var teacherDecay: Float = 0.999
        public var dropout: Float = 0.5

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(unlabeledRatio, 1, key: "unlabeledRatio")
            try Check.nonNegative(consistencyWeight, key: "consistencyWeight")
            try RampUp.checkFraction(rampUp, key: "rampUp")
            for (key, decay) in [("rampUpDecay", rampUpDecay), ("teacherDecay", teacherDecay)] where !(decay >= 0 && decay < 1) {
                throw ConfigError(key: key, "an EMA decay must be in [0, 1), got \(decay)")
            }
            try ClassifierNetwork.checkDropout(dropout, key: "dropout")
        }

        public var samplesPerStep: Int { batchSize * (1 + 2 * unlabeledRatio) }
    }

    public final class Model: ConfiguredLearner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int
        let config: Config
        /// The teacher: the student's weights averaged (parameters and running statistics).
        public private(set) var teacher: EMA
        /// The step being trained, for the teacher's decay.
        private var step = 0, steps = 1

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            (network, features) = try ClassifierNetwork.build(data, backbone: config.backbone, dropout: config.dropout, rng: &rng)
            self.config = config
            teacher = EMA(of: network, decay: config.rampUpDecay)
            needs = StreamNeeds(labeled: (config.batchSize, .weak), unlabeled: (config.batchSize * config.unlabeledRatio, [.weak, .weak]))
        }

        public func prepare(step: Int, of steps: Int) throws { (self.step, self.steps) = (step, steps) }

        /// α = min(1 − 1/(t + 1), α₀), α₀ the ramp-up decay until the ramp-up ends.
        public func teacherDecay(afterStep t: Int, of steps: Int) -> Float {
            let base = t < RampUp.steps(config.rampUp, of: steps) ? config.rampUpDecay : config.teacherDecay
            return min(1 - 1 / Float(t + 1), base)
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!, batch.unlabeled!)
            var teacherContext = ForwardContext(training: true, rng: ctx.rng.derive("teacher"), overrides: teacher.shadow)
            teacherContext.updatesRunningStatistics = false
            let target = guessProbabilities(network, u.views[1], teacherContext)
            let out = network.forwardParts([x.images, u.views[0]], &ctx)
            let lossX = Loss.crossEntropy(out[0], labels: x.labels)
            let lossU = PiModel.consistency(out[1].softmax(), target)
            let w = config.consistencyWeight * RampUp.sigmoid(step: batch.step, length: RampUp.steps(config.rampUp, of: batch.steps))
            return StepOutput(loss: lossX + lossU * w, scalars: [("loss_x", lossX.item), ("loss_u", lossU.item), ("unlabeled_weight", w)])
        }

        public func afterUpdate() {
            teacher.decay = teacherDecay(afterStep: step, of: steps)
            teacher.update(from: network)
        }

        public var evaluationWeights: [String: Tensor]? { teacher.shadow }

        public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features) }
    }
}

import DataCore
import NNCore
import TensorCore

/// The Π-model (Laine & Aila, "Temporal Ensembling for Semi-Supervised Learning", ICLR 2017):
/// every unlabeled image is evaluated twice under different augmentation and dropout, and the
/// squared difference of the two softmax outputs is penalised:
/// ℓ = ℓ_x + w(t) · (1/(C·n)) Σ ‖p(y | u′) − p(y | u″)‖², gradient through both branches. w(t)
/// ramps up along exp(−5(1 − t)²) over the first part of training (80 of 300 epochs in the paper:
/// `rampUp` 0.27 of the step budget) to w_max = 100, scaled by M/N, the labeled fraction of the
/// training images (the paper's rule for its semi-supervised runs); dropout 0.5 before the head.
///
/// Departures: the consistency term covers the unlabeled stream only (the paper's also the labeled
/// images: a per-class budget's few labeled images change little); conv4 instead of the paper's
/// 13-layer network; weak augmentation (shifts, flips) without the paper's Gaussian input noise.
public enum PiModel: StepMethod {
    public static let id = "pi-model"
    public static let regime = Regime.semiSupervised
    public static let version = "1"
    public static let summary = "two augmented, dropped-out passes over each unlabeled image must agree (Laine & Aila 2017)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.03, validateEvery: 250)
        public var batchSize = 64
        /// Unlabeled images (each seen twice) per labeled one.
        public var unlabeledRatio = 3
        /// w_max.
        public var consistencyWeight: Float = 100
        /// Multiply w_max by the labeled fraction M/N of the training images (the paper's rule).
        public var scaleByLabeledFraction = true
        /// Length of the sigmoid ramp-up as a fraction of the step budget.
        public var rampUp: Float = 0.27
        public var dropout: Float = 0.5

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(unlabeledRatio, 1, key: "unlabeledRatio")
            try Check.nonNegative(consistencyWeight, key: "consistencyWeight")
            try RampUp.checkFraction(rampUp, key: "rampUp")
            try ClassifierNetwork.checkDropout(dropout, key: "dropout")
        }

        public var samplesPerStep: Int { batchSize * (1 + 2 * unlabeledRatio) }
        // Measured (default suite, 2-vCPU Xeon): about 1.3x a supervised step per image.
        public var stepCost: Double { 1.3 }
    }

    /// Mean squared difference of two rows of probabilities, over rows and classes.
    public static func consistency(_ p: Tensor, _ q: Tensor) -> Tensor { Loss.mse(p, q) }

    public final class Model: ConfiguredLearner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int
        let config: Config
        /// w_max after the M/N scaling.
        let maxWeight: Float

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            (network, features) = try ClassifierNetwork.build(data, backbone: config.backbone, dropout: config.dropout, rng: &rng)
            self.config = config
            let (m, u) = (data.labeled?.count ?? 0, data.unlabeled?.count ?? 0)
            maxWeight = config.consistencyWeight * (config.scaleByLabeledFraction ? Float(m) / Float(max(1, m + u)) : 1)
            needs = StreamNeeds(labeled: (config.batchSize, .weak), unlabeled: (config.batchSize * config.unlabeledRatio, [.weak, .weak]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!, batch.unlabeled!)
            let out = network.forwardParts([x.images, u.views[0], u.views[1]], &ctx)
            let lossX = Loss.crossEntropy(out[0], labels: x.labels)
            let lossU = PiModel.consistency(out[1].softmax(), out[2].softmax())
            let w = maxWeight * RampUp.sigmoid(step: batch.step, length: RampUp.steps(config.rampUp, of: batch.steps))
            return StepOutput(loss: lossX + lossU * w, scalars: [("loss_x", lossX.item), ("loss_u", lossU.item), ("unlabeled_weight", w)])
        }

        public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features) }
    }
}

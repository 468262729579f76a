import DataCore
import NNCore
import TensorCore

/// Pseudo-Label (Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for
/// Deep Neural Networks", ICML 2013 workshop). The class of maximum predicted probability of each
/// unlabeled image, recomputed at every update by the network being trained, is its target:
/// ℓ = ℓ_x + α(t) · (1/n′) Σ H(ŷ, p(y | u)), with α(t) = 0 before T₁, rising linearly to α_f at
/// T₂, α_f after. Paper settings: α_f = 3, dropout before the classifier (its denoising is what
/// keeps the pseudo-labels from simply confirming themselves), SGD with momentum.
///
/// Departures: the paper's T₁ = 100 and T₂ = 600 are epochs of a long run; here they are fractions
/// of the step budget (`rampStart` 0.1, `rampEnd` 0.6). The pseudo-labels come from the same
/// forward pass as the loss (detached), as the paper's "recalculated every weight update"; an
/// optional `threshold` (0: every image, the paper) keeps only confident ones, as Oliver et al.
/// (2018) did. Weak augmentation on both streams; conv4 instead of the paper's MLP.
public enum PseudoLabel: StepMethod {
    public static let id = "pseudo-label"
    public static let regime = Regime.semiSupervised
    public static let version = "1"
    public static let summary = "the model's own arg-max class on unlabeled images as a target, weight ramped in (Lee 2013)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.03, validateEvery: 250)
        public var batchSize = 64
        /// Unlabeled images per labeled one.
        public var unlabeledRatio = 3
        /// α_f, the final weight of the pseudo-label loss.
        public var unlabeledWeight: Float = 3
        /// T₁ and T₂ as fractions of the step budget.
        public var rampStart: Float = 0.1
        public var rampEnd: Float = 0.6
        /// Keep only pseudo-labels at least this confident (0: all, as the paper).
        public var threshold: Float = 0
        public var dropout: Float = 0.5

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(unlabeledRatio, 1, key: "unlabeledRatio")
            try Check.nonNegative(unlabeledWeight, key: "unlabeledWeight")
            try RampUp.checkFraction(rampStart, key: "rampStart")
            try RampUp.checkFraction(rampEnd, key: "rampEnd")
            guard rampStart <= rampEnd else { throw ConfigError(key: "rampEnd", "must not come before rampStart (\(rampStart)), got \(rampEnd)") }
            try Check.probability(threshold, key: "threshold")
            try ClassifierNetwork.checkDropout(dropout, key: "dropout")
        }

        public var samplesPerStep: Int { batchSize * (1 + unlabeledRatio) }
        // Measured (default suite, 2-vCPU Xeon): about 1.4x a supervised step per image.
        public var stepCost: Double { 1.4 }

        /// α(t) at `step` of `steps`.
        public func weight(step: Int, of steps: Int) -> Float {
            unlabeledWeight * RampUp.piecewiseLinear(step: step, start: RampUp.steps(rampStart, of: steps), end: RampUp.steps(rampEnd, of: steps))
        }
    }

    public final class Model: ConfiguredLearner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int, classes: Int
        let config: Config

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            (network, features) = try ClassifierNetwork.build(data, backbone: config.backbone, dropout: config.dropout, rng: &rng)
            (classes, self.config) = (data.classCount, config)
            needs = StreamNeeds(labeled: (config.batchSize, .weak), unlabeled: (config.batchSize * config.unlabeledRatio, [.weak]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!, batch.unlabeled!)
            let out = network.forwardParts([x.images, u.views[0]], &ctx)
            // The targets are the same pass's arg-max classes, as constants.
            let mask = ConfidenceMask(probabilities: out[1].detached.softmax(), threshold: config.threshold)
            let lossX = Loss.crossEntropy(out[0], labels: x.labels)
            let lossU = Loss.crossEntropy(out[1], targets: mask.targets(classes: classes))
            let alpha = config.weight(step: batch.step, of: batch.steps)
            return StepOutput(loss: lossX + lossU * alpha,
                              scalars: [("loss_x", lossX.item), ("loss_u", lossU.item), ("unlabeled_weight", alpha), ("mask_rate", mask.rate)],
                              pseudoLabels: PseudoLabels(predicted: mask.labels, mask: mask.mask))
        }

        public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features) }
    }
}

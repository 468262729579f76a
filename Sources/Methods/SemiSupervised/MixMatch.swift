import DataCore
import NNCore
import TensorCore

/// MixMatch (Berthelot, Carlini, Goodfellow, Papernot, Oliver & Raffel, "MixMatch: A Holistic
/// Approach to Semi-Supervised Learning", NeurIPS 2019). Each unlabeled image is augmented K times;
/// the average of the model's predictions on the K views, sharpened with temperature T, is the
/// guess for all of them. Labeled images (one-hot targets) and the K·B unlabeled views (the guess)
/// are MixUp-ed with a shuffle of the whole batch, λ' = max(λ, 1 − λ), λ ~ Beta(α, α); the loss is
/// cross-entropy on the mixed labeled part plus λ_u times the squared error of the mixed unlabeled
/// part's probabilities, λ_u ramped linearly over the first 16k of the paper's 2^20 steps (1/64).
/// Paper settings: K = 2, T = 0.5, α = 0.75, λ_u = 75 (CIFAR-10), Adam at 0.002, weight decay
/// 0.0004 per update (AdamW with 0.2 at this rate), an EMA of the weights (0.999) evaluated.
///
/// Departures: one batch-norm batch for all mixed images (the paper's code interleaves the labeled
/// and unlabeled rows so that each batch-norm call sees a mix); conv4 instead of a Wide ResNet-28-2;
/// the guess runs without a graph, in training mode without touching running statistics.
public enum MixMatch: StepMethod {
    public static let id = "mixmatch"
    public static let regime = Regime.semiSupervised
    public static let version = "1"
    public static let summary = "sharpened average guesses over K views, MixUp across labeled and unlabeled, L2 unlabeled loss (Berthelot et al. 2019)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.002, optimizer: .adamw, weightDecay: 0.2, schedule: .constant,
                                           emaDecay: 0.999, validateEvery: 250)
        /// Labeled images per step; as many unlabeled images, each in K views.
        public var batchSize = 64
        public var augmentations = 2
        public var temperature: Float = 0.5
        public var alpha: Float = 0.75
        public var unlabeledWeight: Float = 75
        /// Length of the linear ramp of λ_u as a fraction of the step budget.
        public var rampUp: Float = 1.0 / 64

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(augmentations, 1, key: "augmentations")
            try Check.positive(temperature, key: "temperature")
            try MixUp.checkAlpha(alpha, key: "alpha")
            try Check.nonNegative(unlabeledWeight, key: "unlabeledWeight")
            try RampUp.checkFraction(rampUp, key: "rampUp")
        }

        public var samplesPerStep: Int { batchSize * (1 + augmentations) }
        // Measured (default suite, 2-vCPU Xeon): sharpening, guessing and mixing about 1.8x a
        // supervised step per image.
        public var stepCost: Double { 1.8 }
    }

    /// The guess for K views of the same images: Sharpen(mean_k p(y | view_k), T).
    public static func guess(_ network: Module, views: [Tensor], temperature: Float, _ ctx: ForwardContext) -> Tensor {
        let probabilities = guessProbabilities(network, concat(views, axis: 0), ctx)
        let n = views[0].shape[0]
        var mean = probabilities.slice(axis: 0, 0, n)
        for k in 1..<views.count { mean = mean + probabilities.slice(axis: 0, k * n, (k + 1) * n) }
        return sharpen(mean * (1 / Float(views.count)), temperature: temperature)
    }

    public final class Model: ConfiguredLearner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int, classes: Int
        let config: Config

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            (network, features) = try ClassifierNetwork.build(data, backbone: config.backbone, rng: &rng)
            (classes, self.config) = (data.classCount, config)
            needs = StreamNeeds(labeled: (config.batchSize, .weak),
                                unlabeled: (config.batchSize, Array(repeating: .weak, count: config.augmentations)))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!, batch.unlabeled!)
            let q = MixMatch.guess(network, views: u.views, temperature: config.temperature, ctx)
            let inputs = concat([x.images] + u.views, axis: 0)
            let targets = concat([Tensor.oneHot(x.labels, classes: classes)] + Array(repeating: q, count: u.views.count), axis: 0)
            var rng = ctx.rng.derive("mixup")
            let mixed = MixUp.shuffled(inputs: inputs, targets: targets, alpha: config.alpha, rng: &rng)
            let b = x.labels.count, n = inputs.shape[0]
            let logits = network.forward(mixed.inputs, &ctx)
            let lossX = Loss.crossEntropy(logits.slice(axis: 0, 0, b), targets: mixed.targets.slice(axis: 0, 0, b))
            let lossU = Loss.mse(logits.slice(axis: 0, b, n).softmax(), mixed.targets.slice(axis: 0, b, n))
            let w = config.unlabeledWeight * RampUp.linear(step: batch.step, length: RampUp.steps(config.rampUp, of: batch.steps))
            let predicted = q.argmaxRows().map(Int32.init)
            return StepOutput(loss: lossX + lossU * w, scalars: [("loss_x", lossX.item), ("loss_u", lossU.item), ("unlabeled_weight", w)],
                              pseudoLabels: PseudoLabels(predicted: predicted))
        }

        public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features) }
    }
}

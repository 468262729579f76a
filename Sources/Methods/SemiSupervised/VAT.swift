import DataCore
import NNCore
import TensorCore

/// Virtual Adversarial Training (Miyato, Maeda, Koyama & Ishii, "Virtual Adversarial Training: A
/// Regularization Method for Supervised and Semi-Supervised Learning", TPAMI 2018). For each
/// unlabeled image the perturbation r_adv of norm ε that most changes the prediction is found by
/// power iteration on the Hessian of D(r) = KL(p(y | u) ‖ p(y | u + r)) at r = 0: start from a
/// random unit d, take g = ∇_r D at r = ξd, d ← g/‖g‖; r_adv = ε d. The loss is
/// ℓ_x + α · KL(p(y | u) ‖ p(y | u + r_adv)) + β · H(p(y | u)) (VAT + EntMin, the paper's best),
/// the clean prediction a constant. Paper settings: one power iteration, α = 1, β = 1, Adam at
/// 0.001.
///
/// Departures: ξ = 1e-3 instead of the paper's 1e-6: in Float32 a logit moved by 1e-6 is within
/// rounding of the clean one, so the gradient would be noise (the direction is the same in exact
/// arithmetic while D stays quadratic). ε depends on the input's scale: 2.0 for 28×28 images in
/// [0, 1] (the paper uses 8.0 on ZCA-whitened CIFAR-10 and 3.5 on SVHN). As in the reference code,
/// the clean prediction is the training pass's (its entropy term too), and the power iteration
/// and the perturbed pass run in training mode without touching batch-norm running statistics.
/// conv4 instead of the paper's 13-layer network; weak augmentation.
public enum VAT: StepMethod {
    public static let id = "vat"
    public static let regime = Regime.semiSupervised
    /// 2: the clean prediction comes from the training pass over labeled and unlabeled images (no
    /// separate no-gradient pass), the perturbed images form their own batch-norm batch.
    public static let version = "2"
    public static let summary = "predictions must resist the most sensitive small perturbation, found by power iteration (Miyato et al. 2018)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 1e-3, optimizer: .adam, weightDecay: 0, validateEvery: 250)
        public var batchSize = 64
        public var unlabeledRatio = 3
        /// ‖r_adv‖ per image.
        public var epsilon: Float = 2
        /// The finite step ξ of the power iteration.
        public var xi: Float = 1e-3
        public var powerIterations = 1
        /// α, the weight of the virtual adversarial loss.
        public var unlabeledWeight: Float = 1
        /// β, the weight of the entropy of unlabeled predictions (0: plain VAT).
        public var entropyWeight: Float = 1

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(unlabeledRatio, 1, key: "unlabeledRatio")
            try Check.positive(epsilon, key: "epsilon")
            try Check.positive(xi, key: "xi")
            try Check.atLeast(powerIterations, 1, key: "powerIterations")
            try Check.nonNegative(unlabeledWeight, key: "unlabeledWeight")
            try Check.nonNegative(entropyWeight, key: "entropyWeight")
        }

        public var samplesPerStep: Int { batchSize * (1 + 2 * unlabeledRatio) }
        // Measured (default suite, 2-vCPU Xeon): the power iteration's extra pass, about 1.3x a
        // supervised step per image.
        public var stepCost: Double { 1.3 }
    }

    /// Each example's slice of `t` [N, ...] scaled to unit L2 norm (zero stays zero).
    static func unitRows(_ t: Tensor) -> Tensor {
        let n = t.shape[0], size = t.count / max(1, n)
        var out = t.detached.scalars
        for i in 0..<n {
            var s: Float = 0
            for j in 0..<size { s += out[i * size + j] * out[i * size + j] }
            let scale = s > 0 ? 1 / s.squareRoot() : 0
            for j in 0..<size { out[i * size + j] *= scale }
        }
        return Tensor(shape: t.shape, scalars: out)
    }

    /// The unit direction (per example) that the power iteration finds for `x`, whose clean class
    /// log-probabilities are `logP`: `iterations` times d ← ∇_r KL(p ‖ p(y | x + r)) at r = ξd,
    /// normalised. The network's weights in `ctx` are used as constants.
    public static func adversarialDirection(_ network: Module, x: Tensor, logP: Tensor, xi: Float, iterations: Int,
                                            _ ctx: ForwardContext, rng: inout RNG) -> Tensor {
        var c = ctx
        c.overrides = ctx.overrides.mapValues(\.detached)
        c.updatesRunningStatistics = false
        let x = x.detached, logP = logP.detached
        var d = unitRows(Tensor(shape: x.shape, scalars: (0..<x.count).map { _ in rng.normal() }))
        for _ in 0..<iterations {
            let r = (d * xi).requiringGrad()
            var pass = c
            let kl = Loss.klDivergence(pLog: logP, qLog: network.forward(x + r, &pass).logSoftmax())
            d = unitRows(gradients(of: kl, wrt: [r])[0])
        }
        return d
    }

    public final class Model: ConfiguredLearner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int
        let config: Config

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            (network, features) = try ClassifierNetwork.build(data, backbone: config.backbone, rng: &rng)
            self.config = config
            needs = StreamNeeds(labeled: (config.batchSize, .weak), unlabeled: (config.batchSize * config.unlabeledRatio, [.weak]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!.images, batch.unlabeled!.views[0])
            let out = network.forwardParts([x, u], &ctx)
            // The clean prediction is the target, a constant; the same pass carries the entropy term.
            let logP = out[1].detached.logSoftmax()
            var rng = ctx.rng.derive("vat")
            let d = VAT.adversarialDirection(network, x: u, logP: logP, xi: config.xi, iterations: config.powerIterations, ctx, rng: &rng)
            // The perturbed pass leaves batch-norm running statistics alone (as the reference code).
            var adversarial = ctx
            adversarial.updatesRunningStatistics = false
            let lossX = Loss.crossEntropy(out[0], labels: batch.labeled!.labels)
            let lossV = Loss.klDivergence(pLog: logP, qLog: network.forward(u + d * config.epsilon, &adversarial).logSoftmax())
            let entropy = Loss.entropy(logits: out[1])
            return StepOutput(loss: lossX + lossV * config.unlabeledWeight + entropy * config.entropyWeight,
                              scalars: [("loss_x", lossX.item), ("loss_vat", lossV.item), ("entropy", entropy.item)])
        }

        public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features) }
    }
}

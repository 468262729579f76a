import DataCore
import NNCore
import TensorCore

/// Co-training (Blum & Mitchell, "Combining Labeled and Unlabeled Data with Co-Training", COLT
/// 1998), in the deep form of Qiao et al. ("Deep Co-Training for Semi-Supervised Image
/// Recognition", ECCV 2018): two networks, differently initialised, each see their own view of an
/// unlabeled image (two independent augmentations); each network's confident predictions (≥ τ)
/// become hard pseudo-labels for the other network on the other view. Both also train on the
/// labels: ℓ = ℓ_x(A) + ℓ_x(B) + λ_u · (H(ŷ_B, p_A(u′)) + H(ŷ_A, p_B(u″))). The trained classifier is
/// the two networks' averaged logits; the encoder scored by the other protocols is network A's.
///
/// Departures: Blum & Mitchell's views are two feature sets and their teachers add a few confident
/// examples per round; here the views are augmentations and labels are exchanged every step, as
/// in the deep variants. Qiao et al. use a Jensen–Shannon agreement and adversarial view
/// difference instead of hard labels; the issue asks for the confident-label exchange, which is
/// also the original's rule. Pseudo-labels come from the same forward pass, detached.
public enum CoTraining: StepMethod {
    public static let id = "co-training"
    public static let regime = Regime.semiSupervised
    public static let version = "1"
    public static let summary = "two networks on two views label confident unlabeled images for each other (Blum & Mitchell 1998)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.03, validateEvery: 250)
        public var batchSize = 64
        public var unlabeledRatio = 3
        public var threshold: Float = 0.95
        public var unlabeledWeight: Float = 1

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(unlabeledRatio, 1, key: "unlabeledRatio")
            try ConfidenceMask.checkThreshold(threshold, key: "threshold")
            try Check.nonNegative(unlabeledWeight, key: "unlabeledWeight")
        }

        /// Each network sees the labeled batch and its own view of the unlabeled batch.
        public var samplesPerStep: Int { 2 * batchSize * (1 + unlabeledRatio) }
    }

    /// Networks `0` (A) and `1` (B); as a module, their averaged logits.
    public final class Pair: Module {
        init(_ a: Module, _ b: Module) {
            super.init()
            children = [("0", a), ("1", b)]
        }

        public func member(_ i: Int, _ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            ctx.child(String(i)) { children[i].module.forward(x, &$0) }
        }

        public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            (member(0, x, &ctx) + member(1, x, &ctx)) * 0.5
        }
    }

    public final class Model: ConfiguredLearner {
        public let network: Pair
        public let needs: StreamNeeds
        let features: Int, classes: Int
        let config: Config

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (a, features) = try ClassifierNetwork.build(data, backbone: config.backbone, rng: &rng)
            let (b, _) = try ClassifierNetwork.build(data, backbone: config.backbone, rng: &rng)
            network = Pair(a, b)
            (self.features, classes, self.config) = (features, data.classCount, config)
            needs = StreamNeeds(labeled: (config.batchSize, .weak), unlabeled: (config.batchSize * config.unlabeledRatio, [.weak, .weak]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!, batch.unlabeled!)
            let b = x.labels.count
            // Network i sees the labeled batch and view i.
            let logits = (0..<2).map { i in network.member(i, concat([x.images, u.views[i]], axis: 0), &ctx) }
            let unlabeled = logits.map { $0.slice(axis: 0, b, $0.shape[0]) }
            let masks = unlabeled.map { ConfidenceMask(probabilities: $0.detached.softmax(), threshold: config.threshold) }
            var terms: [Tensor] = []
            var scalars: [(name: String, value: Float)] = []
            for i in 0..<2 {
                let lossX = Loss.crossEntropy(logits[i].slice(axis: 0, 0, b), labels: x.labels)
                // Network i learns from the other's confident labels.
                let lossU = Loss.crossEntropy(unlabeled[i], targets: masks[1 - i].targets(classes: classes))
                terms += [lossX, lossU * config.unlabeledWeight]
                scalars += [("loss_x_\(i == 0 ? "a" : "b")", lossX.item), ("loss_u_\(i == 0 ? "a" : "b")", lossU.item)]
            }
            scalars.append(("mask_rate", (masks[0].rate + masks[1].rate) / 2))
            return StepOutput(loss: terms.dropFirst().reduce(terms[0], +), scalars: scalars, pseudoLabels: PseudoLabels(predicted: masks[0].labels, mask: masks[0].mask))
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: network, encoder: network.children[0].module.children[0].module, encoderPath: "0.0", featureCount: features)
        }
    }
}

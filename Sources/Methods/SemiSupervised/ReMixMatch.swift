import DataCore
import NNCore
import TensorCore

/// ReMixMatch (Berthelot, Carlini, Cubuk, Kurakin, Sohn, Zhang & Raffel, "ReMixMatch: Semi-Supervised
/// Learning with Distribution Alignment and Augmentation Anchoring", ICLR 2020). The guess for an
/// unlabeled image comes from its weak view, aligned to the labeled class distribution
/// (q̃ = Normalize(q · p(y) / p̃(y)), p̃ a running mean of the model's unlabeled predictions) and
/// sharpened; K strong views are anchored to it. Labeled (strongly augmented, Algorithm 1) and
/// strong unlabeled views are MixUp-ed as in MixMatch, with cross-entropy on both parts; two more
/// terms act on the first strong view unmixed: cross-entropy to the guess (λ_u1) and predicting
/// which of four rotations was applied to it from a rotation head on the features (λ_r).
/// Paper settings: T = 0.5, α = 0.75, λ_u = 1.5, λ_u1 = 0.5, λ_r = 0.5, DA over 128 batches, Adam at
/// 0.002 with weight decay, EMA (0.999) evaluated.
///
/// Departures: K = 2 strong views instead of 8 (CPU budget); RandAugment-style strong augmentation
/// instead of CTAugment (no learned augmentation magnitudes); one batch-norm batch for every image
/// of the step; conv4 instead of a Wide ResNet-28-2; no ramp of the unlabeled weights.
public enum ReMixMatch: StepMethod {
    public static let id = "remixmatch"
    public static let regime = Regime.semiSupervised
    public static let version = "1"
    public static let summary = "distribution alignment, strong views anchored to the weak view's guess, MixUp, rotation loss (Berthelot et al. 2020)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.002, optimizer: .adamw, weightDecay: 0.2, schedule: .constant,
                                           emaDecay: 0.999, validateEvery: 250)
        public var batchSize = 64
        /// K, strong views per unlabeled image.
        public var augmentations = 2
        public var temperature: Float = 0.5
        public var alpha: Float = 0.75
        public var unlabeledWeight: Float = 1.5
        /// λ_u1, the unmixed first strong view's loss.
        public var anchorWeight: Float = 0.5
        /// λ_r, the rotation loss (0 for images that cannot turn, e.g. 1-D signals).
        public var rotationWeight: Float = 0.5
        /// Batches in the running mean p̃(y).
        public var alignmentWindow = 128
        /// Strong augmentation on labeled images (Algorithm 1); false: weak.
        public var strongLabeled = true

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(augmentations, 1, key: "augmentations")
            try Check.positive(temperature, key: "temperature")
            try MixUp.checkAlpha(alpha, key: "alpha")
            try Check.nonNegative(unlabeledWeight, key: "unlabeledWeight")
            try Check.nonNegative(anchorWeight, key: "anchorWeight")
            try Check.nonNegative(rotationWeight, key: "rotationWeight")
            try Check.atLeast(alignmentWindow, 1, key: "alignmentWindow")
        }

        public var samplesPerStep: Int { batchSize * (1 + augmentations + 2) }
        // Measured (default suite, 2-vCPU Xeon): about 1.3x a supervised step per image.
        public var stepCost: Double { 1.3 }
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        if config.rotationWeight > 0, let problem = Pretext.rotationProblem(imageShape: data.imageShape) {
            throw ConfigError(key: "rotationWeight", "\(problem); set rotationWeight: 0 for such inputs")
        }
        return try Model(data, config: config, rng: &rng)
    }

    /// Backbone `0`, class head `1`, rotation head `2`; as a module, the classifier.
    public final class Network: Module {
        init(body: Module, head: Module, rotation: Module) {
            super.init()
            children = [("0", body), ("1", head), ("2", rotation)]
        }

        public func features(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { ctx.child("0") { children[0].module.forward(x, &$0) } }
        public func classes(_ f: Tensor, _ ctx: inout ForwardContext) -> Tensor { ctx.child("1") { children[1].module.forward(f, &$0) } }
        public func rotations(_ f: Tensor, _ ctx: inout ForwardContext) -> Tensor { ctx.child("2") { children[2].module.forward(f, &$0) } }

        public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            let f = features(x, &ctx)
            return classes(f, &ctx)
        }
    }

    public final class Model: Learner {
        public let network: Network
        public let needs: StreamNeeds
        let features: Int, classCount: Int
        let config: Config
        public private(set) var alignment: DistributionAlignment

        init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (body, features) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            network = Network(body: body, head: Linear(features, data.classCount, rng: &rng), rotation: Linear(features, 4, rng: &rng))
            (self.features, classCount, self.config) = (features, data.classCount, config)
            // p(y): the labeled examples' class frequencies.
            var counts = [Float](repeating: 0, count: data.classCount)
            for y in data.labeled?.labels ?? [] { counts[Int(y)] += 1 }
            alignment = DistributionAlignment(target: counts, window: config.alignmentWindow)
            needs = StreamNeeds(labeled: (config.batchSize, config.strongLabeled ? .strong : .weak),
                                unlabeled: (config.batchSize, [.weak] + Array(repeating: .strong, count: config.augmentations)))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!, batch.unlabeled!)
            let strong = Array(u.views.dropFirst())
            let q = sharpen(alignment.align(guessProbabilities(network, u.views[0], ctx)), temperature: config.temperature)
            let inputs = concat([x.images] + strong, axis: 0)
            let targets = concat([Tensor.oneHot(x.labels, classes: classCount)] + Array(repeating: q, count: strong.count), axis: 0)
            var rng = ctx.rng.derive("mixup")
            let mixed = MixUp.shuffled(inputs: inputs, targets: targets, alpha: config.alpha, rng: &rng)
            let rotated = Pretext.randomRotations(strong[0], rng: &rng)
            let (b, n) = (x.labels.count, inputs.shape[0])
            // Mixed batch, the first strong view unmixed, and its rotations: one batch-norm batch.
            var parts = [mixed.inputs, strong[0]]
            if config.rotationWeight > 0 { parts.append(rotated.images) }
            let f = network.features(concat(parts, axis: 0), &ctx)
            let logits = network.classes(f.slice(axis: 0, 0, n + b), &ctx)
            let lossX = Loss.crossEntropy(logits.slice(axis: 0, 0, b), targets: mixed.targets.slice(axis: 0, 0, b))
            let lossU = Loss.crossEntropy(logits.slice(axis: 0, b, n), targets: mixed.targets.slice(axis: 0, b, n))
            let lossAnchor = Loss.crossEntropy(logits.slice(axis: 0, n, n + b), targets: q)
            var loss = lossX + lossU * config.unlabeledWeight + lossAnchor * config.anchorWeight
            var scalars: [(name: String, value: Float)] = [("loss_x", lossX.item), ("loss_u", lossU.item), ("loss_u1", lossAnchor.item)]
            if config.rotationWeight > 0 {
                let lossR = Loss.crossEntropy(network.rotations(f.slice(axis: 0, n + b, n + 2 * b), &ctx), labels: rotated.labels)
                loss = loss + lossR * config.rotationWeight
                scalars.append(("loss_rotation", lossR.item))
            }
            return StepOutput(loss: loss, scalars: scalars, pseudoLabels: PseudoLabels(predicted: q.argmaxRows().map(Int32.init)))
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: network, encoder: network.children[0].module, encoderPath: "0", featureCount: features)
        }
    }
}

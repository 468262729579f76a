import DataCore
import NNCore
import TensorCore

/// Label propagation for deep semi-supervised learning (Iscen, Tolias, Avrithis & Chum, CVPR
/// 2019). Training alternates two steps. The graph step (not a gradient step, run in `prepare`):
/// the network's L2-normalised features of every training image (labeled and unlabeled) form a
/// kNN graph (k = 50, weights max(s, 0)^γ with γ = 3, W + Wᵀ, normalised D^(-1/2) W D^(-1/2)), and
/// the labels diffuse over it by solving (I − αW)Z = Y with conjugate gradient (α = 0.99, 20
/// iterations); each unlabeled image gets the arg-max class as its pseudo-label, a certainty
/// weight ω = 1 − H(ẑ)/log C and its class's balancing weight ζ. The network step: cross-entropy on
/// labels and pseudo-labels, weighted by ζ (and ω for pseudo-labels). Before the first graph the
/// network trains on the labels alone (the paper's supervised initialisation).
///
/// Departures: the graph is rebuilt every `refreshEvery` steps instead of every epoch, and the
/// supervised initialisation is the first `supervisedFraction` of the step budget; exact kNN
/// search in blocks instead of FAISS; conv4 instead of the paper's 13-layer network; weak
/// augmentation, no mean-teacher combination.
public enum LabelPropagation: StepMethod {
    public static let id = "label-propagation"
    public static let regime = Regime.semiSupervised
    public static let version = "1"
    public static let summary = "labels diffused over a kNN graph of the network's features train it, weighted by certainty (Iscen et al. 2019)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.03, validateEvery: 250)
        public var batchSize = 64
        public var unlabeledRatio = 3
        public var neighbours = 50
        public var gamma: Float = 3
        public var alpha: Float = 0.99
        public var conjugateGradientIterations = 20
        /// Share of the steps trained on labels alone before the first graph.
        public var supervisedFraction: Float = 0.2
        /// Steps between graph rebuilds.
        public var refreshEvery = 250
        public var unlabeledWeight: Float = 1

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(unlabeledRatio, 1, key: "unlabeledRatio")
            try Check.atLeast(neighbours, 1, key: "neighbours")
            try Check.positive(gamma, key: "gamma")
            guard alpha > 0 && alpha < 1 else { throw ConfigError(key: "alpha", "the diffusion needs 0 < α < 1, got \(alpha)") }
            try Check.atLeast(conjugateGradientIterations, 1, key: "conjugateGradientIterations")
            try RampUp.checkFraction(supervisedFraction, key: "supervisedFraction")
            try Check.atLeast(refreshEvery, 1, key: "refreshEvery")
            try Check.nonNegative(unlabeledWeight, key: "unlabeledWeight")
        }

        public var samplesPerStep: Int { batchSize * (1 + unlabeledRatio) }
        // A graph refresh (features of the whole pool, a k-nearest-neighbour graph over it) cost
        // about as much as 335 training steps at these defaults (default suite, Fashion-MNIST,
        // 2-vCPU Xeon: 7.7x a supervised step per image with a refresh every 50 steps).
        public var stepCost: Double { 1 + 335 / Double(refreshEvery) }
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        guard let labeled = data.labeled, let unlabeled = data.unlabeled else {
            throw TrainingError(message: "\(id) needs labeled and unlabeled examples, which only the semi-supervised regime grants")
        }
        return try Model(data, labeled: labeled, unlabeled: unlabeled, config: config, rng: &rng)
    }

    public final class Model: Learner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int, classes: Int
        let config: Config
        let labeled: LabeledPool, unlabeled: UnlabeledPool
        /// The last graph step's result over [labeled; unlabeled] nodes; nil before the first.
        public private(set) var propagated: PropagatedLabels?

        init(_ data: TrainingData, labeled: LabeledPool, unlabeled: UnlabeledPool, config: Config, rng: inout RNG) throws {
            (network, features) = try ClassifierNetwork.build(data, backbone: config.backbone, rng: &rng)
            (classes, self.config, self.labeled, self.unlabeled) = (data.classCount, config, labeled, unlabeled)
            needs = StreamNeeds(labeled: (config.batchSize, .weak), unlabeled: (config.batchSize * config.unlabeledRatio, [.weak]))
        }

        public func prepare(step: Int, of steps: Int) throws {
            let first = RampUp.steps(config.supervisedFraction, of: steps)
            guard step >= first, (step - first) % config.refreshEvery == 0 else { return }
            propagated = propagate()
        }

        /// The graph step on the network's current features.
        public func propagate() -> PropagatedLabels {
            var rng = RNG(seed: 0)   // plain views draw no randomness
            let encoder = network.children[0].module
            let f = concat([noGrad { encoder(labeled.all(rng: &rng).images) }, unlabeled.mapAll { encoder($0) }], axis: 0)
            let graph = AffinityGraph.nearestNeighbours(f, k: config.neighbours, gamma: config.gamma).symmetricallyNormalized()
            var y = [Float](repeating: 0, count: graph.count * classes)
            for (i, label) in labeled.labels.enumerated() { y[i * classes + Int(label)] = 1 }
            let z = graph.diffuse(y, classes: classes, alpha: config.alpha, iterations: config.conjugateGradientIterations)
            return PropagatedLabels(scores: z, classes: classes)
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!, batch.unlabeled!)
            guard let p = propagated else {
                let lossX = Loss.crossEntropy(network.forward(x.images, &ctx), labels: x.labels)
                return StepOutput(loss: lossX, scalars: [("loss_x", lossX.item)])
            }
            let offset = labeled.count
            let pseudo = u.positions.map { p.labels[offset + $0] }
            let xWeights = x.labels.map { p.classWeights[Int($0)] }
            let uWeights = zip(u.positions, pseudo).map { p.certainty[offset + $0] * p.classWeights[Int($1)] }
            let out = network.forwardParts([x.images, u.views[0]], &ctx)
            let lossX = Loss.crossEntropy(out[0], targets: Self.weighted(x.labels, xWeights, classes: classes))
            let lossU = Loss.crossEntropy(out[1], targets: Self.weighted(pseudo, uWeights, classes: classes))
            return StepOutput(loss: lossX + lossU * config.unlabeledWeight,
                              scalars: [("loss_x", lossX.item), ("loss_u", lossU.item), ("pseudo_label_weight", uWeights.reduce(0, +) / Float(max(1, uWeights.count)))],
                              pseudoLabels: PseudoLabels(predicted: pseudo))
        }

        /// One-hot rows scaled by a weight each: cross-entropy against them is the weighted mean.
        static func weighted(_ labels: [Int32], _ weights: [Float], classes: Int) -> Tensor {
            Tensor.oneHot(labels, classes: classes) * Tensor(shape: [labels.count, 1], scalars: weights)
        }

        public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features) }
    }
}

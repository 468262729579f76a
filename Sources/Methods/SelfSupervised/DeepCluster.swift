import DataCore
import NNCore
import TensorCore

/// DeepCluster (Caron et al., "Deep Clustering for Unsupervised Learning of Visual Features", ECCV
/// 2018): alternate clustering and classification. Every `reclusterEvery` steps (the paper: every
/// epoch) the encoder's features of every unlabeled image are PCA-reduced and whitened, L2
/// normalised and clustered by k-means into `clusters` groups, empty clusters being reassigned
/// (`KMeans.update`); the cluster indices become pseudo-labels, the classifier on top is
/// re-initialised, and the network is trained to predict them. Sampling is uniform over the
/// pseudo-classes, which the paper notes is the same as weighting each image's loss by the
/// inverse size of its cluster; the weights are normalised to average 1 over the pool. The
/// clustering reads the encoder's output, as in the paper; the representation evaluation scores is
/// that output too, or with `featureBlocks` < 4 the output of the first blocks (`EncoderCut`).
///
/// Departures: conv4 in place of AlexNet/VGG, so features are 64-wide and the PCA keeps
/// min(`pcaDimensions`, 64) of them (the paper reduces 4,096 to 256); no Sobel filter (it removes
/// colour, which greyscale data does not have); 100 clusters for ~50,000 images (the paper's
/// 10,000 for 1.3 million keeps a similar number of images per cluster); re-clustering every 400
/// steps of 128 (about an epoch of Fashion-MNIST); the re-initialised classifier keeps the
/// optimizer's momentum buffers of its predecessor (the trainer owns the optimizer), which decay
/// within a few dozen steps.
public enum DeepCluster: StepMethod {
    public static let id = "deepcluster"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "k-means of the network's own features gives pseudo-labels it is trained on, re-clustered each epoch (Caron et al. 2018)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.05, nesterov: false, weightDecay: 1e-5, schedule: .constant,
                                           warmupSteps: 0, validateEvery: 250)
        public var batchSize = 128
        public var clusters = 100
        public var reclusterEvery = 400
        public var pcaDimensions = 256
        public var kmeansIterations = 20
        /// Apply the weak augmentation (the paper's random crops and flips) to training images.
        public var augment = true
        /// conv4 blocks (1-4) whose output is the representation evaluation scores (4: the encoder's
        /// output, the paper's); training does not depend on it (`EncoderCut`).
        public var featureBlocks = 4

        public init() {}

        public func validateOwn() throws {
            try PretextNetwork.checkBlocks(featureBlocks)
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(clusters, 2, key: "clusters")
            try Check.atLeast(reclusterEvery, 1, key: "reclusterEvery")
            try Check.atLeast(pcaDimensions, 1, key: "pcaDimensions")
            try Check.atLeast(kmeansIterations, 1, key: "kmeansIterations")
        }

        public var representationBlocks: Int? { featureBlocks }

        public var samplesPerStep: Int { batchSize }
        // Measured (selfsup.yaml and the default suite, 2-vCPU Xeon): with its clusterings of the
        // pool's features, about 2.3x a supervised step per image.
        public var stepCost: Double { 2.3 }
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        let pool = try data.unlabeledPool(for: id)
        guard config.clusters <= pool.count else {
            throw ConfigError(key: "clusters", "the pool has \(pool.count) images; at most that many clusters, got \(config.clusters)")
        }
        return try Model(data, pool: pool, config: config, rng: &rng)
    }

    public final class Model: Learner {
        /// [encoder, classifier over the clusters].
        public let network: Sequential
        public let needs: StreamNeeds
        let cut: EncoderCut
        let features: Int
        let config: Config
        let pool: UnlabeledPool
        var rng: RNG
        /// Each pool image's cluster and loss weight (1 / its cluster's size, mean 1).
        public private(set) var assignments: [Int] = []
        public private(set) var weights: [Float] = []
        /// Clusters found empty and reassigned by the last clustering.
        public private(set) var reassigned = 0

        init(_ data: TrainingData, pool: UnlabeledPool, config: Config, rng: inout RNG) throws {
            let (encoder, width) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            cut = EncoderCut(featureBlocks: config.featureBlocks, backbone: config.backbone, imageShape: data.imageShape)
            (network, features) = (Sequential([encoder, Linear(width, config.clusters, rng: &rng)]), width)
            (self.config, self.pool, self.rng) = (config, pool, rng.derive("deepcluster"))
            needs = StreamNeeds(unlabeled: (config.batchSize, [config.augment ? .weak : .plain]))
        }

        public func prepare(step: Int, of steps: Int) throws {
            guard step % config.reclusterEvery == 0 else { return }
            recluster()
        }

        /// The clustering step: features of the whole pool (evaluation mode, no graph), PCA
        /// whitening, L2 normalisation, k-means; then pseudo-labels, weights and a new classifier.
        public func recluster() {
            let encoder = network.children[0].module
            let f = pool.mapAll { encoder($0).flattened() }
            let pca = PrincipalComponents.fit(f, components: min(config.pcaDimensions, f.shape[1]), rng: &rng)
            let reduced = noGrad { pca.project(f, whiten: true).l2Normalized() }
            var model = KMeans.plusPlus(reduced, k: config.clusters, rng: &rng)
            var clusters = model.assign(reduced).clusters
            reassigned = 0
            for _ in 0..<config.kmeansIterations {
                reassigned += model.update(reduced, clusters: clusters, rng: &rng)
                clusters = model.assign(reduced).clusters
            }
            assignments = clusters
            weights = Self.inverseSizeWeights(clusters, clusters: config.clusters)
            // invariant: the network built in init is [encoder, Linear head]
            let head = network.children[1].module as! Linear
            head.parameters = Linear(features, config.clusters, rng: &rng).parameters
        }

        /// 1 / (size of the image's cluster), scaled so the weights average 1 over the images:
        /// each non-empty cluster carries the same total weight.
        static func inverseSizeWeights(_ assignments: [Int], clusters: Int) -> [Float] {
            var sizes = [Int](repeating: 0, count: clusters)
            for a in assignments { sizes[a] += 1 }
            let nonEmpty = Float(sizes.filter { $0 > 0 }.count)
            return assignments.map { Float(assignments.count) / (nonEmpty * Float(sizes[$0])) }
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let u = batch.unlabeled!
            let labels = u.positions.map { Int32(assignments[$0]) }
            let w = u.positions.map { weights[$0] }
            let logits = network.forward(u.views[0], &ctx)
            let targets = Tensor.oneHot(labels, classes: config.clusters) * Tensor(shape: [labels.count, 1], scalars: w)
            return StepOutput(loss: Loss.crossEntropy(logits, targets: targets),
                              scalars: [("pseudo_class_accuracy", StepOutput.accuracy(logits, labels)), ("reassigned_clusters", Float(reassigned))])
        }

        public var evaluables: Evaluables {
            cut.evaluables(network, features: features)
        }
    }
}

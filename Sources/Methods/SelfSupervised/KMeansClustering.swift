import DataCore
import NNCore
import TensorCore

/// k-means clustering of the pixels (Lloyd 1982) from k-means++ seeds (Arthur & Vassilvitskii
/// 2007), the best of `restarts` runs by inertia, as scikit-learn's `KMeans(n_init)` does. Its
/// representation is each image's cluster (one-hot) beside its distances to the centroids
/// (2k features) for the linear, kNN, fine-tune and episode protocols, and `native` scores the
/// clustering itself on the test images: `cluster_accuracy` (clusters matched one-to-one to
/// classes by the Hungarian method) and `nmi`. The default k = 10 is Fashion-MNIST's class
/// count, the setting of the published figures (about 47% accuracy, 0.51 NMI).
///
/// Each Lloyd iteration is a pass of the trainer's loop (its curve is the inertia); a run stops
/// early once no image changes cluster, and its remaining passes are skipped.
public enum KMeansClustering: Method {
    public static let id = "kmeans"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "k-means++ and Lloyd iterations on the pixels; cluster and centroid-distance features, clustering scored by accuracy and NMI"
    public static let measuresItself = true

    public struct Config: MethodConfig {
        public var clusters = 10
        public var iterations = 100
        public var restarts = 3

        public init() {}

        public func validate() throws {
            try Check.atLeast(clusters, 2, key: "clusters")
            try Check.atLeast(iterations, 1, key: "iterations")
            try Check.atLeast(restarts, 1, key: "restarts")
        }

        public var workload: Workload { Workload(steps: iterations * restarts, samplesPerStep: 0, backbone: "fit", width: clusters) }
    }

    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config { Config() }

    public static func train(_ input: TrainingInput, config: Config) throws -> TrainedModel {
        try config.validate()
        let x = try PoolFit.matrix(input.data, method: id)
        guard config.clusters <= x.shape[0] else {
            throw ConfigError(key: "clusters", "the pool has \(x.shape[0]) images; at most that many clusters, got \(config.clusters)")
        }
        var rng = input.rng("init")
        var best: (model: KMeans, inertia: Double)?
        var current: (model: KMeans, clusters: [Int], inertia: Double, done: Bool)?
        return try PoolFit.run(input, passes: config.iterations * config.restarts, rows: x.shape[0], pass: { k in
            if k % config.iterations == 0 {
                let seeded = KMeans.plusPlus(x, k: config.clusters, rng: &rng)
                let (clusters, inertia) = seeded.assign(x)
                current = (seeded, clusters, inertia, false)
            }
            var c = current!
            if !c.done {
                let empty = c.model.update(x, clusters: c.clusters, rng: &rng)
                let (next, inertia) = c.model.assign(x)
                (c.done, c.clusters, c.inertia) = (next == c.clusters && empty == 0, next, inertia)
                current = c
            }
            if (k + 1) % config.iterations == 0, best == nil || c.inertia < best!.inertia { best = (c.model, c.inertia) }
            return [("inertia", Float(c.inertia))]
        }, evaluables: { evaluables(best?.model ?? current!.model) })
    }

    static func evaluables(_ model: KMeans) -> Evaluables {
        let k = model.k
        let encoder = FittedEncoder { x in
            let d = model.squaredDistances(x)
            let assigned = Tensor.oneHot((-d).argmaxRows().map(Int32.init), classes: k)
            return concat([assigned, d.sqrt()], axis: 1)
        }
        return Evaluables(classifier: nil, encoder: encoder, encoderPath: "", featureCount: 2 * k,
                          measures: SelfMeasures(clusters: { model.assign($0.flattened()).clusters }, clusterCount: k,
                                                 values: { [("inertia", model.assign($0.flattened()).inertia)] }))
    }
}

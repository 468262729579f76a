import Foundation
import DataCore
import NNCore
import TensorCore

/// A Gaussian mixture with diagonal covariances fitted by expectation-maximisation (Dempster,
/// Laird & Rubin 1977) on the pixels: density estimation. Started from k-means (a few Lloyd
/// iterations from k-means++ seeds, as scikit-learn starts it), each pass of the trainer's loop is
/// one E and M step; its curve is the negative log-likelihood per dimension. `native` stores the
/// test `log_likelihood` per dimension (in the dataset's standardised pixel units; higher is
/// better) and the clustering of the most probable component (`cluster_accuracy`, `nmi`); the
/// representation the other protocols score is the posterior over the components.
///
/// `varianceFloor` is added to every variance (scikit-learn's `reg_covar`, there 1e-6): pixels
/// that are constant within a component (the background) would otherwise make the density
/// unbounded. The log-likelihood depends on it, so it is part of the config.
public enum GMM: Method {
    public static let id = "gmm"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "diagonal Gaussian mixture by EM on the pixels: test log-likelihood, posterior features"
    public static let measuresItself = true

    public struct Config: MethodConfig {
        public var components = 10
        public var iterations = 50
        /// Lloyd iterations of the k-means start.
        public var kmeansIterations = 10
        public var varianceFloor: Float = 1e-2

        public init() {}

        public func validate() throws {
            try Check.atLeast(components, 1, key: "components")
            try Check.atLeast(iterations, 1, key: "iterations")
            try Check.atLeast(kmeansIterations, 0, key: "kmeansIterations")
            try Check.positive(varianceFloor, key: "varianceFloor")
        }

        public var workload: Workload { Workload(steps: iterations + kmeansIterations, samplesPerStep: 0, backbone: "fit", width: components) }
    }

    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config { Config() }

    public static func train(_ input: TrainingInput, config: Config) throws -> TrainedModel {
        try config.validate()
        let x = try PoolFit.matrix(input.data, method: id)
        guard config.components <= x.shape[0] else {
            throw ConfigError(key: "components", "the pool has \(x.shape[0]) images; at most that many components, got \(config.components)")
        }
        var rng = input.rng("init")
        let start = KMeans.fit(x, k: config.components, iterations: config.kmeansIterations, rng: &rng)
        var mixture = Mixture.fitted(x, responsibilities: Tensor.oneHot(start.clusters.map(Int32.init), classes: config.components),
                                     floor: config.varianceFloor)
        return try PoolFit.run(input, passes: config.iterations, rows: x.shape[0], pass: { _ in
            let (r, logLikelihood) = mixture.posterior(x)
            mixture = Mixture.fitted(x, responsibilities: r, floor: config.varianceFloor)
            return [("nll_per_dim", -logLikelihood)]
        }, evaluables: {
            let mixture = mixture   // the fitted one, fixed for evaluation
            return Evaluables(classifier: nil, encoder: FittedEncoder { mixture.posterior($0).responsibilities }, encoderPath: "",
                       featureCount: config.components,
                       measures: SelfMeasures(clusters: { mixture.posterior($0.flattened()).responsibilities.argmaxRows() },
                                              clusterCount: config.components,
                                              values: { [("log_likelihood", Double(mixture.posterior($0.flattened()).logLikelihood))] }))
        })
    }

    /// Mixture weights, means and diagonal variances of k components over D values.
    public struct Mixture {
        public let logWeights: [Float]
        /// [k, D].
        public let means: Tensor, variances: Tensor

        public init(logWeights: [Float], means: Tensor, variances: Tensor) { (self.logWeights, self.means, self.variances) = (logWeights, means, variances) }

        /// The M step: weights, means and variances (plus `floor`) under responsibilities [N, k].
        public static func fitted(_ x: Tensor, responsibilities r: Tensor, floor: Float) -> Mixture {
            noGrad {
                let n = Float(x.shape[0])
                let mass = r.sum(axis: 0).scalars.map { Swift.max($0, 1e-6) }
                let inverse = Tensor(shape: [mass.count, 1], scalars: mass.map { 1 / $0 })
                let means = matmul(r, x, transposeA: true) * inverse
                let variances = (matmul(r, x * x, transposeA: true) * inverse - means * means).relu() + floor
                return Mixture(logWeights: mass.map { Foundation.log($0 / n) }, means: means, variances: variances)
            }
        }

        /// log π_j + log N(x | μ_j, diag σ²_j) for every row and component: [N, k].
        public func jointLogDensity(_ x: Tensor) -> Tensor {
            noGrad {
                let precision = 1 / variances
                let d = Float(x.shape[1])
                let constant = (variances.log().sum(axis: 1) + (means * means * precision).sum(axis: 1) + d * Foundation.log(2 * Float.pi)).scalars
                let quadratic = matmul(x * x, precision, transposeB: true) - 2 * matmul(x, means * precision, transposeB: true)
                let offset = zip(logWeights, constant).map { $0 - 0.5 * $1 }
                return quadratic * -0.5 + Tensor(shape: [1, offset.count], scalars: offset)
            }
        }

        /// The E step: responsibilities [N, k] and the mean log-likelihood per row and dimension.
        public func posterior(_ x: Tensor) -> (responsibilities: Tensor, logLikelihood: Float) {
            noGrad {
                let joint = jointLogDensity(x)
                let m = joint.max(axis: 1, keepDims: true)
                let logEvidence = m + (joint - m).exp().sum(axis: 1, keepDims: true).log()
                let perRow = logEvidence.scalars.reduce(0.0) { $0 + Double($1) } / Double(x.shape[0])
                return ((joint - logEvidence).exp(), Float(perRow / Double(x.shape[1])))
            }
        }
    }
}

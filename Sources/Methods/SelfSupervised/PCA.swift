import DataCore
import NNCore
import TensorCore

/// Principal component analysis (Pearson 1901; Hotelling 1933): the images projected on the top
/// `components` eigenvectors of their covariance, optionally whitened (each coordinate divided by
/// its standard deviation). The linear floor every deep representation must beat: a protocol's
/// score on PCA features is what a linear map of the pixels fitted without labels gives.
///
/// The eigenvectors come from subspace iteration with Rayleigh-Ritz (`PrincipalComponents`),
/// `iterations` applications of the covariance, each a pass of the trainer's loop; the default 64
/// components match conv4's 64 features so the two are scored at the same width.
public enum PCA: Method {
    public static let id = "pca"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "projection on the top principal components of the pixels (optionally whitened): the linear floor"

    public struct Config: MethodConfig {
        public var components = 64
        public var whiten = false
        /// Subspace iterations (applications of the covariance to the block of vectors).
        public var iterations = 30

        public init() {}

        public func validate() throws {
            try Check.atLeast(components, 1, key: "components")
            try Check.atLeast(iterations, 1, key: "iterations")
        }

        public var workload: Workload { Workload(steps: 1, samplesPerStep: 0, backbone: "fit", width: components) }
    }

    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config { Config() }

    public static func train(_ input: TrainingInput, config: Config) throws -> TrainedModel {
        try config.validate()
        let x = try PoolFit.matrix(input.data, method: id)
        guard config.components <= x.shape[1] else {
            throw ConfigError(key: "components", "the images have \(x.shape[1]) values; at most that many components, got \(config.components)")
        }
        var rng = input.rng("init")
        var fitted: PrincipalComponents?
        return try PoolFit.run(input, passes: 1, rows: x.shape[0], pass: { _ in
            let p = PrincipalComponents.fit(x, components: config.components, iterations: config.iterations, rng: &rng)
            fitted = p
            let total = noGrad { ((x - p.mean.reshaped([1, -1])).pow(2)).sum(axis: 0) }.scalars.reduce(0, +) / Float(x.shape[0] - 1)
            // The objective: the variance the components leave out, per pixel.
            return [("residual_variance", (total - p.variances.reduce(0, +)) / Float(x.shape[1])),
                    ("explained_variance_ratio", p.variances.reduce(0, +) / max(total, 1e-12))]
        }, evaluables: {
            let p = fitted!
            return Evaluables(classifier: nil, encoder: FittedEncoder { p.project($0, whiten: config.whiten) }, encoderPath: "",
                              featureCount: config.components)
        })
    }
}

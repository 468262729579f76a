import DataCore
import NNCore
import TensorCore

/// Baseline++ (Chen, Liu, Kira, Wang & Huang, "A Closer Look at Few-shot Classification", ICLR
/// 2019): as Baseline, but the classifier in training and in the adapter is a scaled cosine
/// similarity between the feature and a weight vector per class, which reduces intra-class
/// variation. Departures as Baseline's (shorter training, full-batch head fitting).
public enum BaselinePlusPlus: StepMethod {
    public static let id = "baseline-plus-plus"
    public static let regime = Regime.fewShot
    public static let version = "1"
    public static let adapts = true
    public static let summary = "cosine classifier on the base classes; a new cosine head fitted on each support set (Chen et al. 2019)"
    public typealias Config = BaselineConfig

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> BaselineLearner {
        try BaselineLearner(data, config: config, head: .cosine, rng: &rng)
    }
}

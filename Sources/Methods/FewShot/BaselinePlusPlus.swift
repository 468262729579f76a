import DataCore
import NNCore
import TensorCore

/// Baseline++ (Chen, Liu, Kira, Wang & Huang, "A Closer Look at Few-shot Classification", ICLR
/// 2019): as Baseline, but the classifier in training and in the adapter is a scaled cosine
/// similarity between the feature and a weight vector per class, which reduces intra-class
/// variation. As in the reference code, the class vectors are weight-normalised (a learned gain
/// per class, initialised to 1 here) and the cosines are scaled by 2 for a head over at most 200
/// classes, by 10 over more (glyphs' 1,200 base classes; an episode's head is 5- or 20-way).
/// Departures as Baseline's (shorter training, full-batch head fitting).
public enum BaselinePlusPlus: StepMethod {
    public static let id = "baseline-plus-plus"
    public static let regime = Regime.fewShot
    /// 2: the scale follows the head's class count (v1 read the feature width, so 1,200 base
    /// classes trained at scale 2), and the per-class gains of weight normalisation are learned.
    public static let version = "2"
    public static let adapts = true
    public static let summary = "cosine classifier on the base classes; a new cosine head fitted on each support set (Chen et al. 2019)"
    public typealias Config = BaselineConfig

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> BaselineLearner {
        try BaselineLearner(data, config: config, head: .cosine, rng: &rng)
    }
}

import DataCore
import NNCore
import TensorCore

/// What the two baselines of Chen et al. (2019) share: a backbone and a classifier over the base
/// classes trained by plain cross-entropy on every base example, and an adapter that freezes the
/// backbone and fits a new classifier of the same kind on each episode's support features.
public struct BaselineConfig: StepConfig {
    public var backbone = BackboneSpec()
    /// The paper trains with Adam at 1e-3 (batch 16, 400 epochs); 2,000 steps of 64 here.
    public var training = TrainingSpec.adam()
    public var batchSize = 64
    /// The adapter's head fitting.
    public var adapter = SupportHead()

    public init() {}

    public func validateOwn() throws {
        try Check.atLeast(batchSize, 1, key: "batchSize")
        try adapter.validate(key: "adapter")
    }

    public var samplesPerStep: Int { batchSize }
    // Measured (fewshot.yaml, 2-vCPU Xeon): the base-class head (1,200 classes on glyphs) and
    // its softmax make a step about 1.3x a supervised one per image.
    public var stepCost: Double { 1.3 }
}

/// The classifier kind: a linear layer (Baseline) or a cosine classifier (Baseline++).
public enum BaselineHead: Sendable {
    case linear
    /// Scaled cosine similarity to weight-normalised per-class vectors (a learned gain per class),
    /// at the reference code's scale.
    case cosine

    /// The reference code's fixed scale: 2 for a head over at most 200 classes, else 10 ("a larger
    /// scale factor is required to handle >1000 output classes", its comment on Omniglot).
    static func cosineScale(classes: Int) -> Float { classes <= 200 ? 2 : 10 }

    func make(features: Int, classes: Int, rng: inout RNG) -> Module {
        switch self {
        case .linear: return Linear(features, classes, rng: &rng)
        case .cosine: return CosineClassifier(features, classes, scale: BaselineHead.cosineScale(classes: classes), classGains: true, rng: &rng)
        }
    }
}

/// Backbone `0` and base-class head `1`, trained on labeled base examples; adapts by a new head.
public final class BaselineLearner: Learner, FewShotAdapter {
    public let network: Sequential
    public let needs: StreamNeeds
    let features: Int
    let head: BaselineHead
    let adapter: SupportHead
    /// Initialises each episode's head: fixed, so an episode's score does not depend on how many
    /// episodes came before it.
    let headSeed: UInt64

    init(_ data: TrainingData, config: BaselineConfig, head: BaselineHead, rng: inout RNG) throws {
        let (body, features) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
        network = Sequential([body, head.make(features: features, classes: data.classCount, rng: &rng)])
        (self.features, self.head, adapter, headSeed) = (features, head, config.adapter, rng.next())
        needs = StreamNeeds(labeled: (config.batchSize, .weak))
    }

    public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
        let x = batch.labeled!
        return .classification(network.forward(x.images, &ctx), labels: x.labels, accuracyName: "train_accuracy")
    }

    /// The frozen backbone's features under `context`'s weights.
    func embed(_ x: Tensor, _ context: ForwardContext) -> Tensor {
        noGrad {
            var c = context
            return c.child("0") { network.children[0].module.forward(x, &$0) }
        }
    }

    public func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, context: ForwardContext) -> Tensor {
        var rng = RNG(seed: headSeed)
        let fitted = adapter.fit(head.make(features: features, classes: way, rng: &rng), features: embed(support, context), labels: supportLabels)
        return noGrad { fitted(embed(query, context)) }
    }

    public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features, adapter: self) }
}

/// Baseline (Chen, Liu, Kira, Wang & Huang, "A Closer Look at Few-shot Classification", ICLR
/// 2019): a linear classifier trained on the base classes; for an episode the backbone is frozen
/// and a new linear classifier is fitted on the support set. Departures: conv4 on the suite's
/// image size and 2,000 steps of 64 images instead of 400 epochs; full-batch head fitting.
public enum FineTuneBaseline: StepMethod {
    public static let id = "finetune-baseline"
    public static let regime = Regime.fewShot
    public static let version = "1"
    public static let adapts = true
    public static let summary = "linear classifier on the base classes; a new linear head fitted on each support set (Chen et al. 2019)"
    public typealias Config = BaselineConfig

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> BaselineLearner {
        try BaselineLearner(data, config: config, head: .linear, rng: &rng)
    }
}

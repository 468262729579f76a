import DataCore
import NNCore
import TensorCore

/// Raw pixels as the representation: no training at all. The floor of every representation
/// learner: a protocol's score on pixels (a linear probe, kNN, few-shot episodes) is what the
/// data gives away for free, and a learned encoder that does not beat it has learned nothing
/// usable. It shows how a method that does not train by gradient steps fits the protocol: it
/// implements `train` itself, and its summary says it took no steps. Its few-shot adapter is the
/// nearest class mean in pixel space (ProtoNet's rule on the raw pixels), so `episodes` scores the
/// pixel-space floor that few-shot methods are judged against, beside `episodes-linear`'s
/// logistic-regression head on the same pixels.
public enum Pixels: Method {
    public static let id = "pixels"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let adapts = true
    public static let summary = "raw (standardised) pixels as features, no training: the floor for every learned representation"

    public struct Config: MethodConfig {
        /// Scale each image's pixel vector to unit length before the protocols see it.
        public var normalize = false

        public init() {}
        public func validate() throws {}
        public var workload: Workload { Workload(steps: 0, samplesPerStep: 0, backbone: "pixels", width: 0) }
    }

    public static func defaultConfig(budget: LabelBudget, classes: Int) -> Config { Config() }

    public static func train(_ input: TrainingInput, config: Config) throws -> TrainedModel {
        let encoder = PixelEncoder(normalize: config.normalize)
        let summary = TrainingSummary(steps: 0, seconds: 0, samplesPerSecond: 0, curves: [], best: nil, finalLoss: 0)
        return TrainedModel(Evaluables(classifier: nil, encoder: encoder, encoderPath: "", featureCount: input.data.imageShape.reduce(1, *),
                                       adapter: NearestClassMean(encoder: encoder)),
                            summary: summary)
    }

    /// A query's logits are its negative squared distances to the support classes' mean pixel vectors.
    struct NearestClassMean: FewShotAdapter {
        let encoder: PixelEncoder
        func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, context: ForwardContext) -> Tensor {
            noGrad {
                var ctx = context
                return ProtoNet.logits(encoder, support: support, supportLabels: supportLabels, way: way, query: query, &ctx)
            }
        }
    }

    /// Flattens an image to its pixel vector, optionally L2-normalised; it has no parameters.
    final class PixelEncoder: Module {
        let normalize: Bool
        init(normalize: Bool) { self.normalize = normalize }
        override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            normalize ? x.flattened().l2Normalized() : x.flattened()
        }
    }
}

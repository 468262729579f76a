import DataCore
import NNCore
import TensorCore

/// Backbone, optional dropout, linear head over the training classes: the network of every method
/// whose output is a classifier, and what evaluation scores of it (the whole network as the
/// classifier, the backbone `0` as the encoder).
public enum ClassifierNetwork {
    /// The network `Sequential([backbone, (Dropout,) Linear])` and the backbone's feature width.
    public static func build(_ data: TrainingData, backbone: BackboneSpec, dropout: Float = 0, rng: inout RNG) throws -> (network: Sequential, features: Int) {
        let (body, features) = try backbone.build(imageShape: data.imageShape, rng: &rng)
        let head = Linear(features, data.classCount, rng: &rng)
        return (Sequential(dropout > 0 ? [body, Dropout(dropout), head] : [body, head]), features)
    }

    public static func evaluables(_ network: Sequential, features: Int, adapter: FewShotAdapter? = nil) -> Evaluables {
        Evaluables(classifier: network, encoder: network.children[0].module, encoderPath: "0", featureCount: features, adapter: adapter)
    }

    public static func checkDropout(_ p: Float, key: String) throws {
        guard p >= 0 && p < 1 else { throw ConfigError(key: key, "a dropout rate must be in [0, 1), got \(p)") }
    }
}

/// Logits of `x` to train toward: computed without a graph (no gradient reaches a guess), in
/// `ctx`'s mode with the batch's own statistics, leaving batch-norm running statistics untouched.
/// `ctx` may carry other weights (a teacher's).
public func guessLogits(_ network: Module, _ x: Tensor, _ ctx: ForwardContext) -> Tensor {
    noGrad {
        var c = ctx
        c.updatesRunningStatistics = false
        return network.forward(x, &c)
    }
}

/// The class probabilities of `guessLogits`.
public func guessProbabilities(_ network: Module, _ x: Tensor, _ ctx: ForwardContext) -> Tensor {
    noGrad { guessLogits(network, x, ctx).softmax() }
}

extension Module {
    /// One forward pass over `parts` stacked on the batch axis (one batch-norm batch, as the
    /// papers run labeled and unlabeled images together), the output split back per part.
    public func forwardParts(_ parts: [Tensor], _ ctx: inout ForwardContext) -> [Tensor] {
        let out = forward(parts.count == 1 ? parts[0] : concat(parts, axis: 0), &ctx)
        var start = 0
        return parts.map { part in
            defer { start += part.shape[0] }
            return parts.count == 1 ? out : out.slice(axis: 0, start, start + part.shape[0])
        }
    }
}

/// The checks every config repeats, each naming its key.
public enum Check {
    public static func atLeast(_ value: Int, _ minimum: Int, key: String) throws {
        guard value >= minimum else { throw ConfigError(key: key, "must be at least \(minimum), got \(value)") }
    }

    public static func nonNegative(_ value: Float, key: String) throws {
        guard value >= 0 && value.isFinite else { throw ConfigError(key: key, "must be a finite number >= 0, got \(value)") }
    }

    public static func positive(_ value: Float, key: String) throws {
        guard value > 0 && value.isFinite else { throw ConfigError(key: key, "must be a finite number > 0, got \(value)") }
    }

    public static func probability(_ value: Float, key: String) throws {
        guard value >= 0 && value <= 1 else { throw ConfigError(key: key, "must be in [0, 1], got \(value)") }
    }
}

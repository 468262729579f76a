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

/// The network of a pretext task that classifies transformed images (rotation, jigsaw):
/// `Sequential([lower, upper, Linear])`. The representation is the backbone's first
/// `featureBlocks` conv4 blocks (`lower`, path "0"); the remaining blocks and a linear layer over
/// `outputs` pretext classes form the head. Gidaris et al. 2018 (Table 1) find a middle block's
/// features best for classification, the last specialising in the pretext task. An MLP backbone
/// has no blocks to cut: all of it is the representation.
public enum PretextNetwork {
    public static func build(_ data: TrainingData, backbone: BackboneSpec, featureBlocks: Int, outputs: Int, rng: inout RNG) throws -> (network: Sequential, features: Int) {
        let (body, width) = try backbone.build(imageShape: data.imageShape, rng: &rng)
        // conv4 is four blocks then a Flatten: cut after `featureBlocks` blocks (the Flatten stays
        // with the head). An MLP is kept whole.
        let layers = body.children.map(\.module)
        let cut = backbone.name == "conv4" ? featureBlocks : layers.count
        let lower = Sequential(Array(layers[0..<cut])), upper = Sequential(Array(layers[cut...]))
        let network = Sequential([lower, upper, Linear(width, outputs, rng: &rng)])
        // The representation's width: its output on one image.
        let features = noGrad { FlattenedOutput(lower, name: "0")(Tensor(zeros: [2] + data.imageShape)).shape[1] }
        return (network, features)
    }

    public static func evaluables(_ network: Sequential, features: Int) -> Evaluables {
        Evaluables(classifier: nil, encoder: FlattenedOutput(network.children[0].module, name: "0"), encoderPath: "", featureCount: features)
    }

    public static func checkBlocks(_ featureBlocks: Int) throws {
        guard (1...4).contains(featureBlocks) else { throw ConfigError(key: "featureBlocks", "conv4 has 4 blocks: give 1 to 4, got \(featureBlocks)") }
    }
}

/// The representation of a method that trains the whole backbone as its encoder (autoencoder,
/// deepcluster, moco, simclr), read after its first `featureBlocks` conv4 blocks instead of all
/// four. Training is unchanged: only what `linear`, `knn`, `finetune`, `episodes-linear` and the
/// trainer's validation see moves. 4 keeps the papers' representation, the encoder's output; an
/// `mlp` backbone has no blocks to cut and is kept whole. Paths read as in the method's network
/// (the cut encoder sits under its own path, as `PretextNetwork`'s lower part does).
public struct EncoderCut {
    public let featureBlocks: Int
    let conv4: Bool
    let imageShape: [Int]

    public init(featureBlocks: Int, backbone: BackboneSpec, imageShape: [Int]) {
        (self.featureBlocks, conv4, self.imageShape) = (featureBlocks, backbone.name == "conv4", imageShape)
    }

    /// The evaluables of `network`, whose first child is the backbone (`features` wide).
    public func evaluables(_ network: Sequential, features: Int, measures: SelfMeasures? = nil) -> Evaluables {
        let (path, encoder) = network.children[0]
        // conv4 is four blocks then a Flatten (`Backbone.conv4`): keep the first blocks, flatten them.
        guard conv4, featureBlocks < 4, let blocks = encoder as? Sequential else {
            return Evaluables(classifier: nil, encoder: encoder, encoderPath: path, featureCount: features, measures: measures)
        }
        let lower = FlattenedOutput(Sequential(blocks.children.prefix(featureBlocks).map(\.module)), name: path)
        let width = noGrad { lower(Tensor(zeros: [2] + imageShape)).shape[1] }
        return Evaluables(classifier: nil, encoder: lower, encoderPath: "", featureCount: width, measures: measures)
    }
}

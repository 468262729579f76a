import DataCore
import NNCore
import TensorCore

/// Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching Networks for
/// One Shot Learning", NeurIPS 2016). A query is labelled by attention over the support set:
/// P(y | x̂, S) = Σᵢ a(x̂, xᵢ) yᵢ with a = softmax over i of cos(f(x̂), g(xᵢ)); training minimises
/// −log P of the query's class over episodes of the base classes, and the same rule is the
/// adapter. With `fullContextEmbeddings`, g(xᵢ) = g′(xᵢ) + h→ᵢ + h←ᵢ from a bidirectional LSTM over
/// the support embeddings, and f(x̂) is an attention LSTM run for `processingSteps` reads over
/// g(S) (the paper's FCE; its Omniglot results are without it, its miniImageNet results with it).
///
/// Departures: the cosines are multiplied by `cosineScale` = 100 before the softmax, as in the
/// reimplementation of Chen et al. ("A Closer Look at Few-shot Classification", ICLR 2019), whose
/// comment says the scale strengthens the highest probability after the softmax (it also clips
/// negative cosines at 0; not here): a cosine is at most 1, so the paper's softmax over 100
/// support examples of a 20-way 5-shot episode stays nearly flat and learns slowly. On glyphs
/// (5-way validation-class episodes, 300 steps as in fewshot.yaml, seed 0; the test split played
/// no part) the best validation accuracy was 0.786 at scale 1, 0.896 at 10 and 0.929 at 100.
/// The attention LSTM's hidden state is h + r (the read added to the state, as common
/// implementations do) instead of the concatenation [h, r]; training episodes use the suite-wide
/// episode stream at `trainWay`-way `trainShot`-shot (the paper matches the test setting).
public enum MatchingNet: StepMethod {
    public static let id = "matching-net"
    public static let regime = Regime.fewShot
    /// 2: cosines scaled by 100 before the attention's softmax (v1: unscaled, as the paper).
    public static let version = "2"
    public static let adapts = true
    public static let summary = "softmax attention over scaled cosine similarities to the support set, optional full-context embeddings (Vinyals et al. 2016)"

    public struct Config: EpisodicConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec.adam(decayEvery: 500)
        public var trainWay = 20
        public var trainShot = 5
        public var trainQuery = 15
        public var fullContextEmbeddings = false
        public var processingSteps = 3
        /// Multiplies the cosines before the attention's softmax (the paper: 1; see the departures).
        public var cosineScale: Float = 100

        public init() {}

        public func validateOwn() throws {
            try validateEpisodes()
            try Check.atLeast(processingSteps, 1, key: "processingSteps")
            try Check.positive(cosineScale, key: "cosineScale")
        }

        public var samplesPerStep: Int { episodeSize }
    }

    /// a(x̂, xᵢ): row q is the softmax over the support rows of the cosine similarities (times
    /// `scale`).
    public static func attention(query: Tensor, support: Tensor, scale: Float = 1) -> Tensor {
        (pairwiseCosineSimilarity(query, support) * scale).softmax()
    }

    /// log P(y | x̂, S) over the way classes: log of the attention mass on each class's support
    /// examples (floored so that a class with no mass has a finite log).
    public static func logProbabilities(attention a: Tensor, supportLabels: [Int32], way: Int) -> Tensor {
        (matmul(a, Tensor.oneHot(supportLabels, classes: way)) + 1e-8).log()
    }

    /// Backbone `0`; with FCE, the support LSTMs `1` (forward), `2` (backward) and the attention
    /// LSTM `3`.
    public final class Network: Module {
        let fce: Bool, steps: Int, scale: Float

        init(body: Module, features: Int, config: Config, rng: inout RNG) {
            (fce, steps, scale) = (config.fullContextEmbeddings, config.processingSteps, config.cosineScale)
            super.init()
            children = [("0", body)]
            if fce {
                children += [("1", LSTMCell(features, features, rng: &rng)), ("2", LSTMCell(features, features, rng: &rng)),
                             ("3", LSTMCell(features, features, rng: &rng))]
            }
        }

        // invariant: the full-context embedding's children are the LSTM cells init made
        func cell(_ i: Int) -> LSTMCell { children[i].module as! LSTMCell }

        /// Log-probabilities of the query over the way classes.
        func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            let s = support.shape[0]
            let z = ctx.child("0") { children[0].module.forward(concat([support, query], axis: 0), &$0) }
            var g = z.slice(axis: 0, 0, s), f = z.slice(axis: 0, s, z.shape[0])
            if fce {
                g = contextualSupport(g, &ctx)
                f = attend(f, to: g, &ctx)
            }
            return MatchingNet.logProbabilities(attention: MatchingNet.attention(query: f, support: g, scale: scale), supportLabels: supportLabels, way: way)
        }

        /// g′ + h→ + h← over the support sequence.
        func contextualSupport(_ g: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            let (n, d) = (g.shape[0], g.shape[1])
            func run(_ i: Int, _ order: [Int], _ ctx: inout ForwardContext) -> [Tensor] {
                var h = Tensor(zeros: [1, d]), c = Tensor(zeros: [1, d])
                var out = [Tensor](repeating: h, count: n)
                for k in order {
                    (h, c) = ctx.child(String(i)) { cell(i).step(g.slice(axis: 0, k, k + 1), h: h, c: c, &$0) }
                    out[k] = h
                }
                return out
            }
            let forward = run(1, Array(0..<n), &ctx), backward = run(2, Array((0..<n).reversed()), &ctx)
            return g + concat(forward, axis: 0) + concat(backward, axis: 0)
        }

        /// The attention LSTM: `steps` reads over g, from f′ itself.
        func attend(_ f: Tensor, to g: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            var h = Tensor(zeros: f.shape), c = Tensor(zeros: f.shape), r = Tensor(zeros: f.shape)
            for _ in 0..<steps {
                let hidden = h + r
                let (hHat, c2) = ctx.child("3") { cell(3).step(f, h: hidden, c: c, &$0) }
                (h, c) = (hHat + f, c2)
                r = matmul(matmul(h, g, transposeB: true).softmax(), g)
            }
            return h
        }

        /// A stand-alone call is the backbone (the encoder).
        public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            ctx.child("0") { children[0].module.forward(x, &$0) }
        }
    }

    public final class Model: ConfiguredLearner, FewShotAdapter {
        public let network: Network
        public let needs: StreamNeeds
        let features: Int

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (body, features) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            network = Network(body: body, features: features, config: config, rng: &rng)
            self.features = features
            needs = StreamNeeds(episodes: config.episodeNeeds)
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let e = batch.episode!
            let logP = network.logits(support: e.support, supportLabels: e.supportLabels, way: e.way, query: e.query, &ctx)
            let loss = -(logP * Tensor.oneHot(e.queryLabels, classes: e.way)).sum() * (1 / Float(e.queryLabels.count))
            return StepOutput(loss: loss, scalars: [("episode_accuracy", StepOutput.accuracy(logP, e.queryLabels))])
        }

        public func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, context: ForwardContext) -> Tensor {
            noGrad {
                var ctx = context
                return network.logits(support: support, supportLabels: supportLabels, way: way, query: query, &ctx)
            }
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: nil, encoder: network.children[0].module, encoderPath: "0", featureCount: features, adapter: self)
        }
    }
}

import DataCore
import Foundation
import NNCore
import TensorCore

/// The Meta-Learner LSTM (Ravi & Larochelle, "Optimization as a Model for Few-Shot Learning",
/// ICLR 2017). The learner's parameters are the cell state of an LSTM applied coordinate-wise:
/// θₜ = fₜ ⊙ θₜ₋₁ − iₜ ⊙ ∇ₜ, with the input gate iₜ = σ(W_I·[∇ₜ, Lₜ, θₜ₋₁, iₜ₋₁] + b_I) acting
/// as a learned per-coordinate learning rate and the forget gate fₜ = σ(W_F·[∇ₜ, Lₜ, θₜ₋₁, fₜ₋₁] +
/// b_F) as a learned shrinkage; the gate weights are shared by every coordinate. The cell's
/// initial state θ₀ is the learner's learned initialisation. Meta-training runs `innerSteps`
/// updates on the support set and trains the gates and θ₀ on the query loss at the end; the
/// gradients ∇ₜ and losses Lₜ are inputs, not differentiated (the paper's simplification). The
/// adapter runs the same updates on an episode's support set. Paper details kept: gradients and
/// losses preprocessed as (log(|x|)/p, sign x) or (−1, eᵖx) with p = 10; forget bias initialised
/// high (f ≈ 1) and input bias low; batch norm with the statistics of the batch at hand.
///
/// Departures: the paper feeds the preprocessed ∇ and L through a first LSTM layer (20 units)
/// before the gates; here they enter the gates directly (the second layer's update rule, which
/// is what the method contributes). 5 updates in training and adaptation (the paper's 12 and
/// 5-shot batches); conv4 with max-pooling on the suite's images; fewer meta-steps.
public enum MetaLSTM: StepMethod {
    public static let id = "meta-lstm"
    public static let regime = Regime.fewShot
    public static let version = "1"
    public static let adapts = true
    public static let summary = "a coordinate-wise LSTM whose gates are the learner's learning rate and shrinkage (Ravi & Larochelle 2017)"

    public struct Config: EpisodicConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec.adam()
        public var trainWay = 5
        public var trainShot = 1
        public var trainQuery = 15
        public var innerSteps = 5
        public var adaptSteps = 5
        /// The input gate's starting value (its bias is logit of it): the initial learning rate.
        public var initialInputGate: Float = 0.1
        /// The forget gate's starting value.
        public var initialForgetGate: Float = 0.995

        public init() {}

        public func validateOwn() throws {
            try validateEpisodes()
            try Check.atLeast(innerSteps, 1, key: "innerSteps")
            try Check.atLeast(adaptSteps, 1, key: "adaptSteps")
            for (key, g) in [("initialInputGate", initialInputGate), ("initialForgetGate", initialForgetGate)] where !(g > 0 && g < 1) {
                throw ConfigError(key: key, "a gate value must be in (0, 1), got \(g)")
            }
        }

        public var samplesPerStep: Int { episodeSize }
        // Measured (fewshot.yaml and the default suite, 2-vCPU Xeon): the coordinate-wise LSTM over
        // every parameter makes a step about 3x a supervised one per image, the adapter (its
        // inner loop on the support) 4 forward passes per image.
        public var stepCost: Double { 3 }
        public var adapterCost: Double { 4 }
    }

    /// Gate features per coordinate: preprocessed ∇ (2), preprocessed L (2), θ, the previous gate.
    static let gateInputs = 6

    /// The shared gate weights: `wi`, `bi` (input gate) and `wf`, `bf` (forget gate).
    public final class Gates: Module {
        init(inputGate: Float, forgetGate: Float, rng: inout RNG) {
            super.init()
            let n = MetaLSTM.gateInputs
            parameters["wi"] = Tensor.uniform([n, 1], -0.01, 0.01, rng: &rng)
            parameters["wf"] = Tensor.uniform([n, 1], -0.01, 0.01, rng: &rng)
            parameters["bi"] = Tensor(shape: [1], scalars: [Foundation.log(inputGate / (1 - inputGate))])
            parameters["bf"] = Tensor(shape: [1], scalars: [Foundation.log(forgetGate / (1 - forgetGate))])
        }
    }

    /// Learner `0` (backbone and a `trainWay` head) and the gates `1`; as a module, the learner.
    public final class Network: Module {
        init(learner: Module, gates: Gates) {
            super.init()
            children = [("0", learner), ("1", gates)]
        }

        public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            ctx.child("0") { children[0].module.forward(x, &$0) }
        }
    }

    /// Ravi & Larochelle's (after Andrychowicz et al. 2016) preprocessing of one value:
    /// (log|x| / p, sign x) when |x| ≥ e^(−p), else (−1, eᵖ x).
    public static func preprocess(_ x: Float, p: Float = 10) -> (Float, Float) {
        abs(x) >= Foundation.exp(-p) ? (Foundation.log(abs(x)) / p, x > 0 ? 1 : (x < 0 ? -1 : 0)) : (-1, Foundation.exp(p) * x)
    }

    /// One coordinate-wise update of a parameter tensor θ given its gradient ∇ (a constant) and the
    /// loss L: returns θ′ = f ⊙ θ − i ⊙ ∇ and the gates i, f (as [n, 1]) for the next step.
    public static func update(theta: Tensor, gradient: Tensor, loss: Float, inputPrevious: Tensor, forgetPrevious: Tensor,
                              gates: (wi: Tensor, bi: Tensor, wf: Tensor, bf: Tensor)) -> (theta: Tensor, input: Tensor, forget: Tensor) {
        let n = theta.count
        let g = gradient.detached.scalars
        let pg = g.map { preprocess($0) }, pl = preprocess(loss)
        let constant = Tensor(shape: [n, 4], scalars: pg.flatMap { [$0.0, $0.1, pl.0, pl.1] })
        let column = theta.reshaped([n, 1])
        let i = (matmul(concat([constant, column, inputPrevious], axis: 1), gates.wi) + gates.bi).sigmoid()
        let f = (matmul(concat([constant, column, forgetPrevious], axis: 1), gates.wf) + gates.bf).sigmoid()
        let next = f * column - i * Tensor(shape: [n, 1], scalars: g)
        return (next.reshaped(theta.shape), i, f)
    }

    /// The learner's weights after `steps` meta-learner updates on the support set, from
    /// `start` (every trainable weight by path: the learner's under `0.`, the gates' under `1.`).
    public static func adapt(_ network: Module, start: [String: Tensor], support: Tensor, labels: [Int32], way: Int, steps: Int,
                             _ context: ForwardContext) -> [String: Tensor] {
        let gates = (wi: start["1.wi"]!, bi: start["1.bi"]!, wf: start["1.wf"]!, bf: start["1.bf"]!)
        var fast = start.filter { $0.key.hasPrefix("0.") }
        let paths = fast.keys.sorted()
        var inputs = fast.mapValues { Tensor(zeros: [$0.count, 1]) }, forgets = inputs
        for _ in 0..<steps {
            let loss = Loss.crossEntropy(MAML.logits(network, support, way: way, weights: fast, context), labels: labels)
            let g = gradients(of: loss, wrt: paths.map { fast[$0]! })
            for (path, gradient) in zip(paths, g) {
                let u = update(theta: fast[path]!, gradient: gradient, loss: loss.item, inputPrevious: inputs[path]!,
                               forgetPrevious: forgets[path]!, gates: gates)
                (fast[path], inputs[path], forgets[path]) = (u.theta, u.input, u.forget)
            }
        }
        return fast
    }

    public final class Model: ConfiguredLearner, FewShotAdapter {
        public let network: Network
        public let needs: StreamNeeds
        let features: Int
        let config: Config

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (body, features) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            let learner = Sequential([body, Linear(features, config.trainWay, rng: &rng)])
            network = Network(learner: learner, gates: Gates(inputGate: config.initialInputGate, forgetGate: config.initialForgetGate, rng: &rng))
            (self.features, self.config) = (features, config)
            needs = StreamNeeds(episodes: config.episodeNeeds)
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let e = batch.episode!
            let fast = MetaLSTM.adapt(network, start: ctx.overrides, support: e.support, labels: e.supportLabels, way: e.way,
                                      steps: config.innerSteps, ctx)
            let q = MAML.logits(network, e.query, way: e.way, weights: fast, ctx)
            return .classification(q, labels: e.queryLabels, accuracyName: "episode_accuracy")
        }

        public func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, context: ForwardContext) -> Tensor {
            let start = Dictionary(uniqueKeysWithValues: network.namedParameters().map { ($0.path, (context.overrides[$0.path] ?? $0.tensor).detached.requiringGrad()) })
            let fast = MetaLSTM.adapt(network, start: start, support: support, labels: supportLabels, way: way, steps: config.adaptSteps, context)
            return noGrad { MAML.logits(network, query, way: way, weights: fast.mapValues(\.detached), context) }
        }

        public var evaluables: Evaluables {
            // The encoder is the learner's backbone at its initialisation θ₀.
            Evaluables(classifier: nil, encoder: network.children[0].module.children[0].module, encoderPath: "0.0", featureCount: features, adapter: self)
        }
    }
}

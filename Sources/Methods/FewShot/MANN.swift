import DataCore
import Foundation
import NNCore
import TensorCore

/// Memory-Augmented Neural Network (Santoro, Bartunov, Botvinick, Wierstra & Lillicrap, "Meta-
/// Learning with Memory-Augmented Neural Networks", ICML 2016). An LSTM controller reads a
/// sequence of [embedding, one-hot label of the previous item] (labels arrive one step late, so
/// the network must bind an image to the label it sees next) and addresses an external memory
/// with least-recently-used access: key kₜ from the controller; read weights wʳₜ = softmax of
/// cos(kₜ, M(i)) (optionally β·cos; see below); write weights wʷₜ = σ(α)·wʳₜ₋₁ + (1 − σ(α))·wˡᵘₜ₋₁;
/// usage wᵘₜ = γ·wᵘₜ₋₁ + wʳₜ + wʷₜ; wˡᵘₜ marks the n least-used slots (n = read heads); the
/// least-used slot is cleared before Mₜ(i) = Mₜ₋₁(i) + wʷₜ(i)·kₜ; the read rₜ = Σᵢ wʳₜ(i)·M(i). The
/// class at step t comes from [hₜ, rₜ]. Paper settings: γ = 0.95, cosine addressing, one-hot
/// labels, Adam, and a loss on every step of a sequence of 10 instances per class in random order
/// (the first instance of a class can only be guessed; later ones are what train the binding).
///
/// Training follows the paper: an episode's `trainShot + trainQuery` instances per class are one
/// shuffled sequence with the loss on every step (defaults 1 + 9, the paper's 10 per class). In
/// the adapter the support set (in a fixed shuffled order) is the sequence; each query then takes
/// one more step from the state the support left, its label slot holding the last support item's
/// label as the sequence shows it, and is scored there (so no query sees another query's image or
/// label).
/// Departures: the paper leaves open whether a step reads the memory before or after its own
/// write; here it reads Mₜ₋₁, before the write, so a key cannot retrieve itself (it matches what
/// earlier steps stored, which is the binding a one-shot read needs). 4 read heads of 40-wide keys
/// over 128 slots and a 128-unit controller (the paper's 200 units), a conv4 embedding instead of
/// raw pixels; the adapter is the same forward pass. `learnedKeyStrength: true` lets the
/// controller also emit a key strength β = 1 + softplus(·) per head (the content addressing of the
/// Neural Turing Machine, Graves et al. 2014, that MANN's reads come from) where the paper reads
/// with β = 1 (cosines lie in [−1, 1], so over 128 slots a perfectly matching slot weighs at most
/// e² ≈ 7.4 times an unrelated one). It is off by default: on glyphs 5-way it left the loss
/// where the paper's form had it after 1,250 episodes (1.584 against 1.587), so nothing measured
/// justifies the departure.
public enum MANN: StepMethod {
    public static let id = "mann"
    public static let regime = Regime.fewShot
    public static let version = "2"
    public static let adapts = true
    public static let summary = "an LSTM controller with least-recently-used external memory, labels one step late (Santoro et al. 2016)"

    public struct Config: EpisodicConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec.adam()
        public var trainWay = 5
        public var trainShot = 1
        public var trainQuery = 9
        public var controllerSize = 128
        public var memorySlots = 128
        public var memoryWidth = 40
        public var readHeads = 4
        /// Usage decay γ.
        public var usageDecay: Float = 0.95
        /// Reads with a key strength β ≥ 1 from the controller (NTM addressing); false: β = 1, the paper's.
        public var learnedKeyStrength = false

        public init() {}

        public func validateOwn() throws {
            try validateEpisodes()
            try Check.atLeast(controllerSize, 1, key: "controllerSize")
            try Check.atLeast(memorySlots, 2, key: "memorySlots")
            try Check.atLeast(memoryWidth, 1, key: "memoryWidth")
            try Check.atLeast(readHeads, 1, key: "readHeads")
            guard readHeads < memorySlots else { throw ConfigError(key: "readHeads", "must be fewer than memorySlots (\(memorySlots)), got \(readHeads)") }
            try Check.probability(usageDecay, key: "usageDecay")
        }

        public var samplesPerStep: Int { episodeSize }
        // Measured (fewshot.yaml and the default suite, 2-vCPU Xeon): the controller's sequential
        // memory reads and writes make a step about 4x a supervised one per image.
        public var stepCost: Double { 4 }
        public var adapterCost: Double { 1.6 }
    }

    /// log(1 + eˣ), computed as max(x, 0) + log(1 + e^−|x|) so large x cannot overflow.
    static func softplus(_ x: Tensor) -> Tensor {
        let positive = x.relu()
        return positive + ((x - positive * 2).exp() + 1).log()
    }

    /// The memory and its addressing history between steps (one sequence).
    public struct Memory {
        public var slots: Tensor
        /// Read weights of the previous step, one [1, N] row per head.
        public var reads: [Tensor]
        public var usage: [Float]
        /// Least-used marks of the previous step (constants: the choice is discrete).
        public var leastUsed: [Float]

        public init(slots: Int, width: Int, heads: Int) {
            self.slots = Tensor(zeros: [slots, width])
            reads = Array(repeating: Tensor(zeros: [1, slots]), count: heads)
            usage = Array(repeating: 0, count: slots)
            leastUsed = Array(repeating: 0, count: slots)
            for i in 0..<min(heads, slots) { leastUsed[i] = 1 }
        }

        /// Read weights of `key` [1, W] over the slots, the softmax of β·cosine: [1, N]
        /// (`strength` [1, 1] is β; nil is β = 1).
        public func readWeights(_ key: Tensor, strength: Tensor? = nil) -> Tensor {
            let cosines = pairwiseCosineSimilarity(key, slots)
            return (strength.map { cosines * $0 } ?? cosines).softmax()
        }

        /// Each head's read weights and read vector (rows of `keys[h]` read independently; the
        /// memory is not changed).
        public func read(_ keys: [Tensor], strengths: [Tensor]? = nil) -> (weights: [Tensor], values: [Tensor]) {
            let weights = keys.indices.map { readWeights(keys[$0], strength: strengths?[$0]) }
            return (weights, weights.map { matmul($0, slots) })
        }

        /// One step of LRU addressing for `keys` (one [1, W] per head), write gates σ(α) and key
        /// strengths β (one [1, 1] per head; nil: β = 1): reads the memory as the previous step
        /// left it, then clears the least-used slot, writes, and updates usage; returns the reads.
        public mutating func step(keys: [Tensor], writeGates: [Tensor], strengths: [Tensor]? = nil, usageDecay: Float) -> [Tensor] {
            let n = slots.shape[0]
            let (newReads, out) = read(keys, strengths: strengths)
            // Clear the slot the previous step marked least used (the smallest usage among them).
            let clearing = leastUsed.indices.filter { leastUsed[$0] > 0 }.min { usage[$0] < usage[$1] }
            if let clear = clearing {
                slots = slots * Tensor(shape: [n, 1], scalars: (0..<n).map { $0 == clear ? 0 : 1 })
            }
            let lu = Tensor(shape: [1, n], scalars: leastUsed)
            var writes: [Tensor] = []
            for (h, key) in keys.enumerated() {
                let w = writeGates[h] * reads[h] + (1 - writeGates[h]) * lu
                slots = slots + matmul(w, key, transposeA: true)
                writes.append(w)
            }
            var u = usage.map { $0 * usageDecay }
            for w in newReads + writes { for (i, v) in w.detached.scalars.enumerated() { u[i] += v } }
            // The n least-used slots (n = heads) for the next step.
            let order = u.indices.sorted { u[$0] < u[$1] }
            var marks = [Float](repeating: 0, count: n)
            for i in order.prefix(keys.count) { marks[i] = 1 }
            (reads, usage, leastUsed) = (newReads, u, marks)
            return out
        }
    }

    /// Embedding `0`, controller `1`, key, write-gate and key-strength projections `2`, output `3`; as a module, the embedding.
    public final class Network: Module {
        let config: Config

        init(body: Module, features: Int, config: Config, rng: inout RNG) {
            self.config = config
            super.init()
            let h = config.controllerSize, heads = config.readHeads
            children = [("0", body), ("1", LSTMCell(features + config.trainWay + heads * config.memoryWidth, h, rng: &rng)),
                        ("2", Linear(h, heads * (config.memoryWidth + (config.learnedKeyStrength ? 2 : 1)), rng: &rng)),
                        ("3", Linear(h + heads * config.memoryWidth, config.trainWay, rng: &rng))]
        }

        public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            ctx.child("0") { children[0].module.forward(x, &$0) }
        }

        struct State {
            var h: Tensor, c: Tensor, reads: Tensor, memory: Memory
        }

        /// The controller's part of a step for inputs [B, F] and previous labels [B, way] from
        /// states whose h, c and reads have B rows: the new h and c, and each head's key, write
        /// gate and key strength.
        func control(_ x: Tensor, previousLabel: Tensor, _ s: State, _ ctx: inout ForwardContext)
            -> (h: Tensor, c: Tensor, keys: [Tensor], gates: [Tensor], strengths: [Tensor]?) {
            // invariant: the controller built in init is an LSTMCell at child 1
            let cell = children[1].module as! LSTMCell
            let (h, c) = ctx.child("1") { cell.step(concat([x, previousLabel, s.reads], axis: 1), h: s.h, c: s.c, &$0) }
            let w = config.memoryWidth, heads = config.readHeads
            let projected = ctx.child("2") { children[2].module.forward(h, &$0) }
            let keys = (0..<heads).map { projected.slice(axis: 1, $0 * w, ($0 + 1) * w).tanh() }
            let gates = (0..<heads).map { projected.slice(axis: 1, heads * w + $0, heads * w + $0 + 1).sigmoid() }
            let strengths = config.learnedKeyStrength
                ? (0..<heads).map { MANN.softplus(projected.slice(axis: 1, heads * (w + 1) + $0, heads * (w + 1) + $0 + 1)) + 1 } : nil
            return (h, c, keys, gates, strengths)
        }

        /// The class logits from the controller's output and the reads.
        func readout(_ h: Tensor, _ reads: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            ctx.child("3") { children[3].module.forward(concat([h, reads], axis: 1), &$0) }
        }

        /// One step: input [1, F] and the previous label one-hot [1, way]; the new state and logits.
        func step(_ x: Tensor, previousLabel: Tensor, _ s: State, _ ctx: inout ForwardContext) -> (State, Tensor) {
            let a = control(x, previousLabel: previousLabel, s, &ctx)
            var memory = s.memory
            let reads = concat(memory.step(keys: a.keys, writeGates: a.gates, strengths: a.strengths, usageDecay: config.usageDecay), axis: 1)
            return (State(h: a.h, c: a.c, reads: reads, memory: memory), readout(a.h, reads, &ctx))
        }

        /// The logits of each row of `x` [B, F] taken alone as the next step from `s` (all shown
        /// `previousLabel` [1, way]), in one batched pass: a step reads the memory before its own
        /// write, so its logits do not depend on the write, and the rows share the state they start
        /// from.
        func nextStepLogits(_ x: Tensor, previousLabel: Tensor, _ s: State, _ ctx: inout ForwardContext) -> Tensor {
            let b = x.shape[0]
            func rows(_ t: Tensor) -> Tensor { t.broadcast(to: [b, t.shape[1]]) }
            let start = State(h: rows(s.h), c: rows(s.c), reads: rows(s.reads), memory: s.memory)
            let a = control(x, previousLabel: rows(previousLabel), start, &ctx)
            return readout(a.h, concat(s.memory.read(a.keys, strengths: a.strengths).values, axis: 1), &ctx)
        }

        /// The controller's state before the first step: zeros and an empty memory.
        func initialState() -> State {
            State(h: Tensor(zeros: [1, config.controllerSize]), c: Tensor(zeros: [1, config.controllerSize]),
                  reads: Tensor(zeros: [1, config.readHeads * config.memoryWidth]),
                  memory: Memory(slots: config.memorySlots, width: config.memoryWidth, heads: config.readHeads))
        }

        /// Runs the rows of `z` in `order`, each step shown the previous item's label (`labels`,
        /// one-hot rows); the final state, the label the next step would see, and each step's logits.
        func run(_ z: Tensor, labels: Tensor, order: [Int], _ ctx: inout ForwardContext) -> (state: State, previous: Tensor, logits: [Tensor]) {
            var state = initialState()
            var previous = Tensor(zeros: [1, config.trainWay])
            var logits: [Tensor] = []
            for i in order {
                let out: Tensor
                (state, out) = step(z.slice(axis: 0, i, i + 1), previousLabel: previous, state, &ctx)
                logits.append(out)
                previous = labels.slice(axis: 0, i, i + 1)
            }
            return (state, previous, logits)
        }

        /// Labels as the sequence shows them: one-hot over `trainWay` (a wider episode's labels wrap).
        func labelRows(_ labels: [Int32]) -> Tensor {
            Tensor.oneHot(labels.map { $0 % Int32(config.trainWay) }, classes: config.trainWay)
        }

        /// Training: support and query as one sequence in `order`, the loss's logits at every step.
        func sequenceLogits(_ images: Tensor, labels: [Int32], order: [Int], _ ctx: inout ForwardContext) -> Tensor {
            concat(run(forward(images, &ctx), labels: labelRows(labels), order: order, &ctx).logits, axis: 0)
        }

        /// Query logits over the way after the support sequence in `order`.
        func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, order: [Int], _ ctx: inout ForwardContext) -> Tensor {
            let s = support.shape[0], k = config.trainWay
            let z = forward(concat([support, query], axis: 0), &ctx)
            let (state, previous, _) = run(z, labels: labelRows(supportLabels), order: order, &ctx)
            // Each query from the support's final state; its label slot holds the last support label,
            // as the sequence would show it.
            return nextStepLogits(z.slice(axis: 0, s, z.shape[0]), previousLabel: previous, state, &ctx).slice(axis: 1, 0, min(way, k))
        }
    }

    public final class Model: ConfiguredLearner, FewShotAdapter {
        public let network: Network
        public let needs: StreamNeeds
        let features: Int
        let orderSeed: UInt64

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (body, features) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            network = Network(body: body, features: features, config: config, rng: &rng)
            (self.features, orderSeed) = (features, rng.next())
            needs = StreamNeeds(episodes: config.episodeNeeds)
        }

        /// The paper's training step: every instance of the episode in one shuffled sequence, the
        /// loss at every step.
        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let e = batch.episode!
            var rng = ctx.rng.derive("order")
            let labels = e.supportLabels + e.queryLabels
            let order = rng.permutation(labels.count)
            let logits = network.sequenceLogits(concat([e.support, e.query], axis: 0), labels: labels, order: order, &ctx)
            return .classification(logits, labels: order.map { labels[$0] }, accuracyName: "sequence_accuracy")
        }

        public func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, context: ForwardContext) -> Tensor {
            var rng = RNG(seed: orderSeed)
            let order = rng.permutation(supportLabels.count)
            return noGrad {
                var ctx = context
                return network.logits(support: support, supportLabels: supportLabels, way: way, query: query, order: order, &ctx)
            }
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: nil, encoder: network.children[0].module, encoderPath: "0", featureCount: features, adapter: self)
        }
    }
}

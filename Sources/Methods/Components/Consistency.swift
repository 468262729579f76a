import Foundation
import NNCore
import TensorCore

// Pieces the semi-supervised methods share (DESIGN.md §6), written and tested once. Each works on
// probabilities or logits already computed; none keeps state but `DistributionAlignment`.

/// FixMatch's confidence mask (Sohn et al. 2020): the arg-max class of each row of probabilities
/// as a hard pseudo-label, kept where its probability reaches `threshold`.
public struct ConfidenceMask {
    public let labels: [Int32]
    public let mask: [Bool]

    public init(probabilities p: Tensor, threshold: Float) {
        // invariant: probabilities are a classifier's softmax, [N, C]
        precondition(p.rank == 2, "ConfidenceMask: probabilities must be [N, C], got \(p.shape)")
        let c = p.shape[1]
        let best = p.argmaxRows()
        let mask = p.withUnsafeBufferPointer { q in best.enumerated().map { q[$0.offset * c + $0.element] >= threshold } }
        let labels = best.map(Int32.init)
        (self.labels, self.mask) = (labels, mask)
    }

    /// Fraction of rows kept.
    public var rate: Float { mask.isEmpty ? 0 : Float(mask.filter { $0 }.count) / Float(mask.count) }

    /// One-hot targets of the kept rows, zero rows elsewhere: cross-entropy against them, averaged
    /// over all N rows, is (1/N) Σ 1(max p ≥ τ) H(p̂, q), FixMatch's unlabeled loss.
    public func targets(classes: Int) -> Tensor {
        var t = Tensor.oneHot(labels, classes: classes)
        t.withUnsafeMutableBufferPointer { b in
            for (i, keep) in mask.enumerated() where !keep { for j in 0..<classes { b[i * classes + j] = 0 } }
        }
        return t
    }

    public static func checkThreshold(_ threshold: Float, key: String) throws {
        guard threshold > 0 && threshold <= 1 else { throw ConfigError(key: key, "a confidence threshold must be in (0, 1], got \(threshold)") }
    }
}

/// Temperature sharpening (MixMatch, Berthelot et al. 2019): p_i^(1/T) / Σ_j p_j^(1/T), row-wise.
/// T → 0 approaches one-hot; T = 1 leaves p unchanged.
public func sharpen(_ p: Tensor, temperature: Float) -> Tensor {
    let powered = p.pow(1 / temperature)
    return powered / powered.sum(axis: 1, keepDims: true)
}

/// MixUp (Zhang et al. 2018) as MixMatch uses it: λ ~ Beta(α, α), λ' = max(λ, 1 − λ), so the
/// mixed example stays closer to its first input.
public enum MixUp {
    public static func lambda(alpha: Float, rng: inout RNG) -> Float {
        let a = Beta.sample(alpha, alpha, rng: &rng)
        return Swift.max(a, 1 - a)
    }

    /// λ' · a + (1 − λ') · b, for inputs and for their targets alike.
    public static func mix(_ a: Tensor, _ b: Tensor, lambda: Float) -> Tensor { a * lambda + b * (1 - lambda) }

    /// Row i of the result is λ'ᵢ · a[i] + (1 − λ'ᵢ) · b[i], one λ' per row (the MixMatch code's
    /// per-example draw), for inputs [N, ...] and targets [N, C] alike.
    public static func mixRows(_ a: Tensor, _ b: Tensor, lambdas: [Float]) -> Tensor {
        // invariant: MixUp draws one weight per row of the batches it mixes, which share a shape
        precondition(a.shape == b.shape && a.shape[0] == lambdas.count, "MixUp: \(a.shape) and \(b.shape) with \(lambdas.count) weights")
        let l = Tensor(shape: [lambdas.count] + Array(repeating: 1, count: a.rank - 1), scalars: lambdas)
        return a * l + b * (1 - l)
    }

    /// MixMatch's MixUp of a whole batch (Berthelot et al. 2019, Algorithm 1): every row is mixed
    /// with a row of a random permutation of the same batch (labeled and unlabeled together), with
    /// its own λ' = max(λ, 1 − λ), λ ~ Beta(α, α). Inputs and targets are constants.
    public static func shuffled(inputs: Tensor, targets: Tensor, alpha: Float, rng: inout RNG) -> (inputs: Tensor, targets: Tensor) {
        let n = inputs.shape[0]
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let lambdas = (0..<n).map { _ in lambda(alpha: alpha, rng: &rng) }
        return (mixRows(inputs, inputs.gatherRows(order), lambdas: lambdas), mixRows(targets, targets.gatherRows(order), lambdas: lambdas))
    }

    public static func checkAlpha(_ alpha: Float, key: String) throws {
        guard alpha > 0 && alpha.isFinite else { throw ConfigError(key: key, "MixUp's Beta(α, α) needs α > 0, got \(alpha)") }
    }
}

/// Beta and Gamma variates (Marsaglia & Tsang 2000 for Gamma; Beta = X / (X + Y)).
public enum Beta {
    public static func sample(_ a: Float, _ b: Float, rng: inout RNG) -> Float {
        let x = gamma(Double(a), rng: &rng), y = gamma(Double(b), rng: &rng)
        return Float(x / (x + y))
    }

    static func gamma(_ shape: Double, rng: inout RNG) -> Double {
        if shape < 1 {
            // Gamma(a) = Gamma(a + 1) · U^(1/a).
            let u = max(Double(rng.uniform()), 1e-12)
            return gamma(shape + 1, rng: &rng) * Foundation.pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = Double(rng.normal())
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = Double(rng.uniform())
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if Foundation.log(max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) { return d * v }
        }
    }
}

/// Weights that ramp an unsupervised loss in over training.
public enum RampUp {
    /// Laine & Aila's and Tarvainen & Valpola's sigmoid ramp: exp(−5 (1 − t)²), t = step / length
    /// clipped to [0, 1]; 1 when `length` is 0.
    public static func sigmoid(step: Int, length: Int) -> Float {
        guard length > 0 else { return 1 }
        let t = Swift.min(Swift.max(Float(step) / Float(length), 0), 1)
        return Foundation.exp(-5 * (1 - t) * (1 - t))
    }

    /// min(step / length, 1): MixMatch's linear ramp of λ_u; 1 when `length` is 0.
    public static func linear(step: Int, length: Int) -> Float {
        length > 0 ? Swift.min(Float(step) / Float(length), 1) : 1
    }

    /// Lee's (2013) schedule: 0 before step `start`, linear to 1 at `end`, 1 from then on.
    public static func piecewiseLinear(step: Int, start: Int, end: Int) -> Float {
        if step < start { return 0 }
        if step >= end { return 1 }
        return Float(step - start) / Float(end - start)
    }

    /// A ramp given as a fraction of the step budget, in steps.
    public static func steps(_ fraction: Float, of total: Int) -> Int { Int((fraction * Float(total)).rounded()) }

    public static func checkFraction(_ fraction: Float, key: String) throws {
        guard fraction >= 0 && fraction <= 1 else { throw ConfigError(key: key, "a fraction of the step budget must be in [0, 1], got \(fraction)") }
    }
}

/// ReMixMatch's distribution alignment (Berthelot et al. 2020): q̃ = Normalize(q · p(y) / p̃(y)),
/// with p(y) the labeled class distribution and p̃(y) a running average of the model's predictions
/// on unlabeled data (over the last `window` batches, as the paper's 128).
public struct DistributionAlignment {
    public let target: [Float]
    public let window: Int
    private var history: [[Float]] = []

    public init(target: [Float], window: Int = 128) {
        let total = target.reduce(0, +)
        (self.target, self.window) = (target.map { $0 / total }, window)
    }

    /// The running average p̃(y) (uniform before the first batch).
    public var running: [Float] {
        guard !history.isEmpty else { return [Float](repeating: 1 / Float(target.count), count: target.count) }
        var m = [Float](repeating: 0, count: target.count)
        for h in history { for j in m.indices { m[j] += h[j] / Float(history.count) } }
        return m
    }

    /// Records the batch's mean prediction, then aligns each row of `p` [N, C].
    public mutating func align(_ p: Tensor) -> Tensor {
        let (n, c) = (p.shape[0], p.shape[1])
        // invariant: the target is the labeled pool's class distribution over the same classes
        precondition(c == target.count, "DistributionAlignment: \(c) classes, target has \(target.count)")
        var mean = [Float](repeating: 0, count: c)
        p.withUnsafeBufferPointer { q in for i in 0..<n { for j in 0..<c { mean[j] += q[i * c + j] / Float(n) } } }
        history.append(mean)
        if history.count > window { history.removeFirst() }
        let ratio = zip(target, running).map { $0 / Swift.max($1, 1e-6) }
        let scaled = p * Tensor(shape: [1, c], scalars: ratio)
        return scaled / scaled.sum(axis: 1, keepDims: true)
    }
}

/// A first-in-first-out queue of feature vectors (MoCo's dictionary of negatives, He et al. 2020).
public struct FeatureQueue {
    public let capacity: Int, dimension: Int
    public private(set) var storage: Tensor
    public private(set) var count = 0
    private var head = 0

    public init(capacity: Int, dimension: Int) {
        // invariant: MoCo's validate() checks queueSize >= 1; the dimension is its projection width
        precondition(capacity >= 1 && dimension >= 1, "FeatureQueue: capacity and dimension must be at least 1")
        (self.capacity, self.dimension) = (capacity, dimension)
        storage = Tensor(zeros: [capacity, dimension])
    }

    /// Writes `rows` [B, D] over the oldest entries.
    public mutating func enqueue(_ rows: Tensor) {
        // invariant: the queue is filled with the projection it was sized for
        precondition(rows.rank == 2 && rows.shape[1] == dimension, "FeatureQueue: rows \(rows.shape) do not have dimension \(dimension)")
        let d = dimension
        let (cap, start) = (capacity, head)
        rows.detached.withUnsafeBufferPointer { r in
            storage.withUnsafeMutableBufferPointer { s in
                for i in 0..<rows.shape[0] { for j in 0..<d { s[((start + i) % cap) * d + j] = r[i * d + j] } }
            }
        }
        head = (head + rows.shape[0]) % capacity
        count = Swift.min(capacity, count + rows.shape[0])
    }

    /// The filled entries (all of them once the queue has wrapped).
    public var contents: Tensor { count == capacity ? storage : storage.gatherRows(Array(0..<count)) }
}

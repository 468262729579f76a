import Foundation
import TensorCore

/// Learning rate as a function of the step: a base shape with an optional linear warm-up.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Shape: Codable, Equatable, Sendable {
        case constant
        /// Multiply by `gamma` every `every` steps.
        case step(every: Int, gamma: Float)
        /// Half-cosine from the base rate to `floor` × base over `total` steps.
        case cosine(total: Int, floor: Float)
        /// FixMatch's schedule (Sohn et al. 2020): base · cos(7πk / 16K) over K = `total` steps.
        case fixMatchCosine(total: Int)
    }

    public var base: Float
    public var shape: Shape
    public var warmupSteps: Int

    public init(base: Float, shape: Shape = .constant, warmupSteps: Int = 0) {
        self.base = base
        self.shape = shape
        self.warmupSteps = warmupSteps
    }

    /// The rate at step k (0-based).
    public func rate(at k: Int) -> Float {
        let warm: Float = warmupSteps > 0 && k < warmupSteps ? Float(k + 1) / Float(warmupSteps) : 1
        let t = Float(k)
        switch shape {
        case .constant:
            return base * warm
        case .step(let every, let gamma):
            return base * warm * Float.pow(gamma, Float(k / Swift.max(every, 1)))
        case .cosine(let total, let floor):
            let progress = Swift.min(t / Float(Swift.max(total, 1)), 1)
            return base * warm * (floor + (1 - floor) * 0.5 * (1 + Foundation.cos(Float.pi * progress)))
        case .fixMatchCosine(let total):
            return base * warm * Foundation.cos(7 * Float.pi * t / (16 * Float(Swift.max(total, 1))))
        }
    }
}

/// Exponential moving average of a model's parameters and buffers (Mean Teacher, FixMatch's
/// evaluation model, MoCo's momentum encoder): shadow = decay · shadow + (1 - decay) · current.
///
/// With `warmup`, update n uses min(decay, (1 + n) / (10 + n)) (TensorFlow's `num_updates` rule), so
/// a short run's average is not dominated by the initial weights.
public struct EMA {
    public var decay: Float
    public let warmup: Bool
    public private(set) var shadow: [String: Tensor]
    public private(set) var updates = 0

    public init(of model: Module, decay: Float, warmup: Bool = false) {
        self.decay = decay
        self.warmup = warmup
        shadow = Dictionary(uniqueKeysWithValues: (model.namedParameters() + model.namedBuffers()).map { ($0.path, $0.tensor.detached) })
    }

    /// The decay update n (0-based) uses.
    public var currentDecay: Float { warmup ? Swift.min(decay, Float(1 + updates) / Float(10 + updates)) : decay }

    public mutating func update(from model: Module) {
        let d = currentDecay
        updates += 1
        for (path, current) in model.namedParameters() + model.namedBuffers() {
            guard var s = shadow.removeValue(forKey: path) else { continue }
            current.withUnsafeBufferPointer { c in
                s.withUnsafeMutableBufferPointer { s in for i in s.indices { s[i] = d * s[i] + (1 - d) * c[i] } }
            }
            shadow[path] = s
        }
    }

    /// A copy of `model`'s structure is not needed: run the model with the shadow as overrides.
    public func context(training: Bool = false) -> ForwardContext {
        ForwardContext(training: training, overrides: shadow, updatesRunningStatistics: false)
    }
}

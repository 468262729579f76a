import DataCore
import NNCore
import TensorCore

/// The encoder every method builds, one setting for all of them: a suite's `backbone:` reaches
/// each method's `backbone` key the same way.
public struct BackboneSpec: Codable, Equatable, Sendable {
    /// `conv4` (the few-shot Conv-4) or `mlp`.
    public var name = "conv4"
    /// conv4's channels per block.
    public var width = 64
    /// mlp's hidden widths.
    public var hidden = [256]

    public init(name: String = "conv4", width: Int = 64, hidden: [Int] = [256]) {
        (self.name, self.width, self.hidden) = (name, width, hidden)
    }

    public static let names = ["conv4", "mlp"]

    public func validate() throws {
        guard Self.names.contains(name) else {
            throw ConfigError(key: "backbone.name", "'\(name)' is not a backbone; expected one of \(Self.names.joined(separator: ", "))")
        }
        guard width >= 1 else { throw ConfigError(key: "backbone.width", "must be at least 1, got \(width)") }
        guard !hidden.isEmpty, !hidden.contains(where: { $0 < 1 }) else {
            throw ConfigError(key: "backbone.hidden", "must list at least one width, each at least 1, got \(hidden)")
        }
    }

    /// Whether the backbone can take images of `shape` [C, H, W]; the error names the shapes that fit.
    public func check(imageShape shape: [Int]) throws {
        if name == "conv4" && !Backbone.conv4Fits(shape) {
            throw ConfigError(key: "backbone.name", "conv4 cannot take \(shape.map(String.init).joined(separator: "x")) inputs: its four 2x poolings need images of at least 16x16 or 1-D signals stored as 1 x W with W >= 16 (use 'mlp' for smaller inputs)")
        }
    }

    /// The encoder and its feature width.
    public func build(imageShape: [Int], rng: inout RNG) throws -> (net: Sequential, features: Int) {
        try validate()
        try check(imageShape: imageShape)
        return name == "mlp" ? Backbone.mlp(inputShape: imageShape, hidden: hidden, rng: &rng)
                             : Backbone.conv4(inputShape: imageShape, width: width, rng: &rng)
    }

    /// The width a time estimate keys on.
    public var size: Int { name == "mlp" ? hidden.first ?? 0 : width }
}

/// How the trainer optimises a method: steps, optimizer, schedule, warm-up, weight averaging and
/// validation. Every gradient-trained method's config carries one under `training`.
public struct TrainingSpec: Codable, Equatable, Sendable {
    public enum OptimizerKind: String, Codable, Sendable { case sgd, adam, adamw }
    public enum ScheduleKind: String, Codable, Sendable {
        case constant
        /// Half-cosine to zero over the run.
        case cosine
        /// FixMatch's cos(7πk / 16K).
        case fixmatch
        /// Multiplied by `decayFactor` every `decayEvery` steps.
        case step
    }

    public var steps: Int
    public var optimizer: OptimizerKind = .sgd
    public var learningRate: Float
    public var momentum: Float = 0.9
    public var nesterov = true
    public var weightDecay: Float = 5e-4
    public var schedule: ScheduleKind = .cosine
    public var warmupSteps = 0
    /// The `step` schedule's period and factor.
    public var decayEvery = 0
    public var decayFactor: Float = 0.5
    /// Decay of an exponential moving average of the weights, used for validation and as the
    /// result (0: the raw weights). Early updates use min(decay, (1 + n) / (10 + n)), so the
    /// average of a short run is not mostly its initial weights.
    public var emaDecay: Float = 0
    /// Validate every this many steps (and after the last); 0: only after the last.
    public var validateEvery = 0

    public init(steps: Int, learningRate: Float, optimizer: OptimizerKind = .sgd, momentum: Float = 0.9, nesterov: Bool = true,
                weightDecay: Float = 5e-4, schedule: ScheduleKind = .cosine, warmupSteps: Int = 0, emaDecay: Float = 0,
                validateEvery: Int = 0) {
        (self.steps, self.learningRate, self.optimizer, self.momentum, self.nesterov) = (steps, learningRate, optimizer, momentum, nesterov)
        (self.weightDecay, self.schedule, self.warmupSteps, self.emaDecay, self.validateEvery) = (weightDecay, schedule, warmupSteps, emaDecay, validateEvery)
    }

    /// Adam at `learningRate` without weight decay, a constant rate, validated every 250 steps: what
    /// the few-shot methods train with (`decayEvery` > 0 halves the rate that often instead).
    public static func adam(steps: Int = 2000, learningRate: Float = 1e-3, decayEvery: Int = 0) -> TrainingSpec {
        var t = TrainingSpec(steps: steps, learningRate: learningRate, optimizer: .adam, weightDecay: 0,
                             schedule: decayEvery > 0 ? .step : .constant, validateEvery: 250)
        t.decayEvery = decayEvery
        return t
    }

    /// The most steps a trial may ask for.
    public static let maxSteps = 10_000_000

    public func validate() throws {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(key: "training.\(key)", message) }
        guard steps >= 1 else { throw fail("steps", "must be at least 1, got \(steps)") }
        // A step of the smallest backbone takes over a millisecond here: ten million is about a
        // week of one trial, more is a typo (an extra digit or three), not a plan.
        guard steps <= TrainingSpec.maxSteps else {
            throw fail("steps", "\(steps) steps is more than \(TrainingSpec.maxSteps) (weeks of training for one trial); a typo?")
        }
        guard learningRate > 0 && learningRate.isFinite else { throw fail("learningRate", "must be > 0, got \(learningRate)") }
        guard momentum >= 0 && momentum < 1 else { throw fail("momentum", "must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0 else { throw fail("weightDecay", "must be >= 0, got \(weightDecay)") }
        guard warmupSteps >= 0 else { throw fail("warmupSteps", "must be >= 0, got \(warmupSteps)") }
        guard emaDecay == 0 || (emaDecay > 0 && emaDecay < 1) else { throw fail("emaDecay", "must be 0 (off) or in (0, 1), got \(emaDecay)") }
        if schedule == .step {
            guard decayEvery >= 1 else { throw fail("decayEvery", "the step schedule needs a period of at least 1 step, got \(decayEvery)") }
            guard decayFactor > 0 && decayFactor <= 1 else { throw fail("decayFactor", "must be in (0, 1], got \(decayFactor)") }
        }
        guard validateEvery >= 0 else { throw fail("validateEvery", "must be >= 0, got \(validateEvery)") }
    }

    public func makeOptimizer() -> Optimizer {
        switch optimizer {
        case .sgd: return SGD(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        case .adam: return Adam(learningRate: learningRate, weightDecay: weightDecay)
        case .adamw: return Adam(learningRate: learningRate, weightDecay: weightDecay, decoupled: true)
        }
    }

    public var learningRateSchedule: LearningRateSchedule {
        switch schedule {
        case .constant: return LearningRateSchedule(base: learningRate, shape: .constant, warmupSteps: warmupSteps)
        case .cosine: return LearningRateSchedule(base: learningRate, shape: .cosine(total: steps, floor: 0), warmupSteps: warmupSteps)
        case .fixmatch: return LearningRateSchedule(base: learningRate, shape: .fixMatchCosine(total: steps), warmupSteps: warmupSteps)
        case .step: return LearningRateSchedule(base: learningRate, shape: .step(every: decayEvery, gamma: decayFactor), warmupSteps: warmupSteps)
        }
    }
}

/// The config of a method trained by gradient steps: its backbone and its training settings.
public protocol StepConfig: MethodConfig {
    /// The paper's settings.
    init()
    var backbone: BackboneSpec { get }
    var training: TrainingSpec { get }
    /// Images one step passes through the network (each view counted), for the time model; stored
    /// throughput counts the images the streams draw instead.
    var samplesPerStep: Int { get }
    /// The method's own checks (the backbone and training settings are checked by the framework).
    func validateOwn() throws
    /// conv4 blocks whose output is the representation, when not the whole backbone.
    var representationBlocks: Int? { get }
    /// For the time model: a step's seconds per image relative to a supervised step's, and the
    /// adapter's per episode image in forward passes (`Workload`); 1 unless the method says.
    var stepCost: Double { get }
    var adapterCost: Double { get }
}

extension StepConfig {
    public var backboneSpec: BackboneSpec? { backbone }

    public func validate() throws {
        try backbone.validate()
        try training.validate()
        try validateOwn()
    }

    public var representationBlocks: Int? { nil }
    public var stepCost: Double { 1 }
    public var adapterCost: Double { 1 }

    public var workload: Workload {
        Workload(steps: training.steps, samplesPerStep: samplesPerStep, backbone: backbone.name, width: backbone.size,
                 representationBlocks: backbone.name == "conv4" ? representationBlocks : nil,
                 validateEvery: training.validateEvery, stepCost: stepCost, adapterCost: adapterCost)
    }
}

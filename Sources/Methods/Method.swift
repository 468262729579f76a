import DataCore
import Foundation
import NNCore
import TensorCore

/// How a method uses labels, which decides how a suite plans its trials.
public enum Regime: String, Codable, CaseIterable, Sendable {
    /// Trained on the labeled part of a per-class budget only.
    case supervised
    /// Trained on the labeled part and on the unlabeled rest of a per-class budget.
    case semiSupervised = "semi-supervised"
    /// Trained on the base classes with all their labels; scored on novel-class episodes.
    case fewShot = "few-shot"
    /// Trained once per seed with no labels; its encoder is scored at every budget.
    case selfSupervised = "self-supervised"
}

/// What a trial grants a method, by regime (DESIGN.md §6): the executor builds it from the
/// dataset and the split, and a method sees the data only through these pools.
///
/// | regime | labeled | unlabeled | episodes |
/// | --- | --- | --- | --- |
/// | supervised | the budget's labeled examples | — | — |
/// | semi-supervised | the budget's labeled examples | the rest of the training part | — |
/// | few-shot | every example of the base classes | — | base-class episodes |
/// | self-supervised | — | the whole training part | — |
///
/// The validation split is in none of them: it is the `Validator`'s.
public struct TrainingData {
    public let imageShape: [Int]
    /// Whether the channels are a sequence's frames (glyph-motion) rather than colours.
    public var channelsAreFrames = false
    /// Classes of the labeled (or base) data: the width of a classifier's head.
    public let classCount: Int
    public let labeled: LabeledPool?
    public let unlabeled: UnlabeledPool?
    public let episodes: EpisodePool?

    public init(imageShape: [Int], classCount: Int, labeled: LabeledPool? = nil, unlabeled: UnlabeledPool? = nil,
                episodes: EpisodePool? = nil) {
        (self.imageShape, self.classCount, self.labeled, self.unlabeled, self.episodes) = (imageShape, classCount, labeled, unlabeled, episodes)
    }

    /// What `regime` grants of `dataset` (the classes a method trains on) under `split`, by the
    /// table above, and the labels the unlabeled pool hides (for the framework's audit only).
    public static func granted(to regime: Regime, dataset d: Dataset, split: LabelSplit) throws -> (data: TrainingData, heldBack: HeldBackLabels?) {
        var labeled: LabeledPool?, unlabeled: UnlabeledPool?, episodes: EpisodePool?, heldBack: HeldBackLabels?
        switch regime {
        case .supervised:
            labeled = try LabeledPool(dataset: d, indices: split.labeled)
        case .semiSupervised:
            labeled = try LabeledPool(dataset: d, indices: split.labeled)
            (unlabeled, heldBack) = try UnlabeledPool.hiding(dataset: d, indices: split.unlabeled)
        case .fewShot:
            labeled = try LabeledPool(dataset: d, indices: split.labeled)
            episodes = EpisodePool(dataset: d, classes: Array(0..<d.classCount))
        case .selfSupervised:
            (unlabeled, heldBack) = try UnlabeledPool.hiding(dataset: d, indices: split.unlabeled)
        }
        var data = TrainingData(imageShape: d.imageShape, classCount: d.classCount, labeled: labeled, unlabeled: unlabeled, episodes: episodes)
        data.channelsAreFrames = d.channelsAreFrames
        return (data, heldBack)
    }
}

/// What a method is trained on.
public struct TrainingInput {
    public let data: TrainingData
    public let seed: UInt64
    /// Names the trial's random streams (with the seed and a stream name), so any trial
    /// reproduces alone: e.g. "fixmatch/<dataset hash>/<split hash>".
    public let key: String
    /// Model selection on the validation split (or validation classes); nil for none.
    public let validator: Validator?
    /// The labels of the unlabeled pool, for the framework's pseudo-label audit; never handed to
    /// a method's step.
    public let heldBack: HeldBackLabels?
    public weak var observer: TrainingObserver?

    public init(data: TrainingData, seed: UInt64, key: String, validator: Validator? = nil, heldBack: HeldBackLabels? = nil,
                observer: TrainingObserver? = nil) {
        (self.data, self.seed, self.key, self.validator, self.heldBack, self.observer) = (data, seed, key, validator, heldBack, observer)
    }

    /// The generator of one named stream of this trial.
    public func rng(_ stream: String) -> RNG { RNG(seed: seed, key: key, stream: stream) }
}

/// A method's own few-shot adaptation (DESIGN.md §7, `episodes`): support images and their labels
/// 0..<way in, logits of the query images over the way classes out. `context` carries the
/// weights to use (EMA weights during validation).
public protocol FewShotAdapter {
    func logits(support: Tensor, supportLabels: [Int32], way: Int, query: Tensor, context: ForwardContext) -> Tensor
}

/// The parts of a trained model that evaluation scores.
public struct Evaluables {
    /// The method's own classifier over the training classes (nil when it has none).
    public var classifier: Module?
    /// The feature extractor scored by the linear, kNN, fine-tune and episodes-linear protocols,
    /// with its parameter path inside the method's network (so overrides address the same weights).
    public var encoder: Module
    public var encoderPath: String
    public var featureCount: Int
    /// The method's own adaptation to a few-shot episode, scored by `episodes`.
    public var adapter: FewShotAdapter?
    /// What the method measures of itself on the test images (its clusters, a likelihood, a
    /// reconstruction error), scored by `native`.
    public var measures: SelfMeasures?

    public init(classifier: Module?, encoder: Module, encoderPath: String, featureCount: Int, adapter: FewShotAdapter? = nil,
                measures: SelfMeasures? = nil) {
        (self.classifier, self.encoder, self.encoderPath, self.featureCount, self.adapter) = (classifier, encoder, encoderPath, featureCount, adapter)
        self.measures = measures
    }
}

/// What a model that has no classifier measures of itself on images, without their labels: the
/// cluster of each image (the framework scores them against the labels as `cluster_accuracy` and
/// `nmi`) and named values (`reconstruction_error`, `log_likelihood` per dimension). Evaluation
/// calls them once, on the test images.
public struct SelfMeasures {
    /// Cluster (0..<clusterCount) of each image of a batch [N, C, H, W].
    public var clusters: ((Tensor) -> [Int])?
    public var clusterCount: Int
    /// Named values over a batch of images (means over its images); it may fail (a measure that
    /// cannot be taken fails the `native` protocol only).
    public var values: ((Tensor) throws -> [(name: String, value: Double)])?

    public init(clusters: ((Tensor) -> [Int])? = nil, clusterCount: Int = 0, values: ((Tensor) throws -> [(name: String, value: Double)])? = nil) {
        (self.clusters, self.clusterCount, self.values) = (clusters, clusterCount, values)
    }
}

/// Model selection for one regime: a score (higher is better) of the model's parts as they are
/// in `context` (the EMA weights' when the method keeps them).
public struct Validator {
    /// The curve it is recorded under, e.g. `val_accuracy`, `val_episode_accuracy`, `val_knn_accuracy`.
    public let metric: String
    public let score: (Evaluables, ForwardContext) -> Double

    public init(metric: String, score: @escaping (Evaluables, ForwardContext) -> Double) { (self.metric, self.score) = (metric, score) }
}

/// What a method hands to evaluation.
public struct TrainedModel {
    public let parts: Evaluables
    public let summary: TrainingSummary

    public init(_ parts: Evaluables, summary: TrainingSummary) { (self.parts, self.summary) = (parts, summary) }

    public var classifier: Module? { parts.classifier }
    public var encoder: Module { parts.encoder }
    public var encoderPath: String { parts.encoderPath }
    public var featureCount: Int { parts.featureCount }
    public var adapter: FewShotAdapter? { parts.adapter }
}

/// The size of a method's training, for plans and time estimates.
public struct Workload: Equatable, Sendable {
    public var steps: Int
    public var samplesPerStep: Int
    public var backbone: String
    public var width: Int
    /// conv4 blocks whose output is the representation, when it is cut short of the whole backbone
    /// (rotation, jigsaw, colorization): its width grows 4x per block left out.
    public var representationBlocks: Int?
    /// Steps between validations (0: only after the last step).
    public var validateEvery: Int
    /// Seconds of a training step per image, relative to a supervised step's (one forward and
    /// backward pass per image): the inner loops, graphs and extra passes a method adds.
    public var stepCost: Double
    /// Seconds of the method's few-shot adapter per episode image, in forward passes (1: it embeds
    /// the episode once; more when it trains on the support).
    public var adapterCost: Double

    public init(steps: Int, samplesPerStep: Int, backbone: String, width: Int, representationBlocks: Int? = nil,
                validateEvery: Int = 0, stepCost: Double = 1, adapterCost: Double = 1) {
        (self.steps, self.samplesPerStep, self.backbone, self.width) = (steps, samplesPerStep, backbone, width)
        (self.representationBlocks, self.validateEvery, self.stepCost, self.adapterCost) = (representationBlocks, validateEvery, stepCost, adapterCost)
    }

    /// Validations in a training run: every `validateEvery` steps and after the last.
    public var validations: Int { steps <= 0 ? 0 : validateEvery > 0 ? (steps - 1) / validateEvery + 1 : 1 }

    /// The representation's width on images of `shape` [C, H, W], as evaluation will see it.
    public func features(imageShape shape: [Int]) -> Int {
        switch backbone {
        case "pixels": return shape.reduce(1, *)
        case "conv4":
            let blocks = representationBlocks ?? 4
            let (h, w) = (shape.count == 3 ? shape[1] : 1, shape.last ?? 1)
            return max(1, width) * max(1, h >> blocks) * max(1, w >> blocks)
        default: return max(1, width)
        }
    }
}

/// A method's configuration: `Codable` with the paper's defaults, every field always encoded (no
/// optionals), so the set of keys a suite may override is the set the default encodes.
public protocol MethodConfig: Codable, Equatable, Sendable {
    func validate() throws
    var workload: Workload { get }
    /// The backbone it builds, if any (the planner checks it against the dataset's image shape).
    var backboneSpec: BackboneSpec? { get }
}

extension MethodConfig {
    public var backboneSpec: BackboneSpec? { nil }
}

/// One learning method. Listed once in `MethodRegistry.all`. Methods trained by gradient steps
/// conform to `StepMethod` and write only their model and step; others (PCA, k-means, a graph
/// diffusion) implement `train` themselves.
public protocol Method {
    associatedtype Config: MethodConfig
    static var id: String { get }
    static var regime: Regime { get }
    /// Bump when behaviour changes: results of different versions are not comparable.
    static var version: String { get }
    /// One line for `benchbench list methods`.
    static var summary: String { get }
    /// The defaults for a trial at `budget` on `classes` classes (step budgets may depend on how
    /// many labels there are).
    static func defaultConfig(budget: LabelBudget, classes: Int) -> Config
    static func train(_ input: TrainingInput, config: Config) throws -> TrainedModel
    /// Whether its trained model carries its own few-shot adapter (scored by `episodes`).
    static var adapts: Bool { get }
    /// Whether its trained model measures itself (`SelfMeasures`, scored by `native`) though it
    /// has no classifier.
    static var measuresItself: Bool { get }
    /// Why the method cannot learn from images of this kind (nil when it can): colorization needs
    /// colour, next-frame prediction sequences. The planner leaves such pairs out and says why.
    static func unsuitable(_ images: ImageKind) -> String?
}

extension Method {
    public static var adapts: Bool { false }
    public static var measuresItself: Bool { false }
    public static func unsuitable(_ images: ImageKind) -> String? { nil }
}

extension TrainingData {
    public var imageKind: ImageKind { ImageKind(shape: imageShape, channelsAreFrames: channelsAreFrames) }
}

/// A config problem, naming the key (the suite layer adds file and line).
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// The key at fault, nil when the config as a whole is (e.g. a failed `validate()`).
    public let key: String?
    public let message: String
    public init(key: String?, _ message: String) { (self.key, self.message) = (key, message) }
    public var description: String { key.map { "\($0): \(message)" } ?? message }
}

/// A config with overrides applied, validated, in canonical JSON (sorted keys) with its hash.
public struct ResolvedConfig: Equatable, Sendable {
    public let json: String
    public let sha: String
    public let workload: Workload
    /// The backbone the config builds, if any.
    public let backbone: BackboneSpec?
}

/// A method behind one concrete type, so suites and the registry can hold every method together.
public struct AnyMethod: Sendable {
    public let id: String
    public let regime: Regime
    public let version: String
    public let summary: String
    /// The Swift type behind it (the registry test matches these against the declared methods).
    public let typeName: String
    public let adapts: Bool
    public let measuresItself: Bool
    private let unsuitableFor: @Sendable (ImageKind) -> String?
    private let resolveConfig: @Sendable (LabelBudget, Int, [String: Any]) throws -> ResolvedConfig
    private let trainWith: @Sendable (TrainingInput, String) throws -> TrainedModel

    public init<M: Method>(_ method: M.Type) {
        (id, regime, version, summary, typeName, adapts) = (M.id, M.regime, M.version, M.summary, String(describing: M.self), M.adapts)
        measuresItself = M.measuresItself
        unsuitableFor = { M.unsuitable($0) }
        resolveConfig = { budget, classes, overrides in
            let config: M.Config = try AnyMethod.apply(overrides, to: M.defaultConfig(budget: budget, classes: classes), method: M.id)
            do { try config.validate() } catch let e as ConfigError { throw e } catch { throw ConfigError(key: nil, "\(error)") }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = String(decoding: try encoder.encode(config), as: UTF8.self)
            var hash = ContentHash()
            hash.add("\(M.id)/\(json)")
            return ResolvedConfig(json: json, sha: hash.hex, workload: config.workload, backbone: config.backboneSpec)
        }
        trainWith = { input, json in
            let config = try JSONDecoder().decode(M.Config.self, from: Data(json.utf8))
            return try M.train(input, config: config)
        }
    }

    /// The config for a trial at `budget` with `overrides` (JSON-compatible values: String,
    /// NSNumber/Int/Double/Bool, arrays, dictionaries) applied over the defaults.
    public func resolve(budget: LabelBudget, classes: Int, overrides: [String: Any] = [:]) throws -> ResolvedConfig {
        try resolveConfig(budget, classes, overrides)
    }

    public func train(_ input: TrainingInput, configJSON: String) throws -> TrainedModel { try trainWith(input, configJSON) }

    /// Why the method cannot learn from images of this kind, nil when it can.
    public func unsuitable(_ images: ImageKind) -> String? { unsuitableFor(images) }

    /// The keys a suite may set for this method (those of its default config).
    public func configKeys() -> [String] {
        guard let resolved = try? resolve(budget: .all, classes: 2),
              let object = try? JSONSerialization.jsonObject(with: Data(resolved.json.utf8)) as? [String: Any] else { return [] }
        return object.keys.sorted()
    }

    static func apply<C: MethodConfig>(_ overrides: [String: Any], to config: C, method: String) throws -> C {
        guard !overrides.isEmpty else { return config }
        let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any] ?? [:]
        var merged = try merge(overrides, into: defaults, path: "", method: method)
        followStepBudget(&merged, defaults: defaults, overrides: overrides)
        do {
            return try JSONDecoder().decode(C.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            let key = dotted(context.codingPath)
            let expected = String(describing: type).replacingOccurrences(of: "Swift.", with: "")
            throw ConfigError(key: key, "expected \(expected == "Float" || expected == "Double" ? "a number" : expected == "Int" ? "a whole number" : expected == "Bool" ? "true or false" : expected)"
                              + (key.flatMap { lookUp($0, in: defaults) }.map { " like the default \(Self.describe($0))" } ?? ""))
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigError(key: dotted(context.codingPath), context.debugDescription)
        }
    }

    /// The training settings counted in steps (warm-up, validation period, decay period) keep
    /// their share of the run when an override changes `training.steps` and leaves them alone: a
    /// 5-step run of a method whose 1,450-step default validates every 181 steps validates every
    /// step, not never. Zero (off) stays zero; a setting the override gives is kept as given.
    static let stepCountedSettings = ["warmupSteps", "validateEvery", "decayEvery"]

    static func followStepBudget(_ merged: inout [String: Any], defaults: [String: Any], overrides: [String: Any]) {
        guard let given = overrides["training"] as? [String: Any], let steps = (given["steps"] as? NSNumber)?.doubleValue,
              let original = defaults["training"] as? [String: Any], let before = (original["steps"] as? NSNumber)?.doubleValue,
              before > 0, steps != before, var training = merged["training"] as? [String: Any] else { return }
        for key in stepCountedSettings where given[key] == nil {
            guard let value = (original[key] as? NSNumber)?.doubleValue, value > 0 else { continue }
            training[key] = Swift.max(1, Int((value * steps / before).rounded()))
        }
        merged["training"] = training
    }

    /// Overrides merged into the defaults key by key, nested settings (`training`, `backbone`)
    /// merged rather than replaced; a key the defaults lack is an error naming its dotted path.
    static func merge(_ overrides: [String: Any], into defaults: [String: Any], path: String, method: String) throws -> [String: Any] {
        var merged = defaults
        for (key, value) in overrides {
            let full = path.isEmpty ? key : "\(path).\(key)"
            guard let current = defaults[key] else {
                throw ConfigError(key: full, "not a setting of \(method)\(path.isEmpty ? "" : " \(path)") (settings: \(defaults.keys.sorted().joined(separator: ", ")))")
            }
            if let nested = current as? [String: Any] {
                guard let given = value as? [String: Any] else {
                    throw ConfigError(key: full, "expected a mapping of settings (\(nested.keys.sorted().joined(separator: ", ")))")
                }
                merged[key] = try merge(given, into: nested, path: full, method: method)
            } else {
                merged[key] = value
            }
        }
        return merged
    }

    static func dotted(_ path: [CodingKey]) -> String? {
        let keys = path.filter { $0.intValue == nil }.map(\.stringValue)
        return keys.isEmpty ? nil : keys.joined(separator: ".")
    }

    static func lookUp(_ dotted: String, in object: [String: Any]) -> Any? {
        var value: Any? = object
        for part in dotted.split(separator: ".") { value = (value as? [String: Any])?[String(part)] }
        return value
    }

    static func describe(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject([value]),
              let data = try? JSONSerialization.data(withJSONObject: [value]) else { return "\(value)" }
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }
}

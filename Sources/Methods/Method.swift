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

/// What a method is trained on.
public struct TrainingInput {
    /// The classes the method trains on (the base classes when the dataset has a few-shot split).
    public let dataset: Dataset
    /// Labeled, unlabeled and validation indices into `dataset`'s training images.
    public let split: LabelSplit
    public let seed: UInt64
    /// Scores a classifier (in the context given, e.g. EMA weights) on `split.validation`; methods
    /// with a classifier use it to keep their best weights.
    public let validate: ((Module, ForwardContext) -> Double)?
    public weak var observer: TrainingObserver?

    public init(dataset: Dataset, split: LabelSplit, seed: UInt64, validate: ((Module, ForwardContext) -> Double)? = nil,
                observer: TrainingObserver? = nil) {
        (self.dataset, self.split, self.seed, self.validate, self.observer) = (dataset, split, seed, validate, observer)
    }
}

/// What a method hands to evaluation.
public struct TrainedModel {
    /// The method's own classifier over the training dataset's classes (nil when it has none).
    public let classifier: Module?
    /// The feature extractor scored by the linear, kNN, fine-tune and episode protocols, with its
    /// parameter path inside `classifier` (so overrides address the same weights).
    public let encoder: Module
    public let encoderPath: String
    public let featureCount: Int
    public let summary: TrainingSummary

    public init(classifier: Module?, encoder: Module, encoderPath: String, featureCount: Int, summary: TrainingSummary) {
        (self.classifier, self.encoder, self.encoderPath, self.featureCount, self.summary) =
            (classifier, encoder, encoderPath, featureCount, summary)
    }
}

/// The size of a method's training, for plans and time estimates.
public struct Workload: Equatable, Sendable {
    public var steps: Int
    public var samplesPerStep: Int
    public var backbone: String
    public var width: Int

    public init(steps: Int, samplesPerStep: Int, backbone: String, width: Int) {
        (self.steps, self.samplesPerStep, self.backbone, self.width) = (steps, samplesPerStep, backbone, width)
    }
}

/// A method's configuration: `Codable` with the paper's defaults, every field always encoded (no
/// optionals), so the set of keys a suite may override is the set the default encodes.
public protocol MethodConfig: Codable, Equatable, Sendable {
    func validate() throws
    var workload: Workload { get }
}

/// One learning method. Listed once in `MethodRegistry.all`.
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
}

/// A method behind one concrete type, so suites and the registry can hold every method together.
public struct AnyMethod: Sendable {
    public let id: String
    public let regime: Regime
    public let version: String
    public let summary: String
    /// The Swift type behind it (the registry test matches these against the declared methods).
    public let typeName: String
    private let resolveConfig: @Sendable (LabelBudget, Int, [String: Any]) throws -> ResolvedConfig
    private let trainWith: @Sendable (TrainingInput, String) throws -> TrainedModel

    public init<M: Method>(_ method: M.Type) {
        (id, regime, version, summary, typeName) = (M.id, M.regime, M.version, M.summary, String(describing: M.self))
        resolveConfig = { budget, classes, overrides in
            let config: M.Config = try AnyMethod.apply(overrides, to: M.defaultConfig(budget: budget, classes: classes), method: M.id)
            do { try config.validate() } catch { throw ConfigError(key: nil, "\(error)") }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = String(decoding: try encoder.encode(config), as: UTF8.self)
            var hash = ContentHash()
            hash.add("\(M.id)/\(json)")
            return ResolvedConfig(json: json, sha: hash.hex, workload: config.workload)
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

    /// The keys a suite may set for this method (those of its default config).
    public func configKeys() -> [String] {
        guard let resolved = try? resolve(budget: .all, classes: 2),
              let object = try? JSONSerialization.jsonObject(with: Data(resolved.json.utf8)) as? [String: Any] else { return [] }
        return object.keys.sorted()
    }

    static func apply<C: MethodConfig>(_ overrides: [String: Any], to config: C, method: String) throws -> C {
        guard !overrides.isEmpty else { return config }
        let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any] ?? [:]
        var merged = defaults
        for (key, value) in overrides {
            guard defaults[key] != nil else {
                throw ConfigError(key: key, "not a setting of \(method) (settings: \(defaults.keys.sorted().joined(separator: ", ")))")
            }
            merged[key] = value
        }
        do {
            return try JSONDecoder().decode(C.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            let key = context.codingPath.first?.stringValue
            let expected = String(describing: type).replacingOccurrences(of: "Swift.", with: "")
            throw ConfigError(key: key, "expected \(expected == "Float" || expected == "Double" ? "a number" : expected == "Int" ? "a whole number" : expected == "Bool" ? "true or false" : expected)"
                              + (key.flatMap { defaults[$0] }.map { " like the default \(Self.describe($0))" } ?? ""))
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigError(key: context.codingPath.first?.stringValue, context.debugDescription)
        }
    }

    static func describe(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject([value]),
              let data = try? JSONSerialization.data(withJSONObject: [value]) else { return "\(value)" }
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }
}

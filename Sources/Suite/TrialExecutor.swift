import DataCore
import Evaluation
import Foundation
import Methods
import NNCore
import ResultsStore
import TensorCore

/// Everything measured of one trial, ready to store.
public struct TrialResult {
    public var datasetSha: String
    public var splitSha: String
    public var summary: TrainingSummary
    public var metrics: [MetricRecord]
    public var curves: [CurveRecord]
    public var kernels: [KernelRecord]
    /// Protocols that could not score the trained model, each "protocol: reason"; the others' scores
    /// are in `metrics`.
    public var protocolFailures: [String] = []
}

/// Where a trial's data comes from: each dataset is loaded (or generated) once per process.
public final class DatasetCache {
    let dataDir: String?
    let baseDirectory: String?
    private var loaded: [String: Result<Dataset, Error>] = [:]

    /// `dataDir`: where Fashion-MNIST is looked for; `baseDirectory`: what relative IDX paths are
    /// relative to (the suite file's folder).
    public init(dataDir: String? = nil, baseDirectory: String? = nil) {
        (self.dataDir, self.baseDirectory) = (dataDir, baseDirectory)
    }

    public func dataset(_ spec: DatasetSpec) throws -> Dataset {
        let key = "\(spec)"
        if let r = loaded[key] { return try r.get() }
        let r = Result { try spec.load(dataDir: dataDir, baseDirectory: baseDirectory) }
        loaded[key] = r
        return try r.get()
    }
}

/// Trains and scores one planned trial. Pure with respect to the store: the runner decides what
/// to keep. `log` receives one line per result, as the user sees them.
public struct TrialExecutor {
    public let data: DatasetCache
    public let observer: TrainingObserver?
    public let log: (String) -> Void

    public init(data: DatasetCache, observer: TrainingObserver?, log: @escaping (String) -> Void) {
        (self.data, self.observer, self.log) = (data, observer, log)
    }

    public func run(_ trial: PlannedTrial) throws -> TrialResult {
        let full = try data.dataset(trial.dataset.spec)
        let context = try TrialContext(trial: trial, full: full)
        let input = try context.trainingInput(observer: observer)
        try checkEvaluation(trial, context)

        let profile = KernelProfiler.shared.mark()
        PeakMemory.reset()
        let trained = try trial.method.train(input, configJSON: trial.config.json)
        let kernels = KernelProfiler.shared.snapshot(since: profile).filter { !$0.entry.composite }.map {
            KernelRecord(name: $0.key.name, shape: $0.key.shape, calls: $0.entry.calls, flops: $0.entry.flops, seconds: $0.entry.seconds)
        }
        let peak = PeakMemory.megabytes()
        let evaluationStart = Date()
        var metrics: [MetricRecord] = []
        var failures: [String] = []
        func add(_ score: Score) {
            // A non-finite value is never stored: it fails its protocol, with the reason.
            guard score.value.isFinite, score.ci95?.isFinite ?? true else {
                let reason = "\(score.protocolName): \(score.name) @ \(score.budget) is \(score.value.isFinite ? "finite with a non-finite interval" : "\(score.value)")"
                failures.append(reason)
                log("protocol \(score.protocolName) FAILED: \(score.name) @ \(score.budget) is not finite")
                return
            }
            metrics.append(MetricRecord(protocolName: score.protocolName, evalBudget: score.budget, name: score.name, value: score.value,
                                        ci95: score.ci95, n: score.n))
            guard score.show else { return }
            let ci = score.ci95.map { String(format: " ± %.6f", $0) } ?? ""
            log("metric \(score.protocolName) @ \(score.budget): \(score.name) = \(String(format: "%.6f", score.value))\(ci)\(score.n.map { " (n = \($0))" } ?? "")")
        }
        let trainBudget = "\(trial.trainBudget)"
        let s = trained.summary
        if let best = s.best {
            add(Score.train(trainBudget, "best_\(input.validator?.metric ?? "val_accuracy")", best.score))
        }
        if s.steps > 0 { add(Score.train(trainBudget, "final_loss", Double(s.finalLoss))) }
        if let peak { add(Score.train(trainBudget, "peak_rss_mb", peak)) }
        let features = FrozenFeatures(trained: trained, context: context)
        var protocolSeconds: [(String, Double)] = []
        for p in trial.evaluation.protocols {
            guard let evaluator = Evaluator.all.first(where: { $0.kind == p }) else { continue }
            let start = Date(), featureSecondsBefore = features.seconds
            // A protocol can take minutes (a linear probe with every label, fine-tuning): say which runs.
            let budgets = trial.evaluation.budgets(for: p)
            log("evaluating \(p.rawValue)" + (p.usesBudgets && !budgets.isEmpty ? " at \(budgets.map { "\($0)" }.joined(separator: ", ")) labels per class" : ""))
            // One protocol failing (a budget larger than a class, too few examples for an episode)
            // must not throw away the training or the other protocols' scores.
            do {
                for score in try evaluator.score(trained, context, features) { add(score) }
            } catch {
                failures.append("\(p.rawValue): \(error)")
                log("protocol \(p.rawValue) FAILED: \(error)")
            }
            // The frozen features are computed once, by whichever protocol asks first: counted apart.
            protocolSeconds.append((p.rawValue, Date().timeIntervalSince(start) - (features.seconds - featureSecondsBefore)))
        }
        // Where evaluation time goes: each protocol's seconds, the shared frozen features', the total.
        for (name, seconds) in protocolSeconds { add(Score.train(trainBudget, "\(name)_eval_seconds", seconds, show: false)) }
        if features.seconds > 0 { add(Score.train(trainBudget, "features_eval_seconds", features.seconds, show: false)) }
        add(Score.train(trainBudget, "eval_seconds", Date().timeIntervalSince(evaluationStart)))
        let curves = s.curves.map { CurveRecord(step: $0.step, name: $0.name, value: $0.value) }
        return TrialResult(datasetSha: full.contentHash, splitSha: context.trainSplit.hash, summary: s, metrics: metrics, curves: curves,
                           kernels: kernels, protocolFailures: failures)
    }
}

extension TrialExecutor {
    /// What evaluation will need, checked before training so a trial that cannot be scored fails
    /// in a second rather than after its training: each budget's split (a budget larger than a
    /// class) and the novel-class episodes (too few classes or examples).
    func checkEvaluation(_ trial: PlannedTrial, _ context: TrialContext) throws {
        let p = trial.evaluation.protocols
        if p.contains(where: { [.linear, .knn, .finetune].contains($0) }) && !context.training.testLabels.isEmpty {
            for budget in trial.evaluation.budgets { _ = try context.split(budget) }
        }
        if p.contains(where: \.isEpisodic) { _ = try Evaluator.novelEpisodes(context) }
    }
}

/// The process's peak resident memory since the last reset (Linux: VmHWM, reset through
/// /proc/self/clear_refs), so each trial reports its own peak; nil where unavailable.
enum PeakMemory {
    static func reset() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    static func megabytes() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb / 1024
    }
}

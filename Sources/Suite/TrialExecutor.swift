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
        // With a few-shot class split, methods train on the base classes; novel classes are for episodes.
        let d = try full.classSplit.map { try full.restricted(to: $0.base) } ?? full
        let smallest = d.trainClassCounts.min() ?? 0
        let validationPerClass = min(trial.validationPerClass ?? (trial.trainBudget == .all ? 300 : 100), max(1, smallest / 5))
        func split(_ budget: LabelBudget) throws -> LabelSplit {
            try LabelSplit(labels: d.trainLabels, classes: d.classCount, budget: budget, validationPerClass: validationPerClass,
                           seed: trial.seed, datasetHash: d.contentHash, datasetName: trial.dataset.id)
        }
        let trainSplit = try split(trial.trainBudget)
        let input = TrainingInput(dataset: d, split: trainSplit, seed: trial.seed, validate: { model, context in
            Evaluate.accuracy(model, images: d.trainImages, labels: d.trainLabels, indices: trainSplit.validation, classes: d.classCount,
                              context: context).accuracy
        }, observer: observer)

        KernelProfiler.shared.reset()
        PeakMemory.reset()
        let trained = try trial.method.train(input, configJSON: trial.config.json)
        let kernels = KernelProfiler.shared.snapshot().filter { !$0.entry.composite }.map {
            KernelRecord(name: $0.key.name, shape: $0.key.shape, calls: $0.entry.calls, flops: $0.entry.flops, seconds: $0.entry.seconds)
        }
        let peak = PeakMemory.megabytes()
        let evaluationStart = Date()
        var metrics: [MetricRecord] = []
        func add(_ p: String, _ budget: String, _ name: String, _ value: Double, ci95: Double? = nil, n: Int? = nil, show: Bool = true) {
            metrics.append(MetricRecord(protocolName: p, evalBudget: budget, name: name, value: value, ci95: ci95, n: n))
            guard show else { return }
            let ci = ci95.map { String(format: " ± %.6f", $0) } ?? ""
            log("metric \(p) @ \(budget): \(name) = \(String(format: "%.6f", value))\(ci)\(n.map { " (n = \($0))" } ?? "")")
        }
        let trainBudget = "\(trial.trainBudget)"
        let s = trained.summary
        if let best = s.best { add("train", trainBudget, "best_val_accuracy", best.score, n: trainSplit.validation.count) }
        add("train", trainBudget, "final_loss", Double(s.finalLoss))
        if let peak { add("train", trainBudget, "peak_rss_mb", peak) }

        let protocols = trial.evaluation.protocols
        if protocols.contains(.native), let classifier = trained.classifier, !d.testLabels.isEmpty {
            let r = Evaluate.accuracy(classifier, images: d.testImages, labels: d.testLabels, classes: d.classCount)
            add("native", trainBudget, "accuracy", r.accuracy, n: r.count)
            for (c, value) in r.perClass.enumerated() { add("native", trainBudget, "class_accuracy/\(d.classNames[c])", value, show: false) }
        }
        let frozen = protocols.filter { [.linear, .knn, .finetune].contains($0) }
        if !frozen.isEmpty && !d.testLabels.isEmpty {
            // The encoder frozen: features of the training images some budget uses (its labeled
            // and validation examples, drawn like a training split's) and of every test image,
            // computed once and scored at each budget.
            let splits = try trial.evaluation.budgets.map { ($0, try split($0)) }
            let used = Array(Set(splits.flatMap { $0.1.labeled + $0.1.validation })).sorted()
            let row = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($0.element, $0.offset) })
            let trainFeatures = Evaluate.features(trained.encoder, images: used.count == d.trainLabels.count ? d.trainImages : d.trainImages.gatherRows(used),
                                                  path: trained.encoderPath)
            let testFeatures = Evaluate.features(trained.encoder, images: d.testImages, path: trained.encoderPath)
            func features(_ indices: [Int]) -> Tensor { trainFeatures.gatherRows(indices.map { row[$0]! }) }
            for (budget, eval) in splits {
                let labeled = features(eval.labeled), y = eval.labeled.map { d.trainLabels[$0] }
                let b = "\(budget)"
                if frozen.contains(.linear) {
                    let r = LinearProbe().evaluate(labeled: labeled, labels: y, validation: features(eval.validation),
                                                   validationLabels: eval.validation.map { d.trainLabels[$0] },
                                                   test: testFeatures, testLabels: d.testLabels, classes: d.classCount)
                    add("linear", b, "accuracy", r.testAccuracy.accuracy, n: r.testAccuracy.count)
                }
                if frozen.contains(.knn) {
                    let r = KNN.accuracy(reference: labeled, referenceLabels: y, query: testFeatures, queryLabels: d.testLabels,
                                         classes: d.classCount, k: min(20, y.count))
                    add("knn", b, "accuracy", r.accuracy, n: r.count)
                }
                if frozen.contains(.finetune) {
                    let r = try FineTune().evaluate(encoder: trained.encoder, features: trained.featureCount, dataset: d, split: eval, seed: trial.seed)
                    add("finetune", b, "accuracy", r.testAccuracy.accuracy, n: r.testAccuracy.count)
                }
            }
        }
        if protocols.contains(.episodes), let classes = full.classSplit {
            let features = Evaluate.features(trained.encoder, images: full.trainImages, path: trained.encoderPath)
            let e = trial.evaluation.episodes
            for shot in e.shots {
                let sampler = try EpisodeSampler(labels: full.trainLabels, classes: classes.novel, way: e.way, shot: shot, query: e.query,
                                                 seed: 0, datasetHash: full.contentHash)
                let r = FewShot.linearHeadAccuracy(features: features, sampler: sampler, count: e.count)
                add("episodes", e.label(shot: shot), "accuracy", r.mean, ci95: r.ci95, n: r.n)
            }
        }
        add("train", trainBudget, "eval_seconds", Date().timeIntervalSince(evaluationStart))
        let curves = s.curves.map { CurveRecord(step: $0.step, name: $0.name, value: $0.value) }
        return TrialResult(datasetSha: full.contentHash, splitSha: trainSplit.hash, summary: s, metrics: metrics, curves: curves, kernels: kernels)
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

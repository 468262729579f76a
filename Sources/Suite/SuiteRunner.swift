import DataCore
import Foundation
import Methods
import ResultsStore

/// Runs planned trials one by one into the store: each trial isolated (an error or a diverged
/// loss stores it as failed with the reason, and the run goes on), each finished trial committed
/// in one transaction, progress on standard error and results on standard output.
public final class SuiteRunner {
    let store: ResultsStore
    let executor: TrialExecutor
    let progress: ProgressPrinter
    let output: (String) -> Void
    /// The trial being run, for a signal handler to mark interrupted (read from another thread).
    private let current = CurrentTrial()

    public init(store: ResultsStore, data: DatasetCache, output: @escaping (String) -> Void = { print($0); fflush(stdout) }) {
        let progress = ProgressPrinter()
        self.progress = progress
        self.store = store
        self.output = output
        executor = TrialExecutor(data: data, observer: progress, log: { output("  " + $0) })
    }

    /// A new run: the machine and git state recorded, every trial stored as pending.
    public func start(suite: String, suiteSha: String, trials: [PlannedTrial], git: GitState, argv: [String],
                      thresholds: [String: Double] = [:]) throws -> (runID: Int64, trials: [(Int64, PlannedTrial)]) {
        let machine = try store.machineID(MachineInfo.current())
        let runID = try store.startRun(RunRecord(suite: suite, suiteSha: suiteSha, commit: git.commit, branch: git.branch, dirty: git.dirty,
                                                 machineId: machine, argv: argv.joined(separator: " "), startedAt: Date()))
        try store.record(thresholds: thresholds, runID: runID)
        let ids = try store.plan(runID: runID, trials: trials.map { $0.record(runID: runID) })
        return (runID, Array(zip(ids, trials)))
    }

    /// The trials of an unfinished run still to do: pending ones, and the one in flight when it
    /// stopped (run again from its start). Done and failed trials are kept as they are.
    public func remaining(runID: Int64, plan: [PlannedTrial]) throws -> (todo: [(Int64, PlannedTrial)], kept: Int) {
        let stored = try store.trials(run: runID)
        let byKey = Dictionary(plan.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        var todo: [(Int64, PlannedTrial)] = []
        var kept = 0
        for t in stored {
            guard let planned = byKey[t.key] else {
                throw StoreError("run \(runID) holds trial \(t.id!) (\(t.key)) that the suite no longer plans; start a new run instead of resuming")
            }
            if t.status == TrialStatus.done || t.status == TrialStatus.failed { kept += 1 } else { todo.append((t.id!, planned)) }
        }
        // A planned trial the run does not hold would otherwise never run, silently.
        let storedKeys = Set(stored.map(\.key))
        let missing = plan.filter { !storedKeys.contains($0.key) }
        guard missing.isEmpty else {
            let names = missing.prefix(3).map { "\($0.name) on \($0.dataset.id), budget \($0.trainBudget), seed \($0.seed)" }
            throw StoreError("run \(runID) lacks \(missing.count) planned trial(s) (\(names.joined(separator: "; "))\(missing.count > 3 ? "; ..." : "")); start a new run instead of resuming")
        }
        return (todo, kept)
    }

    /// Runs `trials` (numbered from `offset + 1` of `total`) and returns how many failed.
    public func execute(_ trials: [(Int64, PlannedTrial)], offset: Int = 0, total: Int? = nil) throws -> Int {
        let total = total ?? trials.count
        var failed = 0
        var eta = SuiteETA(remainingEstimate: trials.map(\.1.estimatedSeconds).reduce(0, +))
        for (i, (id, trial)) in trials.enumerated() {
            let label = "[\(offset + i + 1)/\(total)]"
            output("trial \(offset + i + 1)/\(total): method=\(trial.name) dataset=\(trial.dataset.id) budget=\(trial.trainBudget) seed=\(trial.seed)")
            ProgressPrinter.note("\(label) \(trial.name) on \(trial.dataset.id), budget \(trial.trainBudget), seed \(trial.seed)"
                                 + "  (suite ETA ~\(eta.text))")
            progress.prefix = "\(label) "
            try store.startTrial(id)
            current.id = id
            defer { current.id = nil }
            let started = Date()
            do {
                let r = try executor.run(trial)
                // A method that takes no steps (pixels, a closed-form fit) has no throughput to store.
                let throughput = r.summary.steps > 0 ? r.summary.samplesPerSecond : nil
                // A protocol that failed fails the trial, with its reason, and the scores made are kept.
                let reason = r.protocolFailures.isEmpty ? nil : "protocol failed: " + r.protocolFailures.joined(separator: "; ")
                try store.finishTrial(id, status: reason == nil ? TrialStatus.done : TrialStatus.failed, error: reason, datasetSha: r.datasetSha,
                                      splitSha: r.splitSha, seconds: r.summary.seconds, steps: r.summary.steps, samplesPerSecond: throughput,
                                      metrics: r.metrics, curves: r.curves, kernels: r.kernels)
                if let reason {
                    failed += 1
                    output("  FAILED: \(reason) (the other protocols' scores are stored)")
                } else {
                    output(String(format: "  done in %.1f s (training %.1f s, %.0f samples/s)", Date().timeIntervalSince(started),
                                  r.summary.seconds, r.summary.samplesPerSecond))
                }
            } catch let error as StoreError {
                throw error
            } catch {
                failed += 1
                let reason = "\(error)"
                try store.finishTrial(id, status: TrialStatus.failed, error: reason, seconds: Date().timeIntervalSince(started))
                output("  FAILED: \(reason)")
            }
            eta.finished(estimate: trial.estimatedSeconds, took: Date().timeIntervalSince(started))
        }
        return failed
    }

    /// Stops at a SIGINT or SIGTERM: the trial in flight is marked `interrupted` (what finished is
    /// already committed, one transaction per trial) and `stop` is called with the signal, which
    /// should say how to resume and exit. The run stays unfinished, so `--resume` continues it.
    public func stopOnSignals(_ stop: @escaping (Int32) -> Never) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [store, current] in
                if let id = current.id { try? store.interruptTrial(id) }
                stop(sig)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    private var signalSources: [DispatchSourceSignal] = []

    /// Marks the run finished: failed if any of its trials failed.
    public func finish(runID: Int64) throws -> String {
        let counts = try store.trialCounts()[runID] ?? [:]
        let status = (counts[TrialStatus.failed] ?? 0) > 0 ? RunStatus.failed : RunStatus.done
        try store.finishRun(runID, status: status)
        return status
    }

}

extension PlannedTrial {
    func record(runID: Int64) -> TrialRecord {
        var r = TrialRecord(runId: runID, dataset: dataset.id, datasetSha: "", method: name, methodVersion: method.version,
                            configJson: config.json, configSha: config.sha, trainBudget: "\(trainBudget)", seed: Int64(seed), splitSha: "",
                            status: TrialStatus.pending, startedAt: Date())
        r.variantOf = name == method.id ? nil : method.id
        return r
    }
}

/// The id of the trial in flight, shared with a signal handler.
final class CurrentTrial: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64?
    var id: Int64? {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}

/// The suite's remaining time: the time model's estimate of the trials still to run, scaled by
/// how the model has fared on the trials already run here (measured over estimated), because the
/// model is calibrated on one machine and one method mix and can be off several-fold on another
/// (it said 16 minutes for a semi-supervised suite that took 90).
struct SuiteETA {
    private(set) var remainingEstimate: Double
    private var (estimatedSoFar, tookSoFar) = (0.0, 0.0)

    init(remainingEstimate: Double) { self.remainingEstimate = remainingEstimate }

    mutating func finished(estimate: Double, took seconds: Double) {
        remainingEstimate = max(0, remainingEstimate - estimate)
        (estimatedSoFar, tookSoFar) = (estimatedSoFar + estimate, tookSoFar + seconds)
    }

    /// Measured over estimated so far (1 before any trial has run).
    var pace: Double { estimatedSoFar > 0 && tookSoFar > 0 ? tookSoFar / estimatedSoFar : 1 }

    var seconds: Double { remainingEstimate * pace }

    var text: String {
        estimatedSoFar > 0 ? "\(Durations.text(seconds)); model \(Durations.text(remainingEstimate)) x pace \(String(format: "%.1f", pace))"
                           : Durations.text(seconds)
    }
}

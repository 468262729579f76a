import Foundation
import ResultsStore

/// Builds results databases by hand for tests of comparisons and reports: runs with trials,
/// metrics and kernel rows exactly as given.
public struct StoreBuilder {
    public let store: ResultsStore

    public init(path: String = StoreBuilder.temporaryPath()) throws { store = try ResultsStore(path: path) }

    public static func temporaryPath() -> String {
        Scratch.folder("built").appendingPathComponent("results.sqlite").path
    }

    public static let machine = MachineRecord(hostname: "host", cpu: "AMD EPYC", cores: 2, os: "Debian 12", swift: "6.3",
                                              blas: "OpenBLAS 0.3.21", blasCore: "Zen")

    /// A trial to store: `accuracy` per protocol@budget, or a failure reason.
    public struct Trial {
        public var dataset = "fashion-mnist"
        public var method = "supervised"
        public var version = "1"
        public var configSha = "c0"
        public var budget = "10"
        public var seed: Int64 = 0
        public var accuracy: [String: Double] = [:]   // "native@10": 0.7
        public var episodes: (setting: String, mean: Double, ci95: Double)? = nil
        public var failure: String? = nil
        public var samplesPerSecond = 700.0
        public var datasetSha = "d"
        /// The seed's split hash (default "split-SEED").
        public var splitSha: String?
        /// Other metrics: "protocol@budget:name" → value.
        public var values: [String: Double] = [:]

        public init(method: String = "supervised", budget: String = "10", seed: Int64 = 0, accuracy: [String: Double] = [:],
                    failure: String? = nil, configSha: String = "c0", version: String = "1") {
            (self.method, self.budget, self.seed, self.accuracy, self.failure, self.configSha, self.version) =
                (method, budget, seed, accuracy, failure, configSha, version)
        }
    }

    /// Stores a finished run; returns its id.
    @discardableResult
    public func run(suite: String = "default", commit: String, branch: String = "main", machine: MachineRecord = StoreBuilder.machine,
                    trials: [Trial], kernels: [KernelBenchRecord] = [], started: Date = Date(timeIntervalSince1970: 1_800_000_000)) throws -> Int64 {
        let runID = try store.startRun(RunRecord(suite: suite, suiteSha: "s", commit: commit, branch: branch, dirty: false,
                                                 machineId: try store.machineID(machine), argv: "benchbench suite \(suite)", startedAt: started))
        let records = trials.map { t in
            TrialRecord(runId: runID, dataset: t.dataset, datasetSha: t.datasetSha, method: t.method, methodVersion: t.version, configJson: "{}",
                        configSha: t.configSha, trainBudget: t.budget, seed: t.seed, splitSha: t.splitSha ?? "split-\(t.seed)", status: "pending",
                        startedAt: started)
        }
        let ids = try store.plan(runID: runID, trials: records)
        for (id, t) in zip(ids, trials) {
            if let failure = t.failure {
                try store.finishTrial(id, status: TrialStatus.failed, error: failure, seconds: 1)
                continue
            }
            var metrics = t.accuracy.map { key, value -> MetricRecord in
                let parts = key.split(separator: "@").map(String.init)
                return MetricRecord(protocolName: parts[0], evalBudget: parts[1], name: "accuracy", value: value, n: 10_000)
            }
            for (key, value) in t.values {
                let parts = key.split(separator: ":").map(String.init), at = parts[0].split(separator: "@").map(String.init)
                metrics.append(MetricRecord(protocolName: at[0], evalBudget: at[1], name: parts[1], value: value, n: 10_000))
            }
            if let e = t.episodes { metrics.append(MetricRecord(protocolName: "episodes", evalBudget: e.setting, name: "accuracy", value: e.mean, ci95: e.ci95, n: 600)) }
            try store.finishTrial(id, status: TrialStatus.done, datasetSha: t.datasetSha, splitSha: t.splitSha ?? "split-\(t.seed)", seconds: 30, steps: 200,
                                  samplesPerSecond: t.samplesPerSecond, metrics: metrics,
                                  curves: [CurveRecord(step: 100, name: "loss", value: 1.0), CurveRecord(step: 200, name: "loss", value: 0.5)],
                                  kernels: [KernelRecord(name: "gemm_nn", shape: "128x256x784", calls: 200, flops: 1e11, seconds: 1)])
        }
        if !kernels.isEmpty { try store.record(kernelBench: kernels, runID: runID) }
        try store.finishRun(runID, status: trials.contains { $0.failure != nil } ? RunStatus.failed : RunStatus.done,
                            at: started.addingTimeInterval(100))
        return runID
    }

    /// Three seeds of one method at one budget with these native accuracies.
    public static func seeds(_ values: [Double], method: String = "supervised", budget: String = "10", configSha: String = "c0") -> [Trial] {
        values.enumerated().map { Trial(method: method, budget: budget, seed: Int64($0.offset), accuracy: ["native@\(budget)": $0.element], configSha: configSha) }
    }
}

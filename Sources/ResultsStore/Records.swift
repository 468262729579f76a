import Foundation
import GRDB

/// The machine a run ran on; identical machines share one row.
public struct MachineRecord: Codable, Equatable, FetchableRecord, MutablePersistableRecord, Sendable {
    public static let databaseTableName = "machine"
    public var id: Int64?
    public var hostname: String
    public var cpu: String
    public var cores: Int
    public var os: String
    public var swift: String
    public var blas: String
    public var blasCore: String

    public init(id: Int64? = nil, hostname: String, cpu: String, cores: Int, os: String, swift: String, blas: String, blasCore: String) {
        (self.id, self.hostname, self.cpu, self.cores, self.os, self.swift, self.blas, self.blasCore) =
            (id, hostname, cpu, cores, os, swift, blas, blasCore)
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    enum CodingKeys: String, CodingKey {
        case id, hostname, cpu, cores, os, swift, blas
        case blasCore = "blas_core"
    }
}

/// One invocation: a suite, a single `run`, or `kernels`.
public struct RunRecord: Codable, Equatable, FetchableRecord, MutablePersistableRecord, Sendable {
    public static let databaseTableName = "run"
    public var id: Int64?
    public var suite: String
    public var suiteSha: String
    public var commit: String
    public var branch: String
    public var dirty: Bool
    public var machineId: Int64
    public var argv: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var status: String

    public init(id: Int64? = nil, suite: String, suiteSha: String, commit: String, branch: String, dirty: Bool, machineId: Int64,
                argv: String, startedAt: Date, finishedAt: Date? = nil, status: String = "running") {
        (self.id, self.suite, self.suiteSha, self.commit, self.branch, self.dirty, self.machineId, self.argv) =
            (id, suite, suiteSha, commit, branch, dirty, machineId, argv)
        (self.startedAt, self.finishedAt, self.status) = (startedAt, finishedAt, status)
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    enum CodingKeys: String, CodingKey {
        case id, suite, commit, branch, dirty, argv, status
        case suiteSha = "suite_sha", machineId = "machine_id", startedAt = "started_at", finishedAt = "finished_at"
    }
}

/// One trained and evaluated (dataset, method, budget, seed).
public struct TrialRecord: Codable, Equatable, FetchableRecord, MutablePersistableRecord, Sendable {
    public static let databaseTableName = "trial"
    public var id: Int64?
    public var runId: Int64
    public var dataset: String
    public var datasetSha: String
    public var method: String
    public var methodVersion: String
    public var configJson: String
    public var configSha: String
    public var trainBudget: String
    public var seed: Int64
    public var splitSha: String
    public var status: String
    public var error: String?
    public var startedAt: Date
    public var seconds: Double?
    public var steps: Int?
    public var samplesPerS: Double?
    /// The machine the trial ran on when it is not its run's (a trial merged from a shard).
    public var machineId: Int64?
    /// The registered method a named suite entry runs (`fomaml: {method: maml, ...}`: `method` is
    /// "fomaml", `variantOf` "maml"); nil when the entry is the method itself.
    public var variantOf: String?
    /// The registered method the trial ran.
    public var registeredMethod: String { variantOf ?? method }

    public init(id: Int64? = nil, runId: Int64, dataset: String, datasetSha: String, method: String, methodVersion: String,
                configJson: String, configSha: String, trainBudget: String, seed: Int64, splitSha: String, status: String,
                error: String? = nil, startedAt: Date, seconds: Double? = nil, steps: Int? = nil, samplesPerS: Double? = nil) {
        (self.id, self.runId, self.dataset, self.datasetSha, self.method, self.methodVersion) = (id, runId, dataset, datasetSha, method, methodVersion)
        (self.configJson, self.configSha, self.trainBudget, self.seed, self.splitSha, self.status) = (configJson, configSha, trainBudget, seed, splitSha, status)
        (self.error, self.startedAt, self.seconds, self.steps, self.samplesPerS) = (error, startedAt, seconds, steps, samplesPerS)
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    enum CodingKeys: String, CodingKey {
        case id, dataset, method, seed, status, error, seconds, steps
        case runId = "run_id", datasetSha = "dataset_sha", methodVersion = "method_version", configJson = "config_json"
        case configSha = "config_sha", trainBudget = "train_budget", splitSha = "split_sha", startedAt = "started_at"
        case samplesPerS = "samples_per_s", machineId = "machine_id", variantOf = "variant_of"
    }

    /// What identifies the trial within its run: (dataset, method, budget, seed, config).
    public var key: String { "\(dataset)|\(method)|\(trainBudget)|\(seed)|\(configSha)" }
}

/// A run that is one shard of a campaign, or a merged run's record of one shard merged into it.
public struct ShardRecord: Codable, Equatable, FetchableRecord, PersistableRecord, Sendable {
    public static let databaseTableName = "shard"
    public var runId: Int64
    public var campaign: String
    public var shard: Int
    public var shards: Int
    /// In a merged database: whether the shard's run had finished when it was merged.
    public var finished: Bool

    public init(runId: Int64 = 0, campaign: String, shard: Int, shards: Int, finished: Bool = false) {
        (self.runId, self.campaign, self.shard, self.shards, self.finished) = (runId, campaign, shard, shards, finished)
    }

    enum CodingKeys: String, CodingKey {
        case campaign, shard, shards, finished
        case runId = "run_id"
    }
}

/// A score of a trial by one protocol at one evaluation budget.
public struct MetricRecord: Codable, Equatable, FetchableRecord, PersistableRecord, Sendable {
    public static let databaseTableName = "metric"
    public var trialId: Int64
    public var protocolName: String
    public var evalBudget: String
    public var name: String
    public var value: Double
    public var ci95: Double?
    public var n: Int?

    public init(trialId: Int64 = 0, protocolName: String, evalBudget: String, name: String, value: Double, ci95: Double? = nil, n: Int? = nil) {
        (self.trialId, self.protocolName, self.evalBudget, self.name, self.value, self.ci95, self.n) =
            (trialId, protocolName, evalBudget, name, value, ci95, n)
    }

    enum CodingKeys: String, CodingKey {
        case name, value, ci95, n
        case trialId = "trial_id", protocolName = "protocol", evalBudget = "eval_budget"
    }
}

/// One point of a trial's learning curve.
public struct CurveRecord: Codable, Equatable, FetchableRecord, PersistableRecord, Sendable {
    public static let databaseTableName = "curve"
    public var trialId: Int64
    public var step: Int
    public var name: String
    public var value: Double

    public init(trialId: Int64 = 0, step: Int, name: String, value: Double) {
        (self.trialId, self.step, self.name, self.value) = (trialId, step, name, value)
    }

    enum CodingKeys: String, CodingKey {
        case step, name, value
        case trialId = "trial_id"
    }
}

/// The profile of one kernel during a trial's training.
public struct KernelRecord: Codable, Equatable, FetchableRecord, PersistableRecord, Sendable {
    public static let databaseTableName = "kernel"
    public var trialId: Int64
    public var name: String
    public var shape: String
    public var calls: Int
    public var flops: Double
    public var seconds: Double

    public init(trialId: Int64 = 0, name: String, shape: String, calls: Int, flops: Double, seconds: Double) {
        (self.trialId, self.name, self.shape, self.calls, self.flops, self.seconds) = (trialId, name, shape, calls, flops, seconds)
    }

    enum CodingKeys: String, CodingKey {
        case name, shape, calls, flops, seconds
        case trialId = "trial_id"
    }
}

/// One row of `benchbench kernels`. `unit` extends DESIGN.md's schema: rows are GFLOP/s, GB/s or samples/s.
public struct KernelBenchRecord: Codable, Equatable, FetchableRecord, PersistableRecord, Sendable {
    public static let databaseTableName = "kernel_bench"
    public var runId: Int64
    public var name: String
    public var shape: String
    public var unit: String
    public var reps: Int
    public var min: Double
    public var median: Double
    public var max: Double

    public init(runId: Int64 = 0, name: String, shape: String, unit: String, reps: Int, min: Double, median: Double, max: Double) {
        (self.runId, self.name, self.shape, self.unit, self.reps, self.min, self.median, self.max) = (runId, name, shape, unit, reps, min, median, max)
    }

    enum CodingKeys: String, CodingKey {
        case name, shape, unit, reps
        case runId = "run_id", min = "gflops_min", median = "gflops_median", max = "gflops_max"
    }
}

/// A per-metric threshold of the suite a run ran (`thresholds:` in the suite file).
public struct ThresholdRecord: Codable, Equatable, FetchableRecord, PersistableRecord, Sendable {
    public static let databaseTableName = "run_threshold"
    public var runId: Int64
    public var metric: String
    public var value: Double

    public init(runId: Int64 = 0, metric: String, value: Double) { (self.runId, self.metric, self.value) = (runId, metric, value) }

    enum CodingKeys: String, CodingKey {
        case metric, value
        case runId = "run_id"
    }
}

/// The spread of one cell (kind "cell", in the metric's units) or one throughput (kind
/// "throughput", relative) over same-commit runs of a suite on one machine.
public struct NoiseRecord: Codable, Equatable, FetchableRecord, MutablePersistableRecord, Sendable {
    public static let databaseTableName = "noise"
    public var id: Int64?
    public var suite: String
    public var machineId: Int64
    public var commit: String
    /// The runs measured, comma-separated ids.
    public var runs: String
    public var calibratedAt: Date
    public var kind: String
    public var key: String
    public var spread: Double

    public init(id: Int64? = nil, suite: String, machineId: Int64, commit: String, runs: String, calibratedAt: Date, kind: String,
                key: String, spread: Double) {
        (self.id, self.suite, self.machineId, self.commit, self.runs) = (id, suite, machineId, commit, runs)
        (self.calibratedAt, self.kind, self.key, self.spread) = (calibratedAt, kind, key, spread)
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    enum CodingKeys: String, CodingKey {
        case id, suite, commit, runs, kind, key, spread
        case machineId = "machine_id", calibratedAt = "calibrated_at"
    }
}

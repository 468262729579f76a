import Foundation
import GRDB

/// What merging one database into another did.
public struct MergeOutcome: Sendable {
    public var runsCreated = 0
    public var trialsAdded = 0
    /// Trials already present with the same status and metrics (merging a shard twice).
    public var trialsAlreadyPresent = 0
    /// Trials not finished in the source (pending, running, interrupted): left for `--resume`.
    public var trialsUnfinished = 0
    /// Trials present in both with different results: reported, the target's copy kept.
    public var conflicts: [String] = []
}

extension ResultsStore {
    /// Merges every run of `source` into this database: a shard of a campaign (`suite --shard`)
    /// joins the one run of that campaign here (made by the first of its shards merged), any
    /// other run is copied as a run of its own. Finished trials are copied with their metrics,
    /// curves, kernel profile and the machine they ran on; a trial already here with the same
    /// results is skipped (merging twice adds nothing), one with different results is a conflict
    /// and keeps the copy already here. All of it in one transaction.
    public func merge(from source: ResultsStore) throws -> MergeOutcome {
        var outcome = MergeOutcome()
        let runs = try source.runs()
        try pool.write { db in
            for run in runs {
                let shardRow = try source.pool.read { try ShardRecord.filter(Column("run_id") == run.id!).fetchOne($0) }
                let machine = try source.machine(run.machineId).map { m -> Int64 in
                    var copy = m
                    copy.id = nil
                    return try Self.machineID(copy, db)
                } ?? run.machineId
                // The run here that receives this one's trials.
                let target: Int64
                if let shardRow {
                    if let existing = try Int64.fetchOne(db, sql: """
                        SELECT run_id FROM shard WHERE campaign = ? AND run_id IN (SELECT id FROM run WHERE suite = ? AND suite_sha = ? AND "commit" = ?) LIMIT 1
                        """, arguments: [shardRow.campaign, run.suite, run.suiteSha, run.commit]) {
                        target = existing
                    } else {
                        var merged = run
                        (merged.id, merged.machineId, merged.finishedAt, merged.status) = (nil, machine, nil, "running")
                        merged.argv = "benchbench merge (campaign \(shardRow.campaign), \(shardRow.shards) shards)"
                        try merged.insert(db)
                        target = merged.id!
                        outcome.runsCreated += 1
                    }
                    let mergedShard = ShardRecord(runId: target, campaign: shardRow.campaign, shard: shardRow.shard, shards: shardRow.shards,
                                                  finished: run.finishedAt != nil)
                    try mergedShard.upsert(db)
                    try db.execute(sql: "UPDATE run SET started_at = MIN(started_at, ?) WHERE id = ?", arguments: [run.startedAt, target])
                } else if let existing = try Int64.fetchOne(db, sql: """
                    SELECT id FROM run WHERE suite = ? AND suite_sha = ? AND "commit" = ? AND started_at = ? AND machine_id = ?
                    """, arguments: [run.suite, run.suiteSha, run.commit, run.startedAt, machine]) {
                    target = existing
                } else {
                    var copy = run
                    (copy.id, copy.machineId) = (nil, machine)
                    try copy.insert(db)
                    target = copy.id!
                    outcome.runsCreated += 1
                }
                let thresholds = try source.pool.read { try ThresholdRecord.filter(Column("run_id") == run.id!).fetchAll($0) }
                for var t in thresholds { t.runId = target; try t.insert(db, onConflict: .ignore) }
                let bench = try source.kernelBench(run: run.id!)
                if try KernelBenchRecord.filter(Column("run_id") == target).fetchCount(db) == 0 {
                    for var k in bench { k.runId = target; try k.insert(db) }
                }
                let here = Dictionary(try TrialRecord.filter(Column("run_id") == target).fetchAll(db).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
                for trial in try source.trials(run: run.id!) {
                    guard trial.status == "done" || trial.status == "failed" else { outcome.trialsUnfinished += 1; continue }
                    let metrics = try source.metrics(trial: trial.id!)
                    if let existing = here[trial.key] {
                        let mine = try MetricRecord.filter(Column("trial_id") == existing.id!).fetchAll(db)
                        if existing.status == trial.status && Self.sameResults(mine, metrics) {
                            outcome.trialsAlreadyPresent += 1
                        } else {
                            outcome.conflicts.append("trial \(trial.key) of run \(run.id!) (\(source.path)) differs from the copy here "
                                                     + "(status \(trial.status) vs \(existing.status), \(metrics.count) vs \(mine.count) metrics): kept the copy here")
                        }
                        continue
                    }
                    var copy = trial
                    (copy.id, copy.runId) = (nil, target)
                    copy.machineId = machine
                    try copy.insert(db)
                    for var m in metrics { m.trialId = copy.id!; try m.insert(db) }
                    for var c in try source.curves(trial: trial.id!) { c.trialId = copy.id!; try c.insert(db) }
                    for var k in try source.kernels(trial: trial.id!) { k.trialId = copy.id!; try k.insert(db) }
                    outcome.trialsAdded += 1
                }
                try Self.settleStatus(of: target, source: run, db)
            }
        }
        return outcome
    }

    /// A merged campaign's run is finished when each of its shards was merged from a finished
    /// run (failed if any trial failed); a copied run keeps its own state.
    static func settleStatus(of runID: Int64, source: RunRecord, _ db: Database) throws {
        let shards = try ShardRecord.filter(Column("run_id") == runID).fetchAll(db)
        guard let total = shards.first?.shards else {
            try db.execute(sql: "UPDATE run SET finished_at = ?, status = ? WHERE id = ?", arguments: [source.finishedAt, source.status, runID])
            return
        }
        let complete = Set(shards.filter(\.finished).map(\.shard)) == Set(1...total)
        let failed = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trial WHERE run_id = ? AND status = 'failed'", arguments: [runID]) ?? 0
        let latest = try Date.fetchOne(db, sql: "SELECT MAX(started_at) FROM trial WHERE run_id = ?", arguments: [runID]) ?? source.startedAt
        try db.execute(sql: "UPDATE run SET finished_at = ?, status = ? WHERE id = ?",
                       arguments: [complete ? max(latest, source.finishedAt ?? latest) : nil, complete ? (failed > 0 ? "failed" : "done") : "running", runID])
    }

    /// Same metrics: every (protocol, budget, name) with the same value, CI and count.
    static func sameResults(_ a: [MetricRecord], _ b: [MetricRecord]) -> Bool {
        func key(_ m: MetricRecord) -> String { "\(m.protocolName)|\(m.evalBudget)|\(m.name)|\(m.value.bitPattern)|\(m.ci95?.bitPattern ?? 0)|\(m.n ?? -1)" }
        return Set(a.map(key)) == Set(b.map(key)) && a.count == b.count
    }

    /// The id of `machine` within a write transaction, inserting it the first time it is seen.
    static func machineID(_ machine: MachineRecord, _ db: Database) throws -> Int64 {
        if let id = try MachineRecord.filter(Column("hostname") == machine.hostname && Column("cpu") == machine.cpu && Column("cores") == machine.cores
                                                 && Column("os") == machine.os && Column("swift") == machine.swift && Column("blas") == machine.blas
                                                 && Column("blas_core") == machine.blasCore).fetchOne(db)?.id { return id }
        var m = machine
        try m.insert(db)
        return m.id!
    }

    /// Marks run `runID` as shard `shard` of `campaign`.
    public func record(shard: ShardRecord) throws {
        try pool.write { db in try shard.insert(db) }
    }

    /// The shard rows of a run (one for a shard's own run; one per merged shard for a merged run).
    public func shards(run: Int64) throws -> [ShardRecord] {
        try pool.read { db in try ShardRecord.filter(Column("run_id") == run).order(Column("shard")).fetchAll(db) }
    }
}

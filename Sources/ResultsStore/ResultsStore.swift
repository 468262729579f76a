import Foundation
import GRDB

/// The SQLite database of every result: WAL mode, foreign keys on, schema by migrations. A trial
/// and everything measured of it are written in one transaction, so a killed process loses at
/// most the trial in flight.
public final class ResultsStore: @unchecked Sendable {
    let pool: DatabasePool
    public let path: String

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.foreignKeysEnabled = true
        // Other processes use the same file (`runs` during a suite, two suites at once): wait for
        // their write to end instead of failing at once with "database is locked".
        config.busyMode = .timeout(30)
        do {
            pool = try ResultsStore.openPool(path: path, configuration: config)
        } catch {
            throw StoreError("\(path): cannot open the results database (\(error))")
        }
        // A schema with migrations this build does not know was written by a newer benchbench:
        // writing to it with the old schema's assumptions could lose results.
        let unknown = (try? pool.read { db in
            try Migrations.migrator.hasBeenSuperseded(db)
                ? try Migrations.migrator.appliedIdentifiers(db).subtracting(Migrations.migrator.migrations) : []
        }) ?? []
        guard unknown.isEmpty else {
            throw StoreError("\(path): written by a newer benchbench (schema steps this build does not know: "
                             + unknown.sorted().joined(separator: ", ") + "); use that version, or another --db")
        }
        do {
            try ResultsStore.migrate(pool)
        } catch {
            throw StoreError("\(path): cannot open the results database (\(error))")
        }
    }

    /// Opens the pool, waiting out another process that holds the lock. Switching a new file to
    /// WAL mode (`PRAGMA journal_mode = WAL`, run while the pool opens) fails at once with
    /// SQLITE_BUSY when a second process is opening the same new file, without consulting the busy
    /// timeout; two suites started together on a fresh database hit it in 3 of 40 double starts
    /// (and in CI). The first process finishes the switch within milliseconds, so a retry succeeds.
    static func openPool(path: String, configuration: Configuration, patience: TimeInterval = 30) throws -> DatabasePool {
        let deadline = Date().addingTimeInterval(patience)
        var pause: useconds_t = 5_000
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && Date() < deadline {
                usleep(pause)
                pause = min(pause * 2, 200_000)
            }
        }
    }

    /// Whether `error` came from SQLite (for the command line's exit code).
    public static func isDatabaseError(_ error: Error) -> Bool { error is DatabaseError }

    /// SQLite's error in one line: its message and the statement's first words, not the arguments.
    public static func describe(_ error: Error) -> String {
        guard let e = error as? DatabaseError else { return "\(error)" }
        return (e.message ?? "SQLite error") + " (SQLite code \(e.extendedResultCode.rawValue))"
    }

    /// Brings the schema up to date. The migrator decides what to apply before it takes the write
    /// lock, so a second process creating the same new file can lose the race and fail on a table
    /// the first one just made; by then the first has committed, and a second look finds nothing
    /// left to do.
    static func migrate(_ pool: DatabasePool) throws {
        for attempt in 1...3 {
            do {
                try Migrations.migrator.migrate(pool)
                return
            } catch where attempt < 3 {
                if try pool.read({ try Migrations.migrator.hasCompletedMigrations($0) }) { return }
            }
        }
    }

    /// The id of `machine`, inserting it the first time it is seen.
    public func machineID(_ machine: MachineRecord) throws -> Int64 {
        try pool.write { db in
            if let existing = try MachineRecord
                .filter(Column("hostname") == machine.hostname && Column("cpu") == machine.cpu && Column("cores") == machine.cores
                        && Column("os") == machine.os && Column("swift") == machine.swift && Column("blas") == machine.blas
                        && Column("blas_core") == machine.blasCore)
                .fetchOne(db) {
                return existing.id!
            }
            var m = machine
            try m.insert(db)
            return m.id!
        }
    }

    public func startRun(_ run: RunRecord) throws -> Int64 {
        try pool.write { db in
            var r = run
            try r.insert(db)
            return r.id!
        }
    }

    public func finishRun(_ id: Int64, status: String, at date: Date = Date()) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE run SET status = ?, finished_at = ? WHERE id = ?", arguments: [status, date, id])
        }
    }

    /// Stores a run's planned trials as `pending`, all or none; returns their ids in order.
    public func plan(runID: Int64, trials: [TrialRecord]) throws -> [Int64] {
        try pool.write { db in
            try trials.map { trial in
                var t = trial
                t.runId = runID
                t.status = TrialStatus.pending
                try t.insert(db)
                return t.id!
            }
        }
    }

    /// Marks a trial as running from `date`, dropping whatever an interrupted earlier attempt left
    /// (it is run again from its start).
    public func startTrial(_ id: Int64, at date: Date = Date()) throws {
        try pool.write { db in
            for table in ["metric", "curve", "kernel"] { try db.execute(sql: "DELETE FROM \(table) WHERE trial_id = ?", arguments: [id]) }
            try db.execute(sql: "UPDATE trial SET status = ?, error = NULL, started_at = ?, seconds = NULL, steps = NULL, samples_per_s = NULL WHERE id = ?",
                           arguments: [TrialStatus.running, date, id])
        }
    }

    /// Marks a trial stopped by a signal while it ran (nothing of it is kept; `--resume` runs it again).
    public func interruptTrial(_ id: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE trial SET status = ? WHERE id = ? AND status = ?", arguments: [TrialStatus.interrupted, id, TrialStatus.running])
        }
    }

    /// Stores how a trial ended with its metrics, curve points and kernel profile, all or nothing:
    /// a process killed before this returns leaves the trial `running`, to be run again on resume.
    public func finishTrial(_ id: Int64, status: String, error: String? = nil, datasetSha: String? = nil, splitSha: String? = nil,
                            seconds: Double? = nil, steps: Int? = nil, samplesPerSecond: Double? = nil,
                            metrics: [MetricRecord] = [], curves: [CurveRecord] = [], kernels: [KernelRecord] = []) throws {
        try pool.write { db in
            try db.execute(sql: """
                UPDATE trial SET status = ?, error = ?, dataset_sha = COALESCE(?, dataset_sha), split_sha = COALESCE(?, split_sha),
                seconds = ?, steps = ?, samples_per_s = ? WHERE id = ?
                """, arguments: [status, error, datasetSha, splitSha, seconds, steps, samplesPerSecond, id])
            guard db.changesCount == 1 else { throw StoreError("\(path): trial \(id) does not exist") }
            for var m in metrics { m.trialId = id; try m.insert(db) }
            for var c in curves { c.trialId = id; try c.insert(db) }
            for var k in kernels { k.trialId = id; try k.insert(db) }
        }
    }

    public func record(kernelBench rows: [KernelBenchRecord], runID: Int64) throws {
        try pool.write { db in
            for var r in rows { r.runId = runID; try r.insert(db) }
        }
    }

    /// Stores the suite's per-metric thresholds with its run.
    public func record(thresholds: [String: Double], runID: Int64) throws {
        guard !thresholds.isEmpty else { return }
        try pool.write { db in
            for (metric, value) in thresholds.sorted(by: { $0.key < $1.key }) {
                try ThresholdRecord(runId: runID, metric: metric, value: value).insert(db)
            }
        }
    }

    /// Stores one calibration (every row of it in one transaction).
    public func record(noise rows: [NoiseRecord]) throws {
        try pool.write { db in
            for var r in rows { try r.insert(db) }
        }
    }

    /// The newest calibration of `suite` on machine `machineId`: its rows, empty when there is none.
    public func latestNoise(suite: String, machineId: Int64) throws -> [NoiseRecord] {
        try pool.read { db in
            guard let newest = try NoiseRecord.filter(Column("suite") == suite && Column("machine_id") == machineId)
                .order(Column("id").desc).fetchOne(db) else { return [] }
            return try NoiseRecord.filter(Column("suite") == suite && Column("machine_id") == machineId
                                              && Column("calibrated_at") == newest.calibratedAt && Column("runs") == newest.runs)
                .order(Column("id")).fetchAll(db)
        }
    }

    public func runs() throws -> [RunRecord] {
        try pool.read { db in try RunRecord.order(Column("id")).fetchAll(db) }
    }

    public func run(_ id: Int64) throws -> RunRecord? {
        try pool.read { db in try RunRecord.fetchOne(db, key: id) }
    }

    public func machine(_ id: Int64) throws -> MachineRecord? {
        try pool.read { db in try MachineRecord.fetchOne(db, key: id) }
    }

    /// The newest run of `suite` at `commit` that did not finish (killed or still going).
    public func latestUnfinishedRun(suite: String, commit: String) throws -> RunRecord? {
        try pool.read { db in
            try RunRecord.filter(Column("suite") == suite && Column("commit") == commit && Column("finished_at") == nil)
                .order(Column("id").desc).fetchOne(db)
        }
    }

    /// Trials per status of every run, by run id.
    public func trialCounts() throws -> [Int64: [String: Int]] {
        try pool.read { db in
            var counts: [Int64: [String: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT run_id, status, COUNT(*) AS n FROM trial GROUP BY run_id, status") {
                counts[row["run_id"], default: [:]][row["status"]] = row["n"]
            }
            return counts
        }
    }

    /// The median wall time (training plus evaluation) of finished trials like this one, if any.
    public func measuredSeconds(dataset: String, method: String, configSha: String, trainBudget: String) throws -> Double? {
        try pool.read { db in
            let values = try Double.fetchAll(db, sql: """
                SELECT t.seconds + COALESCE((SELECT value FROM metric m WHERE m.trial_id = t.id AND m.protocol = 'train' AND m.name = 'eval_seconds'), 0)
                FROM trial t WHERE t.dataset = ? AND t.method = ? AND t.config_sha = ? AND t.train_budget = ? AND t.status = ? AND t.seconds IS NOT NULL
                ORDER BY 1
                """, arguments: [dataset, method, configSha, trainBudget, TrialStatus.done])
            return values.isEmpty ? nil : values[values.count / 2]
        }
    }

    public func trials(run: Int64) throws -> [TrialRecord] {
        try pool.read { db in try TrialRecord.filter(Column("run_id") == run).order(Column("id")).fetchAll(db) }
    }

    public func metrics(trial: Int64) throws -> [MetricRecord] {
        try pool.read { db in try MetricRecord.filter(Column("trial_id") == trial).fetchAll(db) }
    }

    public func curves(trial: Int64) throws -> [CurveRecord] {
        try pool.read { db in try CurveRecord.filter(Column("trial_id") == trial).order(Column("step")).fetchAll(db) }
    }

    public func kernels(trial: Int64) throws -> [KernelRecord] {
        try pool.read { db in try KernelRecord.filter(Column("trial_id") == trial).fetchAll(db) }
    }

    public func kernelBench(run: Int64) throws -> [KernelBenchRecord] {
        try pool.read { db in try KernelBenchRecord.filter(Column("run_id") == run).fetchAll(db) }
    }

    /// SQLite's own consistency check ("ok" when sound).
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }

    /// The journal mode in force ("wal").
    public func journalMode() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }
}

/// The states of a trial: planned, started, finished with results, or stopped with a reason.
public enum TrialStatus {
    public static let pending = "pending"
    public static let running = "running"
    public static let done = "done"
    public static let failed = "failed"
    /// Stopped by SIGINT or SIGTERM while it ran: run again from its start on `--resume`.
    public static let interrupted = "interrupted"
}

/// The states of a run: still going or killed (no end time), done, or done with failed trials.
public enum RunStatus {
    public static let running = "running"
    public static let done = "done"
    public static let failed = "failed"
}

/// A problem with the results database, naming the file.
public struct StoreError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

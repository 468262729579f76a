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
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try Migrations.migrator.migrate(pool)
        } catch {
            throw StoreError("\(path): cannot open the results database (\(error))")
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

    /// Stores a trial with its metrics, curve points and kernel profile, all or nothing.
    @discardableResult
    public func record(trial: TrialRecord, metrics: [MetricRecord], curves: [CurveRecord] = [], kernels: [KernelRecord] = []) throws -> Int64 {
        try pool.write { db in
            var t = trial
            try t.insert(db)
            let id = t.id!
            for var m in metrics { m.trialId = id; try m.insert(db) }
            for var c in curves { c.trialId = id; try c.insert(db) }
            for var k in kernels { k.trialId = id; try k.insert(db) }
            return id
        }
    }

    public func record(kernelBench rows: [KernelBenchRecord], runID: Int64) throws {
        try pool.write { db in
            for var r in rows { r.runId = runID; try r.insert(db) }
        }
    }

    public func runs() throws -> [RunRecord] {
        try pool.read { db in try RunRecord.order(Column("id")).fetchAll(db) }
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

/// A problem with the results database, naming the file.
public struct StoreError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

import GRDB

/// A run with everything stored of it, for tables and reports.
public struct RunData: Sendable {
    public var run: RunRecord
    public var machine: MachineRecord?
    public var trials: [TrialData]
    public var kernelBench: [KernelBenchRecord]
}

public struct TrialData: Sendable {
    public var trial: TrialRecord
    public var metrics: [MetricRecord]
}

extension ResultsStore {
    /// The run `id` with its machine, trials and their metrics, read in one snapshot.
    public func runData(_ id: Int64) throws -> RunData? {
        try pool.read { db in
            guard let run = try RunRecord.fetchOne(db, key: id) else { return nil }
            let machine = try MachineRecord.fetchOne(db, key: run.machineId)
            let trials = try TrialRecord.filter(Column("run_id") == id).order(Column("id")).fetchAll(db)
            let metrics = try MetricRecord.filter(sql: "trial_id IN (SELECT id FROM trial WHERE run_id = ?)", arguments: [id]).fetchAll(db)
            let byTrial = Dictionary(grouping: metrics, by: \.trialId)
            let bench = try KernelBenchRecord.filter(Column("run_id") == id).fetchAll(db)
            return RunData(run: run, machine: machine, trials: trials.map { TrialData(trial: $0, metrics: byTrial[$0.id!] ?? []) },
                           kernelBench: bench)
        }
    }
}

import GRDB

/// A run with everything stored of it, for tables and reports.
public struct RunData: Sendable {
    public var run: RunRecord
    public var machine: MachineRecord?
    public var trials: [TrialData]
    public var kernelBench: [KernelBenchRecord]
    /// The trials' kernel profiles summed over the run, by "name|shape".
    public var kernelProfile: [String: KernelTotal]
    /// The suite's per-metric thresholds (`thresholds:`), by metric name.
    public var thresholds: [String: Double] = [:]
}

/// A kernel's profile summed over a run's trials.
public struct KernelTotal: Equatable, Sendable {
    public var name: String
    public var shape: String
    public var calls: Int
    public var flops: Double
    public var seconds: Double
}

public struct TrialData: Sendable {
    public var trial: TrialRecord
    public var metrics: [MetricRecord]
    public var curves: [CurveRecord]
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
            let curves = try CurveRecord.filter(sql: "trial_id IN (SELECT id FROM trial WHERE run_id = ?)", arguments: [id])
                .order(Column("trial_id"), Column("name"), Column("step")).fetchAll(db)
            let curvesByTrial = Dictionary(grouping: curves, by: \.trialId)
            let bench = try KernelBenchRecord.filter(Column("run_id") == id).fetchAll(db)
            var profile: [String: KernelTotal] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT name, shape, SUM(calls) AS calls, SUM(flops) AS flops, SUM(seconds) AS seconds FROM kernel
                WHERE trial_id IN (SELECT id FROM trial WHERE run_id = ?) GROUP BY name, shape
                """, arguments: [id]) {
                let total = KernelTotal(name: row["name"], shape: row["shape"], calls: row["calls"], flops: row["flops"], seconds: row["seconds"])
                profile["\(total.name)|\(total.shape)"] = total
            }
            let thresholds = try ThresholdRecord.filter(Column("run_id") == id).fetchAll(db)
            return RunData(run: run, machine: machine,
                           trials: trials.map { TrialData(trial: $0, metrics: byTrial[$0.id!] ?? [], curves: curvesByTrial[$0.id!] ?? []) },
                           kernelBench: bench, kernelProfile: profile,
                           thresholds: Dictionary(thresholds.map { ($0.metric, $0.value) }, uniquingKeysWith: { a, _ in a }))
        }
    }
}

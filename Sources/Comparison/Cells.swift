import Foundation
import ResultsStore
import Vocabulary

/// What a result is a result of: two runs' numbers are compared cell by cell.
public struct CellKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var dataset: String
    public var method: String
    public var trainBudget: String
    public var protocolName: String
    public var evalBudget: String
    public var metric: String

    public init(dataset: String, method: String, trainBudget: String, protocolName: String, evalBudget: String, metric: String) {
        (self.dataset, self.method, self.trainBudget, self.protocolName, self.evalBudget, self.metric) =
            (dataset, method, trainBudget, protocolName, evalBudget, metric)
    }

    public static func < (a: CellKey, b: CellKey) -> Bool {
        if (a.dataset, a.method) != (b.dataset, b.method) { return (a.dataset, a.method) < (b.dataset, b.method) }
        if a.trainBudget != b.trainBudget { return EvaluationBudget.less(a.trainBudget, b.trainBudget) }
        if a.protocolName != b.protocolName { return a.protocolName < b.protocolName }
        if a.evalBudget != b.evalBudget { return EvaluationBudget.less(a.evalBudget, b.evalBudget) }
        return a.metric < b.metric
    }

    public var description: String {
        "\(dataset) \(method) @\(trainBudget) \(protocolName)@\(evalBudget) \(metric)"
    }

    /// The key as one string, as calibrated noise is stored.
    public var id: String { [dataset, method, trainBudget, protocolName, evalBudget, metric].joined(separator: "|") }
}

/// The values of one cell in one run, by seed, with what they were computed from.
public struct Cell: Sendable {
    public var key: CellKey
    /// Value per seed.
    public var values: [Int64: Double]
    /// The stored 95% half-width and count when there is one value (episodes carry their own).
    public var storedCI: (ci95: Double, n: Int)?
    public var methodVersions: Set<String>
    public var configShas: Set<String>
    public var datasetShas: Set<String>
    /// Split hash per seed.
    public var splitShas: [Int64: String]

    public var aggregate: Aggregate { Aggregate(values.keys.sorted().map { values[$0]! })! }

    /// The half-width shown: over seeds (t-based) when there are several, else the stored one.
    public var ci95: Double? { values.count > 1 ? aggregate.ci95 : storedCI?.ci95 }
}

/// A (dataset, method, train budget) whose trials failed in a run, with the reasons.
public struct TrialGroup: Hashable, Comparable, Sendable {
    public var dataset: String
    public var method: String
    public var trainBudget: String

    public init(dataset: String, method: String, trainBudget: String) { (self.dataset, self.method, self.trainBudget) = (dataset, method, trainBudget) }

    public static func < (a: TrialGroup, b: TrialGroup) -> Bool {
        (a.dataset, a.method) != (b.dataset, b.method) ? (a.dataset, a.method) < (b.dataset, b.method)
            : EvaluationBudget.less(a.trainBudget, b.trainBudget)
    }
}

/// A run's results as cells: every metric of every finished trial, grouped over seeds; failed
/// trials by group; training throughput per group.
public struct RunCells: Sendable {
    public var run: RunData
    public var cells: [CellKey: Cell]
    public var failures: [TrialGroup: [String]]
    /// Training samples/s per group, per seed.
    public var throughput: [TrialGroup: [Double]]

    /// `metrics`: which metric names to keep (nil: all but per-class accuracies).
    public init(_ run: RunData, metrics: Set<String>? = nil) {
        self.run = run
        var cells: [CellKey: Cell] = [:]
        var failures: [TrialGroup: [String]] = [:]
        var throughput: [TrialGroup: [Double]] = [:]
        for t in run.trials {
            let trial = t.trial
            let group = TrialGroup(dataset: trial.dataset, method: trial.method, trainBudget: trial.trainBudget)
            if trial.status == TrialStatus.failed { failures[group, default: []].append("seed \(trial.seed): \(trial.error ?? "no reason stored")") }
            // A trial whose training finished but one of whose protocols failed is stored as failed
            // with the scores its other protocols made: those cells count.
            guard trial.status == TrialStatus.done || !t.metrics.isEmpty else { continue }
            if trial.status == TrialStatus.done, let s = trial.samplesPerS { throughput[group, default: []].append(s) }
            for m in t.metrics where metrics.map({ $0.contains(m.name) }) ?? !m.name.hasPrefix("class_accuracy/") {
                let key = CellKey(dataset: trial.dataset, method: trial.method, trainBudget: trial.trainBudget,
                                  protocolName: m.protocolName, evalBudget: m.evalBudget, metric: m.name)
                var cell = cells[key] ?? Cell(key: key, values: [:], storedCI: nil, methodVersions: [], configShas: [], datasetShas: [], splitShas: [:])
                cell.values[trial.seed] = m.value
                if let ci = m.ci95, let n = m.n { cell.storedCI = (ci, n) }
                cell.methodVersions.insert(trial.methodVersion)
                cell.configShas.insert(trial.configSha)
                cell.datasetShas.insert(trial.datasetSha)
                cell.splitShas[trial.seed] = trial.splitSha
                cells[key] = cell
            }
        }
        (self.cells, self.failures, self.throughput) = (cells, failures, throughput)
    }
}

/// One throughput of a run: a `benchbench kernels` row (median, with its min..max), a method's
/// training samples/s (median over seeds), or a kernel of the trials' profiles (GFLOP/s over the run).
public struct ThroughputValue: Sendable {
    public var group: String
    public var name: String
    public var shape: String
    public var unit: String
    public var value: Double
    public var range: ClosedRange<Double>?
    /// Seconds the profile measured (kernel-profile rows only).
    public var seconds: Double?
    /// The values behind `value` when there are several (training samples/s per seed).
    public var samples: [Double] = []
    /// Where it sorts: kernels, then training (by trial group), then profile rows, each by name.
    var groupIndex: Int
    var trialGroup: TrialGroup?

    func precedes(_ o: ThroughputValue) -> Bool {
        if groupIndex != o.groupIndex { return groupIndex < o.groupIndex }
        if let a = trialGroup, let b = o.trialGroup, a != b { return a < b }
        return id < o.id
    }

    public var id: String { [group, name, shape, unit].joined(separator: "|") }
    public var higherIsBetter: Bool { !unit.hasPrefix("ns") && !unit.hasSuffix("s/call") }

    /// Every throughput of a run, by id.
    public static func all(_ c: RunCells) -> [String: ThroughputValue] {
        var out: [String: ThroughputValue] = [:]
        func add(_ v: ThroughputValue) { if out[v.id] == nil { out[v.id] = v } }
        for r in c.run.kernelBench {
            add(ThroughputValue(group: "kernels", name: r.name, shape: r.shape, unit: r.unit, value: r.median,
                                range: r.min...max(r.min, r.max), seconds: nil, groupIndex: 0))
        }
        for (g, values) in c.throughput {
            add(ThroughputValue(group: "training", name: "\(g.method) on \(g.dataset)", shape: "budget \(g.trainBudget)", unit: "samples/s",
                                value: Comparison.median(values), range: nil, seconds: nil, samples: values, groupIndex: 1, trialGroup: g))
        }
        for k in c.run.kernelProfile.values where k.flops > 0 && k.seconds > 0 {
            add(ThroughputValue(group: "profile", name: k.name, shape: k.shape, unit: "GFLOP/s", value: k.flops / k.seconds / 1e9,
                                range: nil, seconds: k.seconds, groupIndex: 2))
        }
        return out
    }
}

import Foundation
import ResultsStore

/// How much same-commit runs of a suite differ on one machine: per cell, the range of the cell's
/// mean over the runs (in the metric's units); per throughput, the largest over the smallest value
/// minus one. `compare` counts a change only beyond both its threshold and this spread, so an A/A
/// comparison (the same commit twice) finds nothing worsened where the runs showed their noise.
public struct Calibration: Sendable {
    /// Spread per `CellKey.id`, for cells present in every run.
    public var cells: [String: Double]
    /// Relative spread per `ThroughputValue.id`, for throughputs present in every run.
    public var throughput: [String: Double]

    public init(_ runs: [RunData]) {
        let cellSets = runs.map { RunCells($0, metrics: nil) }
        var cells: [String: Double] = [:]
        if let first = cellSets.first {
            for key in first.cells.keys {
                let means = cellSets.compactMap { $0.cells[key]?.aggregate.mean }
                guard means.count == cellSets.count else { continue }
                cells[key.id] = means.max()! - means.min()!
            }
        }
        let values = cellSets.map(ThroughputValue.all)
        var throughput: [String: Double] = [:]
        if let first = values.first {
            for id in first.keys {
                let v = values.compactMap { $0[id]?.value }
                guard v.count == values.count, let low = v.min(), low > 0 else { continue }
                throughput[id] = v.max()! / low - 1
            }
        }
        (self.cells, self.throughput) = (cells, throughput)
    }

    /// As stored rows of one calibration.
    public func records(suite: String, machineId: Int64, commit: String, runs: [Int64], at date: Date = Date()) -> [NoiseRecord] {
        let ids = runs.map(String.init).joined(separator: ",")
        return cells.sorted { $0.key < $1.key }.map {
            NoiseRecord(suite: suite, machineId: machineId, commit: commit, runs: ids, calibratedAt: date, kind: "cell", key: $0.key, spread: $0.value)
        } + throughput.sorted { $0.key < $1.key }.map {
            NoiseRecord(suite: suite, machineId: machineId, commit: commit, runs: ids, calibratedAt: date, kind: "throughput", key: $0.key, spread: $0.value)
        }
    }
}

extension CompareSettings {
    /// Takes a stored calibration's spreads.
    public mutating func use(noise rows: [NoiseRecord]) {
        for r in rows {
            if r.kind == "cell" { cellNoise[r.key] = r.spread } else if r.kind == "throughput" { throughputNoise[r.key] = r.spread }
        }
    }
}

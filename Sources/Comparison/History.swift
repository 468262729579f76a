import Foundation
import ResultsStore

/// A metric across commits: for each commit (oldest first) the newest finished run at it, and per
/// series (dataset, method, train budget, protocol, eval budget) its mean and CI over seeds.
public struct History: Sendable {
    public struct Point: Sendable {
        public var mean: Double
        public var ci95: Double?
        public var n: Int
    }

    public struct Commit: Sendable {
        public var commit: String
        public var branch: String
        public var dirty: Bool
        public var runID: Int64
        public var date: Date
    }

    public var metric: String
    /// The suite of the runs (nil when there were none).
    public var suite: String?
    public var commits: [Commit]
    /// Series key -> value at each commit index (nil where the run has no such cell).
    public var series: [CellKey: [Point?]]

    /// `runs`: finished runs with their data; `commitRank`: position of each commit in the
    /// repository's history (commits it does not know go by the run's start time). A commit's
    /// value of a series is that of its newest run holding the series: one suite run holds them
    /// all, while `benchbench run` stores one trial per run, so several runs at one commit each
    /// hold their own series.
    public init(runs: [RunData], metric: String, commitRank: [String: Int] = [:], include: (CellKey) -> Bool = { _ in true }) {
        self.metric = metric
        suite = runs.first?.run.suite
        var byCommit: [String: [RunData]] = [:]
        for r in runs where r.run.finishedAt != nil { byCommit[r.run.commit, default: []].append(r) }
        for (commit, list) in byCommit { byCommit[commit] = list.sorted { $0.run.id! > $1.run.id! } }   // newest first
        let ordered = byCommit.values.map { $0[0] }.sorted { x, y in
            switch (commitRank[x.run.commit], commitRank[y.run.commit]) {
            case let (a?, b?): return a < b
            default: return x.run.startedAt < y.run.startedAt
            }
        }
        commits = ordered.map { Commit(commit: $0.run.commit, branch: $0.run.branch, dirty: $0.run.dirty, runID: $0.run.id!, date: $0.run.startedAt) }
        var series: [CellKey: [Point?]] = [:]
        for (i, newest) in ordered.enumerated() {
            for r in byCommit[newest.run.commit]! {
                for (key, cell) in RunCells(r, metrics: [metric]).cells where include(key) && series[key]?[i] == nil {
                    let a = cell.aggregate
                    series[key, default: Array(repeating: nil, count: ordered.count)][i] = Point(mean: a.mean, ci95: cell.ci95, n: a.n)
                }
            }
        }
        self.series = series
    }
}

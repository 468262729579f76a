import Comparison
import Foundation
import ResultsStore

/// The terminal views of a run: its summary (method x budget, mean ± std over seeds, per
/// protocol) and its trials one by one.
public enum RunTables {
    static func percent(_ x: Double) -> String { String(format: "%.2f", 100 * x) }

    /// One table per (dataset, protocol) of accuracy: a row per method, a column per budget,
    /// mean ± std over seeds in percent (the report's tables, with std for CI); failed trials
    /// listed below with their reasons.
    public static func summary(_ data: RunData) -> String {
        var out: [String] = []
        let cells = RunCells(data, metrics: ["accuracy"])
        for dataset in Array(Set(cells.cells.keys.map(\.dataset))).sorted() {
            for p in RunReport.protocols {
                let inProtocol = cells.cells.values.filter { $0.key.dataset == dataset && $0.key.protocolName == p.rawValue }
                guard !inProtocol.isEmpty else { continue }
                out.append(TextTable.render(RunReport.table(dataset: dataset, protocol: p.rawValue, cells: Array(inProtocol), failures: cells.failures, spread: .std)))
                out.append("")
            }
        }
        let failed = data.trials.filter { $0.trial.status == TrialStatus.failed }
        if !failed.isEmpty {
            out.append("failed trials:")
            for t in failed { out.append("  \(t.trial.method) on \(t.trial.dataset), budget \(t.trial.trainBudget), seed \(t.trial.seed): \(t.trial.error ?? "no reason stored")") }
            out.append("")
        }
        let unfinished = data.trials.filter { $0.trial.status == TrialStatus.pending || $0.trial.status == TrialStatus.running }
        if !unfinished.isEmpty { out.append("\(unfinished.count) trial(s) not finished (resume with --resume)\n") }
        return out.joined(separator: "\n")
    }

    /// Every trial of a run with its status, time and scores (the report's table).
    public static func trials(_ data: RunData) -> String { TextTable.render(RunReport.trials(data)) }

    /// The run's header lines: suite, commit, machine, times.
    public static func header(_ data: RunData) -> String {
        // The report's header facts, one per line.
        let facts = RunReport.facts(data)
        let width = facts.map(\.0.count).max() ?? 0
        return "run \(data.run.id ?? 0)\n" + facts.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    public static func date(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }
}

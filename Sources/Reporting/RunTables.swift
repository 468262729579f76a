import Comparison
import Foundation
import ResultsStore

/// The terminal views of a run: its summary (method x budget, mean ± std over seeds, per
/// protocol) and its trials one by one.
public enum RunTables {
    /// Budgets in their natural order: none, K-shot / N-way episodes, N per class, all.
    static func budgetOrder(_ a: String, _ b: String) -> Bool {
        func rank(_ s: String) -> (Int, Int, String) {
            if s == "none" { return (0, 0, s) }
            if s == "all" { return (4, 0, s) }
            if let n = Int(s) { return (3, n, s) }
            let shot = s.split(separator: " ").last.flatMap { Int($0.replacingOccurrences(of: "-shot", with: "")) } ?? 0
            return (s.contains("shot") ? 1 : 2, shot, s)
        }
        return rank(a) < rank(b)
    }

    static func percent(_ x: Double) -> String { String(format: "%.2f", 100 * x) }

    /// One table per (dataset, protocol) of accuracy: a row per method, a column per budget,
    /// "mean ± std (n)" over seeds in percent; failed trials listed below with their reasons.
    public static func summary(_ data: RunData) -> String {
        var out: [String] = []
        let done = data.trials.filter { $0.trial.status == TrialStatus.done }
        let datasets = Array(Set(done.map(\.trial.dataset))).sorted()
        for dataset in datasets {
            let trials = done.filter { $0.trial.dataset == dataset }
            let rows = trials.flatMap { t in t.metrics.filter { $0.name == "accuracy" }.map { (t.trial, $0) } }
            for p in ["native", "linear", "knn", "finetune", "episodes"] {
                let cells = rows.filter { $0.1.protocolName == p }
                guard !cells.isEmpty else { continue }
                let budgets = Array(Set(cells.map(\.1.evalBudget))).sorted(by: budgetOrder)
                // A row per method, or per method and training budget where one column holds
                // models trained at several budgets (episodes of supervised trials, say).
                func row(_ t: TrialRecord) -> String {
                    let trainBudgets = Set(cells.filter { $0.0.method == t.method }.map(\.0.trainBudget))
                    let sameAsColumn = cells.allSatisfy { $0.0.method != t.method || $0.0.trainBudget == $0.1.evalBudget }
                    return trainBudgets.count > 1 && !sameAsColumn ? "\(t.method) (trained @ \(t.trainBudget))" : t.method
                }
                let rowLabels = Array(Set(cells.map { row($0.0) })).sorted { a, b in
                    let (ma, mb) = (a.split(separator: " ").first ?? "", b.split(separator: " ").first ?? "")
                    if ma != mb { return ma < mb }
                    let (ba, bb) = (a.components(separatedBy: "@ ").last ?? "", b.components(separatedBy: "@ ").last ?? "")
                    return budgetOrder(String(ba.dropLast()), String(bb.dropLast()))
                }
                var table = TextTable(["method"] + budgets)
                for label in rowLabels {
                    table.add([label] + budgets.map { b in
                        let values = cells.filter { row($0.0) == label && $0.1.evalBudget == b }
                        guard let a = Aggregate(values.map(\.1.value)) else { return "" }
                        if p == "episodes", values.count == 1, let ci = values[0].1.ci95 { return "\(percent(a.mean)) ± \(percent(ci)) (\(values[0].1.n ?? 0) episodes)" }
                        return a.std.map { "\(percent(a.mean)) ± \(percent($0)) (n=\(a.n))" } ?? "\(percent(a.mean)) (n=1)"
                    })
                }
                out.append("\(dataset) — \(p) accuracy (%)\(p == "episodes" ? ", mean ± 95% CI over episodes; over seeds: ± std" : ", mean ± std over seeds")")
                out.append(table.render())
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

    /// Every trial of a run with its status, time and headline metrics.
    public static func trials(_ data: RunData) -> String {
        var table = TextTable(["trial", "dataset", "method", "v", "budget", "seed", "status", "train s", "samples/s", "metrics (%)"])
        for t in data.trials {
            let r = t.trial
            let metrics = t.metrics.filter { $0.name == "accuracy" }
                .sorted { ($0.protocolName, $0.evalBudget) < ($1.protocolName, $1.evalBudget) }
                .map { m in "\(m.protocolName)@\(m.evalBudget) \(percent(m.value))" + (m.ci95.map { "±\(percent($0))" } ?? "") }
                .joined(separator: ", ")
            table.add(["\(r.id ?? 0)", r.dataset, r.method, r.methodVersion, r.trainBudget, "\(r.seed)", r.status,
                       r.seconds.map { String(format: "%.1f", $0) } ?? "", r.samplesPerS.map { String(format: "%.0f", $0) } ?? "",
                       r.status == TrialStatus.failed ? (r.error ?? "") : metrics])
        }
        return table.render()
    }

    /// The run's header lines: suite, commit, machine, times.
    public static func header(_ data: RunData) -> String {
        let r = data.run
        var lines = ["run \(r.id ?? 0): suite \(r.suite) (\(r.suiteSha)), status \(r.status)",
                     "commit \(r.commit)\(r.dirty ? " (dirty)" : "") on \(r.branch)",
                     "started \(Self.date(r.startedAt))" + (r.finishedAt.map { String(format: ", finished %@ (%.0f s)", Self.date($0), $0.timeIntervalSince(r.startedAt)) } ?? ", not finished")]
        if let m = data.machine {
            lines.append("machine \(m.hostname): \(m.cpu), \(m.cores) cores, \(m.os), Swift \(m.swift), \(m.blas) (core \(m.blasCore))")
        }
        lines.append("argv: \(r.argv)")
        return lines.joined(separator: "\n")
    }

    public static func date(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }
}

import Comparison
import Foundation
import Vocabulary

/// The first thing a report of many methods shows: per dataset, each method's best score at each
/// evaluation budget (or episode setting) over the protocols that scored it, with its 95% CI and a
/// rank in which overlapping intervals tie. It summarises test scores already computed; nothing is
/// selected by it.
enum Leaderboard {
    /// The order regimes are listed in; methods of an unknown regime come last.
    static let regimeOrder = ["supervised", "semi-supervised", "few-shot", "self-supervised"]

    static func regimeRank(_ regime: String?) -> Int { regime.flatMap { regimeOrder.firstIndex(of: $0) } ?? regimeOrder.count }

    /// The best cell of each (method, evaluation budget) among the protocols.
    static func best(_ cells: [Cell]) -> [String: [String: Cell]] {
        var out: [String: [String: Cell]] = [:]
        for c in cells {
            if let current = out[c.key.method]?[c.key.evalBudget], current.aggregate.mean >= c.aggregate.mean { continue }
            out[c.key.method, default: [:]][c.key.evalBudget] = c
        }
        return out
    }

    /// Ranks of `entries` (method, mean, CI half-width): 1 + the number of methods whose whole
    /// interval lies above this one's, so methods that cannot be told apart share a rank.
    static func ranks(_ entries: [(method: String, mean: Double, ci: Double)]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: entries.map { e in
            (e.method, 1 + entries.filter { $0.mean - $0.ci > e.mean + e.ci }.count)
        })
    }

    static func table(dataset: String, cells: [Cell], regimes: [String: String]) -> ReportTable? {
        guard !cells.isEmpty else { return nil }
        let columns = Array(Set(cells.map(\.key.evalBudget))).sorted(by: EvaluationBudget.less)
        let bestOf = best(cells)
        var rankOf: [String: [String: Int]] = [:]
        var tied: [String: Set<Int>] = [:]
        for column in columns {
            let entries = bestOf.compactMap { method, byBudget in
                byBudget[column].map { (method: method, mean: $0.aggregate.mean, ci: $0.ci95 ?? 0) }
            }
            let r = Leaderboard.ranks(entries)
            rankOf[column] = r
            let counts = Dictionary(grouping: r.values, by: { $0 }).mapValues(\.count)
            tied[column] = Set(counts.filter { $0.value > 1 }.keys)
        }
        let methods = bestOf.keys.sorted { (regimeRank(regimes[$0]), $0) < (regimeRank(regimes[$1]), $1) }
        var t = ReportTable(caption: "\(dataset) — leaderboard: each method's best protocol at each budget, accuracy (%) ± 95% CI; "
                                + "rank 1 + the methods clearly above (intervals not overlapping), = a shared rank",
                            header: ["method", "regime"] + columns)
        for method in methods {
            var row: [ReportCell] = [ReportCell(method), ReportCell(regimes[method] ?? "")]
            for column in columns {
                guard let c = bestOf[method]?[column], let rank = rankOf[column]?[method] else { row.append(ReportCell("", mark: .muted)); continue }
                let shared = tied[column]?.contains(rank) == true
                let text = "\(shared ? "=" : "#")\(rank) " + Format.meanCI("accuracy", c.aggregate.mean, c.ci95) + " \(c.key.protocolName)"
                row.append(ReportCell(text, mark: rank == 1 ? .best : nil,
                                      title: "\(c.key.protocolName) @ \(c.key.evalBudget), trained @ \(c.key.trainBudget), n = \(c.aggregate.n)"))
            }
            t.rows.append(row)
        }
        return t
    }
}

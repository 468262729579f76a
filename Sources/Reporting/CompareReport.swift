import Comparison
import Foundation
import ResultsStore

/// A comparison as tables (terminal, HTML, markdown all read these) and as JSON.
public enum CompareReport {
    static func mark(_ c: Category) -> ReportCell.Mark? {
        switch c {
        case .improved, .fixedFailure: return .improved
        case .worsened, .introducedFailure: return .worsened
        case .unchanged: return .unchanged
        case .notComparable: return .notComparable
        case .onlyInA, .onlyInB: return .muted
        }
    }

    static func side(_ cell: Cell?) -> String {
        guard let cell else { return "" }
        return Format.meanCI(cell.key.metric, cell.aggregate.mean, cell.ci95) + " (n=\(cell.aggregate.n))"
    }

    public static func runLine(_ r: RunData) -> String {
        "run \(r.run.id!) (\(r.run.suite)), commit \(r.run.commit.prefix(10))\(r.run.dirty ? "+dirty" : "") on \(r.run.branch), \(Format.date(r.run.startedAt))"
            + (r.machine.map { ", \($0.cpu), BLAS core \($0.blasCore)" } ?? "")
    }

    public static func cellTable(_ c: Comparison, only: ((CellComparison) -> Bool)? = nil, caption: String) -> ReportTable {
        var t = ReportTable(caption: caption, header: ["dataset", "method", "trained @", "protocol @ budget", "metric", "A", "B", "Δ (B − A)", "p", "category", "why"])
        for x in c.cells where only?(x) ?? true {
            let k = x.key
            t.rows.append([ReportCell(k.dataset), ReportCell(k.method), ReportCell(k.trainBudget),
                           ReportCell(k.protocolName + (k.evalBudget.isEmpty ? "" : " @ \(k.evalBudget)")), ReportCell(k.metric),
                           ReportCell(side(x.a)), ReportCell(side(x.b)),
                           ReportCell(x.delta.map { ($0 >= 0 ? "+" : "") + Format.value(k.metric, $0) } ?? ""),
                           ReportCell(x.p.map { String(format: "%.3g", $0) } ?? ""),
                           ReportCell(x.category.rawValue, mark: mark(x.category)), ReportCell(x.note)])
        }
        return t
    }

    public static func throughputTable(_ c: Comparison) -> ReportTable {
        var t = ReportTable(caption: "Throughput (median ratio B / A; threshold ±\(Int(c.settings.kernelThreshold * 100))%)",
                            header: ["source", "name", "shape", "unit", "A", "B", "B / A", "category", "why"])
        for x in c.throughput {
            t.rows.append([ReportCell(x.group), ReportCell(x.name), ReportCell(x.shape), ReportCell(x.unit),
                           ReportCell(x.a.map { String(format: "%.4g", $0) } ?? ""), ReportCell(x.b.map { String(format: "%.4g", $0) } ?? ""),
                           ReportCell(x.ratio.map { String(format: "%.3f", $0) } ?? ""), ReportCell(x.category.rawValue, mark: mark(x.category)), ReportCell(x.note)])
        }
        return t
    }

    public static func summary(_ c: Comparison) -> String {
        Category.allCases.compactMap { cat in
            let n = c.count(cat)
            return n == 0 ? nil : "\(n) \(cat.rawValue)"
        }.joined(separator: ", ")
    }

    public static func document(_ c: Comparison) -> Document {
        var doc = Document(title: "benchbench compare run \(c.a.run.id!) → run \(c.b.run.id!)")
        doc.blocks.append(.heading("Comparison: run \(c.a.run.id!) (A) → run \(c.b.run.id!) (B)", level: 1))
        doc.blocks.append(.facts([("A", runLine(c.a)), ("B", runLine(c.b)), ("cells", summary(c)),
                                  ("rule", String(format: "improved / worsened: |Δ| ≥ %g and p < %g (Welch's t-test on per-seed values; episode CIs for single values); ~ otherwise", c.settings.minimumEffect, c.settings.alpha))]))
        let changed = c.cells.filter { $0.category != .unchanged }
        if !changed.isEmpty { doc.blocks.append(.table(cellTable(c, only: { $0.category != .unchanged }, caption: "What changed"))) }
        doc.blocks.append(.heading("Every cell", level: 2))
        doc.blocks.append(.table(cellTable(c, caption: "All compared cells")))
        if !c.throughput.isEmpty {
            doc.blocks.append(.heading("Throughput", level: 2))
            doc.blocks.append(.table(throughputTable(c)))
        }
        return doc
    }

    public static func json(_ c: Comparison) -> [String: Any] {
        func run(_ r: RunData) -> [String: Any] {
            ["id": r.run.id!, "suite": r.run.suite, "commit": r.run.commit, "branch": r.run.branch, "dirty": r.run.dirty]
        }
        return [
            "a": run(c.a), "b": run(c.b), "regressions": c.regressions,
            "counts": Dictionary(Category.allCases.map { ($0.rawValue, c.count($0)) }, uniquingKeysWith: { a, _ in a }),
            "cells": c.cells.map { x -> [String: Any] in
                ["dataset": x.key.dataset, "method": x.key.method, "train_budget": x.key.trainBudget, "protocol": x.key.protocolName,
                 "eval_budget": x.key.evalBudget, "metric": x.key.metric, "category": x.category.rawValue, "note": x.note,
                 "a": x.a.map { ["mean": $0.aggregate.mean, "ci95": $0.ci95 ?? NSNull(), "n": $0.aggregate.n] as [String: Any] } ?? NSNull(),
                 "b": x.b.map { ["mean": $0.aggregate.mean, "ci95": $0.ci95 ?? NSNull(), "n": $0.aggregate.n] as [String: Any] } ?? NSNull(),
                 "delta": x.delta ?? NSNull(), "p": x.p ?? NSNull()]
            },
            "throughput": c.throughput.map { x -> [String: Any] in
                ["source": x.group, "name": x.name, "shape": x.shape, "unit": x.unit, "a": x.a ?? NSNull(), "b": x.b ?? NSNull(),
                 "ratio": x.ratio ?? NSNull(), "category": x.category.rawValue, "note": x.note]
            },
        ]
    }
}

/// A metric over commits, one line per series (asv-style).
public enum HistoryReport {
    static func label(_ k: CellKey) -> String {
        "\(k.method) @\(k.trainBudget) \(k.protocolName)@\(k.evalBudget)"
    }

    public static func table(_ h: History) -> ReportTable {
        let keys = h.series.keys.sorted()
        var t = ReportTable(caption: "\(h.metric) by commit (oldest first), mean ± 95% CI", header: ["commit", "run", "date"] + keys.map { "\($0.dataset): \(label($0))" })
        for (i, c) in h.commits.enumerated() {
            t.rows.append([ReportCell(String(c.commit.prefix(10)) + (c.dirty ? "+dirty" : ""), title: c.branch), "\(c.runID)", ReportCell(Format.date(c.date))]
                          + keys.map { k in h.series[k]![i].map { ReportCell(Format.meanCI(h.metric, $0.mean, $0.ci95), title: "n = \($0.n)") } ?? ReportCell("", mark: .muted) })
        }
        return t
    }

    public static func document(_ h: History) -> Document {
        var doc = Document(title: "benchbench history — \(h.metric)")
        doc.blocks.append(.heading("History of \(h.metric) over \(h.commits.count) commit(s)" + (h.suite.map { ", suite \($0)" } ?? ""), level: 1))
        let scale = Format.isPercent(h.metric) ? 100.0 : 1.0
        let byPanel = Dictionary(grouping: h.series.keys) { "\($0.dataset) \($0.protocolName)" }
        for (panel, keys) in byPanel.sorted(by: { $0.key < $1.key }) {
            let series = keys.sorted().map { k in
                Figure.Series(title: label(k), points: h.series[k]!.enumerated().compactMap { i, p in
                    p.map { Figure.Point(x: Double(i), y: scale * $0.mean, error: $0.ci95.map { scale * $0 }) }
                })
            }
            let tics = h.commits.enumerated().map { (String($0.element.commit.prefix(7)), Double($0.offset)) }
            doc.blocks.append(.figure(Figure(name: RunReport.slug("history", h.metric, panel), title: "\(panel): \(h.metric) by commit",
                                             xLabel: "commit (oldest first)", yLabel: h.metric + (scale == 100 ? " (%)" : ""),
                                             kind: .lines(logX: false, xTics: tics), series: series)))
        }
        doc.blocks.append(.table(table(h)))
        return doc
    }
}

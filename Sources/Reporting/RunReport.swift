import Comparison
import Foundation
import ResultsStore
import Vocabulary

/// Numbers as reports show them: accuracies in percent, the rest as they are.
enum Format {
    /// Fractions (accuracies, rates) in percent, by the metric's unit.
    static func isPercent(_ metric: String) -> Bool { Metric(metric).unit == .fraction }

    static func value(_ metric: String, _ x: Double) -> String {
        isPercent(metric) ? String(format: "%.2f", 100 * x) : String(format: "%.4g", x)
    }

    static func meanCI(_ metric: String, _ mean: Double, _ ci: Double?) -> String {
        value(metric, mean) + (ci.map { " ± " + value(metric, $0) } ?? "")
    }

    static func date(_ d: Date) -> String { RunTables.date(d) }

}

/// The report of one run (DESIGN.md §9): header, a method x budget table per dataset and
/// protocol, failed trials, accuracy vs labels, few-shot accuracy, learning curves, throughput.
public enum RunReport {
    static let protocols = EvaluationProtocol.allCases

    /// `regimes`: each method's regime, by id (the command line knows the registry): the
    /// leaderboard and the tables list methods grouped by regime.
    public static func document(_ data: RunData, regimes: [String: String] = [:]) -> Document {
        let r = data.run
        var doc = Document(title: "benchbench run \(r.id!) — \(r.suite)")
        doc.blocks.append(.heading("Run \(r.id!): suite \(r.suite)", level: 1))
        doc.blocks.append(.facts(facts(data)))
        doc.blocks.append(.contents)
        let cells = RunCells(data, metrics: ["accuracy"])
        let datasets = Array(Set(data.trials.map(\.trial.dataset))).sorted()
        let boards = datasets.compactMap { d in Leaderboard.table(dataset: d, cells: cells.cells.values.filter { $0.key.dataset == d }, regimes: regimes) }
        if !boards.isEmpty {
            doc.blocks.append(.heading("Leaderboard", level: 2))
            doc.blocks += boards.map { .table($0) }
        }
        for dataset in datasets {
            doc.blocks.append(.heading("Dataset \(dataset)", level: 2))
            for p in protocols {
                let inProtocol = cells.cells.values.filter { $0.key.dataset == dataset && $0.key.protocolName == p.rawValue }
                guard !inProtocol.isEmpty else { continue }
                doc.blocks.append(.heading("\(dataset): \(p.rawValue)", level: 3))
                doc.blocks.append(.table(table(dataset: dataset, protocol: p.rawValue, cells: Array(inProtocol), failures: cells.failures,
                                               regimes: regimes)))
                if p.isEpisodic {
                    doc.blocks.append(.figure(fewShot(dataset: dataset, protocol: p.rawValue, cells: Array(inProtocol))))
                } else if let figure = accuracyVsLabels(dataset: dataset, protocol: p.rawValue, cells: Array(inProtocol)) {
                    doc.blocks.append(.figure(figure))
                }
            }
            for curve in curveNames(data, dataset: dataset) {
                if let figure = learningCurves(data, dataset: dataset, curve: curve) { doc.blocks.append(.figure(figure)) }
            }
        }
        let failed = data.trials.filter { $0.trial.status == TrialStatus.failed }
        if !failed.isEmpty {
            var t = ReportTable(caption: "Failed trials", header: ["trial", "dataset", "method", "budget", "seed", "reason"])
            for f in failed {
                let x = f.trial
                t.rows.append(["\(x.id!)", ReportCell(x.dataset), ReportCell(x.method), ReportCell(x.trainBudget), "\(x.seed)",
                               ReportCell(x.error ?? "no reason stored", mark: .failure)])
            }
            doc.blocks.append(.heading("Failed trials", level: 2))
            doc.blocks.append(.table(t))
        }
        doc.blocks += throughput(data)
        doc.blocks.append(.heading("Trials", level: 2))
        doc.blocks.append(.table(trials(data)))
        return doc
    }

    static func facts(_ data: RunData) -> [(String, String)] {
        let r = data.run
        var f: [(String, String)] = [("suite", "\(r.suite) (file hash \(r.suiteSha))"),
                                     ("commit", r.commit + (r.dirty ? " (dirty: uncommitted changes)" : "")), ("branch", r.branch)]
        if let m = data.machine {
            f += [("machine", "\(m.hostname): \(m.cpu), \(m.cores) cores, \(m.os)"), ("BLAS", "\(m.blas), core \(m.blasCore)"), ("Swift", m.swift)]
        }
        f.append(("started", Format.date(r.startedAt)))
        f.append(("duration", r.finishedAt.map { Durations.text($0.timeIntervalSince(r.startedAt)) } ?? "not finished"))
        let counts = Dictionary(grouping: data.trials, by: \.trial.status).mapValues(\.count)
        f.append(("status", "\(r.finishedAt == nil ? "unfinished" : r.status): " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")))
        f.append(("command", r.argv))
        return f
    }

    /// A row per method (per method and training budget where one column mixes several).
    static func rowLabel(_ key: CellKey, _ cells: [Cell]) -> String {
        let mine = cells.filter { $0.key.method == key.method }
        let trainBudgets = Set(mine.map(\.key.trainBudget))
        let aligned = mine.allSatisfy { $0.key.trainBudget == $0.key.evalBudget }
        return trainBudgets.count > 1 && !aligned ? "\(key.method) (trained @ \(key.trainBudget))" : key.method
    }

    static func rows(_ cells: [Cell], regimes: [String: String] = [:]) -> [(label: String, method: String, trainBudget: String?)] {
        var seen = Set<String>()
        let keys = cells.map(\.key).sorted { a, b in
            let (ra, rb) = (Leaderboard.regimeRank(regimes[a.method]), Leaderboard.regimeRank(regimes[b.method]))
            return ra != rb ? ra < rb : a < b
        }
        return keys.compactMap { key in
            let label = rowLabel(key, cells)
            guard seen.insert(label).inserted else { return nil }
            return (label, key.method, label == key.method ? nil : key.trainBudget)
        }
    }

    /// What follows a mean: a 95% CI (reports) or the standard deviation over seeds (terminal summaries).
    public enum Spread: Sendable { case ci95, std }

    /// The method x budget table of one dataset and protocol.
    public static func table(dataset: String, protocol p: String, cells: [Cell], failures: [TrialGroup: [String]], spread: Spread = .ci95,
                             regimes: [String: String] = [:]) -> ReportTable {
        let budgets = Array(Set(cells.map(\.key.evalBudget))).sorted(by: EvaluationBudget.less)
        let episodic = EvaluationProtocol(rawValue: p)?.isEpisodic ?? false
        let what = spread == .ci95 ? "mean ± 95% CI " + (episodic ? "(over episodes for one seed, t-based over seeds)" : "(t-based over seeds)")
                                   : "mean ± std over seeds (n)" + (episodic ? "; one seed: ± 95% CI over episodes" : "")
        let grouped = !regimes.isEmpty
        var t = ReportTable(caption: "\(dataset) — \(p) accuracy (%), \(what); ★ best per column", header: ["method"] + (grouped ? ["regime"] : []) + budgets)
        let best = Dictionary(budgets.map { b in (b, cells.filter { $0.key.evalBudget == b }.map { $0.aggregate.mean }.max() ?? .nan) }, uniquingKeysWith: { a, _ in a })
        for row in rows(cells, regimes: regimes) {
            var line: [ReportCell] = [ReportCell(row.label)] + (grouped ? [ReportCell(regimes[row.method] ?? "")] : [])
            for b in budgets {
                let cell = cells.first { rowLabel($0.key, cells) == row.label && $0.key.evalBudget == b }
                if let cell {
                    let a = cell.aggregate
                    let isBest = a.mean == best[b] && cells.filter { $0.key.evalBudget == b }.count > 1
                    let text = spread == .ci95 || a.n == 1 ? Format.meanCI("accuracy", a.mean, cell.ci95) : Format.meanCI("accuracy", a.mean, a.std) + " (n=\(a.n))"
                    line.append(ReportCell((isBest ? "★ " : "") + text, mark: isBest ? .best : nil,
                                           title: "n = \(a.n) seed(s)" + (a.std.map { String(format: ", std %.2f", 100 * $0) } ?? "")
                                               + (cell.storedCI.map { ", \($0.n) episodes" } ?? "")))
                } else if let reasons = failures[TrialGroup(dataset: dataset, method: row.method, trainBudget: row.trainBudget ?? b)] {
                    line.append(ReportCell("failed", mark: .failure, title: reasons.joined(separator: "; ")))
                } else {
                    line.append(ReportCell("", mark: .muted))
                }
            }
            t.rows.append(line)
        }
        // Methods whose every trial failed have no cells: they get a row of failures.
        for (group, reasons) in failures.sorted(by: { $0.key < $1.key }) where group.dataset == dataset && !cells.contains(where: { $0.key.method == group.method }) {
            guard !t.rows.contains(where: { $0.first?.text == group.method }) else { continue }
            t.rows.append([ReportCell(group.method)] + (grouped ? [ReportCell(regimes[group.method] ?? "")] : [])
                          + budgets.map { _ in ReportCell("failed", mark: .failure, title: reasons.joined(separator: "; ")) })
        }
        return t
    }

    static func slug(_ parts: String...) -> String {
        parts.joined(separator: "-").lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.reduce(into: "") { s, c in
            if !(c == "-" && s.last == "-") { s.append(c) }
        }
    }

    /// Accuracy against labels per class, log x; `all` drawn a decade past the largest number.
    static func accuracyVsLabels(dataset: String, protocol p: String, cells: [Cell]) -> Figure? {
        let budgets = Array(Set(cells.map(\.key.evalBudget))).sorted(by: EvaluationBudget.less)
        let parsed = budgets.map { try? EvaluationBudget(parsing: $0) }
        let numeric = parsed.compactMap { $0?.labelsPerClass }.map(Double.init)
        guard budgets.count >= 2, parsed.allSatisfy({ $0?.labelsPerClass != nil || $0 == .labels(.all) }) else { return nil }
        let allX = pow(10, (log10(numeric.max() ?? 1)).rounded(.down) + 1)
        func x(_ b: String) -> Double { (try? EvaluationBudget(parsing: b))?.labelsPerClass.map(Double.init) ?? allX }
        let series = rows(cells).map { row in
            Figure.Series(title: row.label, points: budgets.compactMap { b in
                cells.first { rowLabel($0.key, cells) == row.label && $0.key.evalBudget == b }.map { c in
                    Figure.Point(x: x(b), y: 100 * c.aggregate.mean, error: c.ci95.map { 100 * $0 })
                }
            })
        }
        return Figure(name: slug("accuracy", dataset, p), title: "\(dataset): \(p) accuracy vs labels per class",
                      xLabel: "labels per class", yLabel: "test accuracy (%)",
                      kind: .lines(logX: true, xTics: budgets.map { ($0, x($0)) }), series: series, yLimits: (0, 100))
    }

    static func fewShot(dataset: String, protocol p: String, cells: [Cell]) -> Figure {
        let settings = Array(Set(cells.map(\.key.evalBudget))).sorted(by: EvaluationBudget.less)
        let labels = rows(cells).map(\.label)
        let series = settings.map { setting in
            Figure.Series(title: setting, points: labels.enumerated().compactMap { i, label in
                cells.first { rowLabel($0.key, cells) == label && $0.key.evalBudget == setting }.map {
                    Figure.Point(x: Double(i), y: 100 * $0.aggregate.mean, error: $0.ci95.map { 100 * $0 })
                }
            })
        }
        return Figure(name: slug("fewshot", dataset, p), title: "\(dataset): few-shot accuracy on novel classes, \(p) (95% CI)",
                      xLabel: "", yLabel: "accuracy (%)", kind: .bars(categories: labels), series: series, yLimits: (0, 100))
    }

    /// Every curve the dataset's trials recorded: the loss first, then validation scores, then the
    /// methods' own scalars (`loss_u`, `mask_rate`, ...); the learning rate is left out.
    static func curveNames(_ data: RunData, dataset: String) -> [String] {
        let names = Set(data.trials.filter { $0.trial.dataset == dataset }.flatMap { $0.curves.map(\.name) }).subtracting(["lr"])
        func rank(_ n: String) -> Int { n == "loss" ? 0 : n.hasPrefix("val_") ? 1 : 2 }
        return names.sorted { (rank($0), $0) < (rank($1), $1) }
    }

    /// One line per (method, budget): the curve of the lowest seed.
    static func learningCurves(_ data: RunData, dataset: String, curve: String) -> Figure? {
        var series: [Figure.Series] = []
        let trials = data.trials.filter { $0.trial.dataset == dataset && $0.trial.status == TrialStatus.done }
        let groups = Dictionary(grouping: trials) { "\($0.trial.method) @ \($0.trial.trainBudget)" }
        for (title, group) in groups.sorted(by: { $0.key < $1.key }) {
            guard let first = group.min(by: { $0.trial.seed < $1.trial.seed }) else { continue }
            let percent = Format.isPercent(curve)
            let points = first.curves.filter { $0.name == curve }.map { Figure.Point(x: Double($0.step), y: percent ? 100 * $0.value : $0.value) }
            if points.count >= 2 { series.append(Figure.Series(title: "\(title) (seed \(first.trial.seed))", points: points)) }
        }
        guard !series.isEmpty else { return nil }
        let label = curve.replacingOccurrences(of: "_", with: " ") + (Format.isPercent(curve) ? " (%)" : "")
        let what = curve.hasPrefix("val_") ? "validation score" : "training, smoothed"
        return Figure(name: slug("curve", dataset, curve), title: "\(dataset): \(label) by step (\(what))",
                      xLabel: "step", yLabel: label, kind: .lines(logX: false, xTics: nil), series: series)
    }

    static func throughput(_ data: RunData) -> [Block] {
        var blocks: [Block] = []
        let done = data.trials.filter { $0.trial.status == TrialStatus.done && $0.trial.samplesPerS != nil }
        if !done.isEmpty {
            blocks.append(.heading("Throughput", level: 2))
            let groups = Dictionary(grouping: done) { "\($0.trial.method) @ \($0.trial.trainBudget) (\($0.trial.dataset))" }.sorted { $0.key < $1.key }
            let series = Figure.Series(title: "samples/s", points: groups.enumerated().map { i, g in
                let a = Aggregate(g.value.map { $0.trial.samplesPerS! })!
                return Figure.Point(x: Double(i), y: a.mean, error: a.std)
            })
            blocks.append(.figure(Figure(name: "training-throughput", title: "training samples/s per method and budget (mean ± std over seeds)",
                                         xLabel: "", yLabel: "samples/s", kind: .bars(categories: groups.map(\.key)), series: [series])))
        }
        // The heaviest kernels of all trials' training, by time.
        let profile = data.kernelProfile.values.filter { $0.flops > 0 }.sorted { $0.seconds > $1.seconds }.prefix(12)
        if !profile.isEmpty {
            var t = ReportTable(caption: "Kernels by training time (all trials)", header: ["kernel", "shape", "calls", "seconds", "GFLOP/s"])
            for k in profile {
                t.rows.append([ReportCell(k.name), ReportCell(k.shape), "\(k.calls)", ReportCell(String(format: "%.2f", k.seconds)),
                               ReportCell(String(format: "%.1f", k.flops / k.seconds / 1e9))])
            }
            blocks.append(.table(t))
            let series = Figure.Series(title: "GFLOP/s", points: profile.enumerated().map { Figure.Point(x: Double($0.offset), y: $0.element.flops / $0.element.seconds / 1e9) })
            blocks.append(.figure(Figure(name: "kernel-throughput", title: "GFLOP/s of the heaviest kernels during training",
                                         xLabel: "", yLabel: "GFLOP/s", kind: .bars(categories: profile.map { "\($0.name) \($0.shape)" }), series: [series])))
        }
        if !data.kernelBench.isEmpty {
            blocks.append(.heading("Kernel benchmark", level: 2))
            var t = ReportTable(caption: "benchbench kernels: min / median / max over repetitions", header: ["kernel", "shape", "unit", "reps", "min", "median", "max"])
            for k in data.kernelBench {
                t.rows.append([ReportCell(k.name), ReportCell(k.shape), ReportCell(k.unit), "\(k.reps)",
                               ReportCell(String(format: "%.4g", k.min)), ReportCell(String(format: "%.4g", k.median)), ReportCell(String(format: "%.4g", k.max))])
            }
            blocks.append(.table(t))
            let gflops = data.kernelBench.filter { $0.unit == "GFLOP/s" }
            if !gflops.isEmpty {
                let s = Figure.Series(title: "median GFLOP/s", points: gflops.enumerated().map { Figure.Point(x: Double($0.offset), y: $0.element.median) })
                blocks.append(.figure(Figure(name: "kernel-bench", title: "kernel benchmark (GFLOP/s, median)", xLabel: "", yLabel: "GFLOP/s",
                                             kind: .bars(categories: gflops.map { "\($0.name) \($0.shape)" }), series: [s])))
            }
        }
        return blocks
    }

    /// Every trial: status, time, throughput, its accuracy scores (or why it failed) and config.
    static func trials(_ data: RunData) -> ReportTable {
        var t = ReportTable(caption: "Every trial", header: ["trial", "dataset", "method", "v", "budget", "seed", "status", "train s", "samples/s", "accuracy (%)", "config"])
        for d in data.trials {
            let x = d.trial
            let scores = d.metrics.filter { $0.name == "accuracy" }
                .sorted { $0.protocolName != $1.protocolName ? $0.protocolName < $1.protocolName : EvaluationBudget.less($0.evalBudget, $1.evalBudget) }
                .map { "\($0.protocolName)@\($0.evalBudget) " + Format.meanCI("accuracy", $0.value, $0.ci95) }.joined(separator: ", ")
            t.rows.append(["\(x.id!)", ReportCell(x.dataset), ReportCell(x.method), ReportCell(x.methodVersion), ReportCell(x.trainBudget), "\(x.seed)",
                           ReportCell(x.status, mark: x.status == TrialStatus.failed ? .failure : nil),
                           ReportCell(x.seconds.map { String(format: "%.1f", $0) } ?? ""), ReportCell(x.samplesPerS.map { String(format: "%.0f", $0) } ?? ""),
                           ReportCell(x.status == TrialStatus.failed ? (x.error ?? "") : scores, mark: x.status == TrialStatus.failed ? .failure : nil),
                           ReportCell(x.configSha, title: x.configJson)])
        }
        return t
    }
}

import ArgumentParser
import Comparison
import Foundation
import Methods
import Reporting
import ResultsStore
import Suite
import Vocabulary

/// How runs are named on the command line, and the thresholds of a comparison.
struct SelectionOptions: ParsableArguments {
    @Option(help: "Only runs of this suite when resolving latest, previous, a branch or a commit (default: the suite of a run named by id, else any).")
    var suite: String?

    @Option(help: "The metric compared (default: accuracy; 'all' for every metric but per-class accuracies).")
    var metric = "accuracy"

    var metrics: Set<String>? { metric == "all" ? nil : [metric] }

    func selector(_ store: ResultsStore) throws -> RunSelector {
        RunSelector(runs: try store.runs(), resolveRef: { GitState.resolve($0) })
    }

    /// Resolves A and B; a side named by id sets the suite the other side is looked up in. When A
    /// is a local branch and B a commit git knows (`compare main HEAD`), A is the merge-base of the
    /// two, as a pull request is compared: what the branch was when B forked from it, not where it
    /// went since. `note` is told which commit that was, or that it has no run yet.
    func resolvePair(_ a: String, _ b: String, store: ResultsStore, note: (String) -> Void = { _ in }) throws -> (RunData, RunData) {
        let selector = try self.selector(store)
        do {
            let byID = [a, b].compactMap { Int64($0) }.first.flatMap { id in try? selector.resolve("\(id)") }
            let scope = suite ?? byID?.suite
            var baseline = a
            if Int64(a) == nil, GitState.isBranch(a), let bCommit = GitState.resolve(b), let base = GitState.mergeBase(a, bCommit) {
                baseline = base
                note("A is the merge-base of \(a) and \(b): commit \(base.prefix(12))")
                // The first run of a branch in CI has no stored baseline: nothing to compare, not an error.
                if (try? selector.resolve(base, suite: scope)) == nil {
                    throw CleanExit.success("no baseline run yet: the merge-base of \(a) and \(b) (commit \(base.prefix(12))) has no finished run\(scope.map { " of suite '\($0)'" } ?? ""); nothing to compare")
                }
            }
            let ra = try selector.resolve(baseline, suite: scope), rb = try selector.resolve(b, suite: scope ?? ra.suite)
            guard let da = try store.runData(ra.id!), let db = try store.runData(rb.id!) else { throw CleanExit.fail("run \(ra.id!) or \(rb.id!) vanished while reading", code: ExitCodes.notFound) }
            return (da, db)
        } catch let e as RunNotFound {
            throw CleanExit.fail(e.message, code: ExitCodes.notFound)
        }
    }
}

/// The thresholds of a comparison: given on the command line, else the candidate's suite file's
/// (`thresholds:`, stored with its run), else the defaults; raised per cell to the spread the
/// newest `benchbench calibrate` of the candidate's suite measured on its machine.
struct ThresholdOptions: ParsableArguments {
    @Option(help: "Smallest change of a metric that counts, in its units (0.01 is one point of accuracy); overrides the suite's thresholds (default: the suite's, else 0.01).")
    var threshold: Double?
    @Option(help: "Significance level of the test on per-seed values.") var alpha = 0.05
    @Option(help: "Smallest relative change of a throughput that counts (0.25 is 25%); overrides the suite's samples_per_s threshold (default: the suite's, else 0.25).")
    var kernelThreshold: Double?
    @Flag(help: "Ignore calibrated noise (benchbench calibrate).") var noNoise = false

    func validate() throws {
        guard (threshold ?? 0) >= 0, alpha > 0, alpha < 1, (kernelThreshold ?? 0) >= 0 else {
            throw ValidationError("--threshold and --kernel-threshold must be >= 0 and --alpha in (0, 1)")
        }
    }

    /// The settings, and a line saying where they came from.
    func settings(a: RunData, b: RunData, store: ResultsStore) throws -> (CompareSettings, String) {
        var s = CompareSettings()
        s.alpha = alpha
        var from: [String] = []
        let suiteThresholds = b.thresholds.isEmpty ? a.thresholds : b.thresholds
        if let threshold {
            s.minimumEffect = threshold
            from.append("minimum effect \(threshold) (command line)")
        } else {
            s.metricThresholds = suiteThresholds.filter { $0.key != "samples_per_s" }
            if !s.metricThresholds.isEmpty {
                from.append("suite's " + s.metricThresholds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                            + ", others \(s.minimumEffect)")
            } else {
                from.append("minimum effect \(s.minimumEffect) (default)")
            }
        }
        if let kernelThreshold {
            s.kernelThreshold = kernelThreshold
        } else if let t = suiteThresholds["samples_per_s"] {
            s.kernelThreshold = t
        }
        from.append(String(format: "throughput %.0f%%", s.kernelThreshold * 100))
        if !noNoise {
            let noise = try store.latestNoise(suite: b.run.suite, machineId: b.run.machineId)
            if let first = noise.first {
                s.use(noise: noise)
                from.append("calibrated noise of runs \(first.runs) (commit \(first.commit.prefix(8)))")
            }
        }
        return (s, from.joined(separator: "; "))
    }
}

/// `benchbench compare A B`: per cell A, B, delta and a category; throughput by median ratio.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compare two runs cell by cell (A: baseline, B: candidate).",
        discussion: "A and B: run ids, 'latest', 'previous', branch names, git refs or commit prefixes (a commit or branch means the newest finished run at it). Exit codes: 0 done, 3 a regression with --fail-on-regression, 4 a run not found.")

    @Argument(help: "Baseline run.") var a: String
    @Argument(help: "Candidate run.") var b: String

    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Exit with code 3 when any cell worsened or a trial newly failed.") var failOnRegression = false
    @OptionGroup var thresholds: ThresholdOptions
    @Flag(help: "List every cell, not only the ones that changed.") var all = false

    @OptionGroup var selection: SelectionOptions
    @OptionGroup var store: StoreOptions

    func run() throws {
        let db = try store.openExisting()
        let (ra, rb) = try selection.resolvePair(a, b, store: db) { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
        let (settings, source) = try thresholds.settings(a: ra, b: rb, store: db)
        let c = Comparison(a: ra, b: rb, metrics: selection.metrics, settings: settings)
        if json {
            printJSON(CompareReport.json(c))
        } else {
            print("A: " + CompareReport.runLine(ra))
            print("B: " + CompareReport.runLine(rb))
            print("thresholds: " + source)
            print("cells: " + (CompareReport.summary(c).isEmpty ? "none" : CompareReport.summary(c)))
            print("")
            let shown = c.cells.filter { all || $0.category != .unchanged }
            if !shown.isEmpty { print(TextTable.render(CompareReport.cellTable(c, only: { all || $0.category != .unchanged }, caption: all ? "Every cell" : "What changed (the rest: ~)"))); print("") }
            var t = CompareReport.throughputTable(c)
            if !all { t.rows = zip(c.throughput, t.rows).filter { $0.0.category != .unchanged }.map(\.1) }
            if !t.rows.isEmpty { print(TextTable.render(t)) }
        }
        if failOnRegression && c.regressions > 0 {
            FileHandle.standardError.write(Data("regression: \(c.regressions) cell(s) worsened or newly failed\n".utf8))
            throw ExitCode(ExitCodes.regression)
        }
    }
}

/// `benchbench history`: a metric across commits, oldest first.
struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "A metric across commits (the newest finished run at each), oldest first.")

    @Option(help: "Only this method.") var method: String?
    @Option(help: "Only this dataset.") var dataset: String?
    @Option(help: "Only this protocol (native, linear, knn, finetune, episodes, episodes-linear).") var `protocol`: String?
    @Option(help: "Only this evaluation budget (10, all, '5-way 1-shot', ...).") var budget: String?
    @Flag(help: "Print JSON.") var json = false

    @OptionGroup var selection: SelectionOptions
    @OptionGroup var store: StoreOptions

    /// The history of the selected metric over finished runs (kernel benchmarks left out), filtered.
    /// One suite's runs only (`--suite`, else the suite of the newest finished run): a commit's
    /// point is its newest run, and runs of different suites measure different things.
    static func history(_ db: ResultsStore, selection: SelectionOptions, include: @escaping (CellKey) -> Bool = { _ in true }) throws -> History {
        let finished = try db.runs().filter { $0.finishedAt != nil && $0.suite != "kernels" }
        let suite = selection.suite ?? finished.last?.suite
        let runs = finished.filter { $0.suite == suite }
        let data = try runs.compactMap { try db.runData($0.id!) }
        return History(runs: data, metric: selection.metric == "all" ? "accuracy" : selection.metric, commitRank: GitState.commitOrder(), include: include)
    }

    func validate() throws {
        if let p = self.protocol { do { _ = try EvaluationProtocol(parsing: p) } catch let e as DataError { throw ValidationError("--protocol: \(e.message)") } }
        if let b = budget { do { _ = try EvaluationBudget(parsing: b) } catch let e as DataError { throw ValidationError("--budget: \(e.message)") } }
    }

    func run() throws {
        // Budgets compared as parsed, so "10" and " 10" or "5-way 1-shot" spelled alike match.
        let budget = try self.budget.map { "\(try EvaluationBudget(parsing: $0))" }
        let (method, dataset, p) = (self.method, self.dataset, self.protocol)
        let h = try HistoryCommand.history(try store.openExisting(), selection: selection) { k in
            (method == nil || k.method == method) && (dataset == nil || k.dataset == dataset)
                && (p == nil || k.protocolName == p) && (budget == nil || k.evalBudget == budget)
        }
        guard !h.series.isEmpty else { throw CleanExit.fail("no finished run holds metric '\(h.metric)' for these filters", code: ExitCodes.notFound) }
        if !json { print("suite \(h.suite ?? "?"): \(h.commits.count) commit(s)") }
        if json {
            printJSON(["metric": h.metric, "commits": h.commits.map { ["commit": $0.commit, "branch": $0.branch, "dirty": $0.dirty, "run": $0.runID] as [String: Any] },
                       "series": h.series.sorted { $0.key < $1.key }.map { k, v in
                           ["dataset": k.dataset, "method": k.method, "train_budget": k.trainBudget, "protocol": k.protocolName, "eval_budget": k.evalBudget,
                            "values": v.map { p -> Any in
                                guard let p else { return NSNull() }
                                return ["mean": p.mean, "ci95": p.ci95 ?? NSNull(), "n": p.n] as [String: Any]
                            }] as [String: Any]
                       }])
        } else {
            print(TextTable.render(HistoryReport.table(h)))
        }
    }
}

/// `benchbench report`: HTML (or markdown) with gnuplot figures for a run, a comparison or a history.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a self-contained report: DIR/index.html (or index.md) and DIR/plots/*.gp|.dat|.svg.")

    @Argument(help: ArgumentHelp("The run to report (default: latest).", valueName: "run")) var runReference: String?
    @Option(parsing: .upToNextOption, help: "Report the comparison of two runs A B instead.") var compare: [String] = []
    @Flag(help: "Report the history of the metric over commits instead.") var history = false
    @Option(help: "Folder to write into.") var out: String
    @Option(help: "html or markdown.") var format = "html"
    @OptionGroup var thresholds: ThresholdOptions

    @OptionGroup var selection: SelectionOptions
    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard ReportWriter.Format(rawValue: format) != nil else { throw ValidationError("--format '\(format)': expected html or markdown") }
        guard compare.isEmpty || compare.count == 2 else { throw ValidationError("--compare takes two runs, A and B (got \(compare.count))") }
        let modes = [runReference != nil, !compare.isEmpty, history].filter { $0 }.count
        guard modes <= 1 else { throw ValidationError("report one thing: a RUN, --compare A B, or --history") }
    }

    func run() throws {
        let db = try store.openExisting()
        let doc: Document
        if compare.count == 2 {
            let (a, b) = try selection.resolvePair(compare[0], compare[1], store: db)
            let (settings, _) = try thresholds.settings(a: a, b: b, store: db)
            doc = CompareReport.document(Comparison(a: a, b: b, metrics: selection.metrics, settings: settings))
        } else if history {
            doc = HistoryReport.document(try HistoryCommand.history(db, selection: selection))
        } else {
            let record: RunRecord
            do { record = try selection.selector(db).resolve(runReference ?? "latest", suite: selection.suite) } catch let e as RunNotFound {
                throw CleanExit.fail(e.message, code: ExitCodes.notFound)
            }
            guard let data = try db.runData(record.id!) else { throw CleanExit.fail("no run \(record.id!)", code: ExitCodes.notFound) }
            doc = RunReport.document(data, regimes: Self.regimes(data))
        }
        var warnings: [String] = []
        let path = try ReportWriter(directory: out, format: ReportWriter.Format(rawValue: format)!).write(doc, warnings: &warnings)
        for w in warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        print("report: \(path)")
    }

    /// The regime of every method name in the run: a named variant's is its method's.
    static func regimes(_ data: RunData) -> [String: String] {
        var out = Dictionary(uniqueKeysWithValues: MethodRegistry.all.map { ($0.id, $0.regime.rawValue) })
        for t in data.trials.map(\.trial) where t.variantOf != nil {
            out[t.method] = MethodRegistry.method(t.registeredMethod)?.regime.rawValue
        }
        return out
    }
}

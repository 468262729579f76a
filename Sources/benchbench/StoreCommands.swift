import ArgumentParser
import DataCore
import Foundation
import Methods
import Reporting
import ResultsStore
import Suite

/// `benchbench runs`: what the database holds, a run per line.
struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List stored runs: id, suite, commit, start, status, trials done/failed.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        let db = try store.openExisting()
        let counts = try db.trialCounts()
        let runs = try db.runs()
        if json {
            let rows: [[String: Any]] = runs.map { r in
                let c = counts[r.id!] ?? [:]
                return ["id": r.id!, "suite": r.suite, "suite_sha": r.suiteSha, "commit": r.commit, "branch": r.branch, "dirty": r.dirty,
                        "started_at": RunTables.date(r.startedAt), "finished_at": r.finishedAt.map(RunTables.date) ?? NSNull(),
                        "status": r.status, "trials": c.values.reduce(0, +),
                        "done": c[TrialStatus.done] ?? 0, "failed": c[TrialStatus.failed] ?? 0]
            }
            return printJSON(rows)
        }
        guard !runs.isEmpty else { return print("no runs in \(db.path)") }
        var table = TextTable(["id", "suite", "commit", "branch", "started", "status", "done", "failed", "trials"])
        for r in runs {
            let c = counts[r.id!] ?? [:]
            table.add(["\(r.id!)", r.suite, String(r.commit.prefix(10)) + (r.dirty ? "+dirty" : ""), r.branch, RunTables.date(r.startedAt),
                       r.finishedAt == nil ? "unfinished" : r.status, "\(c[TrialStatus.done] ?? 0)", "\(c[TrialStatus.failed] ?? 0)",
                       "\(c.values.reduce(0, +))"])
        }
        print(table.render())
    }
}

/// `benchbench show RUN`: a run's trials and metrics.
struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a run's trials and metrics (RUN: an id, or 'latest').")

    @Argument(help: ArgumentHelp("Run id, or 'latest'.", valueName: "run"))
    var reference: String

    @Flag(help: "Print JSON (every trial with every metric) instead of tables.")
    var json = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        let db = try store.openExisting()
        let id: Int64
        if reference == "latest" {
            guard let last = try db.runs().last?.id else { throw CleanExit.fail("no runs in \(db.path)", code: ExitCodes.notFound) }
            id = last
        } else {
            guard let n = Int64(reference) else { throw ValidationError("run '\(reference)': expected a run id (see 'benchbench runs') or 'latest'") }
            id = n
        }
        guard let data = try db.runData(id) else { throw CleanExit.fail("no run \(id) in \(db.path) (see 'benchbench runs')", code: ExitCodes.notFound) }
        if json { return printJSON(RunJSON.object(data)) }
        print(RunTables.header(data))
        print("")
        print(RunTables.trials(data))
        print("")
        print(RunTables.summary(data))
    }
}

/// `benchbench list`: methods, datasets or suites available, one line each.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the available methods, datasets or suites.")

    enum What: String, ExpressibleByArgument, CaseIterable { case methods, datasets, suites }

    @Argument(help: "methods, datasets or suites.")
    var what: What

    func run() throws {
        switch what {
        case .methods:
            var table = TextTable(["method", "regime", "version", "what it is"])
            for m in MethodRegistry.all { table.add([m.id, m.regime.rawValue, m.version, m.summary]) }
            print(table.render())
            // The settings a suite may give each method (nested ones as `training: {...}`).
            print("")
            for m in MethodRegistry.all { print("\(m.id) settings: \(m.configKeys().joined(separator: ", "))") }
        case .datasets:
            var table = TextTable(["dataset", "what it is"])
            for k in DatasetSpec.Kind.allCases { table.add([k.rawValue, k.summary]) }
            print(table.render())
        case .suites:
            let names = Suite.available()
            guard !names.isEmpty else { return print("no suites in \(FileManager.default.currentDirectoryPath)/suites") }
            var table = TextTable(["suite", "description"])
            for name in names {
                let description: String
                do { description = try Suite.load(path: Suite.resolvePath(name)!).description } catch { description = "(invalid: \(error))" }
                table.add([name, description])
            }
            print(table.render())
        }
    }
}

/// A stored run as JSON: the run, its machine, its trials with metrics.
enum RunJSON {
    static func object(_ data: RunData) -> [String: Any] {
        let r = data.run
        var run: [String: Any] = ["id": r.id!, "suite": r.suite, "suite_sha": r.suiteSha, "commit": r.commit, "branch": r.branch, "dirty": r.dirty,
                                  "argv": r.argv, "started_at": RunTables.date(r.startedAt), "status": r.status,
                                  "finished_at": r.finishedAt.map(RunTables.date) ?? NSNull()]
        if let m = data.machine {
            run["machine"] = ["hostname": m.hostname, "cpu": m.cpu, "cores": m.cores, "os": m.os, "swift": m.swift, "blas": m.blas, "blas_core": m.blasCore]
        }
        run["trials"] = data.trials.map { t -> [String: Any] in
            let x = t.trial
            return ["id": x.id!, "dataset": x.dataset, "dataset_sha": x.datasetSha, "method": x.method, "variant_of": x.variantOf ?? NSNull(), "method_version": x.methodVersion,
                    "config": (try? JSONSerialization.jsonObject(with: Data(x.configJson.utf8))) ?? x.configJson, "config_sha": x.configSha,
                    "train_budget": x.trainBudget, "seed": x.seed, "split_sha": x.splitSha, "status": x.status, "error": x.error ?? NSNull(),
                    "seconds": x.seconds ?? NSNull(), "steps": x.steps ?? NSNull(), "samples_per_s": x.samplesPerS ?? NSNull(),
                    "metrics": t.metrics.map { m in ["protocol": m.protocolName, "eval_budget": m.evalBudget, "name": m.name, "value": m.value,
                                                     "ci95": m.ci95 ?? NSNull(), "n": m.n ?? NSNull()] as [String: Any] }]
        }
        if !data.kernelBench.isEmpty {
            run["kernel_bench"] = data.kernelBench.map { ["name": $0.name, "shape": $0.shape, "unit": $0.unit, "reps": $0.reps,
                                                          "min": $0.min, "median": $0.median, "max": $0.max] as [String: Any] }
        }
        return run
    }
}

func printJSON(_ value: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])) ?? Data("null".utf8)
    print(String(decoding: data, as: UTF8.self))
}

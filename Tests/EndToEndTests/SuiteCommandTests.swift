import Foundation
import ResultsStore
import Testing

/// A suite small enough for a debug build: an MLP on a few glyph classes.
func tinySuite(seeds: Int = 1, budgets: String = "[3, all]", protocols: String = "[native, linear, knn, episodes-linear]") -> String {
    """
    description: end-to-end test suite
    datasets:
      - {name: glyphs, classes: 12, instances: 12, test_instances: 4, split: [6, 1, 5]}
    backbone: {name: mlp, hidden: [32]}
    seeds: \(seeds)
    budgets: \(budgets)
    validation: 2
    protocols: \(protocols)
    episodes: {way: 3, shots: [1], query: 3, count: 20}
    methods:
      supervised: {training: {steps: 15, warmupSteps: 2, validateEvery: 5}, batchSize: 16}
    """
}

/// `benchbench suite PATH` started in the background in `dir`, its standard error to a file.
func startSuite(_ path: String, in dir: String) throws -> (Process, errorLog: String) {
    let process = Process()
    process.executableURL = productsDirectory.appendingPathComponent("benchbench")
    process.arguments = ["suite", path]
    process.currentDirectoryURL = URL(fileURLWithPath: dir)
    process.standardOutput = FileHandle.nullDevice
    // One log per process: two suites started in one directory must not truncate each other's.
    let errorLog = dir + "/stderr-\(UUID().uuidString).txt"
    FileManager.default.createFile(atPath: errorLog, contents: nil)
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorLog))
    try process.run()
    return (process, errorLog)
}

func writeSuite(_ text: String) throws -> (directory: String, path: String) {
    let path = temporaryPath("tiny.yaml")
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return (URL(fileURLWithPath: path).deletingLastPathComponent().path, path)
}

@Suite(.serialized) struct SuiteCommandTests {
    /// A named variant is stored under its own name with the method it runs, and the report lists
    /// it as a row of its own in its method's regime.
    @Test func aNamedVariantIsStoredAndReportedUnderItsName() throws {
        let text = tinySuite(budgets: "[3]", protocols: "[native]")
            + "\n  supervised-small: {method: supervised, training: {steps: 5, validateEvery: 5}, batchSize: 8}"
        let (dir, path) = try writeSuite(text)
        let r = try runBenchbench(["suite", path], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let store = try ResultsStore(path: dir + "/benchbench.sqlite")
        let run = try #require(try store.runs().first)
        let trials = try store.trials(run: run.id!)
        #expect(trials.map(\.method).sorted() == ["supervised", "supervised-small"] && trials.allSatisfy { $0.status == "done" })
        #expect(trials.map { $0.variantOf ?? "-" }.sorted() == ["-", "supervised"])
        #expect(Set(trials.map(\.steps)) == [15, 5])
        let md = dir + "/report-md"
        #expect(try runBenchbench(["report", "--format", "markdown", "--out", md], in: dir).status == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: md).filter { $0.hasSuffix(".md") }
        let page = try String(contentsOfFile: md + "/" + #require(files.first), encoding: .utf8)
        #expect(page.contains("| supervised-small | supervised |"), "\(page)")
    }

    @Test func aSuiteStoresWhatItPrints() throws {
        let (dir, path) = try writeSuite(tinySuite())
        let r = try runBenchbench(["suite", path], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        // Printed: "trial i/n: ..." then "  metric PROTOCOL @ BUDGET: NAME = VALUE" lines.
        var printed: [[String: Double]] = []
        for line in r.stdout.split(separator: "\n") {
            if line.hasPrefix("trial ") { printed.append([:]) }
            guard line.hasPrefix("  metric "), let eq = line.range(of: " = ") else { continue }
            let key = String(line[line.index(line.startIndex, offsetBy: 9)..<eq.lowerBound])
            let value = Double(line[eq.upperBound...].split(separator: " ")[0])!
            printed[printed.count - 1][key] = value
        }
        let store = try ResultsStore(path: dir + "/benchbench.sqlite")
        let run = try #require(try store.runs().first)
        #expect(run.suite == "tiny" && run.status == "done" && run.finishedAt != nil && run.commit == "unknown")
        let trials = try store.trials(run: run.id!)
        #expect(trials.count == 2 && printed.count == 2)
        for (trial, shown) in zip(trials, printed) {
            // Per-class accuracies, the evaluation-time breakdown and the linear probe's fit
            // diagnostics are stored without a line each.
            let all = try store.metrics(trial: trial.id!)
            let stored = all.filter {
                !$0.name.hasPrefix("class_accuracy/") && !$0.name.hasSuffix("_eval_seconds") && !["fit_iterations", "converged_rate", "validation_accuracy"].contains($0.name)
            }
            let probe = all.filter { $0.protocolName == "linear" }
            #expect(probe.contains { $0.name == "fit_iterations" && $0.value >= 5 } && probe.contains { $0.name == "converged_rate" && (0...1).contains($0.value) }
                    && probe.contains { $0.name == "validation_accuracy" && (0...1).contains($0.value) })
            #expect(stored.count == shown.count)
            for m in stored {
                let key = "\(m.protocolName) @ \(m.evalBudget): \(m.name)"
                #expect(shown[key].map { abs($0 - m.value) <= 5e-7 } == true, "\(key): printed \(shown[key] ?? .nan), stored \(m.value)")
            }
            #expect(stored.contains { $0.protocolName == "native" && $0.name == "accuracy" })
            #expect(stored.contains { $0.protocolName == "episodes-linear" && $0.evalBudget == "3-way 1-shot" && $0.ci95 != nil && $0.n == 20 })
            #expect(try !store.kernels(trial: trial.id!).isEmpty && !store.curves(trial: trial.id!).isEmpty)
            #expect(trial.status == "done" && (trial.samplesPerS ?? 0) > 0 && trial.steps == 15)
        }
        // The summary table and the commands that read the store.
        #expect(r.stdout.contains("glyphs — native accuracy (%)"))
        let runs = try runBenchbench(["runs", "--json"], in: dir)
        let list = try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]]
        #expect(list?.count == 1 && list?[0]["done"] as? Int == 2 && list?[0]["failed"] as? Int == 0 && list?[0]["dirty"] as? Bool == false)
        let show = try runBenchbench(["show", "latest", "--json"], in: dir)
        let shown = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
        #expect((shown?["trials"] as? [[String: Any]])?.count == 2)
        #expect((shown?["machine"] as? [String: Any])?["blas_core"] as? String != nil)
        let table = try runBenchbench(["show", "\(run.id!)"], in: dir)
        #expect(table.status == 0 && table.stdout.contains("supervised") && table.stdout.range(of: #"\ncommit +unknown\n"#, options: .regularExpression) != nil)
    }

    /// Two suite processes on one database both finish with every trial stored, and the
    /// commands that read it (runs, show, report) succeed while they write.
    @Test func twoSuitesOnOneDatabaseBothFinishWhileReadersRead() throws {
        let (dir, path) = try writeSuite(tinySuite(seeds: 4, budgets: "[2, 3, all]", protocols: "[native, knn]"))
        let db = dir + "/benchbench.sqlite"
        let first = try startSuite(path, in: dir)
        let second = try startSuite(path, in: dir)
        var reads = 0, readFailures: [String] = []
        while first.0.isRunning || second.0.isRunning {
            for args in [["runs", "--json"], ["show", "latest", "--json"], ["report", "latest", "--out", dir + "/report-\(reads)", "--format", "markdown"]] {
                guard FileManager.default.fileExists(atPath: db) else { continue }
                let r = try runBenchbench(args, in: dir)
                reads += 1
                // A reader may find no finished run yet (show/report exit 4); it never sees a broken database.
                if r.status != 0 && r.status != 4 { readFailures.append("\(args[0]): exit \(r.status): \(r.stderr)") }
            }
        }
        first.0.waitUntilExit(); second.0.waitUntilExit()
        let logs = [first, second].map { "exit \($0.0.terminationStatus):\n" + ((try? String(contentsOfFile: $0.errorLog, encoding: .utf8)) ?? "") }
            .joined(separator: "\n")
        #expect(first.0.terminationStatus == 0 && second.0.terminationStatus == 0, "\(logs)")
        #expect(readFailures.isEmpty, "\(readFailures)")
        #expect(reads > 0)
        let store = try ResultsStore(path: db)
        let runs = try store.runs()
        #expect(runs.count == 2 && runs.allSatisfy { $0.status == "done" })
        for run in runs {
            let trials = try store.trials(run: run.id!)
            #expect(trials.count == 12 && trials.allSatisfy { $0.status == "done" })
            #expect(try trials.allSatisfy { try !store.metrics(trial: $0.id!).isEmpty })
        }
        #expect(try store.integrityCheck() == "ok")
    }

    @Test func aKilledSuiteLosesAtMostTheTrialInFlightAndResumes() throws {
        let (dir, path) = try writeSuite(tinySuite(seeds: 3, budgets: "[2, 3, all]", protocols: "[native, knn, episodes-linear]"))
        let db = dir + "/benchbench.sqlite"
        let (process, errorLog) = try startSuite(path, in: dir)
        // Kill it as soon as two trials are stored (of nine).
        let deadline = Date().addingTimeInterval(120)
        var finished = 0
        while Date() < deadline && process.isRunning {
            if FileManager.default.fileExists(atPath: db), let store = try? ResultsStore(path: db),
               let run = try? store.runs().first, let n = try? store.trials(run: run.id!).filter({ $0.status == "done" }).count {
                finished = n
                if n >= 2 { break }
            }
            usleep(20_000)
        }
        #expect(process.isRunning, "the suite ended before it could be killed: \((try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? "")")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)

        let store = try ResultsStore(path: db)
        #expect(try store.integrityCheck() == "ok")
        let run = try #require(try store.runs().first)
        #expect(run.finishedAt == nil, "a killed run is unfinished")
        let before = try store.trials(run: run.id!)
        let done = before.filter { $0.status == "done" }
        #expect(done.count >= finished && done.count < 9)
        for t in done { #expect(try !store.metrics(trial: t.id!).isEmpty) }

        let r = try runBenchbench(["suite", path, "--resume"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("resuming run \(run.id!)"))
        let after = try store.trials(run: run.id!)
        #expect(after.count == 9 && after.allSatisfy { $0.status == "done" })
        for t in done { #expect(after.first { $0.id == t.id } == t, "finished trial \(t.id!) was kept as it was") }
        #expect(try store.runs().count == 1 && store.runs()[0].status == "done")
        // Nothing left to resume now.
        let again = try runBenchbench(["suite", path, "--resume"], in: dir)
        #expect(again.status == 64 && again.stderr.contains("no unfinished run of suite 'tiny'"))
    }

    /// SIGTERM (as SIGINT) stops a suite: the trial in flight is marked interrupted, the finished
    /// ones are kept, the terminal says how to resume; `--resume` finishes the run, and its
    /// metrics equal those of an uninterrupted run of the same suite, bit for bit.
    @Test func aSignalledSuiteMarksTheTrialInterruptedAndResumesToTheSameResults() throws {
        let text = tinySuite(seeds: 3, budgets: "[2, 3, all]", protocols: "[native, knn, episodes-linear]")
        let (dir, path) = try writeSuite(text)
        let db = dir + "/benchbench.sqlite"
        let (process, errorLog) = try startSuite(path, in: dir)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && process.isRunning {
            if let store = try? ResultsStore(path: db), let run = try? store.runs().first,
               let trials = try? store.trials(run: run.id!), trials.filter({ $0.status == "done" }).count >= 2, trials.contains(where: { $0.status == "running" }) {
                break
            }
            usleep(5_000)
        }
        #expect(process.isRunning)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGTERM)
        let stderr = try String(contentsOfFile: errorLog, encoding: .utf8)
        #expect(stderr.contains("interrupted (SIGTERM): run 1 stopped") && stderr.contains("Continue it with: benchbench suite \(path) --resume"), "\(stderr)")
        let store = try ResultsStore(path: db)
        let run = try #require(try store.runs().first)
        #expect(run.finishedAt == nil)
        let stopped = try store.trials(run: run.id!)
        #expect(stopped.filter { $0.status == "interrupted" }.count == 1 && stopped.filter { $0.status == "done" }.count >= 2, "\(stopped.map(\.status))")
        let resumed = try runBenchbench(["suite", path, "--resume"], in: dir)
        #expect(resumed.status == 0, "\(resumed.stderr)")

        // The same suite, uninterrupted, in another directory.
        let (otherDir, otherPath) = try writeSuite(text)
        let whole = try runBenchbench(["suite", otherPath], in: otherDir)
        #expect(whole.status == 0, "\(whole.stderr)")
        func metrics(_ db: String) throws -> [String: Double] {
            let s = try ResultsStore(path: db)
            var out: [String: Double] = [:]
            for t in try s.trials(run: try #require(try s.runs().first).id!) {
                #expect(t.status == "done")
                for m in try s.metrics(trial: t.id!) where m.protocolName != "train" || !m.name.hasSuffix("seconds") && !m.name.hasSuffix("_mb") {
                    out["\(t.method)|\(t.trainBudget)|\(t.seed)|\(m.protocolName)|\(m.evalBudget)|\(m.name)"] = m.value
                }
            }
            return out
        }
        let (a, b) = (try metrics(db), try metrics(otherDir + "/benchbench.sqlite"))
        #expect(!a.isEmpty && a == b, "resumed and uninterrupted runs differ: \(a.filter { b[$0.key] != $0.value }.keys.sorted().prefix(5))")
    }

    /// `--resume` refuses a suite file edited since the run started (its hash differs), naming
    /// the run and both hashes, and stores nothing.
    @Test func resumeRefusesAnEditedSuiteFile() throws {
        let (dir, path) = try writeSuite(tinySuite())
        let store = try ResultsStore(path: dir + "/benchbench.sqlite")
        let machine = try store.machineID(MachineRecord(hostname: "h", cpu: "c", cores: 2, os: "o", swift: "s", blas: "b", blasCore: "k"))
        let runID = try store.startRun(RunRecord(suite: "tiny", suiteSha: "0123456789abcdef", commit: "unknown", branch: "unknown", dirty: false,
                                                 machineId: machine, argv: "benchbench suite tiny", startedAt: Date()))
        let r = try runBenchbench(["suite", path, "--resume"], in: dir)
        #expect(r.status == 64)
        #expect(r.stderr.contains("changed since run \(runID) started (suite hash 0123456789abcdef, now"), "\(r.stderr)")
        #expect(try store.trials(run: runID).isEmpty && store.runs().count == 1)
    }

    @Test func badSuiteFilesGiveFileLineKeyAndExitCode65() throws {
        let cases: [(String, String)] = [
            (tinySuite().replacingOccurrences(of: "supervised: {training", with: "mixmatcher: {training"), "tiny.yaml:11:3: methods.mixmatcher: unknown method 'mixmatcher'"),
            (tinySuite().replacingOccurrences(of: "steps: 15", with: "steps: fifteen"), "tiny.yaml:11:27: methods.supervised.training.steps: expected a whole number"),
            (tinySuite().replacingOccurrences(of: "validation: 2", with: "validaton: 2"), "tiny.yaml:7:1: validaton: unknown key"),
            (tinySuite(budgets: "[1-shot]"), "tiny.yaml:6:11: budgets: budget '1-shot' is a few-shot episode setting"),
        ]
        for (text, expected) in cases {
            let (dir, path) = try writeSuite(text)
            let r = try runBenchbench(["suite", path, "--dry-run"], in: dir)
            #expect(r.status == 65, "\(expected): \(r.stderr)")
            #expect(r.stderr.hasPrefix("error: \(path.replacingOccurrences(of: "tiny.yaml", with: ""))\(expected)"), "\(r.stderr)")
            #expect(!r.stderr.contains("Fatal error"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/benchbench.sqlite"), "nothing stored")
        }
        let missing = try runBenchbench(["suite", "no-such-suite"])
        #expect(missing.status == 64 && missing.stderr.contains("no suite 'no-such-suite'") && missing.stderr.contains("available: default"))
        let noDB = try runBenchbench(["runs", "--db", "/nonexistent/x.sqlite"])
        #expect(noDB.status == 74 && noDB.stderr.contains("/nonexistent/x.sqlite: no results database here"))
    }

    @Test func dryRunPrintsThePlanAndStoresNothing() throws {
        let (dir, path) = try writeSuite(tinySuite(seeds: 2))
        let r = try runBenchbench(["suite", path, "--dry-run"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("4 trials, estimated") && r.stdout.contains("dry run: nothing stored"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/benchbench.sqlite"))
        let methods = try runBenchbench(["list", "methods"])
        #expect(methods.status == 0 && methods.stdout.split(separator: "\n").contains { $0.hasPrefix("supervised ") && $0.contains(" supervised ") })
        let datasets = try runBenchbench(["list", "datasets"])
        #expect(datasets.stdout.contains("fashion-mnist") && datasets.stdout.contains("glyphs-color"))
        let suites = try runBenchbench(["list", "suites"])
        #expect(suites.stdout.contains("smoke") && suites.stdout.contains("default"))
    }
}

import ArgumentParser
import DataCore
import Foundation
import Methods
import Reporting
import ResultsStore
import Suite

/// `benchbench suite NAME`: plan a suite file's trials, run them into the store, print a summary.
struct SuiteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "suite", abstract: "Run every trial of a suite (suites/NAME.yaml, or a path).")

    @Argument(help: "Suite name (suites/NAME.yaml) or path to a suite file.")
    var name: String

    @Flag(help: "Print the plan (trials and estimated time) and store nothing.")
    var dryRun = false

    @Flag(help: "Continue the latest unfinished run of this suite at this commit, skipping finished trials.")
    var resume = false

    @Option(help: "Folder with dataset files (default: $BENCHBENCH_DATA, then where Debian's packages install them).")
    var dataDir: String?

    @Option(help: "Run only shard I of N of the trials (I/N, 1-based), into its own database (default benchbench.shard-I-of-N.sqlite); merge the shards with 'benchbench merge'.")
    var shard: String?

    @Option(help: "With --shard: the campaign the shards belong to (default: the suite file's hash and the commit); every shard of one campaign must be given the same.")
    var campaign: String?

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let shard { do { _ = try Shard(parsing: shard) } catch let e as DataError { throw ValidationError("--shard: \(e.message)") } }
        if campaign != nil && shard == nil { throw ValidationError("--campaign names the campaign of a --shard; give --shard I/N too") }
    }

    func run() throws {
        let suite = try Self.load(name)
        var (plan, notes) = try Planner.planWithNotes(suite)
        for note in notes { print("note: \(note)") }
        var store = self.store
        var part: (shard: Shard, campaign: String)?
        if let text = shard {
            let s = try Shard(parsing: text)
            let total = plan.count
            plan = s.select(plan)
            part = (s, Campaign.id(suiteSha: suite.sha, commit: GitState.current().commit, given: campaign))
            if store.db == nil && (ProcessInfo.processInfo.environment["BENCHBENCH_DB"] ?? "").isEmpty { store.db = s.defaultDatabase }
            print("shard \(s) of campaign \(part!.campaign): \(plan.count) of \(total) trials, database \(store.path)")
        }
        if dryRun { return try printPlan(suite, plan) }
        let (_, status) = try Self.execute(suite, plan: plan, name: name, resume: resume, dataDir: dataDir, store: store, shard: part)
        if status != RunStatus.done { throw ExitCode(ExitCodes.trialFailed) }
    }

    /// The suite file `name` names (suites/NAME.yaml, or a path), parsed.
    static func load(_ name: String) throws -> Suite {
        guard let path = Suite.resolvePath(name) else {
            let available = Suite.available()
            throw ValidationError("no suite '\(name)': looked for suites/\(name).yaml in \(FileManager.default.currentDirectoryPath)"
                                  + (available.isEmpty ? "" : "; available: \(available.joined(separator: ", "))"))
        }
        return try Suite.load(path: path)
    }

    /// Runs `plan` as a new run of `suite` (or continues the latest unfinished one with `resume`),
    /// with progress, a summary at the end, and SIGINT/SIGTERM handled; returns the run and its status.
    static func execute(_ suite: Suite, plan: [PlannedTrial], name: String, resume: Bool, dataDir: String?,
                        store: StoreOptions, shard: (shard: Shard, campaign: String)? = nil) throws -> (runID: Int64, status: String) {
        let db = try store.open()
        let runner = SuiteRunner(store: db, data: DatasetCache(dataDir: dataDir, baseDirectory: URL(fileURLWithPath: suite.path).deletingLastPathComponent().path))
        let git = GitState.current()
        var runID: Int64
        var todo: [(Int64, PlannedTrial)]
        var offset = 0
        if resume {
            guard let previous = try db.latestUnfinishedRun(suite: suite.name, commit: git.commit) else {
                throw ValidationError("--resume: no unfinished run of suite '\(suite.name)' at commit \(git.commit) in \(db.path)")
            }
            guard previous.suiteSha == suite.sha else {
                throw ValidationError("--resume: \(suite.path) changed since run \(previous.id!) started (suite hash \(previous.suiteSha), now \(suite.sha)); start a new run")
            }
            runID = previous.id!
            let remaining = try runner.remaining(runID: runID, plan: plan)
            (todo, offset) = (remaining.todo, remaining.kept)
            print("resuming run \(runID) of suite \(suite.name): \(remaining.kept) trial(s) finished, \(todo.count) to run")
        } else {
            (runID, todo) = try runner.start(suite: suite.name, suiteSha: suite.sha, trials: plan, git: git, argv: CommandLine.arguments,
                                             thresholds: suite.thresholds)
            if let shard {
                try db.record(shard: ShardRecord(runId: runID, campaign: shard.campaign, shard: shard.shard.index, shards: shard.shard.count))
            }
            print("run \(runID): suite \(suite.name), \(plan.count) trials, commit \(git.commit)\(git.dirty ? " (dirty)" : ""), database \(db.path)")
        }
        let resumeCommand = "benchbench suite \(name)" + (shard.map { " --shard \($0.shard) --campaign \($0.campaign)" } ?? "") + " --resume"
            + (store.db.map { " --db \($0)" } ?? "")
        let stoppedRun = runID
        runner.stopOnSignals { sig in
            FileHandle.standardError.write(Data("\ninterrupted (\(sig == SIGINT ? "SIGINT" : "SIGTERM")): run \(stoppedRun) stopped; the finished trials are stored. Continue it with: \(resumeCommand)\n".utf8))
            Foundation.exit(128 + sig)
        }
        let failed = try runner.execute(todo, offset: offset, total: offset + todo.count)
        let status = try runner.finish(runID: runID)
        if let data = try db.runData(runID) {
            print("")
            print(RunTables.summary(data))
        }
        print("run \(runID) \(status): \(failed == 0 ? "every trial done" : "\(failed) trial(s) failed"); details: benchbench show \(runID)")
        return (runID, status)
    }

    func printPlan(_ suite: Suite, _ plan: [PlannedTrial]) throws {
        // Measured times of identical earlier trials beat the model, when the database has them.
        let db = FileManager.default.fileExists(atPath: store.path) ? try? store.open() : nil
        var table = TextTable(["#", "method", "regime", "dataset", "budget", "seed", "steps", "protocols", "estimate"])
        var total = 0.0, measured = 0
        for (i, t) in plan.enumerated() {
            var seconds = t.estimatedSeconds
            if let s = try db?.measuredSeconds(dataset: t.dataset.id, method: t.name, configSha: t.config.sha, trainBudget: "\(t.trainBudget)") {
                seconds = s
                measured += 1
            }
            total += seconds
            let protocols = t.evaluation.summary(trainBudget: t.trainBudget)
            table.add(["\(i + 1)", t.name == t.method.id ? t.name : "\(t.name) (\(t.method.id))", t.method.regime.rawValue, t.dataset.id, "\(t.trainBudget)", "\(t.seed)",
                       "\(t.config.workload.steps)", protocols, Durations.text(seconds)])
        }
        print("suite \(suite.name) (\(suite.path), hash \(suite.sha))\(suite.description.isEmpty ? "" : ": \(suite.description)")")
        print(table.render())
        print("\(plan.count) trials, estimated \(Durations.text(total)) on a 2-core machine"
              + (measured > 0 ? " (\(measured) from measured times of identical earlier trials, the rest from a throughput model)" : " (throughput model; a rough guide)"))
        print("dry run: nothing stored")
    }
}

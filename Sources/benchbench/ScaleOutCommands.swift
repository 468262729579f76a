import ArgumentParser
import DataCore
import Foundation
import ResultsStore
import Suite

/// `benchbench merge OUT SHARD...`: shards' databases (or any databases) into one.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge results databases (a campaign's shards) into one; merging a database twice adds nothing.",
        discussion: "A shard of a campaign (suite --shard) joins the one run of its campaign in OUT; other runs are copied as they are. Trials keep the machine they ran on. A trial present in OUT with different results is reported (exit 1) and OUT's copy kept.")

    @Argument(help: "The database to merge into (created if missing).") var out: String
    @Argument(help: "The databases to merge from.") var sources: [String]

    func validate() throws {
        guard !sources.isEmpty else { throw ValidationError("name at least one database to merge from") }
        if let same = sources.first(where: { URL(fileURLWithPath: $0).standardized.path == URL(fileURLWithPath: out).standardized.path }) {
            throw ValidationError("\(same) is the database merged into; name it once, as OUT")
        }
    }

    func run() throws {
        let target = try ResultsStore(path: out)
        var conflicts = 0
        for path in sources {
            guard FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path): no results database here") }
            let outcome = try target.merge(from: try ResultsStore(path: path))
            print("\(path): \(outcome.trialsAdded) trial(s) added, \(outcome.trialsAlreadyPresent) already here, "
                  + "\(outcome.trialsUnfinished) unfinished there (resume that shard), \(outcome.runsCreated) run(s) created"
                  + (outcome.conflicts.isEmpty ? "" : ", \(outcome.conflicts.count) conflict(s)"))
            for c in outcome.conflicts { FileHandle.standardError.write(Data("conflict: \(c)\n".utf8)) }
            conflicts += outcome.conflicts.count
        }
        for run in try target.runs() {
            let shards = try target.shards(run: run.id!)
            guard let total = shards.first?.shards else { continue }
            let missing = Set(1...total).subtracting(shards.filter(\.finished).map(\.shard)).sorted()
            print("run \(run.id!) (campaign \(shards[0].campaign)): \(total - missing.count) of \(total) shards finished"
                  + (missing.isEmpty ? "" : "; not yet: " + missing.map(String.init).joined(separator: ", ")))
        }
        if conflicts > 0 { throw ExitCode(ExitCodes.trialFailed) }
    }
}

/// `benchbench slurm NAME --shards N --out DIR`: a Slurm job array running the suite's shards
/// and a merge job after it.
struct Slurm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write (and with --submit, submit) a Slurm job array that runs a suite's shards, and a merge job that waits for it.")

    @Argument(help: "Suite name (suites/NAME.yaml) or path to a suite file.") var name: String
    @Option(help: "Number of shards: array tasks.") var shards: Int
    @Option(help: "Folder for the scripts, the shards' databases, the logs and the merged database.") var out: String
    @Option(help: "Slurm partition.") var partition: String?
    @Option(help: "Time limit per array task (Slurm's format, e.g. 4:00:00).") var time = "4:00:00"
    @Option(help: "CPUs per array task.") var cpus = 2
    @Option(help: "Memory per array task (Slurm's format).") var mem = "8G"
    @Option(help: "Campaign id (default: the suite file's hash and the commit).") var campaign: String?
    @Flag(help: "Submit with sbatch (the array, then the merge depending on it) instead of printing the commands.") var submit = false

    func validate() throws {
        guard shards >= 1 else { throw ValidationError("--shards must be at least 1, got \(shards)") }
        guard cpus >= 1 else { throw ValidationError("--cpus must be at least 1, got \(cpus)") }
    }

    func run() throws {
        let suite = try SuiteCommand.load(name)
        let plan = try Planner.plan(suite)
        let campaignID = Campaign.id(suiteSha: suite.sha, commit: GitState.current().commit, given: campaign)
        let dir = URL(fileURLWithPath: out).standardized.path
        do {
            try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        } catch {
            throw CleanExit.fail("\(dir): cannot create the folder (\(error.localizedDescription))", code: ExitCodes.cannotWrite)
        }
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let suitePath = URL(fileURLWithPath: suite.path).standardized.path
        let work = FileManager.default.currentDirectoryPath
        let shardDB = "\(dir)/benchbench.shard-$SLURM_ARRAY_TASK_ID-of-\(shards).sqlite"
        let common = [partition.map { "#SBATCH --partition=\($0)" }].compactMap { $0 }
        let array = (["#!/bin/bash", "#SBATCH --job-name=bb-\(suite.name)", "#SBATCH --array=1-\(shards)",
                      "#SBATCH --cpus-per-task=\(cpus)", "#SBATCH --mem=\(mem)", "#SBATCH --time=\(time)",
                      "#SBATCH --output=\(dir)/logs/shard-%a.out"] + common + [
            "# Shard $SLURM_ARRAY_TASK_ID of \(shards) of suite \(suite.name) (\(plan.count) trials), campaign \(campaignID).",
            "# A task that failed or ran out of time is run again with: sbatch --array=I \(dir)/array.sbatch (it resumes).",
            "set -uo pipefail",
            "cd \(Self.quote(work))",
            "export OMP_NUM_THREADS=\(cpus)",
            "run() { \(Self.quote(binary)) suite \(Self.quote(suitePath)) --shard \"$SLURM_ARRAY_TASK_ID/\(shards)\" --campaign \(Self.quote(campaignID)) --db \"\(shardDB)\" \"$@\"; }",
            "# Continue the shard's unfinished run if there is one (exit 64: none), else start it.",
            "run --resume; status=$?",
            "if [ $status -eq 64 ]; then run; status=$?; fi",
            "exit $status",
        ]).joined(separator: "\n") + "\n"
        let merge = (["#!/bin/bash", "#SBATCH --job-name=bb-\(suite.name)-merge", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=2G",
                      "#SBATCH --time=1:00:00", "#SBATCH --output=\(dir)/logs/merge.out"] + common + [
            "set -euo pipefail",
            "cd \(Self.quote(work))",
            "exec \(Self.quote(binary)) merge \(Self.quote(dir + "/benchbench.sqlite")) \(dir)/benchbench.shard-*-of-\(shards).sqlite",
        ]).joined(separator: "\n") + "\n"
        for (file, text) in [("array.sbatch", array), ("merge.sbatch", merge)] {
            do { try text.write(toFile: "\(dir)/\(file)", atomically: true, encoding: .utf8) } catch {
                throw CleanExit.fail("\(dir)/\(file): cannot write (\(error.localizedDescription))", code: ExitCodes.cannotWrite)
            }
        }
        print("wrote \(dir)/array.sbatch (\(shards) tasks, \(plan.count) trials, campaign \(campaignID)) and \(dir)/merge.sbatch")
        guard submit else {
            print("submit with:\n  job=$(sbatch --parsable \(dir)/array.sbatch)\n  sbatch --dependency=afterany:$job \(dir)/merge.sbatch")
            print("then: benchbench runs --db \(dir)/benchbench.sqlite")
            return
        }
        let job = try Self.sbatch(["--parsable", "\(dir)/array.sbatch"]).split(separator: ";").first.map(String.init) ?? ""
        guard !job.isEmpty, job.allSatisfy(\.isNumber) else { throw CleanExit.fail("sbatch gave no job id for the array (got '\(job)')", code: ExitCodes.trialFailed) }
        let mergeJob = try Self.sbatch(["--parsable", "--dependency=afterany:\(job)", "\(dir)/merge.sbatch"])
        print("submitted array job \(job) and merge job \(mergeJob); merged results: \(dir)/benchbench.sqlite")
    }

    /// Runs sbatch; its standard output, trimmed.
    static func sbatch(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sbatch"] + arguments
        let out = Pipe(), err = Pipe()
        (process.standardOutput, process.standardError) = (out, err)
        do { try process.run() } catch { throw CleanExit.fail("cannot run sbatch (\(error.localizedDescription)); is Slurm installed?", code: ExitCodes.trialFailed) }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CleanExit.fail("sbatch \(arguments.joined(separator: " ")) failed: \(problem.trimmingCharacters(in: .whitespacesAndNewlines))", code: ExitCodes.trialFailed)
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A word for the shell, single-quoted.
    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

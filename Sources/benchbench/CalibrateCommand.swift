import ArgumentParser
import Comparison
import Foundation
import Reporting
import ResultsStore
import Suite

/// `benchbench calibrate SUITE`: measure how much same-commit runs of a suite differ on this
/// machine, and store it for `compare`.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the noise of a suite on this machine: run it (or read runs of it) at this commit several times and store each cell's spread for compare.")

    @Argument(help: "Suite name (suites/NAME.yaml) or path to a suite file.")
    var name: String

    @Option(help: "Same-commit runs to measure (existing finished runs of this suite file at this commit on this machine count; the rest are run).")
    var runs = 3

    @Option(help: "Folder with dataset files (default: $BENCHBENCH_DATA, then where Debian's packages install them).")
    var dataDir: String?

    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard runs >= 2 else { throw ValidationError("--runs must be at least 2 (a spread needs two runs), got \(runs)") }
    }

    func run() throws {
        let suite = try SuiteCommand.load(name)
        let plan = try Planner.plan(suite)
        let db = try store.open()
        let git = GitState.current()
        let machine = try db.machineID(MachineInfo.current())
        if git.dirty { print("note: the working tree has uncommitted changes; only runs made from a tree as dirty as this one are used") }
        func sameCommitRuns() throws -> [RunRecord] {
            try db.runs().filter {
                $0.suite == suite.name && $0.suiteSha == suite.sha && $0.commit == git.commit && $0.dirty == git.dirty
                    && $0.machineId == machine && $0.status == RunStatus.done
            }
        }
        let found = try sameCommitRuns()
        print("suite \(suite.name) at commit \(git.commit) on this machine: \(found.count) finished run(s) found"
              + (found.isEmpty ? "" : " (\(found.map { "\($0.id!)" }.joined(separator: ", ")))"))
        for i in found.count..<max(found.count, runs) {
            print("calibration run \(i + 1) of \(runs)")
            let (runID, status) = try SuiteCommand.execute(suite, plan: plan, name: name, resume: false, dataDir: dataDir, store: store)
            guard status == RunStatus.done else {
                throw ValidationError("run \(runID) had failed trials: calibration needs runs in which every trial finished (see benchbench show \(runID))")
            }
        }
        let measured = Array(try sameCommitRuns().suffix(runs))
        let data = try measured.compactMap { try db.runData($0.id!) }
        let calibration = Calibration(data)
        try db.record(noise: calibration.records(suite: suite.name, machineId: machine, commit: git.commit, runs: measured.map { $0.id! }))
        print("")
        print(Self.summary(calibration, runs: measured.map { $0.id! }))
        print("stored: compare uses these spreads for suite \(suite.name) on this machine (the larger of each threshold and its spread)")
    }

    static func summary(_ c: Calibration, runs: [Int64]) -> String {
        var lines = ["noise of \(runs.count) runs (\(runs.map(String.init).joined(separator: ", "))): \(c.cells.count) cells, "
                     + "\(c.cells.values.filter { $0 > 0 }.count) of them differing; \(c.throughput.count) throughputs"]
        var t = TextTable(["cell", "spread"])
        for (key, spread) in c.cells.filter({ $0.value > 0 }).sorted(by: { $0.value > $1.value }).prefix(10) {
            t.add([key.replacingOccurrences(of: "|", with: " "), String(format: "%.4g", spread)])
        }
        if !t.rows.isEmpty { lines += ["", "largest cell spreads (metric units):", t.render()] }
        var u = TextTable(["throughput", "spread"])
        for (key, spread) in c.throughput.sorted(by: { $0.value > $1.value }).prefix(10) {
            u.add([key.replacingOccurrences(of: "|", with: " "), String(format: "%.0f%%", spread * 100)])
        }
        if !u.rows.isEmpty { lines += ["", "largest throughput spreads:", u.render()] }
        return lines.joined(separator: "\n")
    }
}

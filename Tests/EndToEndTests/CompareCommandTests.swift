import Foundation
import ResultsStore
import TestSupport
import Testing

let chromiumInstalled = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].contains { FileManager.default.isExecutableFile(atPath: $0) }
/// CI (`.ci/run`) requires the browser check: there it runs, and fails if chromium is missing,
/// rather than being skipped without anyone noticing.
let browserCheckRequired = ProcessInfo.processInfo.environment["BENCHBENCH_REQUIRE_BROWSER"] == "1"

@Suite(.serialized) struct CompareCommandTests {
    /// Runs 1 (baseline) and 2 (worse, with a new failure) of suite "default".
    func database() throws -> String {
        let s = try StoreBuilder()
        try s.run(commit: "1111aaaa", branch: "main", trials: StoreBuilder.seeds([0.75, 0.78, 0.76]))
        try s.run(commit: "2222bbbb", branch: "feature", trials: StoreBuilder.seeds([0.70, 0.72, 0.74]) + [StoreBuilder.Trial(method: "fixmatch", failure: "diverged")])
        return s.store.path
    }

    @Test func compareExitCodesSayRegressionOrNotFound() throws {
        let db = try database()
        let plain = try runBenchbench(["compare", "main", "feature", "--db", db])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.contains("worsened") && plain.stdout.contains("-4.33"))
        let gate = try runBenchbench(["compare", "1", "2", "--db", db, "--fail-on-regression"])
        #expect(gate.status == 3 && gate.stderr.contains("regression: 1 cell(s) worsened"))
        let better = try runBenchbench(["compare", "2", "1", "--db", db, "--fail-on-regression", "--json"])
        #expect(better.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(better.stdout.utf8)) as? [String: Any]
        #expect((json?["counts"] as? [String: Int])?["improved"] == 1 && json?["regressions"] as? Int == 0)
        let missing = try runBenchbench(["compare", "nosuchbranch", "2", "--db", db])
        #expect(missing.status == 4 && missing.stderr.contains("no finished run") && missing.stderr.contains("'nosuchbranch'"))
        let history = try runBenchbench(["history", "--db", db, "--method", "supervised"])
        #expect(history.status == 0 && history.stdout.contains("1111aaaa") && history.stdout.contains("76.33"))
    }

    /// `compare main HEAD` in a repository compares against the merge-base (where HEAD forked from
    /// main), not main's newest run, and says which commit it used; with no run at the merge-base
    /// yet it exits 0 and says so (a branch's first CI run must not fail).
    @Test func aBranchBaselineIsTheMergeBase() throws {
        let repo = temporaryPath("repo")
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        func git(_ arguments: String...) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"] + arguments
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try git("init", "-q", "-b", "main")
        _ = try git("commit", "-q", "--allow-empty", "-m", "base")
        let base = try git("rev-parse", "HEAD")
        _ = try git("checkout", "-q", "-b", "feature")
        _ = try git("commit", "-q", "--allow-empty", "-m", "feature work")
        let feature = try git("rev-parse", "HEAD")
        _ = try git("checkout", "-q", "main")
        _ = try git("commit", "-q", "--allow-empty", "-m", "main moves on")
        let later = try git("rev-parse", "HEAD")
        _ = try git("checkout", "-q", "feature")

        let s = try StoreBuilder()
        try s.run(commit: base, branch: "main", trials: StoreBuilder.seeds([0.75, 0.78, 0.76]))
        try s.run(commit: later, branch: "main", trials: StoreBuilder.seeds([0.60, 0.61, 0.62]))
        try s.run(commit: feature, branch: "feature", trials: StoreBuilder.seeds([0.75, 0.77, 0.76]))
        let r = try runBenchbench(["compare", "main", "HEAD", "--db", s.store.path], in: repo)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("A is the merge-base of main and HEAD: commit \(base.prefix(12))"))
        #expect(r.stdout.contains("A: run 1") && r.stdout.contains("B: run 3"), "\(r.stdout)")

        // No run at the merge-base yet: nothing to compare, exit 0.
        let empty = try StoreBuilder()
        try empty.run(commit: feature, branch: "feature", trials: StoreBuilder.seeds([0.75, 0.77, 0.76]))
        let first = try runBenchbench(["compare", "main", "HEAD", "--db", empty.store.path, "--fail-on-regression"], in: repo)
        #expect(first.status == 0 && first.stdout.contains("no baseline run yet: the merge-base of main and HEAD"), "\(first.stdout) \(first.stderr)")
    }

    @Test func reportWritesAPageAndPlotsForARunAComparisonAndAHistory() throws {
        let db = try database()
        for (arguments, expected) in [([] as [String], "Run 2: suite default"), (["--compare", "1", "2"], "Comparison: run 1"), (["--history"], "History of accuracy")] {
            let out = temporaryPath("report")
            let r = try runBenchbench(["report"] + arguments + ["--out", out, "--db", db])
            #expect(r.status == 0, "\(arguments): \(r.stderr)")
            #expect(r.stdout.contains("report: \(out)/index.html"))
            let html = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
            #expect(html.contains(expected) && !html.contains("http"))
        }
        let md = temporaryPath("md")
        #expect(try runBenchbench(["report", "1", "--format", "markdown", "--out", md, "--db", db]).status == 0)
        #expect(FileManager.default.fileExists(atPath: md + "/index.md"))
        let bad = try runBenchbench(["report", "--compare", "1", "--out", md, "--db", db])
        #expect(bad.status == 64 && bad.stderr.contains("--compare takes two runs"))
    }

    @Test(.enabled(if: chromiumInstalled || browserCheckRequired, "needs Debian's chromium (apt-get install chromium)"))
    func aRealBrowserLoadsTheReportFromDiskWithoutErrors() throws {
        #expect(chromiumInstalled, "BENCHBENCH_REQUIRE_BROWSER=1 but chromium is not installed")
        let out = temporaryPath("browser")
        #expect(try runBenchbench(["report", "--out", out, "--db", try database()]).status == 0)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/check-report-in-browser.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [script, out]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("loaded without errors"))
    }
}

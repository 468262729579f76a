import Foundation
import ResultsStore
import TestSupport
import Testing

let chromiumInstalled = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].contains { FileManager.default.isExecutableFile(atPath: $0) }

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

    @Test(.enabled(if: chromiumInstalled, "needs Debian's chromium (apt-get install chromium)"))
    func aRealBrowserLoadsTheReportFromDiskWithoutErrors() throws {
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

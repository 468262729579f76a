import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import ResultsStore
import TestSupport
import Testing
@testable import Comparison
@testable import Reporting

/// Checks a page is well-formed markup (the reports are written so that an XML parser accepts them).
final class WellFormed: NSObject, XMLParserDelegate {
    var error: Error?
    var elements = 0
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) { elements += 1 }
    func parser(_ parser: XMLParser, parseErrorOccurred error: Error) { self.error = error }

    static func check(_ html: String) -> (ok: Bool, elements: Int, error: String) {
        let parser = XMLParser(data: Data(html.utf8))
        let d = WellFormed()
        parser.delegate = d
        let ok = parser.parse()
        return (ok && d.error == nil, d.elements, "\(d.error.map { "\($0)" } ?? "") line \(parser.lineNumber)")
    }
}

@Suite(.serialized) struct ReportTests {
    static let hostile = "<script>alert(1)</script>"

    func builtRun() throws -> (StoreBuilder, Int64) {
        let s = try StoreBuilder()
        var trials = StoreBuilder.seeds([0.701, 0.722, 0.743]) + StoreBuilder.seeds([0.851, 0.862, 0.873], budget: "100")
            + StoreBuilder.seeds([0.911, 0.921, 0.931], budget: "all")
            + StoreBuilder.seeds([0.6012, 0.6134], method: Self.hostile)
        trials.append(StoreBuilder.Trial(method: "pseudo-label", budget: "10", failure: "training diverged \(Self.hostile) at step 7"))
        var episodic = StoreBuilder.Trial(method: "protonet", budget: "all")
        episodic.episodes = ("5-way 1-shot", 0.4567, 0.0123)
        trials.append(episodic)
        let kernels = [KernelBenchRecord(name: "gemm", shape: "256x256x784", unit: "GFLOP/s", reps: 7, min: 100, median: 119, max: 130)]
        return (s, try s.run(commit: "abcdef1234", trials: trials, kernels: kernels))
    }

    func outputFolder() -> String {
        Scratch.folder("report").path
    }

    @Test func aRunReportIsSelfContainedEscapedAndHoldsEveryCell() throws {
        let (s, id) = try builtRun()
        let data = try #require(try s.store.runData(id))
        let dir = outputFolder()
        var warnings: [String] = []
        let path = try ReportWriter(directory: dir).write(RunReport.document(data), warnings: &warnings)
        #expect(warnings.isEmpty, "\(warnings)")
        let html = try String(contentsOfFile: path, encoding: .utf8)
        let parsed = WellFormed.check(html)
        #expect(parsed.ok, "\(parsed.error)")
        #expect(parsed.elements > 100)
        // Self-contained: no URL of any kind, no script, the figures inline.
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<script") && !html.contains("<link"))
        #expect(html.components(separatedBy: "<svg").count - 1 >= 4)
        // Every cell's value (mean ± CI over seeds, in percent) is on the page.
        let cells = RunCells(data, metrics: ["accuracy"])
        #expect(cells.cells.count == 5)
        for cell in cells.cells.values {
            let text = Format.meanCI("accuracy", cell.aggregate.mean, cell.ci95)
            #expect(html.contains(text), "\(cell.key): \(text)")
        }
        #expect(html.contains("72.20 ± 5.22"), "hand-computed: mean 72.2, CI 4.302653 * 2.1 / sqrt 3")
        #expect(html.contains("45.67 ± 1.23"), "an episode cell with its stored CI")
        #expect(html.contains("class=\"best num\""))
        // Hostile text from the database shows as text.
        #expect(!html.contains(Self.hostile) && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("training diverged &lt;script&gt;"), "failed trials are visible with their reason")
        #expect(html.contains("OpenBLAS 0.3.21, core Zen") && html.contains("abcdef1234"))
        // Every figure's script renders again with gnuplot, on its own.
        let plots = dir + "/plots"
        let scripts = try FileManager.default.contentsOfDirectory(atPath: plots).filter { $0.hasSuffix(".gp") }
        #expect(scripts.count >= 4)
        for script in scripts {
            let svg = plots + "/" + script.replacingOccurrences(of: ".gp", with: ".svg")
            try FileManager.default.removeItem(atPath: svg)
            try Gnuplot.run(script: script, in: plots)
            #expect(FileManager.default.fileExists(atPath: svg), "\(script)")
            #expect(FileManager.default.fileExists(atPath: plots + "/" + script.replacingOccurrences(of: ".gp", with: ".dat")))
            let gp = try String(contentsOfFile: plots + "/" + script, encoding: .utf8)
            #expect(!gp.contains("<script"), "labels are cleaned before they reach gnuplot")
        }
    }

    /// Ranks tie where 95% intervals overlap: 1 + the methods whose whole interval lies above.
    @Test func leaderboardRanksTieOverlappingIntervals() {
        let r = Leaderboard.ranks([("a", 0.80, 0.01), ("b", 0.79, 0.02), ("c", 0.60, 0.01), ("d", 0.60, 0.01)])
        #expect(r == ["a": 1, "b": 1, "c": 3, "d": 3])
    }

    /// The leaderboard leads the report: each method's best protocol per budget (here knn beats
    /// linear for one method), grouped by regime, with a table of contents linking every section.
    @Test func aReportOpensWithContentsAndALeaderboard() throws {
        let s = try StoreBuilder()
        let trials = [(0.70, 0.75), (0.71, 0.76), (0.72, 0.77)].enumerated().map { seed, v in
            StoreBuilder.Trial(method: "supervised", seed: Int64(seed), accuracy: ["linear@10": v.0, "knn@10": v.1])
        } + [0.60, 0.61, 0.62].enumerated().map { seed, v in
            StoreBuilder.Trial(method: "rotation", seed: Int64(seed), accuracy: ["linear@10": v])
        }
        let id = try s.run(commit: "abcdef1234", trials: trials)
        let data = try #require(try s.store.runData(id))
        let doc = RunReport.document(data, regimes: ["supervised": "supervised", "rotation": "self-supervised"])
        let boardIndex = try #require(doc.blocks.firstIndex { if case .heading("Leaderboard", 2) = $0 { return true }; return false })
        let datasetIndex = try #require(doc.blocks.firstIndex { if case .heading(let t, 2) = $0 { return t.hasPrefix("Dataset") }; return false })
        #expect(boardIndex < datasetIndex)
        guard case .table(let board) = doc.blocks[boardIndex + 1] else { Issue.record("no leaderboard table"); return }
        #expect(board.header == ["method", "regime", "10"])
        #expect(board.rows.map { $0[0].text } == ["supervised", "rotation"])
        // 3 seeds 1 point apart: ± 4.303 x 1 / sqrt 3 = 2.48 points; the intervals do not overlap.
        #expect(board.rows[0][2].text == "#1 76.00 ± 2.48 knn", "\(board.rows[0][2].text)")
        #expect(board.rows[1][1].text == "self-supervised" && board.rows[1][2].text == "#2 61.00 ± 2.48 linear", "\(board.rows[1][2].text)")
        var warnings: [String] = []
        let html = try String(contentsOfFile: try ReportWriter(directory: outputFolder()).write(doc, warnings: &warnings), encoding: .utf8)
        #expect(WellFormed.check(html).ok)
        // Every link of the contents names a heading's id.
        let links = html.components(separatedBy: "href=\"#").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        #expect(links.contains("leaderboard") && links.count == doc.outline.count)
        for link in links { #expect(html.contains("id=\"\(link)\""), "\(link)") }
    }

    @Test func markdownHoldsTheSameTables() throws {
        let (s, id) = try builtRun()
        let data = try #require(try s.store.runData(id))
        let dir = outputFolder()
        var warnings: [String] = []
        let path = try ReportWriter(directory: dir, format: .markdown).write(RunReport.document(data), warnings: &warnings)
        let md = try String(contentsOfFile: path, encoding: .utf8)
        #expect(path.hasSuffix("index.md"))
        #expect(md.contains("| method | 10 | 100 | all |"))
        #expect(md.contains("**★ 72.20 ± 5.22**") && md.contains("92.10 ± 2.48"))
        #expect(md.contains("&lt;script&gt;") && !md.contains(Self.hostile))
        #expect(md.contains("![fashion-mnist: native accuracy vs labels per class](plots/accuracy-fashion-mnist-native.svg)"))
    }

    @Test func comparisonAndHistoryReports() throws {
        let s = try StoreBuilder()
        let a = try s.run(commit: "c1", trials: StoreBuilder.seeds([0.70, 0.72, 0.74]) + [StoreBuilder.Trial(method: "mixmatch", failure: "boom")])
        let b = try s.run(commit: "c2", trials: StoreBuilder.seeds([0.75, 0.78, 0.76]) + [StoreBuilder.Trial(method: "mixmatch", budget: "10", failure: "boom")])
        let c = Comparison(a: try #require(try s.store.runData(a)), b: try #require(try s.store.runData(b)))
        let dir = outputFolder()
        var warnings: [String] = []
        let html = try String(contentsOfFile: try ReportWriter(directory: dir).write(CompareReport.document(c), warnings: &warnings), encoding: .utf8)
        #expect(WellFormed.check(html).ok)
        #expect(html.contains("class=\"improved\"") && html.contains("+4.33"))
        let runs = try s.store.runs().compactMap { try s.store.runData($0.id!) }
        let h = History(runs: runs, metric: "accuracy", commitRank: ["c1": 0, "c2": 1])
        let dir2 = outputFolder()
        let page = try String(contentsOfFile: try ReportWriter(directory: dir2).write(HistoryReport.document(h), warnings: &warnings), encoding: .utf8)
        #expect(WellFormed.check(page).ok && page.contains("<svg") && page.contains("76.33"))
        #expect(warnings.isEmpty, "\(warnings)")
    }

    @Test func svgFromGnuplotIsMadeSafeToInline() throws {
        let svg = """
            <?xml version="1.0"?>
            <svg viewBox="0 0 10 10" xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
            <defs><path id='gpPt0' d='M0,0'/></defs><use xlink:href='#gpPt0'/><script>alert(1)</script><g onclick="x()"></g></svg>
            """
        let inline = try #require(SVGInline(svg, idPrefix: "fig"))
        #expect(inline.markup.hasPrefix("<svg") && !inline.markup.contains("http") && !inline.markup.contains("script") && !inline.markup.contains("onclick"))
        #expect(inline.markup.contains("id='fig-gpPt0'") && inline.markup.contains("href='#fig-gpPt0'"))
        #expect(SVGInline("<svg><image href='https://example.com/x.png'/></svg>", idPrefix: "f") == nil)
        #expect(HTML.escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;")
    }
}

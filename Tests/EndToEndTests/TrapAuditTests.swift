import Foundation
import Testing

/// Every way the sources can stop the process (`precondition`, `fatalError`,
/// `preconditionFailure`, `try!`, forced casts) must say, in an `invariant:` comment on the line
/// above, why user input cannot reach it; user input gets errors instead (BadInputTests).
@Suite struct TrapAuditTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources").path

    @Test func everyTrapInTheSourcesIsJustified() throws {
        let pattern = try NSRegularExpression(pattern: #"\b(precondition|fatalError|preconditionFailure)\(|\btry!|\bas! "#)
        var sites = 0
        var unjustified: [String] = []
        let files = FileManager.default.enumerator(atPath: Self.sources)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        for file in files.sorted() {
            let lines = try String(contentsOfFile: Self.sources + "/" + file, encoding: .utf8).components(separatedBy: "\n")
            for (i, line) in lines.enumerated() {
                let code = line.components(separatedBy: "//").first ?? line
                guard pattern.firstMatch(in: code, range: NSRange(code.startIndex..., in: code)) != nil else { continue }
                sites += 1
                let above = i > 0 ? lines[i - 1] : ""
                if !above.contains("// invariant:") && !line.contains("// invariant:") { unjustified.append("\(file):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))") }
            }
        }
        #expect(sites > 0, "no sources found at \(Self.sources)")
        #expect(unjustified.isEmpty, "traps without an invariant comment:\n\(unjustified.joined(separator: "\n"))")
    }
}

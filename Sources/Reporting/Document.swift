import Foundation

/// A report as content, before it is HTML or markdown: both renderers read the same blocks, so
/// the two formats always hold the same tables.
public struct Document: Sendable {
    public var title: String
    public var blocks: [Block]

    public init(title: String, blocks: [Block] = []) { (self.title, self.blocks) = (title, blocks) }
}

public enum Block: Sendable {
    case heading(String, level: Int)
    case paragraph(String)
    /// Label: value lines (a run's header).
    case facts([(String, String)])
    case table(ReportTable)
    case figure(Figure)
    /// A table of contents: links to the headings (levels 2 and 3) after it.
    case contents
}

extension Document {
    /// Level-2 and level-3 headings, each with an anchor unique in the document.
    var outline: [(text: String, level: Int, anchor: String)] {
        var used: [String: Int] = [:]
        return blocks.compactMap { block in
            guard case .heading(let text, let level) = block, level == 2 || level == 3 else { return nil }
            return (text, level, Document.anchor(text, &used))
        }
    }

    /// A heading's anchor: lower case, letters and digits, `-` between words; a repeat gets `-2`, `-3`.
    static func anchor(_ text: String, _ used: inout [String: Int]) -> String {
        var base = ""
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber { base.append(ch) } else if base.last != "-" { base.append("-") }
        }
        base = base.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        if base.isEmpty { base = "section" }
        let n = (used[base] ?? 0) + 1
        used[base] = n
        return n == 1 ? base : "\(base)-\(n)"
    }
}

public struct ReportTable: Sendable {
    public var caption: String
    public var header: [String]
    public var rows: [[ReportCell]]

    public init(caption: String, header: [String], rows: [[ReportCell]] = []) { (self.caption, self.header, self.rows) = (caption, header, rows) }
}

/// A table cell: text and, optionally, what it means (drawn as a colour in HTML, a marker in markdown).
public struct ReportCell: Sendable, ExpressibleByStringInterpolation {
    public enum Mark: String, Sendable {
        case best, improved, worsened, unchanged, notComparable = "not-comparable", failure, muted
    }

    public var text: String
    public var mark: Mark?
    /// Shown on hover in HTML (e.g. a test's statistics).
    public var title: String?

    public init(_ text: String, mark: Mark? = nil, title: String? = nil) { (self.text, self.mark, self.title) = (text, mark, title) }
    public init(stringLiteral value: String) { self.init(value) }
}

import Foundation

/// Writes a `Document` to a folder: `index.html` (one self-contained file: inline CSS and SVG,
/// nothing fetched) or `index.md`, and `plots/NAME.gp|.dat|.svg` for every figure.
public struct ReportWriter {
    public enum Format: String, CaseIterable, Sendable { case html, markdown }

    public var directory: String
    public var format: Format

    public init(directory: String, format: Format = .html) { (self.directory, self.format) = (directory, format) }

    /// Returns the path of the written index; a figure gnuplot cannot draw is replaced by a note
    /// saying why (its .gp and .dat are still written), and listed in `warnings`.
    @discardableResult
    public func write(_ doc: Document, warnings: inout [String]) throws -> String {
        let plots = directory + "/plots"
        do { try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true) } catch {
            throw OutputError(message: "\(directory): cannot write the report there: cannot create the folder (\(error.localizedDescription))")
        }
        var svgs: [String: Result<SVGInline, Error>] = [:]
        for case .figure(let f) in doc.blocks {
            svgs[f.name] = Result {
                let text = try f.render(in: plots)
                guard let svg = SVGInline(text, idPrefix: f.name) else { throw Gnuplot.Failure(message: "\(plots)/\(f.name).svg: not an SVG fit to inline") }
                return svg
            }
            if case .failure(let e) = svgs[f.name]! { warnings.append("\(e)") }
        }
        let path = directory + (format == .html ? "/index.html" : "/index.md")
        let text = format == .html ? HTMLRenderer.render(doc, svgs: svgs) : MarkdownRenderer.render(doc)
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw OutputError(message: "\(path): cannot write the report (\(error.localizedDescription))")
        }
        return path
    }
}

enum HTMLRenderer {
    static let css = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1d1d1f;line-height:1.4}
        h1{font-size:1.6rem;border-bottom:2px solid #333;padding-bottom:.3rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ccc}
        dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem}dl.facts dt{font-weight:600;color:#555}dl.facts dd{margin:0;font-family:ui-monospace,monospace;font-size:.9rem}
        table{border-collapse:collapse;margin:.3rem 0 1.2rem;font-size:.9rem}p.caption{font-weight:600;margin:1.2rem 0 0;color:#333}
        th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;white-space:nowrap}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
        td.best{font-weight:700;background:#e6f4ea}td.improved{background:#c8e6c9}td.worsened{background:#ffcdd2}td.unchanged{color:#666}
        td.not-comparable{background:#fff3cd}td.failure{background:#fde2e1;color:#a50e0e;white-space:normal;text-align:left}td.muted{color:#aaa}
        nav.contents ul{list-style:none;padding-left:0;columns:3 16rem;font-size:.9rem}nav.contents li.l3{padding-left:1.2rem}
        figure{margin:1rem 0}figure svg{width:760px;max-width:100%;height:auto}figcaption{font-size:.85rem;color:#555}p.note{color:#a50e0e}
        """

    static func render(_ doc: Document, svgs: [String: Result<SVGInline, Error>]) -> String {
        var body: [HTML] = []
        let outline = doc.outline
        var next = 0   // the outline entry of the next level-2/3 heading
        for block in doc.blocks {
            switch block {
            case .heading(let text, let level):
                var attributes: [(String, String)] = []
                if (level == 2 || level == 3) && next < outline.count { attributes.append(("id", outline[next].anchor)); next += 1 }
                body.append(.el("h\(min(max(level, 1), 4))", attributes, text: text))
            case .contents:
                var items: [HTML] = []
                for entry in outline {
                    let link = HTML.el("a", [("href", "#\(entry.anchor)")], text: entry.text)
                    items.append(.el("li", [("class", "l\(entry.level)")], [link]))
                }
                if !items.isEmpty { body.append(.el("nav", [("class", "contents")], [.el("p", [("class", "caption")], text: "Contents"), .el("ul", [], items)])) }
            case .paragraph(let text): body.append(.el("p", text: text))
            case .facts(let pairs): body.append(.el("dl", [("class", "facts")], pairs.flatMap { [HTML.el("dt", text: $0.0), .el("dd", text: $0.1)] }))
            case .table(let t): body.append(table(t))
            case .figure(let f):
                let content: HTML
                switch svgs[f.name] {
                case .success(let svg)?: content = .svg(svg)
                case .failure(let e)?: content = .el("p", [("class", "note")], text: "figure not drawn: \(e)")
                case nil: content = .el("p", [("class", "note")], text: "figure not drawn")
                }
                body.append(.el("figure", [("id", "fig-\(f.name)")], [content, .el("figcaption", text: "\(f.title) — plots/\(f.name).gp, .dat, .svg")]))
            }
        }
        let page = HTML.el("html", [("lang", "en")], [
            .el("head", [], [.el("meta", [("charset", "utf-8")]), .el("title", text: doc.title), .el("style", text: css)]),
            .el("body", [], body),
        ])
        var out = "<!DOCTYPE html>\n"
        page.render(into: &out)
        return out + "\n"
    }

    static func table(_ t: ReportTable) -> HTML {
        var rows: [HTML] = [.el("tr", [], t.header.map { .el("th", text: $0) })]
        for row in t.rows {
            rows.append(.el("tr", [], row.map { cell in
                var attributes: [(String, String)] = []
                // Numbers right-aligned (a leading ★ marks the best), text left.
                let classes = [cell.mark?.rawValue, TextTable.isNumeric(cell.text.replacingOccurrences(of: "★ ", with: "")) ? "num" : nil].compactMap { $0 }
                if !classes.isEmpty { attributes.append(("class", classes.joined(separator: " "))) }
                if let title = cell.title { attributes.append(("title", title)) }
                return .el("td", attributes, text: cell.text)
            }))
        }
        return .el("div", [("class", "table")], [.el("p", [("class", "caption")], text: t.caption), .el("table", [], [.el("tbody", [], rows)])])
    }
}

enum MarkdownRenderer {
    static func render(_ doc: Document) -> String {
        var out: [String] = []
        for block in doc.blocks {
            switch block {
            case .heading(let text, let level): out.append(String(repeating: "#", count: min(max(level, 1), 4)) + " " + inline(text))
            case .contents:
                // Links by the anchors GitHub and most renderers give headings.
                let lines = doc.outline.map { String(repeating: "  ", count: $0.level - 2) + "- [\(inline($0.text))](#\($0.anchor))" }
                if !lines.isEmpty { out.append(lines.joined(separator: "\n")) }
            case .paragraph(let text): out.append(inline(text))
            case .facts(let pairs): out.append(pairs.map { "- **\(inline($0.0))**: \(inline($0.1))" }.joined(separator: "\n"))
            case .table(let t):
                var lines = ["**\(inline(t.caption))**", "", "| " + t.header.map(cell).joined(separator: " | ") + " |",
                             "|" + t.header.enumerated().map { $0.offset == 0 ? " --- " : " ---: " }.joined(separator: "|") + "|"]
                for row in t.rows { lines.append("| " + row.map { cell(marked($0)) }.joined(separator: " | ") + " |") }
                out.append(lines.joined(separator: "\n"))
            case .figure(let f): out.append("![\(inline(f.title))](plots/\(f.name).svg)")
            }
        }
        return out.joined(separator: "\n\n") + "\n"
    }

    /// Markdown has no colours: a cell's meaning becomes a marker.
    static func marked(_ c: ReportCell) -> String {
        switch c.mark {
        case .best?: return "**\(c.text)**"
        case .improved?: return "🟢 \(c.text)"
        case .worsened?: return "🔴 \(c.text)"
        case .failure?: return "❌ \(c.text)"
        case .notComparable?: return "⚠️ \(c.text)"
        default: return c.text
        }
    }

    /// Text that cannot break the table or turn into HTML: pipes, angle brackets, newlines escaped.
    static func cell(_ s: String) -> String { inline(s).replacingOccurrences(of: "|", with: "\\|") }

    static func inline(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\n", with: " ")
    }
}

/// A report that cannot be written where it was asked for (a folder that cannot be made or
/// written to): the command line exits 73 with its message.
public struct OutputError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

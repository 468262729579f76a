import Foundation

/// A plain-text table for terminals: columns padded to their widest cell, numbers right-aligned.
public struct TextTable {
    public var header: [String]
    public var rows: [[String]] = []

    public init(_ header: [String]) { self.header = header }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func render() -> String {
        let columns = max(header.count, rows.map(\.count).max() ?? 0)
        func cell(_ row: [String], _ i: Int) -> String { i < row.count ? row[i] : "" }
        let widths = (0..<columns).map { i in ([header] + rows).map { cell($0, i).count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            (0..<columns).map { i in
                let text = cell(row, i)
                let pad = String(repeating: " ", count: widths[i] - text.count)
                return i > 0 && TextTable.isNumeric(text) ? pad + text : text + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }

    static func isNumeric(_ text: String) -> Bool {
        guard let first = text.first else { return false }
        return first.isNumber || ((first == "-" || first == "+") && text.dropFirst().first?.isNumber == true)
    }
}

extension TextTable {
    /// A report table on a terminal: its caption above, marks kept as text.
    public static func render(_ t: ReportTable) -> String {
        var table = TextTable(t.header)
        for row in t.rows { table.add(row.map(\.text)) }
        return t.caption + "\n" + table.render()
    }
}

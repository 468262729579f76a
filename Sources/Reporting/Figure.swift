import Foundation

/// A figure as data, written as `NAME.dat` + `NAME.gp` and rendered by gnuplot to `NAME.svg`, so
/// a user can restyle it by editing the .gp file and running `gnuplot NAME.gp` in the plots folder.
public struct Figure: Sendable {
    public struct Point: Sendable {
        public var x: Double
        public var y: Double
        public var error: Double?
        public init(x: Double, y: Double, error: Double? = nil) { (self.x, self.y, self.error) = (x, y, error) }
    }

    public struct Series: Sendable {
        public var title: String
        public var points: [Point]
        public init(title: String, points: [Point]) { (self.title, self.points) = (title, points) }
    }

    public enum Kind: Sendable {
        /// One line per series over x (optionally log x, with named tics), error bars where given.
        case lines(logX: Bool, xTics: [(String, Double)]?)
        /// Grouped bars: one group per category, one bar per series (series' points indexed 0..<categories.count by x).
        case bars(categories: [String])
    }

    public var name: String
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var kind: Kind
    public var series: [Series]
    /// Limits autoscaling may not cross (accuracies stay within 0-100 even with wide error bars).
    public var yLimits: (Double?, Double?)

    public init(name: String, title: String, xLabel: String, yLabel: String, kind: Kind, series: [Series], yLimits: (Double?, Double?) = (nil, nil)) {
        (self.name, self.title, self.xLabel, self.yLabel, self.kind, self.series, self.yLimits) = (name, title, xLabel, yLabel, kind, series, yLimits)
    }

    /// Text for a gnuplot string: quotes, backslashes, control characters and markup
    /// characters are replaced (and the script turns enhanced text off), so a name from a suite file can neither end the string (and
    /// inject commands) nor turn into markup.
    static func label(_ s: String) -> String {
        String(s.unicodeScalars.map { c -> Character in
            if c.properties.isAlphabetic || c.properties.numericType != nil { return Character(c) }
            return " .,:;/()[]+-=%#@|!?*".unicodeScalars.contains(c) ? Character(c) : "_"
        })
    }

    static func number(_ x: Double) -> String { x.isFinite ? String(format: "%.6g", x) : "NaN" }

    /// The data file: for lines, one block per series (`index i`: x y error); for bars, one row per
    /// category (label, then value and error per series).
    public var data: String {
        var out = "# \(Figure.label(title))\n"
        switch kind {
        case .lines:
            for (i, s) in series.enumerated() {
                if i > 0 { out += "\n\n" }
                out += "# \(Figure.label(s.title))\n# x y error\n"
                for p in s.points { out += "\(Figure.number(p.x)) \(Figure.number(p.y)) \(Figure.number(p.error ?? 0))\n" }
            }
        case .bars(let categories):
            out += "# category" + series.map { " \"\(Figure.label($0.title))\" error" }.joined() + "\n"
            for (c, category) in categories.enumerated() {
                out += "\"\(Figure.label(category))\""
                for s in series {
                    let p = s.points.first { Int($0.x) == c }
                    out += " \(Figure.number(p?.y ?? .nan)) \(Figure.number(p?.error ?? 0))"
                }
                out += "\n"
            }
        }
        return out
    }

    /// Twelve colours that stay apart (ColorBrewer's Paired, reordered so neighbours differ), then
    /// with a point type and a dash pattern that change every twelve series: 35 methods on one
    /// figure remain distinguishable.
    static let palette = ["#1f78b4", "#e31a1c", "#33a02c", "#ff7f00", "#6a3d9a", "#b15928",
                          "#a6cee3", "#fb9a99", "#b2df8a", "#fdbf6f", "#cab2d6", "#000000"]

    static func style(_ i: Int) -> String {
        let points = [7, 5, 9, 11, 13, 1, 2, 3, 4, 6, 8, 10]
        return "lw 2 lc rgb '\(palette[i % palette.count])' pt \(points[(i + i / palette.count) % points.count]) ps 0.7 dt \(1 + (i / palette.count) % 5)"
    }

    /// The gnuplot script; it reads `NAME.dat` and writes `NAME.svg` beside itself.
    public var script: String {
        var lines = [
            "# \(Figure.label(title)): edit and run `gnuplot \(name).gp` in this folder to redraw \(name).svg",
            // Taller with many series, so the key beside the plot holds one line per series.
            "set terminal svg size 760,\(max(430, 120 + 17 * series.count)) dynamic font \"sans,11\" background \"white\"",
            "set termoption noenhanced",
            "set output '\(name).svg'",
            "set title \"\(Figure.label(title))\"",
            "set xlabel \"\(Figure.label(xLabel))\"",
            "set ylabel \"\(Figure.label(yLabel))\"",
            "set grid ytics lc rgb '#dddddd'",
            "set key outside right top",
            "set border 3",
            "set tics nomirror",
        ]
        if yLimits.0 != nil || yLimits.1 != nil {
            lines.append("set yrange [\(yLimits.0.map { "\(Figure.number($0))<*" } ?? "*"):\(yLimits.1.map { "*<\(Figure.number($0))" } ?? "*")]")
        }
        let fallback = series.isEmpty ? " NaN notitle" : ""
        switch kind {
        case .lines(let logX, let tics):
            if logX { lines.append("set logscale x") }
            if let tics { lines.append("set xtics (" + tics.map { "\"\(Figure.label($0.0))\" \(Figure.number($0.1))" }.joined(separator: ", ") + ")") }
            // Room around the points on a log axis (few budgets); a linear axis starts where the data does.
            lines.append(logX ? "set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05" : "set offsets 0, 0, graph 0.05, graph 0.05")
            let plots = series.enumerated().map { i, s in
                "'\(name).dat' index \(i) using 1:2:3 with yerrorlines \(Figure.style(i)) title \"\(Figure.label(s.title))\""
            }
            lines.append("plot" + (plots.isEmpty ? fallback : " " + plots.joined(separator: ", \\\n     ")))
        case .bars:
            lines += ["set style data histograms", "set style histogram errorbars gap 1 lw 1", "set style fill solid 0.7 border -1",
                      "set boxwidth 0.9", "set xtics rotate by -20"]
            if yLimits.0 == nil && yLimits.1 == nil { lines.append("set yrange [0:*]") }
            let plots = series.enumerated().map { i, s in
                "'\(name).dat' using \(2 + 2 * i):\(3 + 2 * i)\(i == 0 ? ":xtic(1)" : "") title \"\(Figure.label(s.title))\""
            }
            lines.append("plot" + (plots.isEmpty ? fallback : " " + plots.joined(separator: ", \\\n     ")))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes .dat and .gp into `directory` and runs gnuplot there; returns the SVG text.
    public func render(in directory: String) throws -> String {
        try data.write(toFile: "\(directory)/\(name).dat", atomically: true, encoding: .utf8)
        try script.write(toFile: "\(directory)/\(name).gp", atomically: true, encoding: .utf8)
        try Gnuplot.run(script: "\(name).gp", in: directory)
        return try String(contentsOfFile: "\(directory)/\(name).svg", encoding: .utf8)
    }
}

/// gnuplot as a program: found on the PATH, run in the plots folder.
public enum Gnuplot {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public static func run(script: String, in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gnuplot", script]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { throw Failure(message: "cannot start gnuplot (\(error.localizedDescription)); install gnuplot-nox") }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let reason = process.terminationStatus == 127 ? "gnuplot is not installed (apt-get install gnuplot-nox)" : stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(message: "\(directory)/\(script): \(reason)")
        }
    }
}

import DataCore
import Foundation
import TensorCore

/// Renders a grid of training samples (a row per class, `perClass` columns) through gnuplot,
/// to PNG or SVG by the file's extension, so a person can look at the data. The .gp script and
/// .dat matrix are written beside the image, so the figure can be restyled.
struct SampleGrid {
    var classes: Int
    var perClass: Int

    func render(_ d: Dataset, to path: String) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        guard ext == "png" || ext == "svg" else { throw DataError("--grid \(path): the file must end in .png or .svg") }
        let (c, h, w) = (d.imageShape[0], d.imageShape[1], d.imageShape[2])
        let shown = Array((d.classSplit?.novel ?? Array(0..<d.classCount)).prefix(classes))
        let gap = 2
        let (rows, cols) = (shown.count * (h + gap), perClass * (w + gap))
        var byClass = [Int: [Int]]()
        for (i, y) in d.trainLabels.enumerated() where byClass[Int(y), default: []].count < perClass { byClass[Int(y), default: []].append(i) }
        // Pixels back in [0, 1]; gaps hold 1, drawn as separator lines.
        var canvas = [Float](repeating: 1, count: rows * cols * c)
        d.trainImages.withUnsafeBufferPointer { x in
            for (r, cls) in shown.enumerated() {
                for (k, i) in (byClass[cls] ?? []).enumerated() {
                    for ch in 0..<c {
                        for yy in 0..<h {
                            for xx in 0..<w {
                                let v = x[((i * c + ch) * h + yy) * w + xx] * d.channelStd[ch] + d.channelMean[ch]
                                canvas[((r * (h + gap) + yy) * cols + k * (w + gap) + xx) * c + ch] = min(max(v, 0), 1)
                            }
                        }
                    }
                }
            }
        }
        let base = (path as NSString).deletingPathExtension
        var data = ""
        data.reserveCapacity(rows * cols * 12)
        for y in 0..<rows {
            for x in 0..<cols {
                let p = (y * cols + x) * c
                if c == 3 {
                    data += "\(x) \(rows - 1 - y) \(Int(canvas[p] * 255)) \(Int(canvas[p + 1] * 255)) \(Int(canvas[p + 2] * 255))\n"
                } else {
                    // Dark strokes on white, as a person reads them.
                    data += "\(x) \(rows - 1 - y) \(Int((1 - canvas[p]) * 255))\n"
                }
            }
        }
        try data.write(toFile: base + ".dat", atomically: true, encoding: .utf8)
        let terminal = ext == "png" ? "pngcairo size \(cols * 4),\(rows * 4)" : "svg size \(cols * 4),\(rows * 4)"
        let style = c == 3 ? "with rgbimage" : "using 1:2:3 with image"
        let script = """
        # \(d.name): \(shown.count) classes x \(perClass) training samples (benchbench data inspect --grid)
        set terminal \(terminal)
        set output '\(path)'
        unset key; unset tics; unset border; unset colorbox
        set margins 0, 0, 0, 0
        set size ratio -1
        set palette gray
        set cbrange [0:255]
        set xrange [-0.5:\(cols) - 0.5]; set yrange [-0.5:\(rows) - 0.5]
        plot '\(base).dat' \(style)

        """
        try script.write(toFile: base + ".gp", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gnuplot", base + ".gp"]
        let err = Pipe()
        process.standardError = err
        do { try process.run() } catch { throw DataError("--grid: cannot run gnuplot (install gnuplot-nox): \(error)") }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw DataError("--grid: gnuplot failed on \(base).gp: \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}

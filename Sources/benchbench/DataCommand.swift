import ArgumentParser
import DataCore
import Foundation
import TensorCore

/// `benchbench data inspect NAME`: what a dataset holds, so a person can check it.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Look at datasets.",
                                                    subcommands: [Inspect.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sizes, class counts, pixel statistics and the content hash of a dataset.")

        @Argument(help: "Dataset: fashion-mnist.")
        var name: String

        @OptionGroup var data: DataOptions

        func run() throws {
            let t0 = Date()
            let d = try data.load(name)
            let seconds = Date().timeIntervalSince(t0)
            print("dataset: \(d.name)  (loaded in \(String(format: "%.2f", seconds)) s)")
            print("hash: \(d.contentHash)")
            print("image shape: \(d.imageShape.map(String.init).joined(separator: " x "))  (C x H x W)")
            print("train: \(d.trainLabels.count) images, test: \(d.testLabels.count) images, \(d.classCount) classes")
            print("horizontal flip keeps the class: \(d.allowsHorizontalFlip ? "yes" : "no")")
            for (name, t) in [("train", d.trainImages), ("test", d.testImages)] {
                let s = PixelStatistics(t)
                print(String(format: "%@ pixels (standardised): mean %.4f, std %.4f, min %.3f, max %.3f", name, s.mean, s.std, s.min, s.max))
            }
            print("")
            let width = max(5, d.classNames.map(\.count).max() ?? 5)
            print("class".padding(toLength: width + 6, withPad: " ", startingAt: 0) + "  train   test")
            for (c, name) in d.classNames.enumerated() {
                let label = "\(c)".padding(toLength: 4, withPad: " ", startingAt: 0) + "  " + name
                print(label.padding(toLength: width + 6, withPad: " ", startingAt: 0)
                      + String(format: "  %5d  %5d", d.trainClassCounts[c], d.testClassCounts[c]))
            }
        }
    }
}

/// Where datasets are read from; shared by every command that loads one.
struct DataOptions: ParsableArguments {
    @Option(help: "Folder with the dataset's files (default: $BENCHBENCH_DATA, then where Debian's packages install them).")
    var dataDir: String?

    func load(_ name: String) throws -> Dataset {
        switch name {
        case "fashion-mnist": return try DatasetSource.fashionMNIST(dataDir: dataDir)
        default: throw ValidationError("unknown dataset '\(name)'; available: fashion-mnist")
        }
    }
}

struct PixelStatistics {
    var mean = 0.0, std = 0.0, min = Double.infinity, max = -Double.infinity

    init(_ t: Tensor) {
        var s = 0.0, s2 = 0.0
        t.withUnsafeBufferPointer { p in
            for v in p {
                let x = Double(v)
                s += x; s2 += x * x
                if x < min { min = x }
                if x > max { max = x }
            }
        }
        let n = Double(Swift.max(t.count, 1))
        mean = s / n
        std = Swift.max(s2 / n - mean * mean, 0).squareRoot()
    }
}

import ArgumentParser
import DataCore
import Evaluation
import Foundation
import TensorCore

/// `benchbench data inspect NAME`: what a dataset holds, so a person can check it.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Look at datasets.",
                                                    subcommands: [Inspect.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sizes, class counts, pixel statistics and the content hash of a dataset.")

        @Argument(help: "Dataset: fashion-mnist, glyphs, glyphs-color, glyph-motion, idx (with --idx-files).")
        var name: String

        @Option(help: "Few-shot episodes for the pixel-space nearest-class-mean baseline (datasets with a class split).")
        var episodes = 600

        @Option(help: "Also render a grid of samples (a row per class) to this .png or .svg file, through gnuplot.")
        var grid: String?

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
            for (name, t) in [("train", d.trainImages), ("test", d.testImages)] where t.count > 0 {
                let s = PixelStatistics(t)
                print(String(format: "%@ pixels (standardised): mean %.4f, std %.4f, min %.3f, max %.3f", name, s.mean, s.std, s.min, s.max))
            }
            print("")
            if let split = d.classSplit {
                print("few-shot classes: \(split.base.count) base, \(split.validation.count) validation, \(split.novel.count) novel")
                let way = min(5, split.novel.count)
                let smallest = split.novel.map { d.trainClassCounts[$0] }.min() ?? 0
                for shot in [1, 5] where way >= 2 && smallest >= shot + 15 {
                    let sampler = try EpisodeSampler(labels: d.trainLabels, classes: split.novel, way: way, shot: shot, query: 15,
                                                     seed: 0, datasetHash: d.contentHash)
                    let r = FewShot.nearestMeanAccuracy(features: d.trainImages.flattened(), sampler: sampler, count: episodes)
                    print("pixel-space nearest class mean, novel classes, \(way)-way \(shot)-shot: \(r)")
                }
                print("")
            }
            if let grid {
                try SampleGrid(classes: 10, perClass: 12).render(d, to: grid)
                print("sample grid: \(grid) (gnuplot script and data beside it)\n")
            }
            guard d.classCount <= 50 else {
                print("(\(d.classCount) classes: per-class counts left out; \(PixelStatistics.countSummary(d.trainClassCounts)))")
                return
            }
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

    @Option(help: "Dataset 'idx': four IDX files (gzipped or not), comma-separated: train images, train labels, test images, test labels.")
    var idxFiles: String?

    @Option(help: "Dataset 'idx': few-shot class split as base,validation,novel class counts (classes taken in label order).")
    var classSplit: String?

    @Flag(help: "Dataset 'idx': a horizontal flip keeps an image in its class.")
    var flips = false

    /// The dataset `name` with these options, as a suite file would name it.
    func spec(_ name: String) throws -> DatasetSpec {
        guard let kind = DatasetSpec.Kind(rawValue: name) else {
            throw ValidationError("unknown dataset '\(name)'; available: \(DatasetSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var split: [Int]?
        if let classSplit {
            split = classSplit.split(separator: ",").compactMap { Int($0) }
            guard split?.count == 3 else { throw ValidationError("--class-split '\(classSplit)': expected three counts base,validation,novel") }
        }
        let spec = DatasetSpec(kind: kind, idxFiles: (idxFiles ?? "").split(separator: ",").map(String.init), classSplit: split, flips: flips)
        do { try spec.validate() } catch let e as DataError {
            throw ValidationError(kind == .idx && spec.idxFiles.count != 4 ? "dataset 'idx' needs --idx-files TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS (got \(spec.idxFiles.count) paths)" : e.message)
        }
        return spec
    }

    func load(_ name: String) throws -> Dataset { try spec(name).load(dataDir: dataDir) }
}

extension PixelStatistics {
    /// How many classes have how many training images, e.g. "1,500 classes have 20 training
    /// images, 100 have none" (a list like "0/20" read as a fraction).
    static func countSummary(_ counts: [Int]) -> String {
        let groups = Dictionary(grouping: counts, by: { $0 }).map { (images: $0.key, classes: $0.value.count) }.sorted { $0.classes > $1.classes }
        let parts = groups.enumerated().map { i, g -> String in
            let images = g.images == 0 ? "none" : "\(g.images) training image\(g.images == 1 ? "" : "s")"
            return i == 0 ? "\(g.classes) class\(g.classes == 1 ? "" : "es") \(g.classes == 1 ? "has" : "have") \(images)" : "\(g.classes) \(g.classes == 1 ? "has" : "have") \(images)"
        }
        return parts.joined(separator: ", ")
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

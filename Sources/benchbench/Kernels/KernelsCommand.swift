import ArgumentParser
import Foundation
import DataCore
import Methods
import ResultsStore
import Suite
import TensorCore

/// `benchbench kernels`: kernel throughput and whole training steps, as a table or JSON.
struct Kernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time GEMM, convolution, memory-bound kernels and whole training steps.")

    @Option(help: "Threads the engine splits kernels and GEMMs across (default: all cores).")
    var threads: Int?

    @Option(help: "Timed repetitions per kernel (the table shows their min / median / max).")
    var repetitions = 7

    @Flag(help: "A few small shapes and short timings (for smoke tests).")
    var quick = false

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Only the groups named (comma-separated): gemm, gemm-train, conv, memory, augment, probe (the linear probe's objective), train (MLP and CNN steps), train-mlp, train-cnn, train-conv4, train-fixmatch, train-maml, train-fomaml (those three: the methods' own steps on conv4), profiler.")
    var only: String?

    @Flag(help: "After timing, print where the training steps spend their time, per kernel.")
    var breakdown = false

    @Flag(help: "Print only; do not store the table in the results database.")
    var noStore = false

    @OptionGroup var store: StoreOptions

    static let groups = ["gemm", "gemm-train", "conv", "memory", "augment", "probe", "train", "profiler"]
    static let extraGroups = ["train-mlp", "train-cnn", "train-conv4", "train-fixmatch", "train-maml", "train-fomaml"]

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if repetitions < 1 { throw ValidationError("--repetitions must be at least 1, got \(repetitions)") }
        for g in selectedGroups where !(Kernels.groups + Kernels.extraGroups).contains(g) {
            throw ValidationError("--only: unknown group '\(g)'; expected one of \((Kernels.groups + Kernels.extraGroups).joined(separator: ", "))")
        }
    }

    /// The training steps a group times.
    static func trainingSteps(_ group: String) throws -> [TrainingBenchmark] {
        switch group {
        case "train": return [.mlp(), .cnn()]
        case "train-mlp": return [.mlp()]
        case "train-cnn": return [.cnn()]
        case "train-conv4": return [.conv4()]
        case "train-fixmatch": return [try .fixmatch()]
        case "train-maml": return [try .maml()]
        case "train-fomaml": return [try .fomaml()]
        default: return []
        }
    }

    /// Whether augmentation keeps up with FixMatch: the time a step's views take at the `augment`
    /// rows' rates (weak: its 64 labeled and 448 unlabeled images; strong: the 448 unlabeled), as
    /// a share of the `train-fixmatch` step's time, which includes them (the trainer augments in
    /// line, then steps). Nil unless both groups ran. Min pairs the fastest augmentation with the
    /// slowest step, max the reverse.
    static func fixmatchAugmentationShare(_ results: [KernelResult]) -> KernelResult? {
        guard let weak = results.first(where: { $0.kernel == "augment_weak" }),
              let strong = results.first(where: { $0.kernel == "augment_strong" }),
              let step = results.first(where: { $0.kernel == "train-fixmatch" }) else { return nil }
        let config = FixMatch.Config()   // the step's own batch sizes (64 and 7 x 64)
        let (labeled, unlabeled) = (Double(config.batchSize), Double(config.batchSize * config.unlabeledRatio)), samples = labeled + unlabeled
        func share(_ weakRate: Double, _ strongRate: Double, _ stepRate: Double) -> Double {
            ((labeled + unlabeled) / weakRate + unlabeled / strongRate) / (samples / stepRate) * 100
        }
        return KernelResult(kernel: "fixmatch augmentation", shape: "\(Int(samples)) weak, \(Int(unlabeled)) strong a step", unit: "% of step", reps: step.reps,
                            min: share(weak.max, strong.max, step.min), median: share(weak.median, strong.median, step.median),
                            max: share(weak.min, strong.min, step.max))
    }

    var selectedGroups: [String] {
        only.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? Kernels.groups
    }

    func run() throws {
        let started = Date()
        Parallelism.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        let stopwatch = Stopwatch(repetitions: quick ? 3 : repetitions, minSeconds: quick ? 0.005 : 0.05,
                                  warmupSeconds: quick ? 0.005 : 0.1)
        let interactive = isatty(STDERR_FILENO) != 0
        let progress: (String) -> Void = { what in
            FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + "timing \(what)" + (interactive ? "" : "\n")).utf8))
        }
        let cases = KernelCases(stopwatch: stopwatch, quick: quick, progress: progress)
        var results: [KernelResult] = []
        // The machine's own ceiling, before the groups and again after them, the higher kept:
        // every other row is read as a fraction of it, and on a shared host one throttled moment
        // at the start printed every row against a fraction of the machine (seen on a 2-vCPU
        // EPYC: 116 GFLOP/s against 197-226 in the runs around it, a 512^3 GEMM at 152%).
        progress("fma ceiling")
        let ceilingBefore = FMACeiling.measure(threads: Parallelism.threads, stopwatch: stopwatch)
        for group in selectedGroups {
            switch group {
            case "gemm": results += cases.gemmSquare()
            case "gemm-train": results += try cases.gemmAtTrainingShapes()
            case "conv": results += cases.conv4()
            case "memory": results += cases.memoryBound()
            case "augment": results += cases.augmentation()
            case "probe": results += cases.linearProbe()
            case "profiler": results += try cases.profilerOverhead()
            // "train" and every extra group: the training steps `trainingSteps` names for it.
            default: results += try cases.trainingSteps(try Self.trainingSteps(group))
            }
        }
        progress("fma ceiling again")
        let ceilingAfter = FMACeiling.measure(threads: Parallelism.threads, stopwatch: stopwatch)
        if let ceiling = [ceilingBefore, ceilingAfter].compactMap({ $0 }).max(by: { $0.median < $1.median }) { results.insert(ceiling, at: 0) }
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        for i in results.indices where results[i].gflopPerUnit == nil && results[i].unit == "GFLOP/s" { results[i].gflopPerUnit = 1 }
        if let share = Self.fixmatchAugmentationShare(results) { results.append(share) }
        var report = KernelReport(cpu: BLASRuntime.cpuModel, blasCore: BLASRuntime.coreName,
                                  blasCoreForced: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"],
                                  threads: Parallelism.threads, results: results)
        if !noStore {
            // Stored like any result: a run of suite "kernels", one kernel_bench row per line.
            let db = try store.open()
            let git = GitState.current()
            let machine = try db.machineID(MachineInfo.current())
            var hash = ContentHash()
            hash.add(CommandLine.arguments.dropFirst().joined(separator: " "))
            let runID = try db.startRun(RunRecord(suite: "kernels", suiteSha: hash.hex, commit: git.commit, branch: git.branch, dirty: git.dirty,
                                                  machineId: machine, argv: CommandLine.arguments.joined(separator: " "), startedAt: started))
            try db.record(kernelBench: results.map { KernelBenchRecord(name: $0.kernel, shape: $0.shape, unit: $0.unit, reps: $0.reps,
                                                                        min: $0.min, median: $0.median, max: $0.max) }, runID: runID)
            try db.finishRun(runID, status: RunStatus.done)
            report.runID = runID
        }
        print(json ? report.json() : report.table())
        if breakdown {
            // The steps timed (the MLP, CNN and conv4 ones when none was).
            let groups = selectedGroups.filter { $0.hasPrefix("train") }
            print(try cases.breakdown(try (groups.isEmpty ? ["train", "train-conv4"] : groups).flatMap(Self.trainingSteps)))
        }
        if let id = report.runID, !json { FileHandle.standardError.write(Data("stored as run \(id) in \(store.path)\n".utf8)) }
    }
}

struct KernelReport: Codable {
    var cpu: String
    var blasCore: String
    var blasCoreForced: String?
    var threads: Int
    var results: [KernelResult]
    /// The run the table is stored under (nil with --no-store).
    var runID: Int64?

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // invariant: a report of strings and numbers always encodes
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    func table() -> String {
        var lines = ["cpu: \(cpu)", "blas core: \(blasCore)\(blasCoreForced.map { " (OPENBLAS_CORETYPE=\($0))" } ?? ""), GEMM: \(GEMMImplementation.current.rawValue), threads: \(threads) (the engine's; OpenBLAS single-threaded per call)", ""]
        // Each row's median as a share of the machine's FMA ceiling (where its FLOPs are counted).
        let ceiling = results.first { $0.kernel == FMACeiling.kernel }?.median
        let header = ["kernel", "shape", "unit", "min", "median", "max"] + (ceiling == nil ? [] : ["of peak"])
        let rows = results.map { r -> [String] in
            let cells = [r.kernel, r.shape, r.unit, format(r.min), format(r.median), format(r.max)]
            guard let ceiling else { return cells }
            return cells + [r.gflopPerUnit.map { String(format: "%.0f%%", r.median * $0 / ceiling * 100) } ?? ""]
        }
        let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i < 3 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                      : String(repeating: " ", count: widths[i] - c.count) + c
            }.joined(separator: "  ")
        }
        lines.append(line(header))
        lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        lines += rows.map(line)
        return lines.joined(separator: "\n")
    }

    private func format(_ v: Double) -> String {
        abs(v) >= 100 ? String(format: "%.0f", v) : String(format: "%.2f", v)
    }
}

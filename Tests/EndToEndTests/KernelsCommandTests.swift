import Foundation
@testable import benchbench
import ResultsStore
import TestSupport
import Testing

/// Runs the built `benchbench` binary as a user would.
func runBenchbench(_ arguments: [String], in directory: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    try runProgram([productsDirectory.appendingPathComponent("benchbench").path] + arguments, in: directory)
}

/// Runs a program (the first argument) with the rest as its arguments, capturing both outputs.
func runProgram(_ arguments: [String], in directory: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// A fresh path in a new temporary folder.
func temporaryPath(_ name: String) -> String {
    Scratch.folder("e2e").appendingPathComponent(name).path
}

/// The folder holding the built products (the test bundle sits beside them).
var productsDirectory: URL {
    let bundle = Bundle.main.bundleURL
    return bundle.lastPathComponent.hasSuffix(".xctest") ? bundle.deletingLastPathComponent() : bundle
}

@Suite struct KernelsCommandTests {
    /// The augmentation row: a step's weak views (64 + 448 images) and strong views (448) at the
    /// augment rows' rates, over the step's time (512 samples a step): 0.1 s + 0.1 s of a 1 s step
    /// is 20%; min and max pair the extremes (fastest augmentation with the slowest step).
    @Test func fixmatchAugmentationShareIsTheViewsTimeOverTheStepsTime() throws {
        func row(_ kernel: String, _ min: Double, _ median: Double, _ max: Double) -> KernelResult {
            KernelResult(kernel: kernel, shape: "", unit: "", reps: 3, min: min, median: median, max: max)
        }
        let rows = [row("augment_weak", 2_560, 5_120, 10_240), row("augment_strong", 2_240, 4_480, 8_960), row("train-fixmatch", 256, 512, 1_024)]
        let share = try #require(Kernels.fixmatchAugmentationShare(rows))
        #expect(share.unit == "% of step" && share.shape == "512 weak, 448 strong a step")
        #expect(abs(share.median - 20) < 1e-9 && abs(share.min - 5) < 1e-9 && abs(share.max - 80) < 1e-9)
        #expect(Kernels.fixmatchAugmentationShare(Array(rows.prefix(2))) == nil, "no row without the step")
    }

    @Test func quickJSONHasEveryGroupAndPositiveRates() throws {
        let db = temporaryPath("kernels.sqlite")
        let r = try runBenchbench(["kernels", "--quick", "--json", "--repetitions", "1", "--only", "gemm,conv,memory,probe,train", "--db", db])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let results = json?["results"] as? [[String: Any]] ?? []
        let kernels = Set(results.compactMap { $0["kernel"] as? String })
        #expect(kernels.isSuperset(of: ["gemm", "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight", "add", "sum", "probe_objective", "train-mlp", "train-cnn"]))
        for row in results {
            let (lo, mid, hi) = (row["min"] as? Double ?? -1, row["median"] as? Double ?? -1, row["max"] as? Double ?? -1)
            #expect(lo > 0 && lo <= mid && mid <= hi, "\(row)")
        }
        #expect((json?["blas_core"] as? String)?.isEmpty == false)
        // The same table is stored as kernel_bench rows of a "kernels" run.
        let store = try ResultsStore(path: db)
        let run = try #require(try store.runs().first)
        #expect(run.suite == "kernels" && run.status == "done" && json?["run_id"] as? Int == Int(run.id!))
        let stored = try store.kernelBench(run: run.id!)
        #expect(stored.count == results.count)
        for (row, s) in zip(results, stored) {
            #expect(row["kernel"] as? String == s.name && row["shape"] as? String == s.shape)
            #expect(abs((row["median"] as? Double ?? 0) - s.median) <= 1e-9 * s.median, "JSON prints what is stored")
        }
        #expect((json?["threads"] as? Int ?? 0) >= 1)
    }

    @Test func badOptionsGetAClearErrorAndNonZeroExit() throws {
        let r = try runBenchbench(["kernels", "--threads", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--threads must be at least 1"))
        let g = try runBenchbench(["kernels", "--only", "gemm,bogus"])
        #expect(g.status != 0)
        #expect(g.stderr.contains("unknown group 'bogus'"))
        #expect(!g.stderr.contains("Fatal error"))
    }

    /// A group `--only` accepts prints its row (train-fomaml was accepted and silently skipped once).
    @Test func theFirstOrderMAMLGroupPrintsItsRow() throws {
        let r = try runBenchbench(["kernels", "--quick", "--repetitions", "1", "--only", "train-fomaml", "--no-store"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("train-fomaml") && r.stdout.contains("conv4-64 4x5w1s15q"), "\(r.stdout)")
    }
}

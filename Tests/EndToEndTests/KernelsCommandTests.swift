import Foundation
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
    @Test func quickJSONHasEveryGroupAndPositiveRates() throws {
        let db = temporaryPath("kernels.sqlite")
        let r = try runBenchbench(["kernels", "--quick", "--json", "--repetitions", "1", "--only", "gemm,conv,memory,train", "--db", db])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let results = json?["results"] as? [[String: Any]] ?? []
        let kernels = Set(results.compactMap { $0["kernel"] as? String })
        #expect(kernels.isSuperset(of: ["gemm", "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight", "add", "sum", "train-mlp", "train-cnn"]))
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

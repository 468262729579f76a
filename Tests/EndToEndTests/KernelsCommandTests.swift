import Foundation
import Testing

/// Runs the built `benchbench` binary as a user would.
func runBenchbench(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let binary = productsDirectory.appendingPathComponent("benchbench")
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// The folder holding the built products (the test bundle sits beside them).
var productsDirectory: URL {
    let bundle = Bundle.main.bundleURL
    return bundle.lastPathComponent.hasSuffix(".xctest") ? bundle.deletingLastPathComponent() : bundle
}

@Suite struct KernelsCommandTests {
    @Test func quickJSONHasEveryGroupAndPositiveRates() throws {
        let r = try runBenchbench(["kernels", "--quick", "--json", "--repetitions", "1", "--only", "gemm,conv,memory,train"])
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
}

import CKernels
import Foundation
import TensorCore

/// One row of the kernel table: a kernel at a shape, its throughput over timed repetitions.
struct KernelResult: Codable {
    var kernel: String
    var shape: String
    var unit: String
    var reps: Int
    var min: Double
    var median: Double
    var max: Double
    /// GFLOP per unit of `unit` (1 for GFLOP/s, the FLOPs of a sample for a training step's
    /// samples/s), so the row can be read as a fraction of the FMA ceiling; nil when not counted.
    var gflopPerUnit: Double?
}

/// The machine's own FMA ceiling: every thread runs 12 independent FMA chains of the widest vectors
/// the CPU has (AVX-512, else AVX2), with no memory traffic. No kernel can beat it; a table read
/// on any machine says how close to it each kernel and step comes.
enum FMACeiling {
    static let kernel = "fma ceiling"

    static func measure(threads: Int, stopwatch: Stopwatch) -> KernelResult? {
        let width = Int(bb_fma_width())
        guard width > 0 else { return nil }
        let iterations = 1_000_000
        let gflop = Double(threads) * Double(iterations) * 12 * Double(width) * 2 * 1e-9
        // The loop is C in another module, returning a value built from its accumulators: it is
        // not elided.
        var r = stopwatch.result(kernel, "\(threads) threads x \(width * 32)-bit FMA", unit: "GFLOP/s", work: gflop) {
            DispatchQueue.concurrentPerform(iterations: threads) { _ in _ = bb_fma_loop(iterations) }
        }
        r.gflopPerUnit = 1
        return r
    }
}

/// Times a body: warm-up, then `repetitions` timed samples, each running the body enough times
/// to last at least `minSeconds` (so clock resolution and call overhead do not dominate).
struct Stopwatch {
    var repetitions: Int
    var minSeconds: Double
    var warmupSeconds: Double

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }

    /// Throughputs (work per second) of each repetition, sorted ascending.
    func rates(work: Double, _ body: () -> Void) -> [Double] {
        var calls = 0
        var spent = 0.0
        repeat { spent += Stopwatch.seconds(body); calls += 1 } while spent < warmupSeconds || calls < 2
        let perCall = spent / Double(calls)
        let inner = Swift.max(1, Int((minSeconds / Swift.max(perCall, 1e-9)).rounded(.up)))
        return (0..<repetitions).map { _ in
            let t = Stopwatch.seconds { for _ in 0..<inner { body() } }
            return work * Double(inner) / t
        }.sorted()
    }

    func result(_ kernel: String, _ shape: String, unit: String, work: Double, _ body: () -> Void) -> KernelResult {
        let r = rates(work: work, body)
        return KernelResult(kernel: kernel, shape: shape, unit: unit, reps: r.count,
                            min: r.first!, median: r[r.count / 2], max: r.last!)
    }
}

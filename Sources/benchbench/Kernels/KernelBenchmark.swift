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
}

/// Times a body: warm-up, then `repetitions` timed samples, each running the body enough times
/// to last at least `minSeconds` (so clock resolution and call overhead do not dominate).
struct Stopwatch {
    var repetitions: Int
    var minSeconds: Double
    var warmupSeconds: Double

    static func seconds(_ body: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
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

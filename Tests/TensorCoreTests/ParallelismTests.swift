import Foundation
import Testing
@testable import TensorCore

/// The engine's workers (`Parallelism.perform`, CKernels/pool.c): every index exactly once, from
/// one caller, from a job's own chunks, and from several threads at once; and the same results
/// as one thread.
@Suite(.serialized) struct ParallelismTests {
    /// How many times each index ran, counted under a lock (an index run twice at once counts 2).
    private final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var hits: [Int]
        init(_ count: Int) { hits = [Int](repeating: 0, count: count) }
        func hit(_ i: Int) { lock.withLock { hits[i] += 1 } }
        var counts: [Int] { lock.withLock { hits } }
    }

    private func counts(_ count: Int, _ perform: (Int, (Int) -> Void) -> Void) -> [Int] {
        let tally = Tally(count)
        perform(count, tally.hit)
        return tally.counts
    }

    @Test(arguments: [1, 2, 3, 4, 8])
    func everyIndexRunsOnceAtAnyThreadCount(threads: Int) {
        let saved = Parallelism.threads
        defer { Parallelism.threads = saved }
        Parallelism.threads = threads
        for count in [0, 1, 2, 3, 7, 64, 1000] {
            // Back to back, as a training step calls it, and after the workers have gone to sleep.
            for pause in [0.0, 0.002] {
                Thread.sleep(forTimeInterval: pause)
                #expect(counts(count, Parallelism.perform) == [Int](repeating: 1, count: count), "\(threads) threads, \(count) indices")
            }
        }
    }

    @Test func aJobsOwnCallsRunInlineAndComplete() {
        // A chunk of a job that calls perform again (a GEMM inside a convolution's chunk): run on
        // that thread, every inner index once per outer index.
        let inner = Tally(4 * 50)
        Parallelism.perform(4) { outer in
            Parallelism.perform(50) { i in inner.hit(outer * 50 + i) }
        }
        #expect(inner.counts == [Int](repeating: 1, count: 4 * 50))
    }

    @Test func callersOnSeveralThreadsAllComplete() {
        // Concurrent trials: one caller holds the workers, the others go through Dispatch.
        let callers = 6, count = 200
        let tally = Tally(callers * count)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for _ in 0..<20 {
                Parallelism.perform(count) { i in tally.hit(caller * count + i) }
            }
        }
        #expect(tally.counts == [Int](repeating: 20, count: callers * count))
    }

    /// `parallelRanges`: ranges that cover 0..<n once, at least `grain` long when there are
    /// several, at most `perThread` a thread, one (inline) on one thread.
    @Test(arguments: [1, 2, 3])
    func rangesCoverEveryIndexOnceInPiecesOfAtLeastTheGrain(threads: Int) {
        let saved = Parallelism.threads
        defer { Parallelism.threads = saved }
        Parallelism.threads = threads
        for (n, grain) in [(0, 1), (1, 1), (7, 1), (7, 3), (100, 1), (100, 30), (1000, 7)] {
            for perThread in [1, 4] {
                let lock = NSLock()
                var ranges: [Range<Int>] = []
                parallelRanges(n, grain: grain, perThread: perThread) { lo, hi in lock.withLock { ranges.append(lo..<hi) } }
                ranges.sort { $0.lowerBound < $1.lowerBound }
                let what = "\(threads) threads, n \(n), grain \(grain), \(perThread) a thread"
                #expect(ranges.flatMap { Array($0) } == Array(0..<n), "\(what): \(ranges)")
                #expect(ranges.count <= max(1, threads * perThread), "\(what)")
                if ranges.count > 1 { #expect(ranges.allSatisfy { $0.count >= grain }, "\(what): \(ranges)") }
                if threads == 1 { #expect(ranges.count == 1, "\(what)") }
            }
        }
    }

    @Test func resultsDoNotDependOnTheThreadCount() {
        // A chunked convolution (chunks taken by whichever worker is free, weight-gradient partials
        // added in chunk order) and split kernels: the same bits on one thread and on the workers.
        var rng = RNG(seed: 11)
        let g = ConvGeometry(input: [64, 64, 14, 14], weight: [64, 64, 3, 3], padding: (1, 1))
        let x = Tensor.randn(g.inputShape, rng: &rng), w = Tensor.randn(g.weightShape, rng: &rng), gy = Tensor.randn(g.outputShape, rng: &rng)
        let saved = Parallelism.threads
        defer { Parallelism.threads = saved }
        var outputs: [[Float]] = []
        for threads in [1, 2, 3] {
            Parallelism.threads = threads
            outputs.append(conv2d(x, w, g).scalars + conv2dBackwardData(gy, w, g).scalars + conv2dBackwardWeight(x, gy, g).scalars)
        }
        #expect(outputs[0].allSatisfy(\.isFinite) && outputs[0].contains { $0 != 0 })
        for o in outputs.dropFirst() { #expect(o.elementsEqual(outputs[0]) { $0.bitPattern == $1.bitPattern }) }
    }

    @Test func aFirstBlockDoesNotDependOnTheThreadCount() {
        // conv4's first block: the direct convolution (its output planes' moments made as it goes),
        // batch norm + ReLU + max pooling from them, and the gradients back to the weights; the
        // kernels split into ranges the threads take as they come (`parallelRanges`).
        var rng = RNG(seed: 12)
        let g = ConvGeometry(input: [40, 1, 28, 28], weight: [16, 1, 3, 3], padding: (1, 1))
        let x = Tensor.randn(g.inputShape, rng: &rng)
        let w = Tensor.randn(g.weightShape, rng: &rng).requiringGrad(), b = Tensor.randn([16], rng: &rng).requiringGrad()
        let gamma = Tensor.randn([16], rng: &rng).requiringGrad(), beta = Tensor.randn([16], rng: &rng).requiringGrad()
        let saved = Parallelism.threads
        defer { Parallelism.threads = saved }
        var outputs: [[Float]] = []
        for threads in [1, 2, 3] {
            Parallelism.threads = threads
            let moments = PlaneMoments()
            let y = batchNormReluMaxPool(conv2d(x, w, g, bias: b, moments: moments), gamma: gamma, beta: beta, moments: moments).output
            let grads = gradients(of: (y * y).sum(), wrt: [w, b, gamma, beta])
            outputs.append(y.scalars + grads.flatMap(\.scalars))
        }
        #expect(outputs[0].allSatisfy(\.isFinite) && outputs[0].contains { $0 != 0 })
        for o in outputs.dropFirst() { #expect(o.elementsEqual(outputs[0]) { $0.bitPattern == $1.bitPattern }) }
    }
}

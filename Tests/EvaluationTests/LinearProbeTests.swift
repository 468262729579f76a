import CKernels
import Foundation
import Testing
import TensorCore
@testable import Evaluation

@Suite struct LinearProbeTests {
    /// Mean cross-entropy + l2/2 |W|² and its gradient in Double, written out independently.
    func reference(_ x: [[Double]], _ y: [Int], _ w: [[Double]], _ b: [Double], l2: Double) -> (Double, [[Double]], [Double]) {
        let n = Double(x.count), k = b.count
        var gw = w.map { $0.map { l2 * $0 } }, gb = [Double](repeating: 0, count: k)
        var loss = 0.5 * l2 * w.flatMap { $0 }.map { $0 * $0 }.reduce(0, +)
        for (xi, yi) in zip(x, y) {
            let z = (0..<k).map { c in b[c] + zip(xi, w).map { $0 * $1[c] }.reduce(0, +) }
            let m = z.max()!
            let e = z.map { exp($0 - m) }, s = e.reduce(0, +)
            loss += (log(s) + m - z[yi]) / n
            for c in 0..<k {
                let p = e[c] / s - (c == yi ? 1 : 0)
                gb[c] += p / n
                for j in xi.indices { gw[j][c] += p * xi[j] / n }
            }
        }
        return (loss, gw, gb)
    }

    @Test func reachesTheOptimumOfASmallConvexProblem() {
        var rng = RNG(seed: 21)
        let x: [[Double]] = (0..<40).map { _ in (0..<3).map { _ in Double(rng.normal()) } }
        let y: [Int] = x.map { v in v[0] + 0.5 * v[1] + 0.3 * Double(rng.normal()) > 0.3 ? 0 : (v[2] > 0 ? 1 : 2) }
        let l2 = 0.1
        var probe = LinearProbe()
        probe.tolerance = 1e-6
        let fit = probe.fit(Tensor(shape: [40, 3], scalars: x.flatMap { $0 }.map(Float.init)), y.map(Int32.init), classes: 3, l2: Float(l2))
        let w = (0..<3).map { j in (0..<3).map { c in Double(fit.weight.scalars[j * 3 + c]) } }
        let b = fit.bias.scalars.map(Double.init)
        // The gradient, recomputed in Double, vanishes at the fitted parameters.
        let (_, gw, gb) = reference(x, y, w, b, l2: l2)
        let gradient = (gw.flatMap { $0 } + gb).map(abs).max()!
        #expect(gradient < 1e-4, "gradient at the fit: \(gradient)")
        // And the parameters match a long run of accelerated gradient descent in Double.
        var rw = [[Double]](repeating: [0, 0, 0], count: 3), rb = [0.0, 0, 0]
        var vw = rw, vb = rb
        for _ in 0..<4_000 {
            let lw = zip(rw, vw).map { zip($0, $1).map { $0 + 0.9 * $1 } }, lb = zip(rb, vb).map { $0 + 0.9 * $1 }
            let (_, g1, g2) = reference(x, y, lw, lb, l2: l2)
            vw = zip(vw, g1).map { zip($0, $1).map { 0.9 * $0 - 0.5 * $1 } }
            vb = zip(vb, g2).map { 0.9 * $0 - 0.5 * $1 }
            rw = zip(rw, vw).map { zip($0, $1).map(+) }
            rb = zip(rb, vb).map(+)
        }
        let difference = zip(w.flatMap { $0 } + b, rw.flatMap { $0 } + rb).map { abs($0 - $1) }.max()!
        #expect(difference < 1e-4, "parameters differ from the reference optimum by \(difference)")
    }

    @Test func chooseL2OnValidationAndScoreTest() {
        var rng = RNG(seed: 3)
        func blob(_ n: Int) -> (Tensor, [Int32]) {
            var values: [Float] = [], labels: [Int32] = []
            for i in 0..<n { let c = i % 2; values += [Float(c) * 3 + rng.normal(), rng.normal()]; labels.append(Int32(c)) }
            return (Tensor(shape: [n, 2], scalars: values), labels)
        }
        let (a, ya) = blob(40), (v, yv) = blob(40), (t, yt) = blob(200)
        let r = LinearProbe().evaluate(labeled: a, labels: ya, validation: v, validationLabels: yv, test: t, testLabels: yt, classes: 2)
        #expect(r.testAccuracy.accuracy > 0.85)
        #expect(LinearProbe().l2Grid.contains(r.fit.l2))
        // The path holds every fit, strongest L2 first, the chosen one among them; on a problem
        // this small each converges within the cap, and says so.
        #expect(r.path.map(\.l2) == LinearProbe().l2Grid.sorted(by: >))
        #expect(r.path.contains { $0.l2 == r.fit.l2 && $0.iterations == r.fit.iterations })
        #expect(r.path.allSatisfy { $0.converged && $0.gradientNorm <= LinearProbe().tolerance && $0.iterations < LinearProbe().maxIterations })
        // With the cap at 2 iterations a fit stops short of the tolerance and says so.
        var capped = LinearProbe()
        capped.maxIterations = 2
        let short = capped.fit(a, ya, classes: 2, l2: 1e-5)
        #expect(short.iterations == 2 && !short.converged)
    }

    /// Overlapping classes so that the L2 strength matters on validation.
    func noisyBlobs(_ n: Int, dims: Int = 6, rng: inout RNG) -> (Tensor, [Int32]) {
        var values: [Float] = [], labels: [Int32] = []
        for i in 0..<n {
            let c = i % 3
            for j in 0..<dims { values.append((j == c ? 1.2 : 0) + rng.normal()) }
            labels.append(Int32(c))
        }
        return (Tensor(shape: [n, dims], scalars: values), labels)
    }

    /// The chosen fit is the one with the best validation accuracy among fits at each L2 (scored
    /// here independently), and among equal scores the strongest L2.
    @Test func selectionIsTheBestValidationScoreTiesToTheStrongerPenalty() {
        var rng = RNG(seed: 17)
        let (a, ya) = noisyBlobs(30, rng: &rng), (v, yv) = noisyBlobs(60, rng: &rng), (t, yt) = noisyBlobs(60, rng: &rng)
        var probe = LinearProbe()
        probe.l2Grid = [1e-4, 1e-2, 1, 10, 100]
        let r = probe.evaluate(labeled: a, labels: ya, validation: v, validationLabels: yv, test: t, testLabels: yt, classes: 3)
        let (mean, std) = LinearProbe.statistics(a)
        let x = (a - mean) / std, vs = (v - mean) / std
        let scores = probe.l2Grid.map { l2 in (l2, LinearProbe.accuracy(probe.fit(x, ya, classes: 3, l2: l2), vs, yv, 3).accuracy) }
        let best = scores.map(\.1).max()!
        #expect(abs(r.validationAccuracy - best) < 1e-12, "\(scores)")
        #expect(r.fit.l2 == scores.filter { abs($0.1 - best) < 1e-12 }.map(\.0).max(), "ties go to the stronger L2: \(scores)")
        // Separable validation data: every L2 scores 1, so the strongest is kept.
        let (s, ys) = noisyBlobs(30, rng: &rng)
        let far = s * 0.01 + Tensor.oneHot(ys, classes: 3).reshaped([30, 3]).pad(toWidth: 6) * 50
        let tie = probe.evaluate(labeled: far, labels: ys, validation: far, validationLabels: ys, test: far, testLabels: ys, classes: 3)
        #expect(tie.validationAccuracy == 1 && tie.fit.l2 == 100)
    }

    /// Features are standardised with the labeled set's statistics: a per-feature change of units
    /// (scales from 1/1024 to 1024, shifts) leaves the choice and the scores unchanged (up to one
    /// borderline test point of Float32 rounding), and standardised features have mean 0 and
    /// variance 1 even where their spread is small.
    @Test func standardisationMakesUnitsIrrelevant() {
        var rng = RNG(seed: 5)
        let (a, ya) = noisyBlobs(45, rng: &rng), (v, yv) = noisyBlobs(30, rng: &rng), (t, yt) = noisyBlobs(90, rng: &rng)
        let scale = Tensor(shape: [1, 6], scalars: [1024, 1.0 / 1024, 1, 8, 1024, 4]), shift = Tensor(shape: [1, 6], scalars: [64, -2, 0, 1, 0, 8])
        func units(_ x: Tensor) -> Tensor { x * scale + shift }
        let plain = LinearProbe().evaluate(labeled: a, labels: ya, validation: v, validationLabels: yv, test: t, testLabels: yt, classes: 3)
        let scaled = LinearProbe().evaluate(labeled: units(a), labels: ya, validation: units(v), validationLabels: yv, test: units(t),
                                            testLabels: yt, classes: 3)
        #expect(plain.fit.l2 == scaled.fit.l2 && plain.validationAccuracy == scaled.validationAccuracy)
        #expect(abs(plain.testAccuracy.accuracy - scaled.testAccuracy.accuracy) <= 1.0 / 90 + 1e-12)
        let (mean, std) = LinearProbe.statistics(units(a))
        let z = ((units(a) - mean) / std)
        #expect(z.mean(axis: 0).scalars.allSatisfy { abs($0) < 1e-3 } && (z * z).mean(axis: 0).scalars.allSatisfy { abs($0 - 1) < 1e-3 })
        let constant = LinearProbe.statistics(Tensor(repeating: 3, shape: [4, 2]))
        #expect(constant.0.scalars == [3, 3] && constant.1.scalars == [1e-6, 1e-6])
    }

    /// From 8,192 rows the objective is summed in chunks of rows on several threads (one pass
    /// each); below, its classes are split across the threads (three passes). Its kernels take
    /// rows four at a time, classes four at a time and features eight at a time: at shapes that
    /// leave a remainder in each (and at features too few for one vector), on both paths (9,000
    /// and 8,195 rows: chunks; 4,097: the class split), its loss and gradient equal the Double
    /// reference written out above.
    @Test(arguments: [(9_000, 3, 3), (8_195, 37, 7), (4_097, 75, 10)])
    func objectiveMatchesTheReference(shape: (n: Int, d: Int, k: Int)) {
        var rng = RNG(seed: 8)
        let (n, d, k) = shape
        let features = Tensor.randn([n, d], rng: &rng)
        let labels = (0..<n).map { _ in Int32(rng.int(k)) }
        let theta = (0..<(d * k + k)).map { _ in Double(rng.normal()) * 0.3 }
        let objective = LogisticObjective(features, labels, classes: k, l2: 0.01)
        let (loss, gradient) = objective(theta)
        let scalars = features.scalars
        let x = (0..<n).map { i in (0..<d).map { Double(scalars[i * d + $0]) } }
        let w = (0..<d).map { j in (0..<k).map { theta[j * k + $0] } }
        let (rl, rw, rb) = reference(x, labels.map(Int.init), w, Array(theta[(d * k)...]), l2: 0.01)
        #expect(abs(loss - rl) < 1e-9 * max(1, abs(rl)))
        let expected = rw.flatMap { $0 } + rb
        #expect(zip(gradient, expected).map { abs($0 - $1) }.max()! < 1e-9)
    }
}

extension LinearProbeTests {
    /// The objective's three passes with the classes split three ways make the one-pass kernel's
    /// loss and gradient to the bit (each class's sums in one order), at shapes that leave a
    /// remainder in the rows' blocks and the features' vectors.
    @Test(arguments: [(13, 37, 7), (4, 8, 3), (9, 75, 10), (1, 5, 4)])
    func classSplitPassesEqualTheOnePassKernel(shape: (m: Int, d: Int, k: Int)) {
        var rng = RNG(seed: 9)
        let (m, d, k) = shape
        let x = (0..<(m * d)).map { _ in Float(rng.normal()) }, y = (0..<m).map { _ in Int32(rng.int(k)) }
        let wt = (0..<(k * d)).map { _ in Double(rng.normal()) * 0.3 }, b = (0..<k).map { _ in Double(rng.normal()) }
        let scale = 1 / Double(m + 3)
        var want = [Double](repeating: 0, count: d * k + k), scratch = [Double](repeating: 0, count: Int(BB_LOGISTIC_ROWS) * (d + k))
        let wantLoss = want.withUnsafeMutableBufferPointer { g in
            bb_logistic_rows(x, y, Int32(m), Int32(d), Int32(k), wt, b, scale, g.baseAddress!, g.baseAddress! + d * k, &scratch)
        }
        var got = [Double](repeating: 0, count: d * k + k), z = [Double](repeating: 0, count: m * k)
        var rows = [Double](repeating: 0, count: Int(BB_LOGISTIC_ROWS) * d)
        let cuts = [0, k / 3, (2 * k) / 3, k]
        for p in 0..<3 { bb_logistic_logits(x, Int32(m), Int32(d), Int32(k), wt, b, Int32(cuts[p]), Int32(cuts[p + 1]), &z, &rows) }
        let gotLoss = bb_logistic_residual(y, Int32(m), Int32(k), scale, &z)
        got.withUnsafeMutableBufferPointer { g in
            for p in [2, 0, 1] {
                bb_logistic_gradient(x, Int32(m), Int32(d), Int32(k), z, Int32(cuts[p]), Int32(cuts[p + 1]), g.baseAddress!,
                                     g.baseAddress! + d * k, &rows)
            }
        }
        #expect(gotLoss == wantLoss)
        #expect(got == want)
    }

    /// Below 8,192 rows the objective splits its classes across the threads: its loss and gradient
    /// are the same bits on 1, 2 and 3 threads.
    @Test func objectiveDoesNotDependOnTheThreadCount() {
        var rng = RNG(seed: 10)
        let (n, d, k) = (300, 29, 5)
        let features = Tensor.randn([n, d], rng: &rng)
        let labels = (0..<n).map { _ in Int32(rng.int(k)) }
        let theta = (0..<(d * k + k)).map { _ in Double(rng.normal()) * 0.3 }
        let objective = LogisticObjective(features, labels, classes: k, l2: 0.01)
        let saved = Parallelism.threads
        defer { Parallelism.threads = saved }
        var results: [(Double, [Double])] = []
        for threads in [1, 2, 3] {
            Parallelism.threads = threads
            results.append(objective(theta))
        }
        #expect(results.allSatisfy { $0.0 == results[0].0 && $0.1 == results[0].1 })
    }
}

private extension Tensor {
    /// [N, C] padded with zero columns to [N, width].
    func pad(toWidth width: Int) -> Tensor { concat([self, Tensor(zeros: [shape[0], width - shape[1]])], axis: 1) }
}

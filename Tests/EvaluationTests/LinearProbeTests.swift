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
    }
}

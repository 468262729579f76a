import DataCore
import Foundation
import NNCore
import TensorCore

/// The `linear` protocol: a multinomial logistic regression on frozen features, fitted to
/// convergence with L-BFGS, its L2 strength chosen on the validation split from a small grid,
/// features standardised with the labeled set's mean and deviation.
public struct LinearProbe {
    public var l2Grid: [Float] = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    public var maxIterations = 500
    /// Converged when the largest gradient entry is below this.
    public var tolerance: Float = 1e-5

    public init() {}

    public struct Fit {
        public var weight: Tensor      // [D, K]
        public var bias: Tensor        // [K]
        public var l2: Float
        public var iterations: Int
        public var gradientNorm: Float
        public var loss: Float
    }

    public struct Result {
        public var fit: Fit
        public var validationAccuracy: Double
        public var testAccuracy: AccuracyReport
    }

    /// Standardises with the labeled features' statistics, fits one model per L2 strength, keeps
    /// the one with the best validation accuracy and scores it on the test features.
    public func evaluate(labeled: Tensor, labels: [Int32], validation: Tensor, validationLabels: [Int32],
                         test: Tensor, testLabels: [Int32], classes: Int) -> Result {
        let (mean, std) = LinearProbe.statistics(labeled)
        let x = (labeled - mean) / std, v = (validation - mean) / std, t = (test - mean) / std
        var best: (Fit, Double)?
        for l2 in l2Grid {
            let fit = self.fit(x, labels, classes: classes, l2: l2)
            let acc = LinearProbe.accuracy(fit, v, validationLabels, classes).accuracy
            if best == nil || acc > best!.1 { best = (fit, acc) }
        }
        return Result(fit: best!.0, validationAccuracy: best!.1, testAccuracy: LinearProbe.accuracy(best!.0, t, testLabels, classes))
    }

    /// Per-feature mean and deviation ([1, D] each; deviations floored so constant features stay finite).
    public static func statistics(_ x: Tensor) -> (Tensor, Tensor) {
        noGrad {
            let mean = x.mean(axis: 0, keepDims: true)
            let c = x - mean
            let std = ((c * c).mean(axis: 0, keepDims: true) + 1e-8).sqrt()
            return (mean, std)
        }
    }

    static func accuracy(_ fit: Fit, _ x: Tensor, _ y: [Int32], _ classes: Int) -> AccuracyReport {
        let logits = noGrad { matmul(x, fit.weight) + fit.bias }
        let predicted = Evaluate.argmaxRows(logits)
        var right = [Int](repeating: 0, count: classes), total = right
        for (p, label) in zip(predicted, y) { total[Int(label)] += 1; if p == Int(label) { right[Int(label)] += 1 } }
        let n = total.reduce(0, +)
        return AccuracyReport(accuracy: n == 0 ? 0 : Double(right.reduce(0, +)) / Double(n),
                              perClass: zip(right, total).map { $1 == 0 ? 0 : Double($0) / Double($1) }, count: n)
    }

    /// Mean cross-entropy + l2/2 ||W||² and its gradient at the flat parameters (W then b).
    static func objective(_ x: Tensor, _ y: [Int32], classes: Int, l2: Float, _ theta: [Double]) -> (Double, [Double]) {
        let d = x.shape[1]
        let w = Tensor(shape: [d, classes], scalars: theta[0..<(d * classes)].map(Float.init)).requiringGrad()
        let b = Tensor(shape: [classes], scalars: theta[(d * classes)...].map(Float.init)).requiringGrad()
        let loss = softmaxCrossEntropy(logits: matmul(x, w) + b, labels: y) + (w * w).sum() * (l2 / 2)
        let g = gradients(of: loss, wrt: [w, b])
        return (Double(loss.item), (g[0].scalars + g[1].scalars).map(Double.init))
    }

    /// L-BFGS (memory 10) with a backtracking Armijo line search, from zero.
    public func fit(_ x: Tensor, _ y: [Int32], classes: Int, l2: Float) -> Fit {
        let d = x.shape[1], n = d * classes + classes
        var theta = [Double](repeating: 0, count: n)
        var (f, g) = LinearProbe.objective(x, y, classes: classes, l2: l2, theta)
        var s: [[Double]] = [], yy: [[Double]] = []
        var iterations = 0
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        while iterations < maxIterations && (g.map(Swift.abs).max() ?? 0) > Double(tolerance) {
            iterations += 1
            // Two-loop recursion for the search direction.
            var q = g
            var alphas: [Double] = []
            for (si, yi) in zip(s, yy).reversed() {
                let a = dot(si, q) / dot(yi, si)
                alphas.append(a)
                for k in 0..<n { q[k] -= a * yi[k] }
            }
            if let sl = s.last, let yl = yy.last {
                let gamma = dot(sl, yl) / dot(yl, yl)
                for k in 0..<n { q[k] *= gamma }
            }
            for ((si, yi), a) in zip(zip(s, yy), alphas.reversed()) {
                let beta = dot(yi, q) / dot(yi, si)
                for k in 0..<n { q[k] += si[k] * (a - beta) }
            }
            var direction = q.map { -$0 }
            var slope = dot(g, direction)
            if slope >= 0 { direction = g.map { -$0 }; slope = dot(g, direction); s.removeAll(); yy.removeAll() }
            var step = 1.0
            var accepted: (Double, [Double], [Double])?
            for _ in 0..<40 {
                let candidate = zip(theta, direction).map { $0 + step * $1 }
                let (fc, gc) = LinearProbe.objective(x, y, classes: classes, l2: l2, candidate)
                if fc <= f + 1e-4 * step * slope { accepted = (fc, gc, candidate); break }
                step *= 0.5
            }
            guard let (fn, gn, next) = accepted else { break }   // no decrease possible in float: converged as far as it goes
            let sk = zip(next, theta).map { $0 - $1 }, yk = zip(gn, g).map { $0 - $1 }
            if dot(sk, yk) > 1e-12 {
                s.append(sk); yy.append(yk)
                if s.count > 10 { s.removeFirst(); yy.removeFirst() }
            }
            (theta, f, g) = (next, fn, gn)
        }
        return Fit(weight: Tensor(shape: [d, classes], scalars: theta[0..<(d * classes)].map(Float.init)),
                   bias: Tensor(shape: [classes], scalars: theta[(d * classes)...].map(Float.init)),
                   l2: l2, iterations: iterations, gradientNorm: Float(g.map(Swift.abs).max() ?? 0), loss: Float(f))
    }
}

import CKernels
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
        /// Whether the largest gradient entry got below the tolerance (else the iteration cap or
        /// a line search that could not decrease the loss in Float's precision stopped it).
        public var converged: Bool
    }

    public struct Result {
        public var fit: Fit
        public var validationAccuracy: Double
        public var testAccuracy: AccuracyReport
        /// Every fit of the regularisation path, strongest L2 first: what the probe cost.
        public var path: [Fit]
    }

    /// Standardises with the labeled features' statistics, fits one model per L2 strength, keeps
    /// the one with the best validation accuracy and scores it on the test features.
    public func evaluate(labeled: Tensor, labels: [Int32], validation: Tensor, validationLabels: [Int32],
                         test: Tensor, testLabels: [Int32], classes: Int) -> Result {
        let (mean, std) = LinearProbe.statistics(labeled)
        let x = (labeled - mean) / std, v = (validation - mean) / std, t = (test - mean) / std
        var best: (Fit, Double)?
        var previous: Fit?
        var path: [Fit] = []
        // Strongest regularisation first, each fit starting from the previous optimum (the
        // regularisation path): the weak-L2 fits, the slow ones, start close to their answer.
        // Ties on validation keep the stronger L2.
        for l2 in l2Grid.sorted(by: >) {
            let fit = self.fit(x, labels, classes: classes, l2: l2, start: previous)
            previous = fit
            path.append(fit)
            let acc = LinearProbe.accuracy(fit, v, validationLabels, classes).accuracy
            if best == nil || acc > best!.1 { best = (fit, acc) }
        }
        return Result(fit: best!.0, validationAccuracy: best!.1, testAccuracy: LinearProbe.accuracy(best!.0, t, testLabels, classes), path: path)
    }

    /// Per-feature mean and deviation ([1, D] each), accumulated in Double; a deviation below 1e-6
    /// is raised to it so constant features stay finite (a floor added to the variance instead
    /// would leave features of small but real spread short of unit variance).
    public static func statistics(_ x: Tensor) -> (Tensor, Tensor) {
        let (n, d) = (x.shape[0], x.shape[1])
        var mean = [Double](repeating: 0, count: d), square = mean
        x.withUnsafeBufferPointer { p in
            for i in 0..<n { for j in 0..<d { mean[j] += Double(p[i * d + j]) } }
            for j in 0..<d { mean[j] /= Double(max(n, 1)) }
            for i in 0..<n { for j in 0..<d { let c = Double(p[i * d + j]) - mean[j]; square[j] += c * c } }
        }
        let std = square.map { Swift.max(($0 / Double(max(n, 1))).squareRoot(), 1e-6) }
        return (Tensor(shape: [1, d], scalars: mean.map(Float.init)), Tensor(shape: [1, d], scalars: std.map(Float.init)))
    }

    static func accuracy(_ fit: Fit, _ x: Tensor, _ y: [Int32], _ classes: Int) -> AccuracyReport {
        let logits = noGrad { matmul(x, fit.weight) + fit.bias }
        let predicted = logits.argmaxRows()
        var right = [Int](repeating: 0, count: classes), total = right
        for (p, label) in zip(predicted, y) { total[Int(label)] += 1; if p == Int(label) { right[Int(label)] += 1 } }
        let n = total.reduce(0, +)
        return AccuracyReport(accuracy: n == 0 ? 0 : Double(right.reduce(0, +)) / Double(n),
                              perClass: zip(right, total).map { $1 == 0 ? 0 : Double($0) / Double($1) }, count: n)
    }

    /// L-BFGS (memory 10) with a backtracking Armijo line search, from `start` (zero by default).
    public func fit(_ x: Tensor, _ y: [Int32], classes: Int, l2: Float, start: Fit? = nil) -> Fit {
        let d = x.shape[1], n = d * classes + classes
        let objective = LogisticObjective(x, y, classes: classes, l2: Double(l2))
        var theta = start.map { $0.weight.scalars.map(Double.init) + $0.bias.scalars.map(Double.init) } ?? [Double](repeating: 0, count: n)
        var (f, g) = objective(theta)
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
                let (fc, gc) = objective(candidate)
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
        let largest = g.map(Swift.abs).max() ?? 0
        return Fit(weight: Tensor(shape: [d, classes], scalars: theta[0..<(d * classes)].map(Float.init)),
                   bias: Tensor(shape: [classes], scalars: theta[(d * classes)...].map(Float.init)),
                   l2: l2, iterations: iterations, gradientNorm: Float(largest), loss: Float(f),
                   converged: largest <= Double(tolerance))
    }
}

/// Mean cross-entropy + l2/2 ||W||² of a multinomial logistic regression and its gradient, at
/// flat parameters (W as [D, K] row-major, then b), in Double throughout: Float sums over tens of
/// thousands of examples are noisier than the gradient tolerance, and L-BFGS then stalls in its
/// line search instead of converging.
///
/// The features are kept as the Float they arrive in (exact in Double, half the bytes) and read
/// four rows at a time, each row vector loaded once for four classes. From 8,192 rows the rows are
/// cut into one chunk per thread, each with its own partial loss and gradient made in one pass
/// (`bb_logistic_rows`). Below, the rows are one chunk, and for all but tiny problems its two
/// products split their classes across the threads instead, in three passes (logits,
/// softmax residual, gradient: `bb_logistic_logits`, `_residual`, `_gradient`; each class's sums
/// are its own, so the result is the one a single thread makes): a probe at 10 or 100 labels per
/// class ran on one core. With all of Fashion-MNIST's labels a probe makes thousands of
/// evaluations over 54,000 rows; two Double GEMMs with 10 columns over the whole matrix ran at
/// 6.6 GFLOP/s on 2 cores.
public struct LogisticObjective {
    let x: [Float]
    let y: [Int32]
    let n: Int, d: Int, k: Int
    let l2: Double

    public init(_ features: Tensor, _ labels: [Int32], classes: Int, l2: Double) {
        (n, d, k, y, self.l2) = (features.shape[0], features.shape[1], classes, labels, l2)
        x = features.scalars
    }

    public func callAsFunction(_ theta: [Double]) -> (Double, [Double]) {
        // The kernel reads the weights class by class: W transposed, [K, D].
        var wt = [Double](repeating: 0, count: d * k)
        for j in 0..<d { for c in 0..<k { wt[c * d + j] = theta[j * k + c] } }
        let bias = Array(theta[(d * k)...])
        // Rows split across the engine's threads, each with its own partial loss and gradient; or,
        // with rows for one chunk only, its classes.
        let chunks = max(1, min(Parallelism.threads, n / 4096))
        // (Not for an episode's head, five support rows: two hand-offs to the workers per
        // evaluation would cost more than its few microseconds of arithmetic.)
        let classParts = chunks == 1 && n * d * k >= 1 << 18 ? min(Parallelism.threads, k) : 1
        var partial = [(loss: Double, gradient: [Double])](repeating: (0, []), count: chunks)
        let lock = NSLock()
        Parallelism.perform(chunks) { c in
            let r = rows(n * c / chunks, n * (c + 1) / chunks, wt, bias, classParts: classParts)
            lock.lock(); partial[c] = r; lock.unlock()
        }
        var gt = partial[0].gradient
        var loss = partial[0].loss
        for p in partial.dropFirst() {
            loss += p.loss
            for j in gt.indices { gt[j] += p.gradient[j] }
        }
        // Back to theta's layout, with the L2 term (on the weights only).
        var gradient = [Double](repeating: 0, count: d * k + k)
        for j in 0..<d {
            for c in 0..<k {
                let w = theta[j * k + c]
                gradient[j * k + c] = gt[c * d + j] + l2 * w
                loss += 0.5 * l2 * w * w
            }
        }
        for c in 0..<k { gradient[d * k + c] = gt[d * k + c] }
        return (loss, gradient)
    }

    /// The data term of rows lo..<hi: its share of the mean cross-entropy, and of the gradient as
    /// [K, D] weights (transposed) then K biases; the classes split `classParts` ways across the
    /// engine's threads (1: on this thread).
    private func rows(_ lo: Int, _ hi: Int, _ wt: [Double], _ bias: [Double], classParts parts: Int) -> (loss: Double, gradient: [Double]) {
        var gradient = [Double](repeating: 0, count: d * k + k)
        guard parts > 1 else {
            // One pass, each block of rows widened once for both products.
            var scratch = [Double](repeating: 0, count: Int(BB_LOGISTIC_ROWS) * (d + k))
            let loss = x.withUnsafeBufferPointer { xp in
                y.withUnsafeBufferPointer { yp in
                    gradient.withUnsafeMutableBufferPointer { g in
                        // invariant: a probe has rows, features and classes, so none of these buffers is empty
                        bb_logistic_rows(xp.baseAddress! + lo * d, yp.baseAddress! + lo, Int32(hi - lo), Int32(d), Int32(k), wt, bias,
                                         1 / Double(max(n, 1)), g.baseAddress!, g.baseAddress! + d * k, &scratch)
                    }
                }
            }
            return (loss, gradient)
        }
        var z = [Double](repeating: 0, count: (hi - lo) * k)
        let m = Int32(hi - lo), scratch = Int(BB_LOGISTIC_ROWS) * d
        let loss = x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                gradient.withUnsafeMutableBufferPointer { g in
                    z.withUnsafeMutableBufferPointer { zp in
                        // invariant: a probe has rows, features and classes, so none of these buffers is empty
                        let (xs, gs, zs) = (xp.baseAddress! + lo * d, g.baseAddress!, zp.baseAddress!)
                        func classes(_ p: Int) -> (Int32, Int32) { (Int32(k * p / parts), Int32(k * (p + 1) / parts)) }
                        Parallelism.perform(parts) { p in
                            var rows = [Double](repeating: 0, count: scratch)
                            let (c0, c1) = classes(p)
                            bb_logistic_logits(xs, m, Int32(d), Int32(k), wt, bias, c0, c1, zs, &rows)
                        }
                        let loss = bb_logistic_residual(yp.baseAddress! + lo, m, Int32(k), 1 / Double(max(n, 1)), zs)
                        Parallelism.perform(parts) { p in
                            var rows = [Double](repeating: 0, count: scratch)
                            let (c0, c1) = classes(p)
                            bb_logistic_gradient(xs, m, Int32(d), Int32(k), zs, c0, c1, gs, gs + d * k, &rows)
                        }
                        return loss
                    }
                }
            }
        }
        return (loss, gradient)
    }
}

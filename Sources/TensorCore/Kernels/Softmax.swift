import Foundation

extension Kernels {
    /// y = x - logsumexp(x) along rows of length `n`.
    static func logSoftmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        KernelProfiler.shared.measure("log_softmax", dims(rows, n), flops: Double(4 * rows * n), bytes: Double(8 * rows * n)) {
            for r in 0..<rows {
                let xr = x + r * n, yr = y + r * n
                var m = -Float.infinity
                for i in 0..<n where xr[i] > m { m = xr[i] }
                var s: Float = 0
                for i in 0..<n { s += Foundation.exp(xr[i] - m) }
                // (x - m) - log s rather than x - (m + log s): m + log s rounds at the scale of
                // the logits and would cost all precision for large ones.
                let logS = Foundation.log(s)
                for i in 0..<n { yr[i] = (xr[i] - m) - logS }
            }
        }
    }

    /// Mean cross-entropy of rows of logits against hard labels, in one pass per row. Writes the
    /// softmax probabilities to `probs` (the backward pass is probs - onehot).
    static func softmaxCrossEntropy(_ x: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>,
                                    _ probs: UnsafeMutablePointer<Float>, rows: Int, n: Int) -> Float {
        KernelProfiler.shared.measure("softmax_xent", dims(rows, n), flops: Double(5 * rows * n), bytes: Double(8 * rows * n)) {
            var total: Double = 0
            for r in 0..<rows {
                let xr = x + r * n, pr = probs + r * n
                var m = -Float.infinity
                for i in 0..<n where xr[i] > m { m = xr[i] }
                var s: Float = 0
                for i in 0..<n { let e = Foundation.exp(xr[i] - m); pr[i] = e; s += e }
                let inv = 1 / s
                for i in 0..<n { pr[i] *= inv }
                let y = Int(labels[r])
                total += Double((m - xr[y]) + Foundation.log(s))
            }
            return Float(total / Double(rows))
        }
    }
}

import Foundation
import TensorCore

/// Principal components of the rows of a matrix: the mean, the top-k eigenvectors of the
/// covariance and their variances. OpenBLAS ships no LAPACK here, so the eigenvectors come from
/// subspace iteration (the covariance applied to an orthonormal block, re-orthonormalised, GEMM
/// bound) followed by Rayleigh-Ritz: the block's small projected matrix diagonalised by cyclic
/// Jacobi rotations in Double. The block carries `oversampling` extra vectors so the k-th
/// eigenvector converges at the rate of λ(k+p+1)/λ(k) rather than λ(k+1)/λ(k).
public struct PrincipalComponents {
    /// [D].
    public let mean: Tensor
    /// [D, k], orthonormal columns, by decreasing variance.
    public let components: Tensor
    /// The variance along each component (eigenvalues of the covariance).
    public let variances: [Float]

    public init(mean: Tensor, components: Tensor, variances: [Float]) {
        (self.mean, self.components, self.variances) = (mean, components, variances)
    }

    public static func fit(_ x: Tensor, components k: Int, iterations: Int = 30, oversampling: Int = 10, rng: inout RNG) -> PrincipalComponents {
        let (n, d) = (x.shape[0], x.shape[1])
        // invariant: pca checks components against the image size (a ConfigError); deepcluster caps them at the feature width; pools hold at least two images
        precondition(k >= 1 && k <= d && n >= 2, "PrincipalComponents: \(k) components of \(n) rows of \(d) values")
        return noGrad {
            let mean = x.mean(axis: 0)
            let centred = x - mean.reshaped([1, d])
            let covariance = matmul(centred, centred, transposeA: true) / Float(n - 1)
            let (vectors, values) = topEigenvectors(covariance, count: k, iterations: iterations, oversampling: oversampling, rng: &rng)
            return PrincipalComponents(mean: mean, components: vectors, variances: values)
        }
    }

    /// The top `count` eigenvectors [D, count] and eigenvalues of a symmetric matrix [D, D].
    public static func topEigenvectors(_ a: Tensor, count k: Int, iterations: Int, oversampling: Int, rng: inout RNG) -> (Tensor, [Float]) {
        let d = a.shape[0]
        let b = Swift.min(d, k + oversampling)
        var q = orthonormalColumns(Tensor.randn([d, b], rng: &rng))
        for _ in 0..<iterations { q = orthonormalColumns(matmul(a, q)) }
        // Rayleigh-Ritz: T = QᵀAQ = V Λ Vᵀ; the Ritz vectors are QV.
        let t = matmul(q, matmul(a, q), transposeA: true)
        let (values, vectors) = jacobiEigen(t.scalars.map(Double.init), size: b)
        let order = (0..<b).sorted { values[$0] > values[$1] }.prefix(k)
        var v = [Float](repeating: 0, count: b * k)
        for (column, i) in order.enumerated() { for r in 0..<b { v[r * k + column] = Float(vectors[r * b + i]) } }
        return (matmul(q, Tensor(shape: [b, k], scalars: v)), order.map { Float(Swift.max(0, values[$0])) })
    }

    /// The columns of `m` [D, B] orthonormalised by modified Gram-Schmidt (in Double); a column
    /// that vanishes is replaced by a unit vector.
    static func orthonormalColumns(_ m: Tensor) -> Tensor {
        let (d, b) = (m.shape[0], m.shape[1])
        let s = m.scalars
        var columns = (0..<b).map { c in (0..<d).map { Double(s[$0 * b + c]) } }
        for c in 0..<b {
            for _ in 0..<2 {   // twice is enough (Kahan)
                for p in 0..<c {
                    let dot = zip(columns[c], columns[p]).reduce(0) { $0 + $1.0 * $1.1 }
                    for i in 0..<d { columns[c][i] -= dot * columns[p][i] }
                }
            }
            var norm = columns[c].reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm < 1e-12 { columns[c] = (0..<d).map { $0 == c % d ? 1 : 0 }; norm = 1 }
            for i in 0..<d { columns[c][i] /= norm }
        }
        var out = [Float](repeating: 0, count: d * b)
        for c in 0..<b { for i in 0..<d { out[i * b + c] = Float(columns[c][i]) } }
        return Tensor(shape: [d, b], scalars: out)
    }

    /// Eigenvalues and eigenvectors (columns of a row-major n x n matrix) of a symmetric matrix by
    /// cyclic Jacobi rotations, to convergence.
    static func jacobiEigen(_ matrix: [Double], size n: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix, v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<n where q < n { off += a[p * n + q] * a[p * n + q] } }
            if off < 1e-22 * max(1e-300, (0..<n).reduce(0) { $0 + a[$1 * n + $1] * a[$1 * n + $1] }) { break }
            for p in 0..<n {
                for q in (p + 1)..<n where q < n && abs(a[p * n + q]) > 1e-300 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {   // A ← A J (columns p, q)
                        let (akp, akq) = (a[k * n + p], a[k * n + q])
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {   // A ← Jᵀ A (rows p, q)
                        let (apk, aqk) = (a[p * n + k], a[q * n + k])
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let (vkp, vkq) = (v[k * n + p], v[k * n + q])
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, v)
    }

    /// Rows of `x` [N, D] in component coordinates [N, k]; with `whiten`, each divided by the
    /// component's standard deviation (floored at `epsilon`).
    public func project(_ x: Tensor, whiten: Bool, epsilon: Float = 1e-5) -> Tensor {
        let d = mean.shape[0]
        let projected = matmul(x.reshaped([x.shape[0], d]) - mean.reshaped([1, d]), components)
        guard whiten else { return projected }
        return projected / Tensor(shape: [1, variances.count], scalars: variances.map { ($0 + epsilon).squareRoot() })
    }
}

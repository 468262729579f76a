import Foundation
import TensorCore

/// A sparse symmetric affinity graph and diffusion on it (Zhou et al. 2004; Iscen, Tolias, Avrithis
/// & Chum, "Label Propagation for Deep Semi-supervised Learning", CVPR 2019).
public struct AffinityGraph {
    /// Neighbours of each node with the edge weight, no self-loops.
    public let edges: [[(node: Int, weight: Float)]]

    public init(edges: [[(node: Int, weight: Float)]]) { self.edges = edges }

    public var count: Int { edges.count }

    /// The mutual kNN graph of Iscen et al.: rows of `features` [N, D] are L2-normalised, each
    /// node keeps its `k` most similar others with weight max(s, 0)^γ, and W + Wᵀ makes it
    /// symmetric. Similarities are computed a block of rows at a time, so memory stays O(N·k).
    public static func nearestNeighbours(_ features: Tensor, k: Int, gamma: Float) -> AffinityGraph {
        let f = noGrad { features.detached.l2Normalized() }
        let n = f.shape[0], k = min(k, n - 1)
        var directed = [[(node: Int, weight: Float)]](repeating: [], count: n)
        let block = 256
        for start in stride(from: 0, to: n, by: block) {
            let rows = Array(start..<min(start + block, n))
            let s = noGrad { matmul(f.gatherRows(rows), f, transposeB: true) }
            s.withUnsafeBufferPointer { sim in
                for (r, i) in rows.enumerated() {
                    directed[i] = topK(sim, row: r, width: n, k: k, excluding: i).map { ($0.node, Foundation.pow(max($0.weight, 0), gamma)) }
                }
            }
        }
        // W + Wᵀ: an edge kept by both ends counts twice, as in the paper.
        var merged = [[Int: Float]](repeating: [:], count: n)
        for i in 0..<n {
            for (j, w) in directed[i] where w > 0 {
                merged[i][j, default: 0] += w
                merged[j][i, default: 0] += w
            }
        }
        return AffinityGraph(edges: merged.map { $0.sorted { $0.key < $1.key }.map { (node: $0.key, weight: $0.value) } })
    }

    /// The `k` largest entries of one row of a row-major [rows, width] buffer, `excluding` one column.
    static func topK(_ sim: UnsafeBufferPointer<Float>, row: Int, width: Int, k: Int, excluding: Int) -> [(node: Int, weight: Float)] {
        var best: [(node: Int, weight: Float)] = []
        best.reserveCapacity(k + 1)
        var floor = -Float.infinity
        let base = row * width
        for j in 0..<width where j != excluding {
            let v = sim[base + j]
            if best.count < k || v > floor {
                // Insertion into a short sorted list (descending): k is small next to N.
                let at = best.firstIndex { $0.weight < v } ?? best.count
                best.insert((j, v), at: at)
                if best.count > k { best.removeLast() }
                floor = best.count == k ? best[k - 1].weight : -Float.infinity
            }
        }
        return best
    }

    /// D^(-1/2) W D^(-1/2).
    public func symmetricallyNormalized() -> AffinityGraph {
        let degree = edges.map { $0.reduce(Float(0)) { $0 + $1.weight } }
        let scale = degree.map { $0 > 0 ? 1 / $0.squareRoot() : 0 }
        return AffinityGraph(edges: edges.enumerated().map { i, row in row.map { (node: $0.node, weight: $0.weight * scale[i] * scale[$0.node]) } })
    }

    /// (I − αW) x.
    func diffusionOperator(_ x: [Double], alpha: Double) -> [Double] {
        var y = x
        for i in 0..<count {
            var s = 0.0
            for (j, w) in edges[i] { s += Double(w) * x[j] }
            y[i] -= alpha * s
        }
        return y
    }

    /// Z solving (I − αW) Z = Y column by column by conjugate gradient (the system is symmetric
    /// positive definite for α < 1 when W is normalised), `iterations` at most per column (the
    /// paper's 20) or until the residual falls below `tolerance` relative to the column of Y.
    /// `y` and the result are [N, C] row-major.
    public func diffuse(_ y: [Float], classes: Int, alpha: Float, iterations: Int, tolerance: Double = 1e-6) -> [Float] {
        let n = count
        // invariant: Y is built from the graph's own rows and the dataset's classes
        precondition(y.count == n * classes, "AffinityGraph.diffuse: Y has \(y.count) entries, expected \(n) x \(classes)")
        var z = [Float](repeating: 0, count: n * classes)
        for c in 0..<classes {
            let b = (0..<n).map { Double(y[$0 * classes + c]) }
            let norm = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { continue }
            var x = [Double](repeating: 0, count: n), r = b, p = b
            var rr = norm * norm
            for _ in 0..<iterations where rr.squareRoot() > tolerance * norm {
                let ap = diffusionOperator(p, alpha: Double(alpha))
                let step = rr / zip(p, ap).reduce(0) { $0 + $1.0 * $1.1 }
                for i in 0..<n { x[i] += step * p[i]; r[i] -= step * ap[i] }
                let next = r.reduce(0) { $0 + $1 * $1 }
                for i in 0..<n { p[i] = r[i] + next / rr * p[i] }
                rr = next
            }
            for i in 0..<n { z[i * classes + c] = Float(x[i]) }
        }
        return z
    }
}

/// What label propagation hands to training for every node: the arg-max class of the diffused
/// scores, a certainty weight ω = 1 − H(ẑ)/log C (ẑ the row's non-negative scores normalised to
/// sum to one), and the class-balancing weight ζ of its class, the inverse class frequency among
/// all labels and pseudo-labels, scaled to average one over the nodes.
public struct PropagatedLabels {
    public let labels: [Int32]
    public let certainty: [Float]
    public let classWeights: [Float]

    public init(scores z: [Float], classes: Int) {
        let n = z.count / classes
        var labels = [Int32](repeating: 0, count: n), certainty = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let row = (0..<classes).map { max(z[i * classes + $0], 0) }
            let total = row.reduce(0, +)
            labels[i] = Int32(row.indices.max { row[$0] < row[$1] } ?? 0)
            guard total > 0, classes > 1 else { continue }   // unreached by the diffusion: no weight
            let entropy = row.reduce(Float(0)) { $1 > 0 ? $0 - $1 / total * Foundation.log($1 / total) : $0 }
            certainty[i] = 1 - entropy / Foundation.log(Float(classes))
        }
        var counts = [Float](repeating: 0, count: classes)
        for y in labels { counts[Int(y)] += 1 }
        let inverse = counts.map { $0 > 0 ? 1 / $0 : 0 }
        // Σ_i ζ(y_i) = (number of non-empty classes); scale so the mean over nodes is one.
        let mean = labels.reduce(Float(0)) { $0 + inverse[Int($1)] } / Float(max(1, n))
        (self.labels, self.certainty, classWeights) = (labels, certainty, inverse.map { mean > 0 ? $0 / mean : 0 })
    }
}

import TensorCore

/// k-means on the rows of a matrix (Lloyd 1982; k-means++ seeding, Arthur & Vassilvitskii 2007):
/// the clustering of `kmeans`, of DeepCluster's pseudo-labels and the GMM's start. Distances are
/// computed as ‖x‖² − 2x·c + ‖c‖² with one GEMM per pass, so a pass over 50,000 images costs one
/// matrix product.
public struct KMeans {
    /// [k, D].
    public private(set) var centroids: Tensor

    public init(centroids: Tensor) {
        // invariant: centroids are made by plusPlus, [k, D]
        precondition(centroids.rank == 2, "KMeans: centroids must be [k, D], got \(centroids.shape)")
        self.centroids = centroids
    }

    public var k: Int { centroids.shape[0] }

    /// k-means++ seeding: the first centroid a uniformly drawn row, each next one a row drawn with
    /// probability proportional to its squared distance to the nearest centroid so far.
    public static func plusPlus(_ x: Tensor, k: Int, rng: inout RNG) -> KMeans {
        let (n, d) = (x.shape[0], x.shape[1])
        // invariant: kmeans and deepcluster check `clusters` against the pool's size (a ConfigError) before seeding
        precondition(k >= 1 && k <= n, "KMeans.plusPlus: cannot seed \(k) clusters from \(n) rows")
        var chosen = [rng.int(n)]
        var nearest = [Float](repeating: .infinity, count: n)
        let rows = x.scalars
        while chosen.count < k {
            let c = chosen.last!
            for i in 0..<n {
                var s: Float = 0
                for j in 0..<d { let t = rows[i * d + j] - rows[c * d + j]; s += t * t }
                nearest[i] = Swift.min(nearest[i], s)
            }
            let total = nearest.reduce(0.0) { $0 + Double($1) }
            guard total > 0 else { chosen.append(rng.int(n)); continue }   // every row sits on a centroid
            var target = Double(rng.uniform()) * total, pick = n - 1
            for i in 0..<n { target -= Double(nearest[i]); if target < 0 { pick = i; break } }
            chosen.append(pick)
        }
        return KMeans(centroids: x.gatherRows(chosen).detached)
    }

    /// Squared distance of every row of `x` [N, D] to every centroid: [N, k].
    public func squaredDistances(_ x: Tensor) -> Tensor {
        noGrad {
            let xx = (x * x).sum(axis: 1, keepDims: true)
            let cc = (centroids * centroids).sum(axis: 1, keepDims: true).transposed()
            return (xx - 2 * matmul(x, centroids, transposeB: true) + cc).relu()
        }
    }

    /// The nearest centroid of each row and the mean squared distance to it (the inertia per row).
    public func assign(_ x: Tensor) -> (clusters: [Int], inertia: Double) {
        let dist = squaredDistances(x)
        let clusters = (-dist).argmaxRows()
        let kk = k
        let total = dist.withUnsafeBufferPointer { p in clusters.enumerated().reduce(0.0) { $0 + Double(p[$1.offset * kk + $1.element]) } }
        return (clusters, total / Double(max(1, clusters.count)))
    }

    /// Lloyd's update: each centroid moves to the mean of its rows. A cluster left empty is
    /// reassigned as DeepCluster does (Caron et al. 2018, after faiss): a non-empty cluster is drawn
    /// with probability proportional to its size, its centroid copied to the empty one, and the
    /// two pushed apart by a small relative perturbation, so the next assignment splits its rows.
    /// Returns how many clusters were empty.
    @discardableResult
    public mutating func update(_ x: Tensor, clusters: [Int], rng: inout RNG) -> Int {
        let (n, d, kk) = (x.shape[0], x.shape[1], k)
        // invariant: assignments come from assign() on the same rows
        precondition(clusters.count == n, "KMeans.update: \(clusters.count) assignments for \(n) rows")
        var sums = [Double](repeating: 0, count: kk * d), sizes = [Int](repeating: 0, count: kk)
        x.withUnsafeBufferPointer { p in
            for (i, c) in clusters.enumerated() {
                sizes[c] += 1
                for j in 0..<d { sums[c * d + j] += Double(p[i * d + j]) }
            }
        }
        var next = centroids.scalars
        for c in 0..<kk where sizes[c] > 0 { for j in 0..<d { next[c * d + j] = Float(sums[c * d + j] / Double(sizes[c])) } }
        let empty = (0..<kk).filter { sizes[$0] == 0 }
        let epsilon: Float = 1.0 / 1024
        for e in empty {
            // Only clusters with more than one row can give one away.
            let donors = (0..<kk).filter { sizes[$0] > 1 }
            guard !donors.isEmpty else { break }
            var target = rng.uniform() * Float(donors.reduce(0) { $0 + sizes[$1] - 1 }), donor = donors.last!
            for c in donors { target -= Float(sizes[c] - 1); if target < 0 { donor = c; break } }
            for j in 0..<d {
                let value = next[donor * d + j]
                // A perturbation relative to the coordinate, with a floor so zero coordinates move too.
                let delta = epsilon * Swift.max(abs(value), 1e-3) * (j % 2 == 0 ? 1 : -1)
                next[e * d + j] = value + delta
                next[donor * d + j] = value - delta
            }
            sizes[e] = sizes[donor] / 2
            sizes[donor] -= sizes[e]
        }
        centroids = Tensor(shape: [kk, d], scalars: next)
        return empty.count
    }

    /// Lloyd iterations from k-means++ seeds until no row changes cluster or `iterations` are
    /// done; the inertia after each.
    public static func fit(_ x: Tensor, k: Int, iterations: Int, rng: inout RNG) -> (model: KMeans, clusters: [Int], inertia: [Double]) {
        var model = plusPlus(x, k: k, rng: &rng)
        var (clusters, inertia) = model.assign(x)
        var history = [inertia]
        for _ in 0..<iterations {
            model.update(x, clusters: clusters, rng: &rng)
            let (next, value) = model.assign(x)
            history.append(value)
            defer { clusters = next }
            if next == clusters { break }
        }
        return (model, clusters, history)
    }
}

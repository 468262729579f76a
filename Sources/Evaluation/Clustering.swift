import Foundation

/// How well a clustering of unlabeled images recovers the classes (DESIGN.md §7, `native` of a
/// clustering method): the accuracy of the best one-to-one matching of clusters to classes
/// (Hungarian method, as the clustering literature reports it) and the normalized mutual
/// information. The method never sees the labels; these are computed by the framework.
public enum Clustering {
    /// Counts[cluster][class] of `assignments` against `labels`.
    public static func contingency(_ assignments: [Int], _ labels: [Int32], clusters: Int, classes: Int) -> [[Int]] {
        // invariant: both come from the same test images (a method's cluster of each, the dataset's label of each)
        precondition(assignments.count == labels.count, "Clustering: \(assignments.count) assignments for \(labels.count) labels")
        var table = [[Int]](repeating: [Int](repeating: 0, count: classes), count: clusters)
        for (a, y) in zip(assignments, labels) { table[a][Int(y)] += 1 }
        return table
    }

    /// Fraction of examples whose cluster is matched to their class under the one-to-one matching
    /// of clusters to classes that maximises it (clusters left unmatched count as errors).
    public static func accuracy(_ assignments: [Int], _ labels: [Int32], clusters: Int, classes: Int) -> Double {
        guard !labels.isEmpty else { return 0 }
        let table = contingency(assignments, labels, clusters: clusters, classes: classes)
        let n = max(clusters, classes)
        // Square cost matrix (padding rows/columns cost nothing): minimise -count.
        var cost = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<clusters { for j in 0..<classes { cost[i][j] = -Double(table[i][j]) } }
        let match = assignment(minimizing: cost)
        let correct = (0..<clusters).reduce(0) { $0 + (match[$1] < classes ? table[$1][match[$1]] : 0) }
        return Double(correct) / Double(labels.count)
    }

    /// Normalized mutual information I(U; V) / ((H(U) + H(V)) / 2) (the arithmetic normalisation,
    /// scikit-learn's default), in [0, 1]; 1 when either labelling is constant and both agree.
    public static func nmi(_ assignments: [Int], _ labels: [Int32], clusters: Int, classes: Int) -> Double {
        let table = contingency(assignments, labels, clusters: clusters, classes: classes)
        let n = Double(labels.count)
        guard n > 0 else { return 0 }
        let rows = table.map { Double($0.reduce(0, +)) }
        let columns = (0..<classes).map { j in Double(table.reduce(0) { $0 + $1[j] }) }
        func entropy(_ counts: [Double]) -> Double { -counts.filter { $0 > 0 }.reduce(0) { $0 + $1 / n * Foundation.log($1 / n) } }
        var mutual = 0.0
        for i in 0..<clusters { for j in 0..<classes where table[i][j] > 0 {
            let p = Double(table[i][j]) / n
            mutual += p * Foundation.log(p * n * n / (rows[i] * columns[j]))
        } }
        let (hu, hv) = (entropy(rows), entropy(columns))
        guard hu + hv > 0 else { return 1 }
        return max(0, min(1, mutual / ((hu + hv) / 2)))
    }

    /// The Hungarian method (Kuhn-Munkres with potentials, O(n³)) on a square cost matrix: the
    /// column assigned to each row in a minimum-cost perfect matching.
    public static func assignment(minimizing cost: [[Double]]) -> [Int] {
        let n = cost.count
        // invariant: the cost matrix is built square here, clusters x classes padded to the larger
        precondition(cost.allSatisfy { $0.count == n }, "Clustering.assignment: the cost matrix must be square")
        // 1-based arrays as in the classical formulation; p[j]: row matched to column j.
        var u = [Double](repeating: 0, count: n + 1), v = u
        var p = [Int](repeating: 0, count: n + 1), way = p
        for i in 1...max(1, n) where n > 0 {
            p[0] = i
            var j0 = 0
            var minv = [Double](repeating: .infinity, count: n + 1)
            var used = [Bool](repeating: false, count: n + 1)
            repeat {
                used[j0] = true
                let i0 = p[j0]
                var delta = Double.infinity, j1 = 0
                for j in 1...n where !used[j] {
                    let cur = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j] { (minv[j], way[j]) = (cur, j0) }
                    if minv[j] < delta { (delta, j1) = (minv[j], j) }
                }
                for j in 0...n {
                    if used[j] { u[p[j]] += delta; v[j] -= delta } else { minv[j] -= delta }
                }
                j0 = j1
            } while p[j0] != 0
            repeat {
                let j1 = way[j0]
                p[j0] = p[j1]
                j0 = j1
            } while j0 != 0
        }
        var rowToColumn = [Int](repeating: 0, count: n)
        for j in 1..<(n + 1) where p[j] > 0 { rowToColumn[p[j] - 1] = j - 1 }
        return rowToColumn
    }
}

/// Shape helpers. Shapes are plain `[Int]` (row-major, last axis fastest); these functions give them
/// names and produce the error messages every op uses, so a mismatch always names both shapes.

/// Stops with a message naming the op and the offending shapes or values. Shape errors are
/// programming errors inside a method, so they stop the process; `fatalError` (unlike
/// `precondition`) is kept in every build configuration, so a release build never computes
/// garbage from mismatched shapes.
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
             file: StaticString = #fileID, line: UInt = #line) {
    // invariant: `require` guards the engine's contracts (shapes, ranks); user input reaches the engine only through shapes the planner checked (images a backbone can take, budgets a class can hold), so a failure is a bug, stopped rather than computed on
    if !condition() { fatalError("TensorCore: " + message(), file: file, line: line) }
}

/// Formats a shape the way every error message shows it: `[2, 3, 4]`.
func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

public enum Shape {
    /// Number of elements of a shape (1 for a scalar `[]`).
    @inline(__always)
    public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Row-major strides of a contiguous tensor of this shape.
    public static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { strides[i] = s; s *= shape[i] }
        return strides
    }

    /// Resolves a possibly negative axis against a rank.
    public static func axis(_ axis: Int, rank: Int, op: String) -> Int {
        let a = axis < 0 ? axis + rank : axis
        require(a >= 0 && a < rank, "\(op): axis \(axis) is out of range for rank \(rank)")
        return a
    }

    /// The NumPy broadcast of two shapes, or a stop naming both.
    public static func broadcast(_ a: [Int], _ b: [Int], op: String) -> [Int] {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            require(da == db || da == 1 || db == 1,
                    "\(op): shapes \(describe(a)) and \(describe(b)) do not broadcast")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Strides (in elements) with which an operand of shape `shape` is read when broadcast to
    /// `target`: broadcast axes get stride 0.
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = strides(shape)
        let pad = target.count - shape.count
        return (0..<target.count).map { i in
            i < pad ? 0 : (shape[i - pad] == 1 && target[i] != 1 ? 0 : own[i - pad])
        }
    }

    /// True when `shape` can be broadcast to `target` (so a gradient of `target` sums back to it).
    static func broadcasts(_ shape: [Int], to target: [Int]) -> Bool {
        guard shape.count <= target.count else { return false }
        let pad = target.count - shape.count
        for i in 0..<shape.count where shape[i] != 1 && shape[i] != target[i + pad] { return false }
        return true
    }
}

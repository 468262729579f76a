/// Iteration over an n-d index space with up to three operands of arbitrary (possibly zero)
/// strides, handed to a kernel as contiguous runs of the innermost dimension. Broadcasting
/// binary ops, reductions to a broadcast shape and permutations all use it.
struct StridedLoop {
    var shape: [Int]
    var strides: [[Int]]   // per operand, one stride per axis of `shape`

    /// Drops unit axes and merges adjacent axes that every operand walks contiguously, so most
    /// loops end up with one or two axes and a long inner run.
    init(shape: [Int], strides: [[Int]]) {
        var s: [Int] = []
        var st: [[Int]] = strides.map { _ in [] }
        for axis in 0..<shape.count where shape[axis] != 1 {
            if let last = s.indices.last,
               strides.indices.allSatisfy({ st[$0][last] == strides[$0][axis] * shape[axis] }) {
                s[last] *= shape[axis]
                for k in strides.indices { st[k][last] = strides[k][axis] }
            } else {
                s.append(shape[axis])
                for k in strides.indices { st[k].append(strides[k][axis]) }
            }
        }
        if s.isEmpty { s = [1]; st = strides.map { _ in [0] } }
        self.shape = s
        self.strides = st
    }

    var innerCount: Int { shape[shape.count - 1] }
    func innerStride(_ k: Int) -> Int { strides[k][shape.count - 1] }

    /// Calls `body(o0, o1, o2)` with each run's starting offsets (unused operands get 0).
    @inline(__always)
    func forEachRun(_ body: (Int, Int, Int) -> Void) {
        let outer = shape.count - 1
        let n = strides.count
        let s0 = strides[0], s1 = n > 1 ? strides[1] : [Int](repeating: 0, count: shape.count)
        let s2 = n > 2 ? strides[2] : [Int](repeating: 0, count: shape.count)
        if outer == 0 { body(0, 0, 0); return }
        if outer == 1 {
            for i in 0..<shape[0] { body(i * s0[0], i * s1[0], i * s2[0]) }
            return
        }
        var index = [Int](repeating: 0, count: outer)
        var o0 = 0, o1 = 0, o2 = 0
        while true {
            body(o0, o1, o2)
            var axis = outer - 1
            while axis >= 0 {
                index[axis] += 1
                o0 += s0[axis]; o1 += s1[axis]; o2 += s2[axis]
                if index[axis] < shape[axis] { break }
                o0 -= s0[axis] * shape[axis]; o1 -= s1[axis] * shape[axis]; o2 -= s2[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
            if axis < 0 { return }
        }
    }
}

// MARK: - Matrix products

/// op(a) · op(b), where op transposes the last two axes when asked. Both rank 2, or both rank 3
/// with the same leading (batch) extent.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    require((a.rank == 2 && b.rank == 2) || (a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0]),
            "matmul: shapes \(describe(a.shape)) and \(describe(b.shape)) must both be matrices or batches of the same size")
    let batched = a.rank == 3
    let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transposeA ? (ac, ar) : (ar, ac)
    let (k2, n) = transposeB ? (bc, br) : (br, bc)
    require(k == k2, "matmul: inner extents differ: \(describe(a.shape))\(transposeA ? "ᵀ" : "") · \(describe(b.shape))\(transposeB ? "ᵀ" : "")")
    let batch = batched ? a.shape[0] : 1
    var out = Tensor(uninitialized: batched ? [batch, m, n] : [m, n])
    for i in 0..<batch {
        Kernels.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                     a.storage.pointer + i * m * k, b.storage.pointer + i * k * n, out.storage.pointer + i * m * n)
    }
    out.node = nil
    return Tensor.result(.matmul(transA: transposeA, transB: transposeB), [a, b], out)
}

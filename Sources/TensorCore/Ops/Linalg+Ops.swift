import CKernels

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

/// A dense layer: act(x Wᵀ + b) for x [N, in], W [out, in], b [out], act ReLU or identity. Each
/// GEMM thread lays the bias down in its block of the output, the GEMM adds to it (which also
/// spares OpenBLAS its pass zeroing the output) and the ReLU runs in place while the block is still
/// in that thread's cache: the output is touched once instead of three times.
public func linear(_ x: Tensor, _ w: Tensor, bias: Tensor? = nil, relu: Bool = false) -> Tensor {
    require(x.rank == 2 && w.rank == 2 && x.shape[1] == w.shape[1],
            "linear: input \(describe(x.shape)) and weight \(describe(w.shape)) must be [N, in] and [out, in]")
    let (n, out) = (x.shape[0], w.shape[0])
    if let bias { require(bias.shape == [out], "linear: bias \(describe(bias.shape)) must be [\(out)]") }
    var y = Tensor(uninitialized: [n, out])
    let py = y.storage.pointer, ld = out
    let pb = bias?.storage.pointer
    Kernels.gemm(transA: false, transB: true, m: n, n: out, k: x.shape[1], x.storage.pointer, w.storage.pointer,
                 beta: pb == nil ? 0 : 1, py,
                 prologue: pb.map { pb in { rows, cols in
                     bb_fill_block(py, ld, pb, Int32(rows.lowerBound), Int32(rows.upperBound), Int32(cols.lowerBound), Int32(cols.upperBound))
                 } },
                 epilogue: relu ? { rows, cols in
                     bb_relu_block(py, ld, Int32(rows.lowerBound), Int32(rows.upperBound), Int32(cols.lowerBound), Int32(cols.upperBound))
                 } : nil)
    y.node = nil
    return Tensor.result(.linear(relu: relu), bias.map { [x, w, $0] } ?? [x, w], y)
}

/// The first-order backward of `linear`'s bias and ReLU in one pass: g masked where `reluOutput`
/// <= 0 (or g itself without ReLU), writing the bias gradient's column sums to `biasGrad`.
func linearGradient(_ g: Tensor, reluOutput: Tensor?, biasGrad: Tensor?) -> Tensor {
    let (rows, cols) = (g.shape[0], g.shape[1])
    let gz = reluOutput == nil ? g : Tensor(uninitialized: g.shape)
    KernelProfiler.shared.measure("linear_grad", dims(rows, cols), bytes: Double(4 * rows * cols * (reluOutput == nil ? 1 : 3))) {
        bb_linear_grad(g.storage.pointer, reluOutput?.storage.pointer, gz.storage.pointer, biasGrad?.storage.pointer,
                       Int32(rows), Int32(cols))
    }
    return gz
}

// MARK: - Reductions and broadcasting

extension Tensor {
    /// Sums over the axes where `target` has extent 1 (or is missing on the left), giving `target`:
    /// the gradient of broadcasting.
    public func sum(to target: [Int]) -> Tensor {
        if target == shape { return self }
        require(Shape.broadcasts(target, to: shape), "sum(to:): \(describe(shape)) cannot be summed to \(describe(target))")
        var out = Tensor(zeros: target)
        let loop = StridedLoop(shape: shape, strides: [Shape.broadcastStrides(target, to: shape), Shape.strides(shape)])
        Kernels.sumInto(loop, out.storage.pointer, storage.pointer, count: count)
        out.node = nil
        return Tensor.result(.sumTo(shape), [self], out)
    }

    /// Repeats along axes of extent 1 (and new leading axes) to reach `target`.
    public func broadcast(to target: [Int]) -> Tensor {
        if target == shape { return self }
        require(Shape.broadcasts(shape, to: target), "broadcast(to:): \(describe(shape)) does not broadcast to \(describe(target))")
        var out = Tensor(uninitialized: target)
        let loop = StridedLoop(shape: target, strides: [Shape.strides(target), Shape.broadcastStrides(shape, to: target)])
        Kernels.gatherStrided("broadcast", loop, out.storage.pointer, storage.pointer, count: out.count)
        out.node = nil
        return Tensor.result(.broadcastTo(target), [self], out)
    }

    /// Sum over `axes` (all when empty), keeping them as extent 1 when `keepDims`.
    public func sum(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let resolved = axes.isEmpty ? Array(0..<rank) : axes.map { Shape.axis($0, rank: rank, op: "sum") }
        var kept = shape
        for a in resolved { kept[a] = 1 }
        let s = sum(to: kept)
        return keepDims ? s : s.reshaped(shape.indices.filter { !resolved.contains($0) }.map { shape[$0] })
    }

    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Mean over `axes` (all when empty).
    public func mean(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let resolved = axes.isEmpty ? Array(0..<rank) : axes.map { Shape.axis($0, rank: rank, op: "mean") }
        let n = resolved.reduce(1) { $0 * shape[$1] }
        return sum(axes: resolved, keepDims: keepDims) * (1 / Float(n))
    }

    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Maximum along one axis.
    public func max(axis: Int, keepDims: Bool = false) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "max")
        let outer = shape[..<a].reduce(1, *), n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        require(n > 0, "max: axis \(axis) of \(describe(shape)) is empty")
        var kept = shape
        kept[a] = 1
        var out = Tensor(uninitialized: kept)
        let px = storage.pointer, po = out.storage.pointer
        KernelProfiler.shared.measure("max", dims(outer, n, inner), bytes: Double(4 * count)) {
            for o in 0..<outer {
                let base = o * n * inner
                (po + o * inner).update(from: px + base, count: inner)
                for k in 1..<Swift.max(n, 1) {
                    let row = px + base + k * inner, dst = po + o * inner
                    for i in 0..<inner where row[i] > dst[i] { dst[i] = row[i] }
                }
            }
        }
        out.node = nil
        let result = Tensor.result(.maxAlong(axis: a), [self], out)
        return keepDims ? result : result.reshaped(shape.enumerated().filter { $0.offset != a }.map { $0.element })
    }
}

extension Tensor {
    /// The index of the largest entry of each row of a [N, C] tensor (the first on ties).
    public func argmaxRows() -> [Int] {
        // invariant: called on logits and probabilities, [N, C] by construction
        precondition(rank == 2, "argmaxRows: needs a [N, C] tensor, got \(shape)")
        let c = shape[1]
        return withUnsafeBufferPointer { p in
            (0..<shape[0]).map { r in
                var best = 0
                for j in 1..<c where p[r * c + j] > p[r * c + best] { best = j }
                return best
            }
        }
    }
}

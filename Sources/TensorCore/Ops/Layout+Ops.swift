// MARK: - Layout: reshape, permute, concat, slice, gather

extension Tensor {
    /// The same values under another shape; one extent may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let i = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            require(known > 0 && count % known == 0, "reshape: cannot reshape \(describe(shape)) to \(describe(newShape))")
            resolved[i] = count / known
        }
        require(Shape.count(resolved) == count, "reshape: cannot reshape \(describe(shape)) (\(count) elements) to \(describe(newShape))")
        if resolved == shape { return self }
        return Tensor.result(.reshape, [self], viewing(resolved))
    }

    /// Flattens all axes after the first: [N, ...] -> [N, rest].
    public func flattened() -> Tensor { reshaped([shape.first ?? 1, -1]) }

    /// Reorders axes: output axis i is input axis `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        require(order.sorted() == Array(0..<rank), "permute: \(order) is not a permutation of the axes of \(describe(shape))")
        if order == Array(0..<rank) { return self }
        let outShape = order.map { shape[$0] }
        var out = Tensor(uninitialized: outShape)
        let inStrides = Shape.strides(shape)
        // Swapping the last two axes is the common case (matrix transpose): tiled for the cache.
        if order == Array(0..<(rank - 2)) + [rank - 1, rank - 2] {
            Kernels.transpose2D(storage.pointer, out.storage.pointer, batch: count / (shape[rank - 1] * shape[rank - 2]),
                                rows: shape[rank - 2], cols: shape[rank - 1])
        } else {
            let loop = StridedLoop(shape: outShape, strides: [Shape.strides(outShape), order.map { inStrides[$0] }])
            Kernels.gatherStrided("permute", loop, out.storage.pointer, storage.pointer, count: count)
        }
        out.node = nil
        return Tensor.result(.permute(order), [self], out)
    }

    /// Swaps the last two axes.
    public func transposed() -> Tensor {
        require(rank >= 2, "transposed: needs rank 2 or more, got \(describe(shape))")
        return permuted(Array(0..<(rank - 2)) + [rank - 1, rank - 2])
    }

    /// Elements start..<end along `axis`.
    public func slice(axis: Int, _ start: Int, _ end: Int) -> Tensor {
        let a = Shape.axis(axis, rank: rank, op: "slice")
        require(start >= 0 && start <= end && end <= shape[a],
                "slice: range \(start)..<\(end) is out of bounds for axis \(axis) of \(describe(shape))")
        var outShape = shape
        outShape[a] = end - start
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        var out = Tensor(uninitialized: outShape)
        let run = (end - start) * inner
        let px = storage.pointer, po = out.storage.pointer
        KernelProfiler.shared.measure("slice", dims(outer, run), bytes: Double(8 * outer * run)) {
            for o in 0..<outer { (po + o * run).update(from: px + (o * shape[a] + start) * inner, count: run) }
        }
        out.node = nil
        return Tensor.result(.slice(axis: a, start: start), [self], out)
    }

    /// Places this tensor at start... along `axis` of a zero tensor of `shape`: the adjoint of slice.
    func padSlice(axis a: Int, start: Int, into target: [Int]) -> Tensor {
        var out = Tensor(zeros: target)
        let outer = target[..<a].reduce(1, *), inner = target[(a + 1)...].reduce(1, *)
        let run = shape[a] * inner
        let px = storage.pointer, po = out.storage.pointer
        KernelProfiler.shared.measure("pad_slice", dims(outer, run), bytes: Double(8 * outer * run)) {
            for o in 0..<outer { (po + (o * target[a] + start) * inner).update(from: px + o * run, count: run) }
        }
        out.node = nil
        return Tensor.result(.padSlice(axis: a, start: start, shape: target), [self], out)
    }

    /// Values at flat indices, laid out as `shape`.
    func gather(_ index: IndexBuffer, shape outShape: [Int]) -> Tensor {
        var out = Tensor(uninitialized: outShape)
        withExtendedLifetime(index) { Kernels.gatherFlat(storage.pointer, index.pointer, out.storage.pointer, index.count) }
        out.node = nil
        return Tensor.result(.gather(index), [self], out)
    }

    /// Adds each value into the flat index of a zero tensor of `shape`: the adjoint of gather.
    func scatterAdd(_ index: IndexBuffer, into target: [Int]) -> Tensor {
        var out = Tensor(uninitialized: target)
        withExtendedLifetime(index) {
            Kernels.scatterAddFlat(storage.pointer, index.pointer, index.count, out.storage.pointer, out.count, segments: index.segments)
        }
        out.node = nil
        return Tensor.result(.scatterAdd(index, shape: target), [self], out)
    }

    /// Rows (entries along axis 0) at the given indices, in order; indices may repeat.
    public func gatherRows(_ rows: [Int]) -> Tensor {
        require(rank >= 1, "gatherRows: needs rank 1 or more")
        let rowSize = count / Swift.max(shape[0], 1)
        let index = IndexBuffer(uninitializedCount: rows.count * rowSize)
        for (i, r) in rows.enumerated() {
            require(r >= 0 && r < shape[0], "gatherRows: row \(r) is out of range for \(describe(shape))")
            for j in 0..<rowSize { index.pointer[i * rowSize + j] = Int32(r * rowSize + j) }
        }
        return gather(index, shape: [rows.count] + shape.dropFirst())
    }

    /// One-hot rows for integer labels; a constant.
    public static func oneHot(_ labels: [Int32], classes: Int) -> Tensor {
        let t = Tensor(zeros: [labels.count, classes])
        for (i, y) in labels.enumerated() {
            require(y >= 0 && Int(y) < classes, "oneHot: label \(y) is out of range for \(classes) classes")
            t.storage.pointer[i * classes + Int(y)] = 1
        }
        return t
    }
}

/// Joins tensors along `axis`; all other extents must agree.
public func concat(_ parts: [Tensor], axis: Int) -> Tensor {
    require(!parts.isEmpty, "concat: no tensors")
    let rank = parts[0].rank
    let a = Shape.axis(axis, rank: rank, op: "concat")
    for p in parts {
        var s0 = parts[0].shape, s1 = p.shape
        if s1.count == rank { s0[a] = 0; s1[a] = 0 }
        require(s0 == s1, "concat: shapes \(describe(parts[0].shape)) and \(describe(p.shape)) differ off axis \(axis)")
    }
    var outShape = parts[0].shape
    outShape[a] = parts.reduce(0) { $0 + $1.shape[a] }
    var out = Tensor(uninitialized: outShape)
    let outer = outShape[..<a].reduce(1, *), inner = outShape[(a + 1)...].reduce(1, *)
    let po = out.storage.pointer
    var offset = 0
    for p in parts {
        let run = p.shape[a] * inner
        for o in 0..<outer { (po + (o * outShape[a]) * inner + offset).update(from: p.storage.pointer + o * run, count: run) }
        offset += run
    }
    out.node = nil
    return Tensor.result(.concat(axis: a), parts, out)
}

/// Stacks same-shape tensors along a new leading axis.
public func stack(_ parts: [Tensor]) -> Tensor {
    concat(parts.map { $0.reshaped([1] + $0.shape) }, axis: 0)
}

/// A dense Float32 tensor: contiguous, row-major, with value semantics over a shared 64-byte
/// aligned buffer (copy on write). A tensor that takes part in differentiation carries the node
/// of the graph that produced it; see `Autodiff/`.
public struct Tensor {
    public private(set) var shape: [Int]
    @usableFromInline internal var storage: TensorStorage
    internal var node: GradNode?

    /// Wraps existing storage; the op layer's way of building results.
    init(shape: [Int], storage: TensorStorage, node: GradNode? = nil) {
        require(Shape.count(shape) == storage.count,
                "shape \(describe(shape)) does not match a buffer of \(storage.count) elements")
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// An uninitialised tensor for kernels to fill.
    init(uninitialized shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: Shape.count(shape)))
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(zeros: Shape.count(shape)))
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    public init(shape: [Int], scalars: [Float]) {
        require(Shape.count(shape) == scalars.count,
                "Tensor(shape: \(describe(shape))) needs \(Shape.count(shape)) scalars, got \(scalars.count)")
        self.init(uninitialized: shape)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// A scalar (rank-0) tensor.
    public init(_ value: Float) { self.init(shape: [], scalars: [value]) }

    /// Standard-normal entries times `std`.
    public static func randn(_ shape: [Int], std: Float = 1, rng: inout RNG) -> Tensor {
        var t = Tensor(uninitialized: shape)
        t.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = rng.normal() * std } }
        return t
    }

    /// Uniform entries in [low, high).
    public static func uniform(_ shape: [Int], _ low: Float, _ high: Float, rng: inout RNG) -> Tensor {
        var t = Tensor(uninitialized: shape)
        t.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = rng.uniform(low, high) } }
        return t
    }

    public var rank: Int { shape.count }
    public var count: Int { storage.count }
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: storage.count)) }

    /// The value of a one-element tensor.
    public var item: Float {
        require(count == 1, "item: tensor of shape \(describe(shape)) has \(count) elements, not 1")
        return storage.pointer[0]
    }

    public subscript(flat i: Int) -> Float {
        get {
            require(i >= 0 && i < count, "index \(i) out of range for \(count) elements")
            return storage.pointer[i]
        }
        set {
            require(i >= 0 && i < count, "index \(i) out of range for \(count) elements")
            makeUnique()
            storage.pointer[i] = newValue
        }
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Mutable access to the values. Writing in place changes a value the graph may have recorded,
    /// so the result is detached from any graph (optimizers update parameters this way).
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        node = nil
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    @usableFromInline
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Same values under a new shape with the same number of elements, without differentiation.
    /// (`reshaped(_:)` is the differentiable op.)
    func viewing(_ newShape: [Int]) -> Tensor { Tensor(shape: newShape, storage: storage) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(\(describe(shape)): \(values)\(count > 8 ? ", …" : ""))"
    }
}

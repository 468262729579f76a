/// Whether ops record the graph. Off inside `noGrad {}` and while a first-order backward pass
/// runs its rules; task-local, so concurrent trials cannot switch each other's mode.
public enum GradMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording any graph: its results carry no gradient.
@discardableResult
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(false, operation: body)
}

/// One recorded op: what it was, the tensors it read (with their own nodes, so the graph is a
/// DAG from outputs to leaves) and the storage of the value it produced. The node never holds a
/// `Tensor` of its own output, since that would point back at the node: a retain cycle.
final class GradNode {
    let op: Op
    let inputs: [Tensor]
    let outputStorage: TensorStorage?
    let outputShape: [Int]

    /// A leaf: a tensor whose gradient is asked for.
    init(leafShape: [Int]) {
        op = .leaf
        inputs = []
        outputStorage = nil
        outputShape = leafShape
    }

    init(op: Op, inputs: [Tensor], output: TensorStorage, shape: [Int]) {
        self.op = op
        self.inputs = inputs
        self.outputStorage = output
        self.outputShape = shape
    }

    var isLeaf: Bool { if case .leaf = op { return true } else { return false } }
}

extension Tensor {
    /// This value as a new leaf of differentiation: `gradients(of:wrt:)` can be asked about it.
    public func requiringGrad() -> Tensor {
        Tensor(shape: shape, storage: storage, node: GradNode(leafShape: shape))
    }

    /// Whether gradients flow to this tensor (it is a leaf or was computed from one).
    public var requiresGrad: Bool { node != nil }

    /// The same value with no graph behind it: gradients stop here.
    public var detached: Tensor { Tensor(shape: shape, storage: storage) }

    /// Builds an op's result, recording the op when gradients are on and any input needs them.
    static func result(_ op: @autoclosure () -> Op, _ inputs: [Tensor], _ value: Tensor) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.node != nil }) else { return value }
        var out = value
        out.node = GradNode(op: op(), inputs: inputs, output: value.storage, shape: value.shape)
        return out
    }
}

/// Reverse-mode differentiation over the recorded graph.
///
/// Returns d(loss)/d(x) for each x in `wrt` (each must be a leaf made by `requiringGrad()` or
/// any tensor computed from one). `loss` must be a scalar unless `seed` gives the gradient to
/// start from. With `createGraph`, the backward pass is itself recorded (its rules are written
/// with differentiable ops), so the gradients can be differentiated again: second-order MAML,
/// Hessian-vector products. A tensor of `wrt` that `loss` does not depend on gets zeros.
public func gradients(of loss: Tensor, wrt: [Tensor], seed: Tensor? = nil, createGraph: Bool = false) -> [Tensor] {
    for (i, x) in wrt.enumerated() {
        require(x.node != nil, "gradients: wrt[\(i)] of shape \(describe(x.shape)) does not require gradients (call requiringGrad())")
    }
    if seed == nil {
        require(loss.count == 1, "gradients: loss of shape \(describe(loss.shape)) is not a scalar; pass a seed")
    } else {
        require(seed!.shape == loss.shape, "gradients: seed \(describe(seed!.shape)) must match loss \(describe(loss.shape))")
    }
    guard let root = loss.node else { return wrt.map { Tensor(zeros: $0.shape) } }

    let targets = Set(wrt.map { ObjectIdentifier($0.node!) })
    let order = topologicalOrder(from: root, targets: targets)

    var grads: [ObjectIdentifier: Tensor] = [:]
    grads[ObjectIdentifier(root)] = seed ?? Tensor(repeating: 1, shape: loss.shape)

    let run = {
        for node in order.nodes.reversed() where !node.isLeaf {
            guard let g = grads.removeValue(forKey: ObjectIdentifier(node)) else { continue }
            let needs = node.inputs.map { input in input.node.map { order.relevant.contains(ObjectIdentifier($0)) } ?? false }
            let output = Tensor(shape: node.outputShape, storage: node.outputStorage!, node: createGraph ? node : nil)
            let inputGrads = gradientRule(node.op, inputs: node.inputs, output: output, grad: g, needs: needs)
            for (input, ig) in zip(node.inputs, inputGrads) {
                guard let ig, let inode = input.node else { continue }
                require(ig.shape == input.shape,
                        "gradients: rule for \(node.op) gave a gradient of shape \(describe(ig.shape)) for an input of shape \(describe(input.shape))")
                let key = ObjectIdentifier(inode)
                grads[key] = grads[key].map { $0 + ig } ?? ig
            }
            // A target that is also an intermediate keeps its gradient for the caller.
            if targets.contains(ObjectIdentifier(node)) { grads[ObjectIdentifier(node)] = g }
        }
    }
    if createGraph { GradMode.$isEnabled.withValue(true, operation: run) } else { noGrad(run) }

    return wrt.map { grads[ObjectIdentifier($0.node!)] ?? Tensor(zeros: $0.shape) }
}

/// Nodes reachable from `root` in post-order (inputs before the ops that read them), computed
/// with an explicit stack because MAML unrolls make graphs far deeper than the call stack allows,
/// and the subset of them from which a target can be reached (the only ones worth differentiating).
private func topologicalOrder(from root: GradNode, targets: Set<ObjectIdentifier>) -> (nodes: [GradNode], relevant: Set<ObjectIdentifier>) {
    var order: [GradNode] = []
    var visited = Set<ObjectIdentifier>()
    var relevant = Set<ObjectIdentifier>()
    var stack: [(GradNode, Int)] = [(root, 0)]
    visited.insert(ObjectIdentifier(root))
    while let (node, next) = stack.popLast() {
        if next < node.inputs.count {
            stack.append((node, next + 1))
            if let child = node.inputs[next].node, visited.insert(ObjectIdentifier(child)).inserted {
                stack.append((child, 0))
            }
        } else {
            let id = ObjectIdentifier(node)
            if targets.contains(id) || node.inputs.contains(where: { $0.node.map { relevant.contains(ObjectIdentifier($0)) } ?? false }) {
                relevant.insert(id)
            }
            order.append(node)
        }
    }
    return (order, relevant)
}

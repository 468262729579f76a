import TensorCore

/// Losses shared by the methods. All return a scalar averaged over the batch.
public enum Loss {
    /// Cross-entropy against integer labels; with `labelSmoothing` ε the target puts 1 - ε on the
    /// label and ε spread evenly over all classes (Szegedy et al. 2016).
    public static func crossEntropy(_ logits: Tensor, labels: [Int32], labelSmoothing: Float = 0) -> Tensor {
        // invariant: methods' configs check labelSmoothing in [0, 1) in validate()
        precondition(labelSmoothing >= 0 && labelSmoothing < 1, "NNCore: labelSmoothing \(labelSmoothing) must be in [0, 1)")
        if labelSmoothing == 0 { return softmaxCrossEntropy(logits: logits, labels: labels) }
        let classes = logits.shape[1]
        let targets = Tensor.oneHot(labels, classes: classes) * (1 - labelSmoothing) + labelSmoothing / Float(classes)
        return softmaxCrossEntropy(logits: logits, targets: targets)
    }

    /// Cross-entropy against soft targets (rows summing to 1).
    public static func crossEntropy(_ logits: Tensor, targets: Tensor) -> Tensor {
        softmaxCrossEntropy(logits: logits, targets: targets)
    }

    /// Mean squared error over all elements.
    public static func mse(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        let d = prediction - target
        return (d * d).mean()
    }

    /// KL(p ‖ q) per row, averaged over rows, from log-probabilities (numerically safe at p = 0
    /// only through `pLog`'s exp: zero-probability entries contribute 0).
    public static func klDivergence(pLog: Tensor, qLog: Tensor) -> Tensor {
        (pLog.exp() * (pLog - qLog)).sum() * (1 / Float(pLog.shape[0]))
    }

    /// Mean entropy of the softmax distributions of rows of logits.
    public static func entropy(logits: Tensor) -> Tensor {
        let logp = logits.logSoftmax()
        return -(logp.exp() * logp).sum() * (1 / Float(logits.shape[0]))
    }

    /// InfoNCE (van den Oord et al. 2018) as in MoCo/SimCLR: row i of `queries` should match row i
    /// of `keys` against the other keys and any extra `negatives`, with cosine similarity / τ.
    public static func infoNCE(queries: Tensor, keys: Tensor, negatives: Tensor? = nil, temperature: Float) -> Tensor {
        // invariant: queries and keys are two encodings of the same batch
        precondition(queries.shape == keys.shape, "NNCore: infoNCE: queries \(queries.shape) and keys \(keys.shape) differ")
        let q = queries.l2Normalized(), k = keys.l2Normalized()
        var logits = matmul(q, k, transposeB: true)
        if let negatives { logits = concat([logits, matmul(q, negatives.l2Normalized(), transposeB: true)], axis: 1) }
        let labels = (0..<queries.shape[0]).map(Int32.init)
        return softmaxCrossEntropy(logits: logits * (1 / temperature), labels: labels)
    }
}

/// Runs `f` on differentiable copies of `parameters` and returns its value (detached, so the
/// graph is freed on return) and the gradient for each path.
public func valueAndGradient(at parameters: [String: Tensor], createGraph: Bool = false,
                             _ f: ([String: Tensor]) -> Tensor) -> (value: Tensor, gradients: [String: Tensor]) {
    let paths = parameters.keys.sorted()
    let leaves = parameters.mapValues { $0.requiresGrad ? $0 : $0.requiringGrad() }
    let value = f(leaves)
    let grads = gradients(of: value, wrt: paths.map { leaves[$0]! }, createGraph: createGraph)
    return (createGraph ? value : value.detached, Dictionary(uniqueKeysWithValues: zip(paths, grads)))
}

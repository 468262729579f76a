import TensorCore

/// One supervised step: forward in training mode, cross-entropy on `labels`, backward, and one
/// optimizer update of `model`'s trainable parameters. Returns the loss before the update.
@discardableResult
public func supervisedStep(_ model: Module, _ optimizer: Optimizer, x: Tensor, labels: [Int32],
                           rng: RNG = RNG(seed: 0), labelSmoothing: Float = 0) -> Float {
    let (loss, grads) = valueAndGradient(at: model.trainableParameters()) { p in
        // The context lives only inside: once it and the graph are gone, the model holds the only
        // reference to each parameter's buffer and the optimizer updates it in place (a context
        // kept alive here made every update copy every parameter).
        var ctx = ForwardContext(training: true, rng: rng, overrides: p)
        return Loss.crossEntropy(model.forward(x, &ctx), labels: labels, labelSmoothing: labelSmoothing)
    }
    optimizer.update(model, gradients: grads)
    return loss.item
}

import TensorCore

/// An optimizer writes the update of one parameter and its state (`applySingle`); the base class
/// walks the model's trainable parameters by path and keeps state per path.
open class Optimizer {
    public var learningRate: Float
    /// Per-path state tensors (momentum, moments), created on first use.
    public var state: [String: [Tensor]] = [:]
    public private(set) var step = 0

    public init(learningRate: Float) { self.learningRate = learningRate }

    /// Number of state tensors per parameter.
    open var stateCount: Int { 0 }

    /// Updates `parameter` in place from `gradient` with its `state` (zero-filled at first use).
    open func applySingle(_ parameter: inout Tensor, _ gradient: Tensor, _ state: inout [Tensor]) {
        // invariant: abstract method; every optimizer overrides it
        fatalError("\(type(of: self)) does not implement applySingle")
    }

    /// One update of every trainable parameter of `model` that has a gradient.
    public func update(_ model: Module, gradients: [String: Tensor]) {
        step += 1
        model.updateParameters { path, parameter in
            guard let g = gradients[path] else { return }
            // invariant: autodiff returns each gradient in its parameter's shape
            precondition(g.shape == parameter.shape, "NNCore: gradient for \(path) has shape \(g.shape), parameter \(parameter.shape)")
            var s = state[path] ?? (0..<stateCount).map { _ in Tensor(zeros: parameter.shape) }
            state[path] = nil   // so the state buffers are uniquely referenced and update in place
            applySingle(&parameter, g, &s)
            state[path] = s
        }
    }
}

/// Stochastic gradient descent with momentum, Nesterov momentum and (coupled) weight decay, in
/// PyTorch's formulation: v = μv + (g + λp); p -= lr · (nesterov ? g + λp + μv : v).
public final class SGD: Optimizer {
    public var momentum: Float, nesterov: Bool, weightDecay: Float

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        super.init(learningRate: learningRate)
    }

    public override var stateCount: Int { momentum == 0 ? 0 : 1 }

    public override func applySingle(_ parameter: inout Tensor, _ gradient: Tensor, _ state: inout [Tensor]) {
        var velocity = state.popLast()
        UpdateKernels.sgd(&parameter, gradient: gradient, velocity: &velocity, lr: learningRate, momentum: momentum,
                          weightDecay: weightDecay, nesterov: nesterov)
        if let velocity { state.append(velocity) }
    }
}

/// Adam (Kingma & Ba 2015) and, with `decoupled`, AdamW (Loshchilov & Hutter 2019).
public final class Adam: Optimizer {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false) {
        (self.beta1, self.beta2, self.eps, self.weightDecay, self.decoupled) = (beta1, beta2, eps, weightDecay, decoupled)
        super.init(learningRate: learningRate)
    }

    /// AdamW: weight decay applied to the parameter directly, not through the moments.
    public static func adamW(learningRate: Float, weightDecay: Float = 0.01) -> Adam {
        Adam(learningRate: learningRate, weightDecay: weightDecay, decoupled: true)
    }

    public override var stateCount: Int { 2 }

    public override func applySingle(_ parameter: inout Tensor, _ gradient: Tensor, _ state: inout [Tensor]) {
        let t = Float(step)
        var v = state.removeLast(), m = state.removeLast()
        UpdateKernels.adam(&parameter, gradient: gradient, m: &m, v: &v, lr: learningRate, beta1: beta1, beta2: beta2,
                           eps: eps, weightDecay: weightDecay, decoupled: decoupled,
                           c1: 1 - Float.pow(beta1, t), c2: 1 - Float.pow(beta2, t))
        state = [m, v]
    }
}

extension Float {
    static func pow(_ x: Float, _ y: Float) -> Float { Float(Foundation.pow(Double(x), Double(y))) }
}

import Foundation

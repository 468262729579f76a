import Foundation
import TensorCore

/// y = x Wᵀ + b, with W of shape [out, in] (PyTorch's layout, so paths and shapes read the same).
public final class Linear: Module {
    public let inFeatures: Int, outFeatures: Int

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout RNG) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        super.init()
        // He initialisation: variance 2 / fan_in keeps activations' scale through ReLU layers.
        parameters["weight"] = Tensor.randn([outFeatures, inFeatures], std: (2 / Float(inFeatures)).squareRoot(), rng: &rng)
        if bias { parameters["bias"] = Tensor(zeros: [outFeatures]) }
    }

    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        forward(x, &ctx, relu: false)
    }

    /// The layer followed by a ReLU, fused (`Sequential` uses this when a ReLU follows).
    public func forward(_ x: Tensor, _ ctx: inout ForwardContext, relu: Bool) -> Tensor {
        // invariant: layers are built for the feature width the backbone computes from the planner-checked image shape
        precondition(x.rank == 2 && x.shape[1] == inFeatures,
                     "NNCore: Linear(\(inFeatures) -> \(outFeatures)) got input of shape \(x.shape)")
        let bias = parameters["bias"] == nil ? nil : ctx.parameter(self, "bias")
        return linear(x, ctx.parameter(self, "weight"), bias: bias, relu: relu)
    }
}

/// 2-D convolution over NCHW input with an [out, in, kh, kw] kernel and optional bias.
public final class Conv2D: Module {
    public let stride: (Int, Int), padding: (Int, Int)

    public init(_ inChannels: Int, _ outChannels: Int, kernel: (Int, Int) = (3, 3), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), bias: Bool = true, rng: inout RNG) {
        self.stride = stride
        self.padding = padding
        super.init()
        let fanIn = inChannels * kernel.0 * kernel.1
        parameters["weight"] = Tensor.randn([outChannels, inChannels, kernel.0, kernel.1], std: (2 / Float(fanIn)).squareRoot(), rng: &rng)
        if bias { parameters["bias"] = Tensor(zeros: [outChannels]) }
    }

    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        forward(x, &ctx, relu: false)
    }

    /// The convolution followed by a ReLU, fused into the kernel (`Sequential` uses this when a
    /// ReLU follows a Conv2D), and filling `moments` for a batch norm after it.
    public func forward(_ x: Tensor, _ ctx: inout ForwardContext, relu: Bool, moments: PlaneMoments? = nil) -> Tensor {
        let bias = parameters["bias"] == nil ? nil : ctx.parameter(self, "bias")
        return conv2d(x, ctx.parameter(self, "weight"), bias: bias, stride: stride, padding: padding, relu: relu, moments: moments)
    }
}

/// Batch normalisation over axis 1 of [N, C] or [N, C, H, W]: batch statistics in training
/// (updating running estimates with `momentum`), running statistics in evaluation.
public final class BatchNorm: Module {
    public let momentum: Float, eps: Float

    public init(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        self.momentum = momentum
        self.eps = eps
        super.init()
        parameters["weight"] = Tensor(repeating: 1, shape: [channels])
        parameters["bias"] = Tensor(zeros: [channels])
        buffers["running_mean"] = Tensor(zeros: [channels])
        buffers["running_var"] = Tensor(repeating: 1, shape: [channels])
    }

    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        forward(x, &ctx, relu: false)
    }

    /// The normalisation followed by a ReLU, fused (`Sequential` uses this when a ReLU follows),
    /// and then by `pool` (a max pooling whose windows do not overlap), fused too in training mode;
    /// in training, the batch's statistics from x's `moments` when the convolution that made x
    /// filled them.
    public func forward(_ x: Tensor, _ ctx: inout ForwardContext, relu: Bool, pool: MaxPool? = nil,
                        moments: PlaneMoments? = nil) -> Tensor {
        let c = buffers["running_mean"]!.count
        // invariant: layers are built for the channel count the backbone computes from the planner-checked image shape
        precondition(x.rank >= 2 && x.shape[1] == c, "NNCore: BatchNorm(\(c)) got input of shape \(x.shape)")
        let gamma = ctx.parameter(self, "weight"), beta = ctx.parameter(self, "bias")
        if ctx.training {
            let (y, mean, variance) = pool.map { p in
                batchNormReluMaxPool(x, gamma: gamma, beta: beta, eps: eps, kernel: p.kernel, stride: p.stride, moments: moments)
            } ?? batchNorm(x, gamma: gamma, beta: beta, eps: eps, relu: relu, moments: moments)
            if ctx.updatesRunningStatistics {
                let n = Float(x.count / c), m = momentum
                noGrad {
                    buffers["running_mean"] = buffers["running_mean"]! * (1 - m) + mean * m
                    // PyTorch keeps the unbiased variance as the running estimate.
                    buffers["running_var"] = buffers["running_var"]! * (1 - m) + variance * (m * n / Swift.max(n - 1, 1))
                }
            }
            return y
        }
        let y = batchNormInference(x, gamma: gamma, beta: beta, mean: ctx.buffer(self, "running_mean"),
                                   variance: ctx.buffer(self, "running_var"), eps: eps, relu: relu)
        return pool.map { $0.forward(y, &ctx) } ?? y
    }
}

public final class MaxPool: Module {
    public let kernel: (Int, Int), stride: (Int, Int)
    public init(_ kernel: (Int, Int) = (2, 2), stride: (Int, Int)? = nil) { self.kernel = kernel; self.stride = stride ?? kernel }
    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { maxPool2d(x, kernel: kernel, stride: stride) }
    /// Whether windows do not overlap, so batch norm and a ReLU before it fuse with it.
    var windowsApart: Bool { stride.0 >= kernel.0 && stride.1 >= kernel.1 }
}

public final class AvgPool: Module {
    public let kernel: (Int, Int), stride: (Int, Int)
    public init(_ kernel: (Int, Int) = (2, 2), stride: (Int, Int)? = nil) { self.kernel = kernel; self.stride = stride ?? kernel }
    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { avgPool2d(x, kernel: kernel, stride: stride) }
}

public final class ReLU: Module {
    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { x.relu() }
}

public final class LeakyReLU: Module {
    public let slope: Float
    public init(_ slope: Float = 0.01) { self.slope = slope }
    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { x.leakyRelu(slope) }
}

/// Inverted dropout in training; the identity in evaluation.
public final class Dropout: Module {
    public let p: Float
    public init(_ p: Float) { self.p = p }
    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        ctx.training ? x.dropout(p, rng: &ctx.rng) : x
    }
}

/// [N, ...] -> [N, rest].
public final class Flatten: Module {
    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { x.flattened() }
}

/// A module's output flattened to [N, features], the module kept under `name` so that parameter
/// paths read as in the network it came from (an encoder cut from the middle of a network).
public final class FlattenedOutput: Module {
    public init(_ module: Module, name: String) {
        super.init()
        children = [(name, module)]
    }

    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        let (name, module) = children[0]
        return ctx.child(name) { module.forward(x, &$0) }.flattened()
    }
}

/// Children applied in order, named "0", "1", ... so paths read `encoder.0.weight`.
public final class Sequential: Module {
    public init(_ layers: [Module]) {
        super.init()
        children = layers.enumerated().map { (String($0.offset), $0.element) }
    }

    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        var h = x
        var i = 0
        // The moments of the last convolution's output planes, when a batch norm in training mode
        // comes next: it takes its statistics from them instead of a pass of its own.
        var moments: PlaneMoments?
        while i < children.count {
            let (name, layer) = children[i]
            let reluNext = i + 1 < children.count && type(of: children[i + 1].module) == ReLU.self
            if let norm = layer as? BatchNorm {
                // BatchNorm and ReLU as one kernel, and with a max pooling after them as one more:
                // the full-size activation is neither written nor read again.
                let pool = reluNext && i + 2 < children.count ? (children[i + 2].module as? MaxPool).flatMap { $0.windowsApart ? $0 : nil } : nil
                h = ctx.child(name) { norm.forward(h, &$0, relu: reluNext, pool: pool, moments: moments) }
                moments = nil
                i += pool != nil ? 3 : reluNext ? 2 : 1
                continue
            }
            moments = nil
            // Conv2D or Linear then ReLU runs as one fused kernel: same values and gradients, two
            // passes over the activation fewer each way.
            if let conv = layer as? Conv2D {
                if ctx.training && !reluNext && i + 1 < children.count && children[i + 1].module is BatchNorm { moments = PlaneMoments() }
                h = ctx.child(name) { conv.forward(h, &$0, relu: reluNext, moments: moments) }
                i += reluNext ? 2 : 1
                continue
            }
            if reluNext, let dense = layer as? Linear {
                h = ctx.child(name) { dense.forward(h, &$0, relu: true) }
                i += 2
                continue
            }
            h = ctx.child(name) { layer.forward(h, &$0) }
            i += 1
        }
        return h
    }
}

/// Baseline++'s classifier (Chen et al., "A Closer Look at Few-shot Classification", ICLR 2019):
/// logits are scaled cosine similarities between features and per-class weight vectors.
public final class CosineClassifier: Module {
    public let scale: Float

    /// With `classGains`, class c's logit is also multiplied by a learned gain g_c (parameter
    /// `gain`, initialised to 1): the weight-normalised w_c = g_c·v_c/‖v_c‖ of Salimans & Kingma
    /// (2016), as Baseline++'s reference code has it ("class-wise learnable norm").
    public init(_ features: Int, _ classes: Int, scale: Float = 10, classGains: Bool = false, rng: inout RNG) {
        self.scale = scale
        super.init()
        parameters["weight"] = Tensor.randn([classes, features], std: (1 / Float(features)).squareRoot(), rng: &rng)
        if classGains { parameters["gain"] = Tensor(shape: [classes], scalars: [Float](repeating: 1, count: classes)) }
    }

    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        let logits = pairwiseCosineSimilarity(x, ctx.parameter(self, "weight")) * scale
        return parameters["gain"] == nil ? logits : logits * ctx.parameter(self, "gain")
    }
}

/// An LSTM cell (Hochreiter & Schmidhuber 1997), as used by the Meta-Learner LSTM: gates
/// i, f, g, o from [x, h]; c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c').
public final class LSTMCell: Module {
    public let inputSize: Int, hiddenSize: Int

    public init(_ inputSize: Int, _ hiddenSize: Int, rng: inout RNG) {
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        super.init()
        let bound = 1 / Float(hiddenSize).squareRoot()
        parameters["weight_ih"] = Tensor.uniform([4 * hiddenSize, inputSize], -bound, bound, rng: &rng)
        parameters["weight_hh"] = Tensor.uniform([4 * hiddenSize, hiddenSize], -bound, bound, rng: &rng)
        parameters["bias"] = Tensor(zeros: [4 * hiddenSize])
    }

    /// One step: (x [B, I], h [B, H], c [B, H]) -> (h', c').
    public func step(_ x: Tensor, h: Tensor, c: Tensor, _ ctx: inout ForwardContext) -> (h: Tensor, c: Tensor) {
        let gates = matmul(x, ctx.parameter(self, "weight_ih"), transposeB: true)
            + matmul(h, ctx.parameter(self, "weight_hh"), transposeB: true) + ctx.parameter(self, "bias")
        let n = hiddenSize
        let i = gates.slice(axis: 1, 0, n).sigmoid(), f = gates.slice(axis: 1, n, 2 * n).sigmoid()
        let g = gates.slice(axis: 1, 2 * n, 3 * n).tanh(), o = gates.slice(axis: 1, 3 * n, 4 * n).sigmoid()
        let c2 = f * c + i * g
        return (o * c2.tanh(), c2)
    }

    /// Runs one step from a zero state and returns h (so the cell can sit in a Sequential).
    public override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        let zero = Tensor(zeros: [x.shape[0], hiddenSize])
        return step(x, h: zero, c: zero, &ctx).h
    }
}

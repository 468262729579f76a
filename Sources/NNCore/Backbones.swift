import TensorCore

/// The encoders every method shares. Each returns the network and its feature width.
public enum Backbone {
    /// Fully connected: flatten, then Linear + ReLU per hidden width.
    public static func mlp(inputShape: [Int], hidden: [Int], rng: inout RNG) -> (net: Sequential, features: Int) {
        var layers: [Module] = [Flatten()]
        var width = inputShape.reduce(1, *)
        for h in hidden {
            layers.append(Linear(width, h, rng: &rng))
            layers.append(ReLU())
            width = h
        }
        return (Sequential(layers), width)
    }

    /// The standard few-shot Conv-4 (Vinyals et al. 2016; Snell et al. 2017): four blocks of
    /// [conv3x3 (padding 1), batch-norm, ReLU, max-pool 2], then flatten. 28x28 input with width
    /// 64 gives 64 features (28 -> 14 -> 7 -> 3 -> 1). A 1-D signal stored as a 1 x W image gets
    /// 1x3 kernels and 1x2 pooling instead. `conv4Fits` says whether a shape survives the poolings.
    public static func conv4(inputShape: [Int], width: Int = 64, rng: inout RNG) -> (net: Sequential, features: Int) {
        // invariant: the planner refuses conv4 on images too small for it (`BackboneSpec.check`), before any trial runs
        precondition(conv4Fits(inputShape), "NNCore: conv4: input \(inputShape) is too small for four 2x poolings")
        let signal = inputShape[1] == 1
        var layers: [Module] = []
        var (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        for _ in 0..<4 {
            layers.append(Sequential([
                Conv2D(c, width, kernel: signal ? (1, 3) : (3, 3), padding: signal ? (0, 1) : (1, 1), rng: &rng),
                BatchNorm(width), ReLU(), MaxPool(signal ? (1, 2) : (2, 2)),
            ]))
            (c, h, w) = (width, signal ? 1 : h / 2, w / 2)
        }
        layers.append(Flatten())
        return (Sequential(layers), c * h * w)
    }

    /// Whether `inputShape` [C, H, W] survives conv4's four poolings: H and W at least 16 for an
    /// image, W at least 16 for a 1 x W signal.
    public static func conv4Fits(_ inputShape: [Int]) -> Bool {
        inputShape.count == 3 && inputShape[2] >= 16 && (inputShape[1] == 1 || inputShape[1] >= 16)
    }
}

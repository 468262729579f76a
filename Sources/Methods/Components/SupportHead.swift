import NNCore
import TensorCore

/// A new classifier fitted on an episode's support features, the encoder frozen: the adapter of
/// the fine-tuning baselines (Chen et al. 2019). Paper settings: SGD with momentum 0.9, learning
/// rate 0.01, weight decay 1e-3, 100 epochs over the support set in batches of 4; here 100
/// full-batch steps (the support set is at most a few dozen features, so a batch of 4 only adds noise).
public struct SupportHead: Codable, Equatable, Sendable {
    public var steps = 100
    public var learningRate: Float = 0.01
    public var momentum: Float = 0.9
    public var weightDecay: Float = 1e-3

    public init() {}

    public func validate(key: String) throws {
        try Check.atLeast(steps, 1, key: "\(key).steps")
        try Check.positive(learningRate, key: "\(key).learningRate")
        guard momentum >= 0 && momentum < 1 else { throw ConfigError(key: "\(key).momentum", "must be in [0, 1), got \(momentum)") }
        try Check.nonNegative(weightDecay, key: "\(key).weightDecay")
    }

    /// `head` (a fresh linear or cosine classifier over the way) trained on `features` [S, D].
    public func fit(_ head: Module, features: Tensor, labels: [Int32]) -> Module {
        let optimizer = SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        let f = features.detached
        for _ in 0..<steps {
            let (_, gradients) = valueAndGradient(at: head.trainableParameters()) { parameters in
                var ctx = ForwardContext(training: true, overrides: parameters)
                return Loss.crossEntropy(head.forward(f, &ctx), labels: labels)
            }
            optimizer.update(head, gradients: gradients)
        }
        return head
    }
}

import DataCore
import NNCore
import TensorCore

/// What the methods fitted by passes over the whole unlabeled pool share (PCA, k-means, the
/// Gaussian mixture): the pool as one matrix, the passes run through the trainer's loop (so they
/// get progress, a curve per named value and the divergence stop without pretending to take
/// gradient steps), and one validation of the result at the end.
public enum PoolFit {
    /// Every image of the granted unlabeled pool (plain view), one row each: [N, C·H·W].
    public static func matrix(_ data: TrainingData, method: String) throws -> Tensor {
        let pool = try data.unlabeledPool(for: method)
        var rng = RNG(seed: 0)   // plain views draw no randomness
        return pool.images(at: Array(0..<pool.count), rng: &rng).flattened()
    }

    /// Runs `passes` passes (`pass(k)` returns named values, the objective first) with `rows`
    /// rows each, then validates the evaluables once.
    public static func run(_ input: TrainingInput, passes: Int, rows: Int, pass: (Int) throws -> [(name: String, value: Float)],
                           evaluables: @escaping () -> Evaluables) throws -> TrainedModel {
        let trainer = Trainer(steps: passes, schedule: LearningRateSchedule(base: 0, shape: .constant, warmupSteps: 0), samplesPerStep: rows,
                              validateEvery: 0, curveEvery: max(1, passes / 50), validationMetric: input.validator?.metric ?? "val_knn_accuracy",
                              observer: input.observer)
        let summary = try trainer.run(step: { k, _ in try pass(k) },
                                      validate: input.validator.map { v in { v.score(evaluables(), .eval) } })
        return TrainedModel(evaluables(), summary: summary)
    }
}

/// An encoder with no parameters: a fixed map of the flattened images, fitted outside any graph
/// (PCA's projection, distances to k-means centroids, a mixture's posteriors).
public final class FittedEncoder: Module {
    let map: (Tensor) -> Tensor
    public init(_ map: @escaping (Tensor) -> Tensor) { self.map = map }
    override public func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { noGrad { map(x.flattened()) } }
}

extension TrainingData {
    /// The unlabeled pool, or an error naming the method when its regime grants none.
    public func unlabeledPool(for method: String) throws -> UnlabeledPool {
        guard let unlabeled else { throw TrainingError(message: "\(method) needs unlabeled images, which its regime does not grant") }
        return unlabeled
    }
}

extension UnlabeledPool {
    /// `map` of every image of the pool (plain view) in chunks of 500, outside any graph,
    /// concatenated in pool order: a pass over the pool (features, a teacher's targets).
    public func mapAll(_ map: (Tensor) -> Tensor) -> Tensor {
        var rng = RNG(seed: 0)   // plain views draw no randomness
        let chunks = stride(from: 0, to: count, by: 500).map { start in
            noGrad { map(images(at: Array(start..<Swift.min(start + 500, count)), rng: &rng)) }
        }
        return concat(chunks, axis: 0)
    }
}

extension Tensor {
    /// Blocks of at most `size` rows, in order: a pass over many images in batches of a bounded size.
    public func rowChunks(_ size: Int = 500) -> [Tensor] {
        stride(from: 0, to: shape[0], by: size).map { slice(axis: 0, $0, Swift.min($0 + size, shape[0])) }
    }
}

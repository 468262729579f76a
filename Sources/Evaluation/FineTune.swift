import DataCore
import NNCore
import TensorCore

/// The `finetune` protocol: the encoder and a new linear head trained end-to-end on the budget's
/// labeled examples, the encoder at a tenth of the head's learning rate (so pre-trained features
/// are adjusted, not overwritten), validation-based early stopping. The encoder is restored
/// afterwards: evaluating does not change what is evaluated.
public struct FineTune {
    public var steps = 400
    public var batchSize = 64
    public var learningRate: Float = 0.05
    public var encoderRateScale: Float = 0.1
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    public var validateEvery = 50
    /// Stop after this many validations without improvement.
    public var patience = 3

    public init() {}

    public struct Result {
        public var testAccuracy: AccuracyReport
        public var validationAccuracy: Double
        public var steps: Int
    }

    /// `features` is the encoder's output width; `encoderPath` the encoder's path in its model.
    public func evaluate(encoder: Module, features: Int, dataset d: Dataset, split: LabelSplit, seed: UInt64) throws -> Result {
        guard !split.labeled.isEmpty else { throw DataError("finetune: the label budget grants no labeled examples") }
        let saved = Dictionary(uniqueKeysWithValues: (encoder.namedParameters() + encoder.namedBuffers()).map { ($0.path, $0.tensor) })
        let frozen = encoder.namedParameters().map(\.path).filter { !encoder.trainableParameters().keys.contains($0) }
        encoder.unfreeze()
        defer {
            encoder.load(saved)
            for path in frozen { encoder.freeze(prefix: path) }
        }
        let key = "finetune/\(d.contentHash)/\(split.hash)"
        var rng = RNG(seed: seed, key: key, stream: "head")
        let model = Sequential([encoder, Linear(features, d.classCount, rng: &rng)])
        let head = SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        let body = SGD(learningRate: learningRate * encoderRateScale, momentum: momentum, weightDecay: weightDecay)
        var batches = try BatchStream(indices: split.labeled, batchSize: min(batchSize, split.labeled.count),
                                      rng: RNG(seed: seed, key: key, stream: "batches"))
        func validate() -> Double {
            Evaluate.accuracy(model, images: d.trainImages, labels: d.trainLabels, indices: split.validation, classes: d.classCount).accuracy
        }
        var best = (score: validate(), step: 0, weights: model.namedParameters() + model.namedBuffers())
        var stale = 0, step = 0
        while step < steps && stale < patience {
            step += 1
            let batch = batches.next()
            let x = d.trainImages.gatherRows(batch), y = batch.map { d.trainLabels[$0] }
            let (_, grads) = valueAndGradient(at: model.trainableParameters()) { p in
                var ctx = ForwardContext(training: true, rng: RNG(seed: seed, key: key, stream: "step-\(step)"), overrides: p)
                return Loss.crossEntropy(model.forward(x, &ctx), labels: y)
            }
            head.update(model, gradients: grads.filter { $0.key.hasPrefix("1.") })
            body.update(model, gradients: grads.filter { $0.key.hasPrefix("0.") })
            if step % validateEvery == 0 || step == steps {
                let score = validate()
                if score > best.score {
                    best = (score, step, model.namedParameters() + model.namedBuffers())
                    stale = 0
                } else {
                    stale += 1
                }
            }
        }
        model.load(Dictionary(uniqueKeysWithValues: best.weights.map { ($0.path, $0.tensor) }))
        let test = Evaluate.accuracy(model, images: d.testImages, labels: d.testLabels, classes: d.classCount)
        return Result(testAccuracy: test, validationAccuracy: best.score, steps: step)
    }
}

import DataCore
import NNCore
import TensorCore

/// Next-frame prediction, the lecture's video pretext task (in the spirit of Srivastava et al.,
/// "Unsupervised Learning of Video Representations using LSTMs", ICML 2015, and Mathieu et al.,
/// "Deep multi-scale video prediction beyond mean square error", ICLR 2016): from the first T − 1
/// frames of a sequence a model predicts the last. Each frame passes through the same frame
/// encoder (the backbone, on one frame), the T − 1 feature vectors are concatenated in time order,
/// and an MLP predicts the last frame's pixels under the squared error. The representation scored
/// on the sequences' classes is the frame encoder's features averaged over a sequence's frames.
/// `native` stores the test `next_frame_error` (squared error per pixel, standardised units) beside
/// `copy_frame_error`, the error of repeating the last context frame: the floor a predictor that
/// learned the motion must beat.
///
/// Departures: a feed-forward predictor over concatenated frame features in place of an LSTM
/// encoder-decoder or a multi-scale convolutional generator (the engine has neither a transposed
/// convolution nor, for images, a recurrent decoder), the squared error alone (no adversarial or
/// gradient-difference loss); the data are procedural (`glyph-motion`: glyphs moving and turning
/// at a constant per-sequence velocity and spin). Other datasets are left out when a suite is
/// planned.
public enum NextFrame: StepMethod {
    public static let id = "next-frame"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "predict a sequence's last frame from the frames before it (glyph-motion)"
    public static let measuresItself = true

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec.adam(steps: 1500)
        /// Sequences per step.
        public var batchSize = 64
        public var predictorHidden = 512

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(predictorHidden, 1, key: "predictorHidden")
        }

        public var samplesPerStep: Int { batchSize }
        // Measured (selfsup.yaml and the default suite, 2-vCPU Xeon): several frames in and a
        // decoded frame out, about 3.5x a supervised step per image.
        public var stepCost: Double { 3.5 }
    }

    public static func unsuitable(_ images: ImageKind) -> String? {
        images.frames == nil ? "next-frame prediction needs sequences (glyph-motion); these are \(images.description)" : nil
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        if let reason = unsuitable(data.imageKind) { throw TrainingError(message: reason) }
        return try Model(data, config: config, rng: &rng)
    }

    public final class Model: Learner {
        /// [frame encoder, predictor].
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int, frames: Int

        init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (t, h, w) = (data.imageShape[0], data.imageShape[1], data.imageShape[2])
            let (encoder, width) = try config.backbone.build(imageShape: [1, h, w], rng: &rng)
            let predictor = Sequential([Linear((t - 1) * width, config.predictorHidden, rng: &rng), ReLU(),
                                        Linear(config.predictorHidden, h * w, rng: &rng)])
            (network, features, frames) = (Sequential([encoder, predictor]), width, t)
            needs = StreamNeeds(unlabeled: (config.batchSize, [.plain]))
        }

        /// Frames `range` of sequences [N, T, H, W] through the frame encoder: [N, frames, features].
        static func encodeFrames(_ encoder: Module, _ x: Tensor, _ range: Range<Int>, _ ctx: inout ForwardContext) -> Tensor {
            let n = x.shape[0]
            // Time-major on the batch axis: one encoder pass over every frame.
            let stacked = concat(range.map { x.slice(axis: 1, $0, $0 + 1) }, axis: 0)
            let f = encoder.forward(stacked, &ctx).flattened()
            return f.reshaped([range.count, n, f.shape[1]]).permuted([1, 0, 2])
        }

        /// The predicted last frame of each sequence, flattened: [N, H·W].
        func predictLast(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            let context = ctx.child("0") { Self.encodeFrames(network.children[0].module, x, 0..<(frames - 1), &$0) }
            return ctx.child("1") { network.children[1].module.forward(context.reshaped([x.shape[0], -1]), &$0) }
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let x = batch.unlabeled!.views[0]
            let target = x.slice(axis: 1, frames - 1, frames).flattened()
            return StepOutput(loss: (predictLast(x, &ctx) - target).pow(2).mean())
        }

        /// Squared errors per pixel of the prediction and of repeating the last context frame.
        func errors(_ sequences: Tensor) -> [(name: String, value: Double)] {
            var (predicted, copied) = (0.0, 0.0)
            for x in sequences.rowChunks() {
                let target = x.slice(axis: 1, frames - 1, frames).flattened()
                noGrad {
                    var ctx = ForwardContext.eval
                    predicted += Double((predictLast(x, &ctx) - target).pow(2).sum().item)
                    copied += Double((x.slice(axis: 1, frames - 2, frames - 1).flattened() - target).pow(2).sum().item)
                }
            }
            let pixels = Double(sequences.shape[0] * sequences.shape[2] * sequences.shape[3])
            return [("next_frame_error", predicted / pixels), ("copy_frame_error", copied / pixels)]
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: nil, encoder: SequenceEncoder(network.children[0].module, frames: frames), encoderPath: "", featureCount: features,
                       measures: SelfMeasures(values: { self.errors($0) }))
        }
    }

    /// A sequence's representation: the frame encoder's features averaged over its frames (the
    /// encoder kept under "0", its path in the method's network).
    final class SequenceEncoder: Module {
        let frames: Int
        init(_ encoder: Module, frames: Int) {
            self.frames = frames
            super.init()
            children = [("0", encoder)]
        }

        override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            let f = ctx.child("0") { Model.encodeFrames(children[0].module, x, 0..<frames, &$0) }
            return f.mean(axis: 1)
        }
    }
}

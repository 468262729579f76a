import DataCore
import NNCore
import TensorCore

/// An autoencoder: the backbone encodes an image, a decoder reconstructs its pixels from the
/// features, and the loss is the squared error (Hinton & Salakhutdinov 2006). Two corruptions make
/// the encoder learn more than an identity:
/// - `denoising` (Vincent et al. 2008): Gaussian noise of standard deviation `noise` (in the
///   dataset's standardised pixel units) is added to the input; the clean image is the target.
/// - `masked` (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners"): square patches
///   of `patch` pixels are hidden with probability `maskRatio` and the loss is taken on the hidden
///   pixels only.
///
/// The representation is the backbone's output (`featureBlocks` < 4 reads it after the first blocks
/// instead, `EncoderCut`). `native` stores the test `reconstruction_error`:
/// the mean squared error per pixel of clean test images (standardised units).
///
/// Departures: the decoder is a two-layer MLP (the engine has no transposed convolution); MAE's
/// ViT drops the hidden patches from the encoder's input, a convolutional encoder cannot, so they
/// are set to 0 (the dataset mean), as SimMIM does for convolutional and Swin encoders (Xie et
/// al. 2022); MAE's 75% mask ratio is for 16-pixel patches of 224-pixel images, the default here
/// is 50% of 4-pixel patches of 28-pixel images.
public enum Autoencoder: StepMethod {
    public static let id = "autoencoder"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "reconstruct the pixels from the backbone's features; denoising and masked variants"
    public static let measuresItself = true

    public enum Corruption: String, Codable, Sendable { case none, denoising, masked }

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec.adam(steps: 1500)
        public var batchSize = 128
        public var corruption = Corruption.none
        /// Standard deviation of the denoising noise.
        public var noise: Float = 0.5
        /// Fraction of patches hidden by `masked`.
        public var maskRatio: Float = 0.5
        /// Side of a masked patch, in pixels.
        public var patch = 4
        /// Width of the decoder's hidden layer.
        public var decoderHidden = 512
        /// conv4 blocks (1-4) whose output is the representation evaluation scores (4: the encoder's
        /// output, the paper's); training does not depend on it (`EncoderCut`).
        public var featureBlocks = 4

        public init() {}

        public func validateOwn() throws {
            try PretextNetwork.checkBlocks(featureBlocks)
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.nonNegative(noise, key: "noise")
            guard maskRatio > 0 && maskRatio < 1 else { throw ConfigError(key: "maskRatio", "must be in (0, 1), got \(maskRatio)") }
            try Check.atLeast(patch, 1, key: "patch")
            try Check.atLeast(decoderHidden, 1, key: "decoderHidden")
        }

        public var representationBlocks: Int? { featureBlocks }

        public var samplesPerStep: Int { batchSize }
        // Measured (selfsup.yaml, 2-vCPU Xeon): the decoder, about 1.3x a supervised step per image.
        public var stepCost: Double { 1.3 }
    }

    public final class Model: ConfiguredLearner {
        /// [encoder, decoder]; the decoder's output is the flattened image.
        public let network: Sequential
        public let needs: StreamNeeds
        let cut: EncoderCut
        let features: Int
        let config: Config

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (encoder, width) = try config.backbone.build(imageShape: data.imageShape, rng: &rng)
            cut = EncoderCut(featureBlocks: config.featureBlocks, backbone: config.backbone, imageShape: data.imageShape)
            let pixels = data.imageShape.reduce(1, *)
            let decoder = Sequential([Linear(width, config.decoderHidden, rng: &rng), ReLU(), Linear(config.decoderHidden, pixels, rng: &rng)])
            (network, features, self.config) = (Sequential([encoder, decoder]), width, config)
            needs = StreamNeeds(unlabeled: (config.batchSize, [.plain]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let x = batch.unlabeled!.views[0]
            let target = x.flattened()
            switch config.corruption {
            case .none:
                return StepOutput(loss: Self.squaredError(network.forward(x, &ctx), target))
            case .denoising:
                let noisy = x + Tensor.randn(x.shape, std: config.noise, rng: &ctx.rng)
                return StepOutput(loss: Self.squaredError(network.forward(noisy, &ctx), target))
            case .masked:
                let mask = Self.patchMask(x.shape, patch: config.patch, ratio: config.maskRatio, rng: &ctx.rng)
                let loss = Self.squaredError(network.forward(x * (1 - mask), &ctx), target, over: mask.flattened())
                return StepOutput(loss: loss, scalars: [("mask_rate", mask.scalars.reduce(0, +) / Float(mask.count))])
            }
        }

        /// Mean squared error per value, or over the values where `mask` is 1.
        static func squaredError(_ output: Tensor, _ target: Tensor, over mask: Tensor? = nil) -> Tensor {
            let squared = (output - target).pow(2)
            guard let mask else { return squared.mean() }
            return (squared * mask).sum() / Swift.max(1, mask.scalars.reduce(0, +))
        }

        /// 1 on the hidden pixels of [N, C, H, W] images: square patches of `patch` pixels (clipped
        /// at the image's edge), each hidden with probability `ratio`, the same for every channel.
        static func patchMask(_ shape: [Int], patch: Int, ratio: Float, rng: inout RNG) -> Tensor {
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            let (rows, columns) = ((h + patch - 1) / patch, (w + patch - 1) / patch)
            var mask = [Float](repeating: 0, count: n * c * h * w)
            for i in 0..<n {
                for py in 0..<rows {
                    for px in 0..<columns where rng.uniform() < ratio {
                        for ch in 0..<c {
                            for y in (py * patch)..<min(h, (py + 1) * patch) {
                                for x in (px * patch)..<min(w, (px + 1) * patch) { mask[((i * c + ch) * h + y) * w + x] = 1 }
                            }
                        }
                    }
                }
            }
            return Tensor(shape: shape, scalars: mask)
        }

        /// Mean squared error per pixel of the clean images' reconstructions, in evaluation mode.
        func reconstructionError(_ images: Tensor) -> Double {
            var total = 0.0
            for chunk in images.rowChunks() {
                let error = noGrad { (network(chunk) - chunk.flattened()).pow(2).sum() }
                total += Double(error.item)
            }
            return total / Double(images.count)
        }

        public var evaluables: Evaluables {
            cut.evaluables(network, features: features,
                       measures: SelfMeasures(values: { [("reconstruction_error", self.reconstructionError($0))] }))
        }
    }
}

import DataCore
import NNCore
import TensorCore

/// Colorization (Zhang, Isola & Efros, "Colorful Image Colorization", ECCV 2016): the network sees
/// only an image's lightness and predicts its colour; the lightness encoder is the
/// representation. As in the paper, colour is split into lightness and two chroma channels and
/// the chroma is predicted per pixel either by regression (`mode: regression`, squared error) or,
/// the paper's choice, as a distribution over quantised chroma bins (`mode: classification`)
/// trained by cross-entropy with class rebalancing: bin q is weighted by ((1 − λ) p̃_q + λ/Q)⁻¹,
/// normalised to average 1 under p̃, with p̃ the bins' frequency over the pool's pixels and
/// λ = ½, so rare saturated colours are not drowned by grey ones.
///
/// Departures, for small images and this engine: lightness and chroma are the luma/colour-
/// difference split of the dataset's standardised channels (Y = 0.299R + 0.587G + 0.114B,
/// U = B − Y, V = R − Y) instead of CIE Lab, a linear split that needs no colour profile; the
/// chroma bins are a `levels` × `levels` grid spanning the pool's chroma range (the paper: 313
/// in-gamut bins of size 10 in ab), without the paper's Gaussian smoothing of p̃; the network is
/// the first `featureBlocks` conv4 blocks (the representation, 7 × 7 on 28 × 28 images) and a
/// 1 × 1 convolution whose outputs are rearranged into full-resolution chroma (sub-pixel
/// convolution, Shi et al. 2016) in place of the paper's dilated VGG with a transposed
/// convolution. `native` stores the test `chroma_error` (squared error per chroma value of the
/// prediction, the bins' mean under the softmax for classification). Greyscale datasets are left
/// out when a suite is planned.
public enum Colorization: StepMethod {
    public static let id = "colorization"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "predict an image's chroma from its lightness, by regression or over quantised colours (Zhang et al. 2016)"
    public static let measuresItself = true

    public enum Mode: String, Codable, Sendable { case regression, classification }

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec.adam(steps: 1500)
        public var batchSize = 64
        public var mode = Mode.classification
        /// Bins per chroma channel (classification): levels² colour classes.
        public var levels = 8
        /// λ of the rebalancing weights: 1 weighs every bin alike, 0 by inverse frequency alone.
        public var rebalance: Float = 0.5
        public var featureBlocks = 2

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(levels, 2, key: "levels")
            try Check.probability(rebalance, key: "rebalance")
            try PretextNetwork.checkBlocks(featureBlocks)
        }

        public var representationBlocks: Int? { featureBlocks }

        public var samplesPerStep: Int { batchSize }
        // Measured (selfsup.yaml and the default suite, 2-vCPU Xeon): the per-pixel colour
        // decoder makes a step about 7x a supervised one per image.
        public var stepCost: Double { 7 }
    }

    public static func unsuitable(_ images: ImageKind) -> String? {
        images.isColor ? nil : "colorization needs colour images (3 channels); these are \(images.description)"
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        if let reason = unsuitable(data.imageKind) { throw TrainingError(message: reason) }
        return try Model(data, pool: try data.unlabeledPool(for: id), config: config, rng: &rng)
    }

    /// Lightness and chroma of standardised RGB images [N, 3, H, W]: [N, 1, H, W] and [N, 2, H, W].
    public static func split(_ rgb: Tensor) -> (lightness: Tensor, chroma: Tensor) {
        let (r, g, b) = (rgb.slice(axis: 1, 0, 1), rgb.slice(axis: 1, 1, 2), rgb.slice(axis: 1, 2, 3))
        let y = r * 0.299 + g * 0.587 + b * 0.114
        return (y, concat([b - y, r - y], axis: 1))
    }

    /// [N, O·f·f, h, w] rearranged to [N, O, h·f, w·f]: channel (o, i, j) of a cell becomes pixel
    /// (i, j) of its f × f block (sub-pixel convolution).
    public static func pixelShuffle(_ x: Tensor, factor f: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = c / (f * f)
        return x.reshaped([n, o, f, f, h, w]).permuted([0, 1, 4, 2, 5, 3]).reshaped([n, o, h * f, w * f])
    }

    /// The chroma grid: `levels` bins per channel over [−range, range].
    public struct ChromaBins {
        public let levels: Int
        public let range: Float

        /// Bin (u · levels + v) of each pixel of chroma [N, 2, H, W], in pixel order (n, y, x).
        public func classes(_ chroma: Tensor) -> [Int32] {
            let (n, plane) = (chroma.shape[0], chroma.shape[2] * chroma.shape[3])
            let c = chroma.scalars
            func bin(_ value: Float) -> Int { Swift.min(levels - 1, Swift.max(0, Int((value + range) / (2 * range) * Float(levels)))) }
            var out = [Int32](repeating: 0, count: n * plane)
            for i in 0..<n { for p in 0..<plane {
                out[i * plane + p] = Int32(bin(c[(i * 2) * plane + p]) * levels + bin(c[(i * 2 + 1) * plane + p]))
            } }
            return out
        }

        /// Centre of each bin's chroma: [levels², 2].
        public var centres: Tensor {
            let width = 2 * range / Float(levels)
            var values: [Float] = []
            for u in 0..<levels { for v in 0..<levels { values += [-range + (Float(u) + 0.5) * width, -range + (Float(v) + 0.5) * width] } }
            return Tensor(shape: [levels * levels, 2], scalars: values)
        }

        /// Zhang et al.'s rebalancing: w ∝ ((1 − λ) p + λ/Q)⁻¹, normalised so Σ p w = 1.
        public static func rebalancingWeights(frequencies p: [Float], lambda: Float) -> [Float] {
            let q = Float(p.count)
            let raw = p.map { 1 / ((1 - lambda) * $0 + lambda / q) }
            let mean = zip(p, raw).reduce(0) { $0 + $1.0 * $1.1 }
            return raw.map { $0 / mean }
        }
    }

    public final class Model: Learner {
        /// [lightness encoder (grey conversion and the first blocks), chroma head].
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int, factor: Int
        let config: Config
        public let bins: ChromaBins
        public let classWeights: [Float]

        init(_ data: TrainingData, pool: UnlabeledPool, config: Config, rng: inout RNG) throws {
            let (h, w) = (data.imageShape[1], data.imageShape[2])
            let grey = TrainingData(imageShape: [1, h, w], classCount: 0)
            let (pretext, _) = try PretextNetwork.build(grey, backbone: config.backbone, featureBlocks: config.featureBlocks, outputs: 1, rng: &rng)
            let lower = pretext.children[0].module
            let map = noGrad { lower(Tensor(zeros: [1, 1, h, w])) }
            guard map.rank == 4, h % map.shape[2] == 0, w % map.shape[3] == 0, h / map.shape[2] == w / map.shape[3] else {
                throw ConfigError(key: "featureBlocks", "the first \(config.featureBlocks) blocks give a \(map.shape.dropFirst().map(String.init).joined(separator: "x")) map, which does not tile \(h)x\(w) images: use fewer blocks")
            }
            factor = h / map.shape[2]
            let outputs = config.mode == .regression ? 2 : config.levels * config.levels
            let head = Conv2D(map.shape[1], outputs * factor * factor, kernel: (1, 1), rng: &rng)
            network = Sequential([Sequential([Lightness(), lower]), head])
            (features, self.config) = (map.count, config)
            // The chroma range and bin frequencies over the pool.
            let chroma = pool.mapAll { Colorization.split($0).chroma }
            let range = Swift.max(1e-3, chroma.abs().max(axis: 0).scalars.max() ?? 1)
            bins = ChromaBins(levels: config.levels, range: range)
            var counts = [Float](repeating: 0, count: config.levels * config.levels)
            for c in bins.classes(chroma) { counts[Int(c)] += 1 }
            let total = counts.reduce(0, +)
            classWeights = ChromaBins.rebalancingWeights(frequencies: counts.map { $0 / total }, lambda: config.rebalance)
            needs = StreamNeeds(unlabeled: (config.batchSize, [.plain]))
        }

        /// The head's output at full resolution: [N, 2 or Q, H, W].
        func predict(_ rgb: Tensor, _ ctx: inout ForwardContext) -> Tensor {
            Colorization.pixelShuffle(network.forward(rgb, &ctx), factor: factor)
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let x = batch.unlabeled!.views[0]
            let chroma = Colorization.split(x).chroma
            let out = predict(x, &ctx)
            switch config.mode {
            case .regression:
                return StepOutput(loss: (out - chroma).pow(2).mean())
            case .classification:
                let q = out.shape[1]
                let logits = out.permuted([0, 2, 3, 1]).reshaped([-1, q])
                let labels = bins.classes(chroma)
                let weights = labels.map { classWeights[Int($0)] }
                let targets = Tensor.oneHot(labels, classes: q) * Tensor(shape: [labels.count, 1], scalars: weights)
                return StepOutput(loss: Loss.crossEntropy(logits, targets: targets), scalars: [("color_accuracy", StepOutput.accuracy(logits, labels))])
            }
        }

        /// Squared error per chroma value of the prediction on `rgb` images, in evaluation mode.
        func chromaError(_ rgb: Tensor) -> Double {
            var total = 0.0
            for x in rgb.rowChunks() {
                let chroma = Colorization.split(x).chroma
                let error: Tensor = noGrad {
                    var ctx = ForwardContext.eval
                    let out = predict(x, &ctx)
                    guard config.mode == .classification else { return (out - chroma).pow(2).sum() }
                    // The mean chroma under the predicted distribution.
                    let (n, q, h, w) = (out.shape[0], out.shape[1], out.shape[2], out.shape[3])
                    let p = out.permuted([0, 2, 3, 1]).reshaped([-1, q]).softmax()
                    let mean = matmul(p, bins.centres).reshaped([n, h, w, 2]).permuted([0, 3, 1, 2])
                    return (mean - chroma).pow(2).sum()
                }
                total += Double(error.item)
            }
            return total / Double(2 * rgb.shape[0] * rgb.shape[2] * rgb.shape[3])
        }

        public var evaluables: Evaluables {
            Evaluables(classifier: nil, encoder: FlattenedOutput(network.children[0].module, name: "0"), encoderPath: "", featureCount: features,
                       measures: SelfMeasures(values: { [("chroma_error", self.chromaError($0))] }))
        }
    }

    /// The lightness channel of standardised RGB input: what the encoder sees.
    final class Lightness: Module {
        override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { Colorization.split(x).lightness }
    }
}

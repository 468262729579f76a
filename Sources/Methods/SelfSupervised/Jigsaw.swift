import DataCore
import NNCore
import TensorCore

/// Jigsaw puzzles (Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving
/// Jigsaw Puzzles", ECCV 2016): an image is cut into grid × grid tiles, the tiles are shuffled by
/// one permutation of a fixed set chosen for maximal Hamming distance between its members, and
/// the network predicts which permutation it was. Kept from the paper: the permutation set built
/// greedily for maximal minimum Hamming distance, gaps between tiles so that edges do not give
/// the order away (here the `gap` outer pixels of each tile are blanked), one label per
/// permutation.
///
/// Departures, for small images: 2 × 2 tiles by default (all 24 permutations; `grid: 3` or `4`
/// with `permutations` up to 1,000 for images whose side the grid divides) instead of 3 × 3 tiles
/// of 64 pixels. The paper's context-free network embeds each tile separately and classifies the
/// concatenation; conv4 cannot pool a 14 × 14 tile four times, so the whole shuffled image goes
/// through the network, and, as for rotation, the representation is the first `featureBlocks`
/// conv4 blocks, the rest of the network with a linear layer being the permutation head.
public enum Jigsaw: StepMethod {
    public static let id = "jigsaw"
    public static let regime = Regime.selfSupervised
    public static let version = "1"
    public static let summary = "predict which of a maximal-Hamming set of tile permutations shuffled an image (Noroozi & Favaro 2016)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.1, warmupSteps: 50, validateEvery: 250)
        public var batchSize = 128
        /// Tiles per side.
        public var grid = 2
        /// Size of the permutation set (at most grid²! and 1,000).
        public var permutations = 24
        /// Pixels blanked at the edge of each tile.
        public var gap = 1
        /// conv4 blocks (1-4) whose output is the representation.
        public var featureBlocks = 2

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            guard (2...4).contains(grid) else { throw ConfigError(key: "grid", "give 2, 3 or 4 tiles per side, got \(grid)") }
            let possible = (1...(grid * grid)).reduce(1) { $0 * $1 }
            guard permutations >= 2 && permutations <= min(possible, 1000) else {
                throw ConfigError(key: "permutations", "\(grid)x\(grid) tiles allow 2 to \(min(possible, 1000)) permutations, got \(permutations)")
            }
            try Check.atLeast(gap, 0, key: "gap")
            try PretextNetwork.checkBlocks(featureBlocks)
        }

        public var representationBlocks: Int? { featureBlocks }

        public var samplesPerStep: Int { batchSize }
        // Measured (selfsup.yaml and the default suite, 2-vCPU Xeon): the tiles' passes, about
        // 1.25x a supervised step per image.
        public var stepCost: Double { 1.25 }
    }

    public final class Model: ConfiguredLearner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int
        let grid: Int, gap: Int
        /// The fixed permutation set; label i is permutations[i].
        public let permutations: [[Int]]

        public init(_ data: TrainingData, config: Config, rng: inout RNG) throws {
            let (h, w) = (data.imageShape[1], data.imageShape[2])
            guard h % config.grid == 0 && w % config.grid == 0 else {
                throw ConfigError(key: "grid", "\(h)x\(w) images do not split into \(config.grid)x\(config.grid) tiles: give a grid that divides both sides")
            }
            guard min(h, w) / config.grid > 2 * config.gap else {
                throw ConfigError(key: "gap", "a gap of \(config.gap) pixels leaves nothing of \(h / config.grid)x\(w / config.grid) tiles")
            }
            (grid, gap) = (config.grid, config.gap)
            // The same set for every seed and run.
            var root = RNG(seed: 0)
            var setRNG = root.derive("jigsaw-permutations/\(config.grid)/\(config.permutations)")
            permutations = Pretext.tilePermutations(tiles: grid * grid, count: config.permutations, rng: &setRNG)
            guard permutations.count == config.permutations else {
                throw ConfigError(key: "permutations", "only \(permutations.count) distinct permutations were found")
            }
            (network, features) = try PretextNetwork.build(data, backbone: config.backbone, featureBlocks: config.featureBlocks,
                                                          outputs: config.permutations, rng: &rng)
            needs = StreamNeeds(unlabeled: (config.batchSize, [.plain]))
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (images, labels) = Pretext.jigsaw(batch.unlabeled!.views[0], grid: grid, permutations: permutations, gap: gap, rng: &ctx.rng)
            return .classification(network.forward(images, &ctx), labels: labels, accuracyName: "jigsaw_accuracy")
        }

        public var evaluables: Evaluables { PretextNetwork.evaluables(network, features: features) }
    }
}

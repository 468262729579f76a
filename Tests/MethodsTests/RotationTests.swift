import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

@Suite struct RotationTests {
    @Test func smokeWithoutLabels() throws {
        let d = try Fixture.glyphs()
        var config = Rotation.Config()
        (config.backbone, config.batchSize) = (Fixture.tinyBackbone, 8)
        config.training = Fixture.tinyTraining(steps: 3)
        let trained = try smokeTest(Rotation.self, config: config, input: try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised))
        // The representation is conv4's first two blocks: 8 channels of 7 x 7.
        #expect(trained.classifier == nil && trained.featureCount == 8 * 7 * 7)
        #expect(trained.encoder(d.trainImages.gatherRows([0, 1])).shape == [2, 8 * 7 * 7])
    }

    /// The encoder is the network's lower part, under the same parameter paths (so EMA weights and
    /// evaluation address the same tensors), and the head sees its output.
    @Test func encoderIsTheLowerBlocksUnderTheirNetworkPaths() throws {
        var config = Rotation.Config()
        config.backbone = Fixture.tinyBackbone
        for blocks in 1...4 {
            config.featureBlocks = blocks
            var rng = RNG(seed: 1)
            let model = try Rotation.build(TrainingData(imageShape: [1, 28, 28], classCount: 10), config: config, rng: &rng)
            let parts = model.evaluables
            let networkPaths = Set(model.network.namedParameters().map(\.path))
            #expect(Set(parts.encoder.namedParameters().map(\.path)).isSubset(of: networkPaths))
            #expect(parts.encoder.namedParameters().count == 4 * blocks, "conv weight and bias, batch-norm scale and shift per block")
            let side = [28, 14, 7, 3, 1][blocks]
            #expect(parts.featureCount == 8 * side * side)
            #expect(model.network(Tensor(zeros: [2, 1, 28, 28])).shape == [2, 4])
        }
        config.featureBlocks = 5
        #expect { try config.validate() } throws: { ($0 as? ConfigError)?.key == "featureBlocks" }
    }

    /// A 3x3 image turned a quarter counter-clockwise: its top row becomes its left column, read upwards.
    @Test func rotatedImagesAndLabels() {
        let image = Tensor(shape: [1, 1, 3, 3], scalars: [1, 2, 3,  4, 5, 6,  7, 8, 9])
        #expect(Pretext.rotate(image, quarterTurns: 1).scalars == [3, 6, 9,  2, 5, 8,  1, 4, 7])
        #expect(Pretext.rotate(image, quarterTurns: 2).scalars == [9, 8, 7,  6, 5, 4,  3, 2, 1])
        #expect(Pretext.rotate(image, quarterTurns: 3).scalars == [7, 4, 1,  8, 5, 2,  9, 6, 3])
        #expect(Pretext.rotate(Pretext.rotate(image, quarterTurns: 1), quarterTurns: 3).scalars == image.scalars)
        let two = Tensor(shape: [2, 1, 3, 3], scalars: (0..<18).map(Float.init))
        let (all, labels) = Pretext.rotations(two)
        #expect(all.shape == [8, 1, 3, 3] && labels == [0, 0, 1, 1, 2, 2, 3, 3])
        #expect(all.gatherRows([2, 3]).scalars == Pretext.rotate(two, quarterTurns: 1).scalars)
    }

    @Test func nonSquareImagesAreRefused() {
        #expect(Pretext.rotationProblem(imageShape: [1, 1, 40])?.contains("1x1x40") == true)
        #expect(Pretext.rotationProblem(imageShape: [3, 28, 28]) == nil)
        #expect {
            var rng = RNG(seed: 0)
            _ = try Rotation.build(TrainingData(imageShape: [1, 1, 40], classCount: 2), config: Rotation.Config(), rng: &rng)
        } throws: {
            "\($0)".contains("square")
        }
    }

    @Test func tilePermutationsAreDistinctAndShuffleTiles() {
        var rng = RNG(seed: 3)
        let perms = Pretext.tilePermutations(tiles: 4, count: 6, rng: &rng, candidates: 200)
        #expect(perms.count == 6 && Set(perms.map { $0.description }).count == 6 && perms[0] == [0, 1, 2, 3])
        let image = Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
        #expect(Pretext.shuffleTiles(image, grid: 2, permutation: [3, 2, 1, 0]).scalars == [4, 3, 2, 1])
    }
}

@Suite struct PixelsTests {
    /// The features are the images' pixels, flattened (L2-normalised when asked); nothing trains.
    @Test func featuresAreThePixels() throws {
        let d = try Fixture.glyphs()
        let input = try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised)
        let trained = try Pixels.train(input, config: Pixels.Config())
        let x = d.trainImages.gatherRows([0, 5])
        #expect(trained.encoder(x).scalars == x.scalars && trained.featureCount == 28 * 28)
        #expect(trained.encoder.parameterCount == 0 && trained.summary.steps == 0 && trained.classifier == nil)
        var config = Pixels.Config()
        config.normalize = true
        let unit = try Pixels.train(input, config: config).encoder(x)
        for r in 0..<2 {
            let row = unit.gatherRows([r]).scalars
            #expect(abs(row.map { $0 * $0 }.reduce(0, +) - 1) < 1e-4)
        }
    }

    /// The adapter is the nearest class mean in pixel space: each query goes to the support class
    /// whose mean pixel vector is closest, with logits −‖q − mean‖² computed here by hand.
    @Test func adapterIsThePixelNearestClassMean() throws {
        let d = try Fixture.glyphs()
        let input = try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised)
        let adapter = try #require(try Pixels.train(input, config: Pixels.Config()).adapter)
        let support = d.trainImages.gatherRows([0, 1, 2, 3]), labels: [Int32] = [0, 1, 0, 1]
        let query = d.trainImages.gatherRows([4, 5, 6])
        let logits = adapter.logits(support: support, supportLabels: labels, way: 2, query: query, context: .eval)
        let n = 28 * 28, s = support.scalars, q = query.scalars
        for k in 0..<2 {
            let members = labels.indices.filter { labels[$0] == Int32(k) }
            for i in 0..<3 {
                var distance: Float = 0
                for p in 0..<n {
                    let mean = members.map { s[$0 * n + p] }.reduce(0, +) / Float(members.count)
                    distance += (q[i * n + p] - mean) * (q[i * n + p] - mean)
                }
                #expect(abs(logits.scalars[i * 2 + k] + distance) <= 1e-3 * max(1, distance))
            }
        }
    }
}

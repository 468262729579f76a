import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

/// Three steps of a self-supervised method on glyphs without labels: the shared smoke checks
/// (finite loss, every weight moves, a frozen one does not), no classifier, an encoder of the
/// stated width.
@discardableResult
func selfSupervisedSmoke<M: StepMethod>(_ method: M.Type, _ configure: (inout M.Config) -> Void) throws -> TrainedModel {
    let d = try Fixture.glyphs()
    var config = try tinyConfig(M.self)
    configure(&config)
    let trained = try smokeTest(M.self, config: config, input: try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised))
    #expect(trained.classifier == nil)
    #expect(trained.encoder(d.trainImages.gatherRows([0, 1])).shape == [2, trained.featureCount])
    return trained
}

/// The method's defaults with the tiny backbone and three steps.
func tinyConfig<M: StepMethod>(_ method: M.Type) throws -> M.Config {
    try AnyMethod.apply(["backbone": ["name": "conv4", "width": 8], "training": ["steps": 3, "learningRate": 0.05, "warmupSteps": 0, "validateEvery": 0],
                         "batchSize": 16], to: M.Config(), method: M.id)
}

@Suite struct SelfSupervisedSmokeTests {
    @Test func autoencoderEveryCorruption() throws {
        for corruption in [Autoencoder.Corruption.none, .denoising, .masked] {
            let trained = try selfSupervisedSmoke(Autoencoder.self) { $0.corruption = corruption }
            let values = try trained.parts.measures!.values!(try Fixture.glyphs().testImages)
            #expect(values.map(\.name) == ["reconstruction_error"] && values[0].value > 0 && values[0].value.isFinite)
        }
    }

    @Test func jigsaw() throws { try selfSupervisedSmoke(Jigsaw.self) { _ in } }
    @Test func simclr() throws { try selfSupervisedSmoke(SimCLR.self) { _ in } }
    @Test func moco() throws { try selfSupervisedSmoke(MoCo.self) { $0.queueSize = 64 } }
    @Test func deepcluster() throws { try selfSupervisedSmoke(DeepCluster.self) { ($0.clusters, $0.kmeansIterations) = (6, 3) } }

    /// Trained and scored on its first three blocks: the representation is 8 channels of 3 x 3.
    @Test func deepclusterOnThreeBlocks() throws {
        let trained = try selfSupervisedSmoke(DeepCluster.self) { ($0.clusters, $0.kmeansIterations, $0.featureBlocks) = (6, 3, 3) }
        #expect(trained.featureCount == 8 * 3 * 3)
    }
}

@Suite struct EncoderCutTests {
    /// featureBlocks 1-4 of the methods that train the whole backbone: the representation is the
    /// backbone's first blocks under the network's own paths and weights (so the trainer's averaged
    /// weights and evaluation address the same tensors), as wide as they are, equal to their
    /// output; 4 is the encoder itself; 5 is refused by name.
    @Test func representationIsTheFirstBlocksUnderTheNetworksPaths() throws {
        try check(SimCLR.self)
        try check(MoCo.self, ["queueSize": 64])
        try check(Autoencoder.self)
    }

    func check<M: StepMethod>(_ method: M.Type, _ settings: [String: Any] = [:]) throws {
        let images = try Fixture.glyphs().trainImages.gatherRows([0, 1, 2])
        for blocks in 1...4 {
            let config = try AnyMethod.apply(settings.merging(["featureBlocks": blocks]) { $1 }, to: try tinyConfig(M.self), method: M.id)
            var rng = RNG(seed: 1)
            let model = try M.build(TrainingData(imageShape: [1, 28, 28], classCount: 0), config: config, rng: &rng)
            let parts = model.evaluables
            let network = Dictionary(uniqueKeysWithValues: model.network.namedParameters().map { ($0.path, $0.tensor.scalars) })
            // The encoder's own paths, prefixed with where it sits in the network ("" when they already read so).
            let encoder = parts.encoder.namedParameters().map { (path: [parts.encoderPath, $0.path].filter { !$0.isEmpty }.joined(separator: "."), tensor: $0.tensor) }
            #expect(encoder.count == 4 * blocks, "conv weight and bias, batch-norm scale and shift per block")
            #expect(encoder.allSatisfy { network[$0.path] == $0.tensor.scalars }, "\(M.id): the encoder's paths name the network's weights")
            let side = [28, 14, 7, 3, 1][blocks]
            #expect(parts.featureCount == 8 * side * side)
            // invariant: these methods' networks are [conv4 backbone, head]
            let backbone = model.network.children[0].module as! Sequential
            let expected = Sequential(backbone.children.prefix(blocks).map(\.module))(images).flattened()
            #expect(parts.encoder(images).scalars == expected.scalars)
        }
        let config = try AnyMethod.apply(["featureBlocks": 5], to: M.Config(), method: M.id)
        #expect { try config.validate() } throws: { ($0 as? ConfigError)?.key == "featureBlocks" }
    }
}

@Suite struct ContrastiveTests {
    /// NT-Xent on two images in two views, against the formula computed by hand in Double.
    @Test func ntXentOnAHandComputedBatch() {
        let a = Tensor(shape: [2, 2], scalars: [1, 0, 0, 2]), b = Tensor(shape: [2, 2], scalars: [3, 1, -1, 1])
        let (loss, accuracy) = Contrastive.ntXent(a, b, temperature: 0.5)
        let z: [[Double]] = [[1, 0], [0, 1], [3 / 10.0.squareRoot(), 1 / 10.0.squareRoot()], [-1 / 2.0.squareRoot(), 1 / 2.0.squareRoot()]]
        func sim(_ i: Int, _ j: Int) -> Double { (z[i][0] * z[j][0] + z[i][1] * z[j][1]) / 0.5 }
        var expected = 0.0
        for i in 0..<4 {
            let positive = (i + 2) % 4
            let denominator = (0..<4).filter { $0 != i }.reduce(0.0) { $0 + Foundation.exp(sim(i, $1)) }
            expected += -(sim(i, positive) - Foundation.log(denominator)) / 4
        }
        #expect(abs(Double(loss.item) - expected) < 1e-5)
        // Anchors 0 and 2 are each other's nearest; 1 is nearer to 3 than to 2, and 3 nearer to 1.
        #expect(accuracy == 1)
    }

    /// InfoNCE: column 0 is the positive; the loss is the cross-entropy of label 0.
    @Test func infoNCEPutsThePositiveFirst() {
        let q = Tensor(shape: [1, 2], scalars: [1, 0]), k = Tensor(shape: [1, 2], scalars: [0.6, 0.8])
        let negatives = Tensor(shape: [2, 2], scalars: [0, 1, -1, 0])
        let (loss, _) = Contrastive.infoNCE(queries: q, keys: k, negatives: negatives, temperature: 0.1)
        let logits = [6.0, 0, -10]
        let expected = -(logits[0] - Foundation.log(logits.reduce(0) { $0 + Foundation.exp($1) }))
        #expect(abs(Double(loss.item) - expected) < 1e-4)
    }

    /// Grouped forward passes return rows in the input's order whatever the shuffle.
    @Test func groupedForwardKeepsRowOrder() {
        let x = Tensor(shape: [5, 2], scalars: (0..<10).map(Float.init))
        var ctx = ForwardContext.eval
        let out = Contrastive.groupedForward(Sequential([]), x, groups: 2, order: [3, 0, 4, 1, 2], &ctx)
        #expect(out.scalars == x.scalars)
    }
}

@Suite struct MoCoTests {
    /// After one step: the step's keys carry no graph; the update moves the key encoder to
    /// m·θ_k + (1 − m)·θ_q exactly; the keys are the newest entries of the queue, in order, and
    /// the oldest entries were dropped.
    @Test func keysMomentumAndQueue() throws {
        let d = try Fixture.glyphs()
        var config = try tinyConfig(MoCo.self)
        (config.queueSize, config.batchSize, config.momentum) = (40, 16, 0.9)
        var rng = RNG(seed: 2)
        let model = try MoCo.build(TrainingData(imageShape: d.imageShape, classCount: 0), config: config, rng: &rng)
        let queueBefore = model.queue.contents.scalars
        let before = model.keyEncoder.shadow
        let images = d.trainImages.gatherRows(Array(0..<16))
        let (_, gradients) = valueAndGradient(at: model.network.trainableParameters()) { parameters in
            var ctx = ForwardContext(training: true, rng: RNG(seed: 4), overrides: parameters)
            return model.step(TrainingBatch(unlabeled: UnlabeledBatch(views: [images, images], positions: Array(0..<16))), &ctx).loss
        }
        let keys = try #require(model.pendingKeys)
        #expect(!keys.requiresGrad, "no graph reaches the key encoder")
        #expect(Set(gradients.keys) == Set(model.network.trainableParameters().keys))
        // A plain SGD step on the query encoder, then the framework's afterUpdate.
        for (path, g) in gradients { model.network.load([path: model.network.trainableParameters()[path]! - g * 0.5]) }
        let query = Dictionary(uniqueKeysWithValues: model.network.namedParameters().map { ($0.path, $0.tensor.scalars) })
        model.afterUpdate()
        for (path, q) in query {
            let expected = zip(before[path]!.scalars, q).map { 0.9 * $0 + 0.1 * $1 }
            #expect(zip(model.keyEncoder.shadow[path]!.scalars, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(path)")
        }
        // The queue (capacity 40, head at 0 after the initial fill) wrote the 16 keys over the
        // oldest 16 rows; the other 24 are unchanged.
        let after = model.queue.contents.scalars, dim = config.dimension
        #expect(Array(after[0..<(16 * dim)]) == keys.scalars)
        #expect(Array(after[(16 * dim)...]) == Array(queueBefore[(16 * dim)...]))
    }
}

@Suite struct JigsawTests {
    /// A 4x4 image in 2x2 tiles, permuted, with and without a one-pixel gap.
    @Test func tilesMoveAndGapsAreBlank() {
        let image = Tensor(shape: [1, 1, 4, 4], scalars: (1...16).map(Float.init))
        let shuffled = Pretext.shuffleTiles(image, grid: 2, permutations: [[3, 2, 1, 0]])
        #expect(shuffled.scalars == [11, 12, 9, 10,  15, 16, 13, 14,  3, 4, 1, 2,  7, 8, 5, 6])
        let six = Tensor(shape: [1, 1, 6, 6], scalars: (1...36).map(Float.init))
        let gapped = Pretext.shuffleTiles(six, grid: 2, permutations: [[0, 1, 2, 3]], gap: 1).scalars
        // Each 3x3 tile keeps only its centre pixel: (1,1), (1,4), (4,1), (4,4).
        let kept = gapped.enumerated().filter { $0.element != 0 }.map(\.offset)
        #expect(kept == [7, 10, 25, 28] && kept.allSatisfy { gapped[$0] == six.scalars[$0] })
    }

    /// Labels index the permutation applied; the greedy set is farther apart than a random one.
    @Test func labelsAndPermutationSet() {
        var rng = RNG(seed: 5)
        let perms = Pretext.tilePermutations(tiles: 4, count: 24, rng: &rng)
        #expect(Set(perms.map(\.description)).count == 24, "2x2 tiles: every permutation once")
        let x = Tensor.randn([6, 1, 4, 4], rng: &rng)
        let (images, labels) = Pretext.jigsaw(x, grid: 2, permutations: perms, gap: 0, rng: &rng)
        for i in 0..<6 {
            let expected = Pretext.shuffleTiles(x.gatherRows([i]), grid: 2, permutation: perms[Int(labels[i])])
            #expect(images.gatherRows([i]).scalars == expected.scalars)
        }
        func minimumDistance(_ set: [[Int]]) -> Int {
            var m = Int.max
            for i in set.indices { for j in set.indices where j > i { m = min(m, zip(set[i], set[j]).filter { $0 != $1 }.count) } }
            return m
        }
        let greedy = Pretext.tilePermutations(tiles: 9, count: 30, rng: &rng)
        let random = (0..<30).map { _ in Array(0..<9).shuffled(using: &rng) }
        #expect(minimumDistance(greedy) > minimumDistance(random))
        #expect(minimumDistance(greedy) >= 6)
    }

    @Test func gridMustDivideTheImage() {
        var config = Jigsaw.Config()
        config.grid = 3
        #expect {
            var rng = RNG(seed: 0)
            _ = try Jigsaw.build(TrainingData(imageShape: [1, 28, 28], classCount: 0), config: config, rng: &rng)
        } throws: { ($0 as? ConfigError)?.key == "grid" }
        config.grid = 2
        config.permutations = 25
        #expect { try config.validate() } throws: { ($0 as? ConfigError)?.key == "permutations" }
    }
}

@Suite struct AutoencoderTests {
    /// Masks are whole patches (clipped at the edge), shared across channels, at about the ratio.
    @Test func patchMask() {
        var rng = RNG(seed: 1)
        let mask = Autoencoder.Model.patchMask([50, 2, 10, 10], patch: 4, ratio: 0.3, rng: &rng).scalars
        for i in 0..<50 {
            for py in 0..<3 { for px in 0..<3 {
                var values: Set<Float> = []
                for ch in 0..<2 { for y in (py * 4)..<min(10, py * 4 + 4) { for x in (px * 4)..<min(10, px * 4 + 4) {
                    values.insert(mask[((i * 2 + ch) * 10 + y) * 10 + x])
                } } }
                #expect(values.count == 1, "one value per patch")
            } }
        }
        var hidden: Float = 0
        for i in 0..<50 { for py in 0..<3 { for px in 0..<3 { hidden += mask[(i * 2 * 10 + py * 4) * 10 + px * 4] } } }
        let patchesHidden = hidden / 450
        #expect(abs(patchesHidden - 0.3) < 0.07)
    }

    /// The masked loss is the mean squared error over the hidden pixels only.
    @Test func maskedLossIgnoresVisiblePixels() {
        let target = Tensor(shape: [1, 4], scalars: [1, 2, 3, 4]), mask = Tensor(shape: [1, 4], scalars: [1, 0, 1, 0])
        let output = Tensor(shape: [1, 4], scalars: [2, 100, 1, -50])
        #expect(abs(Autoencoder.Model.squaredError(output, target, over: mask).item - 2.5) < 1e-6)
        #expect(abs(Autoencoder.Model.squaredError(target, target).item) < 1e-9)
    }
}

@Suite struct DeepClusterTests {
    /// A clustering pass labels every image, leaves no cluster empty on data with more images than
    /// clusters, weights images so each cluster carries the same total, and re-initialises the head.
    @Test func reclusterLabelsWeighsAndResetsTheHead() throws {
        let d = try Fixture.glyphs()
        let input = try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised)
        var config = try tinyConfig(DeepCluster.self)
        (config.clusters, config.kmeansIterations) = (8, 5)
        var rng = RNG(seed: 1)
        let model = try DeepCluster.build(input.data, config: config, rng: &rng)
        let headBefore = model.network.children[1].module.parameters["weight"]!.scalars
        try model.prepare(step: 0, of: 10)
        let n = input.data.unlabeled!.count
        #expect(model.assignments.count == n && Set(model.assignments) == Set(0..<8))
        var totals = [Float](repeating: 0, count: 8)
        for (a, w) in zip(model.assignments, model.weights) { totals[a] += w }
        #expect(totals.allSatisfy { abs($0 - Float(n) / 8) < 1e-3 }, "\(totals)")
        #expect(model.network.children[1].module.parameters["weight"]!.scalars != headBefore)
        // Not between clustering steps.
        let assigned = model.assignments
        try model.prepare(step: 1, of: 10)
        #expect(model.assignments == assigned)
    }

    @Test func inverseSizeWeights() {
        #expect(DeepCluster.Model.inverseSizeWeights([0, 0, 0, 1], clusters: 3) == [Float(4) / 6, Float(4) / 6, Float(4) / 6, 2])
    }
}

@Suite struct ColorizationTests {
    static func colorInput() throws -> (Dataset, TrainingInput) {
        var g = GlyphsConfig()
        (g.classes, g.instancesPerClass, g.testInstancesPerClass, g.color) = (4, 12, 3, true)
        let d = try Glyphs.make(g)
        return (d, try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised))
    }

    @Test func smokeBothModes() throws {
        let (d, input) = try Self.colorInput()
        for mode in [Colorization.Mode.classification, .regression] {
            var config = try tinyConfig(Colorization.self)
            config.mode = mode
            let trained = try smokeTest(Colorization.self, config: config, input: input)
            #expect(trained.featureCount == 8 * 7 * 7 && trained.encoder(d.testImages.gatherRows([0, 1])).shape == [2, 8 * 7 * 7])
            let error = try trained.parts.measures!.values!(d.testImages)
            #expect(error.map(\.name) == ["chroma_error"] && error[0].value.isFinite && error[0].value > 0)
        }
    }

    /// Lightness and chroma are the luma / colour-difference split; grey pixels have no chroma.
    @Test func lightnessAndChroma() {
        let rgb = Tensor(shape: [1, 3, 1, 2], scalars: [1, 0.5,  0, 0.5,  0, 0.5])
        let (y, c) = Colorization.split(rgb)
        #expect(abs(y.scalars[0] - 0.299) < 1e-6 && abs(y.scalars[1] - 0.5) < 1e-6)
        #expect(abs(c.scalars[0] + 0.299) < 1e-6 && abs(c.scalars[2] - 0.701) < 1e-6, "U = B - Y, V = R - Y")
        #expect(abs(c.scalars[1]) < 1e-6 && abs(c.scalars[3]) < 1e-6)
    }

    /// Sub-pixel rearrangement: channel (o, i, j) of cell (y, x) lands at pixel (y·f + i, x·f + j).
    @Test func pixelShuffle() {
        let x = Tensor(shape: [1, 8, 1, 2], scalars: (0..<16).map(Float.init))   // O = 2, f = 2, h = 1, w = 2
        let y = Colorization.pixelShuffle(x, factor: 2)
        #expect(y.shape == [1, 2, 2, 4])
        // Output channel 0 row 0: cell 0 (i=0: j=0,1 → channels 0,1), cell 1 (same channels at x = 1).
        #expect(Array(y.scalars[0..<8]) == [0, 2, 1, 3, 4, 6, 5, 7])
    }

    /// Bins cover [−range, range] in a grid; rebalancing weights are 1 for a uniform distribution,
    /// favour rare bins, average 1 under the frequencies, and are uniform at λ = 1.
    @Test func binsAndRebalancing() {
        let bins = Colorization.ChromaBins(levels: 2, range: 1)
        let chroma = Tensor(shape: [1, 2, 1, 4], scalars: [-0.5, -0.5, 0.5, 0.9,  -0.5, 0.5, -0.5, 0.9])
        #expect(bins.classes(chroma) == [0, 1, 2, 3])
        #expect(bins.centres.scalars == [-0.5, -0.5, -0.5, 0.5, 0.5, -0.5, 0.5, 0.5])
        #expect(Colorization.ChromaBins.rebalancingWeights(frequencies: [0.25, 0.25, 0.25, 0.25], lambda: 0.5).allSatisfy { abs($0 - 1) < 1e-6 })
        let p: [Float] = [0.7, 0.1, 0.1, 0.1]
        let w = Colorization.ChromaBins.rebalancingWeights(frequencies: p, lambda: 0.5)
        #expect(w[1] > w[0] && abs(zip(p, w).reduce(0) { $0 + $1.0 * $1.1 } - 1) < 1e-5)
        #expect(Colorization.ChromaBins.rebalancingWeights(frequencies: p, lambda: 1).allSatisfy { abs($0 - 1) < 1e-6 })
    }

    @Test func greyscaleIsRefused() {
        #expect(Colorization.unsuitable(ImageKind(shape: [1, 28, 28]))?.contains("greyscale 1x28x28") == true)
        #expect(Colorization.unsuitable(ImageKind(shape: [3, 28, 28])) == nil)
        #expect(Colorization.unsuitable(ImageKind(shape: [3, 28, 28], channelsAreFrames: true)) != nil)
    }
}

@Suite struct NextFrameTests {
    static func motionInput() throws -> (Dataset, TrainingInput) {
        var g = GlyphsConfig()
        (g.classes, g.instancesPerClass, g.testInstancesPerClass) = (4, 12, 3)
        let d = try GlyphMotion.make(GlyphMotionConfig(glyphs: g))
        return (d, try Fixture.input(d, try Fixture.split(d, budget: .none), regime: .selfSupervised))
    }

    @Test func smoke() throws {
        let (d, input) = try Self.motionInput()
        let trained = try smokeTest(NextFrame.self, config: try tinyConfig(NextFrame.self), input: input)
        #expect(trained.featureCount == 8 && trained.encoder(d.testImages.gatherRows([0, 1, 2])).shape == [3, 8])
        let errors = try trained.parts.measures!.values!(d.testImages)
        #expect(errors.map(\.name) == ["next_frame_error", "copy_frame_error"] && errors.allSatisfy { $0.value.isFinite && $0.value > 0 })
    }

    /// Frames are encoded one by one, in time order per sequence; the sequence's representation is
    /// their mean. An encoder that reads a pixel shows where each frame went.
    @Test func framesAreEncodedInTimeOrder() {
        final class FirstPixel: Module {
            override func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor { x.flattened().slice(axis: 1, 0, 1) }
        }
        // Two sequences of three 1x2 frames; pixel 0 of frame t of sequence n is 10n + t.
        let x = Tensor(shape: [2, 3, 1, 2], scalars: [0, 0, 1, 0, 2, 0,  10, 0, 11, 0, 12, 0])
        var ctx = ForwardContext.eval
        let f = NextFrame.Model.encodeFrames(FirstPixel(), x, 0..<3, &ctx)
        #expect(f.shape == [2, 3, 1] && f.scalars == [0, 1, 2, 10, 11, 12])
        #expect(NextFrame.SequenceEncoder(FirstPixel(), frames: 3)(x).scalars == [1, 11])
    }

    @Test func onlySequencesAreSuitable() {
        #expect(NextFrame.unsuitable(ImageKind(shape: [3, 28, 28]))?.contains("colour 3x28x28") == true)
        #expect(NextFrame.unsuitable(ImageKind(shape: [4, 28, 28], channelsAreFrames: true)) == nil)
    }
}

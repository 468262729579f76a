import Testing
import TensorCore
import DataCore
@testable import Evaluation

@Suite struct ProtocolTests {
    @Test func knnOnTwoClusters() {
        // Class 0 points along +x, class 1 along +y: cosine kNN separates them exactly.
        let reference = Tensor(shape: [4, 2], scalars: [1, 0.1, 2, -0.1, 0.1, 1, -0.1, 3])
        let query = Tensor(shape: [2, 2], scalars: [5, 0.3, 0.2, 4])
        let r = KNN.accuracy(reference: reference, referenceLabels: [0, 0, 1, 1], query: query, queryLabels: [0, 1], classes: 2, k: 3)
        #expect(r.accuracy == 1 && r.count == 2)
        let wrong = KNN.accuracy(reference: reference, referenceLabels: [0, 0, 1, 1], query: query, queryLabels: [1, 0], classes: 2, k: 3)
        #expect(wrong.accuracy == 0)
    }

    @Test func nearestMeanOnSeparableEpisodes() throws {
        // Ten classes, each a tight cluster around its own point: every episode is solved.
        var rng = RNG(seed: 1)
        var values: [Float] = [], labels: [Int32] = []
        for c in 0..<10 { for _ in 0..<6 { values += [Float(c) * 10 + rng.uniform(-0.1, 0.1), Float(c % 3) + rng.uniform(-0.1, 0.1)]; labels.append(Int32(c)) } }
        let sampler = try EpisodeSampler(labels: labels, classes: Array(0..<10), way: 5, shot: 1, query: 3, seed: 2, datasetHash: "h")
        let r = FewShot.nearestMeanAccuracy(features: Tensor(shape: [60, 2], scalars: values), sampler: sampler, count: 20)
        #expect(r.mean == 1 && r.ci95 == 0 && r.n == 20)
    }

    @Test func linearHeadSolvesSeparableEpisodesAndIsAtChanceOnNoise() throws {
        // Classes point in their own directions (the head works on L2-normalised features):
        // every episode is solved. With labels unrelated to the features, accuracy is ~1/way.
        var rng = RNG(seed: 3)
        var values: [Float] = [], noise: [Float] = [], labels: [Int32] = []
        for c in 0..<8 {
            for _ in 0..<10 {
                for j in 0..<8 { values.append((j == c ? 5 : 0) + rng.uniform(-0.3, 0.3)); noise.append(rng.uniform(-1, 1)) }
                labels.append(Int32(c))
            }
        }
        let sampler = try EpisodeSampler(labels: labels, classes: Array(0..<8), way: 4, shot: 2, query: 5, seed: 1, datasetHash: "h")
        let r = FewShot.linearHeadAccuracy(features: Tensor(shape: [80, 8], scalars: values), sampler: sampler, count: 30)
        #expect(r.mean == 1 && r.n == 30)
        let chance = FewShot.linearHeadAccuracy(features: Tensor(shape: [80, 8], scalars: noise), sampler: sampler, count: 200)
        #expect(abs(chance.mean - 0.25) < 3 * chance.ci95 + 0.02, "\(chance)")
    }

    @Test func meanAndConfidenceInterval() {
        let r = MeanCI([0.5, 0.7, 0.6, 0.8])
        #expect(abs(r.mean - 0.65) < 1e-12)
        // std (n-1) = 0.1291; 1.96 * 0.1291 / 2
        #expect(abs(r.ci95 - 0.126_51) < 1e-4)
    }
}

import Foundation
import Testing
import TensorCore
import DataCore
@testable import Evaluation

@Suite struct ProtocolTests {
    /// The class kNN predicts for one query (the label under which its accuracy is 1).
    func predicted(_ reference: [Float], _ labels: [Int32], query: [Float], k: Int, temperature: Float = 0.07, batchSize: Int = 1024) -> Int? {
        let d = query.count
        return (0..<3).first { c in
            KNN.accuracy(reference: Tensor(shape: [labels.count, d], scalars: reference), referenceLabels: labels,
                         query: Tensor(shape: [1, d], scalars: query), queryLabels: [Int32(c)], classes: 3, k: k,
                         temperature: temperature, batchSize: batchSize).accuracy == 1
        }
    }

    /// Votes are weighted by exp(similarity / τ): one very close neighbour outweighs two farther
    /// ones at τ = 0.07, while at a large τ the weights are nearly equal and the two win.
    @Test func knnWeightsVotesBySimilarity() {
        let angle: (Float) -> [Float] = { [cos($0), sin($0)] }
        let reference = angle(0.1) + angle(0.8) + angle(-0.8)   // cosines 0.995, 0.70, 0.70 with the query
        #expect(predicted(reference, [0, 1, 1], query: [1, 0], k: 3) == 0)
        #expect(predicted(reference, [0, 1, 1], query: [1, 0], k: 3, temperature: 100) == 1)
    }

    /// Equal votes go to the lower class, whichever order the neighbours come in.
    @Test func knnTiesGoToTheLowerClass() {
        #expect(predicted([1, 1, 1, -1], [2, 1], query: [1, 0], k: 2) == 1)
        #expect(predicted([1, 1, 1, -1], [1, 2], query: [1, 0], k: 2) == 1)
    }

    /// Queries are scored in batches; the batch size changes nothing.
    @Test func knnBatchingChangesNothing() {
        var rng = RNG(seed: 6)
        let reference = Tensor.randn([50, 4], rng: &rng), query = Tensor.randn([37, 4], rng: &rng)
        let labels = (0..<50).map { Int32($0 % 3) }, queryLabels = (0..<37).map { Int32($0 % 3) }
        let reports = [1, 5, 36, 1024].map {
            KNN.accuracy(reference: reference, referenceLabels: labels, query: query, queryLabels: queryLabels, classes: 3, k: 7, batchSize: $0)
        }
        #expect(reports.allSatisfy { $0.accuracy == reports[0].accuracy && $0.perClass == reports[0].perClass && $0.count == 37 })
    }

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
        // Features of some images only, found through `row`: the same scores as with every image's.
        let kept = Array(stride(from: 79, through: 0, by: -1))      // reversed, so a wrong map shows
        let compact = Tensor(shape: [80, 8], scalars: kept.flatMap { i in noise[(i * 8)..<(i * 8 + 8)] })
        let mapped = FewShot.linearHeadAccuracy(features: compact, row: { 79 - $0 }, sampler: sampler, count: 200)
        #expect(mapped.mean == chance.mean && mapped.ci95 == chance.ci95)
    }

    @Test func meanAndConfidenceInterval() {
        let r = MeanCI([0.5, 0.7, 0.6, 0.8])
        #expect(abs(r.mean - 0.65) < 1e-12)
        // std (n-1) = 0.1291; 1.96 * 0.1291 / 2
        #expect(abs(r.ci95 - 0.126_51) < 1e-4)
    }
}

@Suite struct ClusteringScoreTests {
    /// Clusters that are the classes renamed score 1 on both; the Hungarian matching finds the
    /// renaming; a clustering independent of the classes has NMI 0.
    @Test func accuracyAndNMI() {
        let labels: [Int32] = [0, 0, 1, 1, 2, 2]
        #expect(Clustering.accuracy([2, 2, 0, 0, 1, 1], labels, clusters: 3, classes: 3) == 1)
        #expect(abs(Clustering.nmi([2, 2, 0, 0, 1, 1], labels, clusters: 3, classes: 3) - 1) < 1e-12)
        // One example in the wrong cluster: 5 of 6 matched.
        #expect(abs(Clustering.accuracy([1, 1, 0, 0, 2, 0], labels, clusters: 3, classes: 3) - 5.0 / 6) < 1e-12)
        // Two clusters, each half of each of two classes: independent.
        #expect(abs(Clustering.nmi([0, 1, 0, 1], [0, 0, 1, 1], clusters: 2, classes: 2)) < 1e-12)
        // NMI against a direct computation: I = Σ p log(p / (p_u p_v)), arithmetic normalisation.
        let a = [0, 0, 1, 1, 1], y: [Int32] = [0, 0, 0, 1, 1]
        let pu = [0.4, 0.6], pv = [0.6, 0.4]
        let joint = [[0.4, 0.0], [0.2, 0.4]]
        var mi = 0.0
        for i in 0..<2 { for j in 0..<2 where joint[i][j] > 0 { mi += joint[i][j] * log(joint[i][j] / (pu[i] * pv[j])) } }
        let h = -pu.reduce(0) { $0 + $1 * log($1) }
        #expect(abs(Clustering.nmi(a, y, clusters: 2, classes: 2) - mi / h) < 1e-12)
    }

    /// The Hungarian method against every permutation of a 5 x 5 cost matrix.
    @Test func hungarianIsOptimal() {
        var rng = RNG(seed: 3)
        for _ in 0..<5 {
            let cost = (0..<5).map { _ in (0..<5).map { _ in Double(rng.uniform(0, 10)) } }
            let match = Clustering.assignment(minimizing: cost)
            #expect(Set(match).count == 5)
            func permutations(_ items: [Int]) -> [[Int]] {
                items.count <= 1 ? [items] : items.indices.flatMap { i in permutations(items.enumerated().filter { $0.offset != i }.map(\.element)).map { [items[i]] + $0 } }
            }
            let best = permutations(Array(0..<5)).map { p in p.enumerated().reduce(0.0) { $0 + cost[$1.offset][$1.element] } }.min()!
            let found = match.enumerated().reduce(0.0) { $0 + cost[$1.offset][$1.element] }
            #expect(abs(found - best) < 1e-9)
        }
    }
}

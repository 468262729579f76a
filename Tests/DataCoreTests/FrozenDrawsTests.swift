import Testing
import TensorCore
@testable import DataCore

/// Golden values of everything drawn at random that results are keyed by (issue 16): the RNG's
/// bounded integers and shuffle, a dataset's hash, a label split's hash, the first evaluation
/// episode and the first batch of a stream. benchbench draws them with its own routines
/// (`RNG.int`, `RNG.shuffle`), so a change of Swift version cannot change them; a change of ours
/// that does fails here, and means every earlier result stops being comparable (bump versions and
/// say so). The written-out routines reproduce what the standard library's `Int.random(in:using:)`
/// and `shuffle(using:)` gave with Swift 6.3.1 (checked draw for draw over 1,600 bounded integers
/// and 40 shuffles when they were written), so results stored before the switch stay comparable.
@Suite struct FrozenDrawsTests {
    @Test func boundedIntegersAndShuffle() {
        var rng = RNG(seed: 42)
        let draws = [1, 2, 3, 7, 10, 1000, 1 << 40 + 3].map { rng.int($0) }
        #expect(draws == goldenDraws, "\(draws)")
        var items = Array(0..<12)
        rng.shuffle(&items)
        #expect(items == goldenShuffle, "\(items)")
        #expect(Set(items) == Set(0..<12))
        // A permutation is the shuffle of the identity from the same state.
        var (a, b) = (RNG(seed: 7), RNG(seed: 7))
        var identity = Array(0..<9)
        b.shuffle(&identity)
        #expect(a.permutation(9) == identity)
    }

    static func dataset() throws -> Dataset {
        var c = GlyphsConfig()
        (c.classes, c.instancesPerClass, c.testInstancesPerClass, c.seed) = (6, 10, 2, 5)
        return try Glyphs.make(c)
    }

    @Test func datasetSplitEpisodeAndBatch() throws {
        let d = try Self.dataset()
        #expect(d.contentHash == goldenDatasetHash, "\(d.contentHash)")
        let split = try LabelSplit(labels: d.trainLabels, classes: d.classCount, budget: .perClass(3), validationPerClass: 2, seed: 1,
                                   datasetHash: d.contentHash, datasetName: d.name)
        #expect(split.hash == goldenSplitHash, "\(split.hash)")
        #expect(split.labeled.prefix(6) == goldenLabeled[...], "\(Array(split.labeled.prefix(6)))")
        let sampler = try EpisodeSampler(labels: d.trainLabels, classes: Array(0..<6), way: 3, shot: 1, query: 2, seed: 0, datasetHash: d.contentHash)
        let e = sampler.episode(0)
        #expect(e.classes == goldenEpisodeClasses && e.support == goldenSupport && e.query == goldenQuery,
                "\(e.classes) \(e.support) \(e.query)")
        var stream = try BatchStream(indices: Array(0..<20), batchSize: 6, rng: RNG(seed: 3))
        let first = stream.next()
        #expect(first == goldenBatch, "\(first)")
    }
}

private let goldenDraws: [Int] = [0, 0, 2, 6, 9, 769, 790833169756]
private let goldenShuffle: [Int] = [10, 9, 7, 1, 6, 0, 2, 5, 11, 4, 8, 3]
private let goldenDatasetHash = "d4422dcbb45ee8f2"
private let goldenSplitHash = "31c2c094851a6078"
private let goldenLabeled: [Int] = [0, 2, 5, 10, 12, 15]
private let goldenEpisodeClasses: [Int] = [4, 5, 0]
private let goldenSupport: [Int] = [47, 55, 3]
private let goldenQuery: [Int] = [45, 42, 56, 57, 2, 4]
private let goldenBatch: [Int] = [13, 0, 5, 12, 10, 4]

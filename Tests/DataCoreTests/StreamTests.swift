import Foundation
import Testing
import TensorCore
@testable import DataCore

@Suite struct StreamTests {
    func data() throws -> Dataset {
        var c = GlyphsConfig()
        (c.classes, c.instancesPerClass, c.testInstancesPerClass, c.seed) = (3, 10, 0, 2)
        return try Glyphs.make(c)
    }

    /// An unlabeled batch has images and pool positions and nothing else: no labels, no dataset indices.
    @Test func anUnlabeledStreamCannotYieldLabels() throws {
        let d = try data()
        let rows = [1, 4, 7, 12, 20, 25]
        let (pool, heldBack) = try UnlabeledPool.hiding(dataset: d, indices: rows)
        var stream = try pool.stream(batchSize: 4, views: [.plain, .weak, .strong], rng: RNG(seed: 1))
        let batch = stream.next()
        #expect(Mirror(reflecting: batch).children.map(\.label) == ["views", "positions"])
        #expect(Mirror(reflecting: stream).children.allSatisfy { $0.label != "labels" })
        #expect(batch.views.count == 3 && batch.views.allSatisfy { $0.shape == [4, 1, 28, 28] })
        #expect(batch.views[0].scalars == d.trainImages.gatherRows(batch.positions.map { rows[$0] }).scalars)
        #expect(batch.views[1].scalars != batch.views[0].scalars && batch.views[2].scalars != batch.views[1].scalars)
        // The audit sees the hidden labels: all right, all wrong, masked.
        let truth = batch.positions.map { d.trainLabels[rows[$0]] }
        #expect(heldBack.accuracy(of: truth, at: batch.positions) == 1)
        #expect(heldBack.accuracy(of: truth.map { ($0 + 1) % 3 }, at: batch.positions) == 0)
        #expect(heldBack.accuracy(of: truth, at: batch.positions, mask: [false, false, false, false]) == nil)
    }

    @Test func aLabeledStreamYieldsOnlyTheGrantedExamples() throws {
        let d = try data()
        let granted = [0, 11, 22]
        let pool = try LabeledPool(dataset: d, indices: granted)
        var stream = try pool.stream(batchSize: 8, view: .plain, rng: RNG(seed: 3))
        #expect(stream.batchSize == 3, "a batch is never larger than the pool")
        for _ in 0..<3 {
            let b = stream.next()
            #expect(Set(b.labels) == Set(granted.map { d.trainLabels[$0] }))
            let images = Set((0..<3).map { b.images.gatherRows([$0]).scalars })
            #expect(images == Set(granted.map { d.trainImages.gatherRows([$0]).scalars }))
        }
        #expect { _ = try LabeledPool(dataset: d, indices: []) } throws: { "\($0)".contains("grants no labeled examples") }
    }

    @Test func streamsReproduceFromTheirGenerator() throws {
        let d = try data()
        let (pool, _) = try UnlabeledPool.hiding(dataset: d, indices: Array(0..<30))
        var a = try pool.stream(batchSize: 5, views: [.strong], rng: RNG(seed: 9)), b = try pool.stream(batchSize: 5, views: [.strong], rng: RNG(seed: 9))
        for _ in 0..<3 { #expect(a.next().views[0].scalars == b.next().views[0].scalars) }
    }

    @Test func episodesComeFromThePoolsClassesOnly() throws {
        let d = try data()
        let pool = EpisodePool(dataset: d, classes: [0, 2])
        var stream = try pool.stream(way: 2, shot: 2, query: 3, rng: RNG(seed: 4))
        let classOf = Dictionary(uniqueKeysWithValues: (0..<30).map { (d.trainImages.gatherRows([$0]).scalars, d.trainLabels[$0]) })
        for _ in 0..<5 {
            let e = stream.next()
            #expect(e.supportLabels == [0, 0, 1, 1] && e.queryLabels == [0, 0, 0, 1, 1, 1])
            let seen = (0..<4).map { classOf[e.support.gatherRows([$0]).scalars]! } + (0..<6).map { classOf[e.query.gatherRows([$0]).scalars]! }
            #expect(Set(seen).isSubset(of: [0, 2]))
        }
        // Fixed episodes are the evaluation sampler's: the same for every caller.
        let f1 = try pool.fixed(way: 2, shot: 1, query: 2, seed: 0).episode(3), f2 = try pool.fixed(way: 2, shot: 1, query: 2, seed: 0).episode(3)
        #expect(f1.support.scalars == f2.support.scalars)
    }
}

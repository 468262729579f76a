import Testing
import TensorCore
@testable import DataCore

@Suite struct LabelBudgetTests {
    @Test func parsesTheVocabulary() throws {
        #expect(try LabelBudget(parsing: "none") == .none)
        #expect(try LabelBudget(parsing: "all") == .all)
        #expect(try LabelBudget(parsing: "5-shot") == .shot(5))
        #expect(try LabelBudget(parsing: "10") == .perClass(10))
        #expect(try LabelBudget(parsing: " 25 ").description == "25")
        #expect([LabelBudget.all, .perClass(10), .none, .shot(1), .perClass(2)].sorted() == [.none, .shot(1), .perClass(2), .perClass(10), .all])
    }

    @Test func rejectsNonsenseWithTheReason() {
        for (text, reason) in [("0", "zero labels"), ("-3", "negative"), ("5-shots", "not understood"), ("0-shot", "K >= 1"), ("x-shot", "not a number"), ("", "not understood")] {
            #expect { try LabelBudget(parsing: text) } throws: { ($0 as? DataError)?.message.contains(reason) == true }
        }
        #expect { try LabelBudget.perClass(50).validate(smallestClass: 20, dataset: "toy") } throws: {
            ($0 as? DataError)?.message.contains("larger than the smallest class of toy") == true
        }
    }
}

@Suite struct LabelSplitTests {
    let labels: [Int32] = (0..<300).map { Int32($0 % 3) }

    func split(_ budget: LabelBudget, seed: UInt64 = 1) throws -> LabelSplit {
        try LabelSplit(labels: labels, classes: 3, budget: budget, validationPerClass: 10, seed: seed, datasetHash: "h", datasetName: "toy")
    }

    @Test func stratifiedDisjointAndComplete() throws {
        let s = try split(.perClass(7))
        #expect(s.labeled.count == 21)
        for c in 0..<3 {
            #expect(s.labeled.filter { labels[$0] == Int32(c) }.count == 7)
            #expect(s.validation.filter { labels[$0] == Int32(c) }.count == 10)
        }
        #expect(Set(s.validation).isDisjoint(with: s.unlabeled))
        #expect(Set(s.labeled).isSubset(of: Set(s.unlabeled)))
        #expect(Set(s.validation + s.unlabeled) == Set(0..<300))
    }

    @Test func deterministicPerSeedAndDifferentAcrossSeeds() throws {
        #expect(try split(.perClass(5)) == split(.perClass(5)))
        #expect(try split(.perClass(5)).hash == split(.perClass(5)).hash)
        #expect(try split(.perClass(5), seed: 2).labeled != split(.perClass(5)).labeled)
        #expect(try split(.perClass(5), seed: 2).hash != split(.perClass(5)).hash)
        // Validation depends on the seed only: every budget shares it.
        #expect(try split(.perClass(5)).validation == split(.all).validation)
        // A bigger budget extends a smaller one.
        #expect(try Set(split(.perClass(5)).labeled).isSubset(of: Set(split(.perClass(9)).labeled)))
        #expect(try split(.none).labeled.isEmpty && split(.all).labeled.count == 270)
    }

    @Test func budgetLargerThanAClassIsRejected() {
        #expect { try split(.perClass(95)) } throws: { ($0 as? DataError)?.message.contains("smallest class") == true }
    }
}

@Suite struct EpisodeTests {
    let labels: [Int32] = (0..<200).map { Int32($0 % 10) }

    @Test func supportAndQueryAreDisjointAndBalanced() throws {
        let s = try EpisodeSampler(labels: labels, classes: [2, 3, 5, 7, 8, 9], way: 5, shot: 2, query: 3, seed: 4, datasetHash: "h")
        for i in 0..<20 {
            let e = s.episode(i)
            #expect(Set(e.support).isDisjoint(with: e.query))
            #expect(e.support.count == 10 && e.query.count == 15 && Set(e.classes).count == 5)
            for (idx, y) in zip(e.support + e.query, e.supportLabels + e.queryLabels) { #expect(labels[idx] == Int32(e.classes[Int(y)])) }
            #expect(Set(e.classes).isSubset(of: [2, 3, 5, 7, 8, 9]))
        }
    }

    @Test func episodesAreFixedByTheirIndex() throws {
        let a = try EpisodeSampler(labels: labels, classes: Array(0..<10), way: 5, shot: 1, query: 5, seed: 4, datasetHash: "h")
        let b = try EpisodeSampler(labels: labels, classes: Array(0..<10), way: 5, shot: 1, query: 5, seed: 4, datasetHash: "h")
        #expect(a.episode(17) == b.episode(17))
        #expect(a.episode(17) != a.episode(18))
    }

    @Test func impossibleSettingsAreErrors() {
        #expect { try EpisodeSampler(labels: labels, classes: [0, 1, 2], way: 5, shot: 1, query: 1, seed: 0, datasetHash: "h") } throws: {
            ($0 as? DataError)?.message == "episodes: 5-way episodes need at least 5 classes, the split has 3"
        }
        #expect { try EpisodeSampler(labels: labels, classes: Array(0..<10), way: 5, shot: 15, query: 10, seed: 0, datasetHash: "h") } throws: {
            ($0 as? DataError)?.message.contains("fewer than shot + query") == true
        }
    }
}

@Suite struct BatchStreamTests {
    @Test func coversEveryIndexEachEpochWithIndependentShuffles() throws {
        var s = try BatchStream(indices: Array(0..<10), batchSize: 5, rng: RNG(seed: 1))
        let epoch1 = s.next() + s.next()
        #expect(Set(epoch1) == Set(0..<10))
        let epoch2 = s.next() + s.next()
        #expect(Set(epoch2) == Set(0..<10) && epoch2 != epoch1)
        var small = try BatchStream(indices: [1, 2, 3], batchSize: 7, rng: RNG(seed: 2))
        #expect(small.next().count == 7)
    }
}

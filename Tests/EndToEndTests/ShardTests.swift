import Foundation
@testable import ResultsStore
import Testing

/// A suite split into shards, each run into its own database and merged, equals the same suite
/// run on one machine: the same trials with the same results (timings aside).
@Suite(.serialized) struct ShardTests {
    /// Results that do not depend on the machine or the moment, by trial key.
    static func results(_ store: ResultsStore, run: Int64) throws -> [String: [String: Double]] {
        var out: [String: [String: Double]] = [:]
        for t in try store.trials(run: run) {
            var m: [String: Double] = [:]
            for r in try store.metrics(trial: t.id!) where !r.name.hasSuffix("seconds") && !r.name.hasSuffix("_mb") {
                m["\(r.protocolName)@\(r.evalBudget):\(r.name)"] = r.value
            }
            out[t.key] = m
        }
        return out
    }

    @Test func shardsMergedEqualOneMachineAndMergingTwiceAddsNothing() throws {
        let (dir, path) = try writeSuite(tinySuite(seeds: 2, budgets: "[2, 3, all]", protocols: "[native, knn]"))
        for shard in ["1/2", "2/2"] {
            let r = try runBenchbench(["suite", path, "--shard", shard, "--campaign", "c1"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("shard \(shard) of campaign c1"))
        }
        let shardFiles = ["benchbench.shard-1-of-2.sqlite", "benchbench.shard-2-of-2.sqlite"].map { dir + "/" + $0 }
        let counts = try shardFiles.map { try ResultsStore(path: $0).trials(run: 1).count }
        #expect(counts.reduce(0, +) == 6 && counts.allSatisfy { $0 > 0 }, "\(counts)")

        let single = try runBenchbench(["suite", path, "--db", dir + "/single.sqlite"], in: dir)
        #expect(single.status == 0, "\(single.stderr)")
        let merged = try runBenchbench(["merge", dir + "/merged.sqlite"] + shardFiles, in: dir)
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stdout.contains("2 of 2 shards finished"), "\(merged.stdout)")
        let again = try runBenchbench(["merge", dir + "/merged.sqlite"] + shardFiles, in: dir)
        #expect(again.status == 0 && again.stdout.contains("0 trial(s) added, \(counts[0]) already here"), "\(again.stdout)")

        let m = try ResultsStore(path: dir + "/merged.sqlite"), s = try ResultsStore(path: dir + "/single.sqlite")
        let runs = try m.runs()
        #expect(runs.count == 1 && runs[0].status == "done" && runs[0].finishedAt != nil)
        let one = try Self.results(s, run: 1), both = try Self.results(m, run: runs[0].id!)
        #expect(Set(both.keys) == Set(one.keys) && both.count == 6)
        for (key, values) in one { #expect(both[key] == values, "\(key)") }
        // Each trial keeps the machine it ran on; the run reads as any other.
        #expect(try m.trials(run: runs[0].id!).allSatisfy { $0.machineId != nil })
        let show = try runBenchbench(["show", "latest", "--db", dir + "/merged.sqlite"], in: dir)
        #expect(show.status == 0 && show.stdout.contains("supervised"))
    }

    @Test func aConflictingCopyIsReportedAndNotKept() throws {
        let (dir, path) = try writeSuite(tinySuite(seeds: 1, budgets: "[2]", protocols: "[native]"))
        #expect(try runBenchbench(["suite", path, "--shard", "1/1", "--campaign", "c2"], in: dir).status == 0)
        let shard = dir + "/benchbench.shard-1-of-1.sqlite", other = dir + "/tampered.sqlite"
        // The database with its write-ahead log (the suite process may leave the last commits there).
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: shard + suffix) {
            try FileManager.default.copyItem(atPath: shard + suffix, toPath: other + suffix)
        }
        let tampered = try ResultsStore(path: other)
        try tampered.pool.write { try $0.execute(sql: "UPDATE metric SET value = value + 0.25 WHERE name = 'accuracy'") }
        #expect(try runBenchbench(["merge", dir + "/m.sqlite", shard], in: dir).status == 0)
        let r = try runBenchbench(["merge", dir + "/m.sqlite", other], in: dir)
        #expect(r.status == 1 && r.stderr.contains("conflict: trial glyphs|supervised|2|0|"), "\(r.stderr)")
        let kept = try ResultsStore(path: dir + "/m.sqlite")
        let original = try Self.results(try ResultsStore(path: shard), run: 1)
        #expect(try Self.results(kept, run: 1) == original)
    }

    @Test func theAssignmentBalancesAndIgnoresTheOrderOfEntries() throws {
        let a = tinySuite(seeds: 3, budgets: "[2, 3, all]").replacingOccurrences(of: "methods:\n", with: "methods:\n  pseudo-label: {training: {steps: 15}, batchSize: 16}\n")
        let (dirA, pathA) = try writeSuite(a)
        let (_, pathB) = try writeSuite(tinySuite(seeds: 3, budgets: "[2, 3, all]") + "\n  pseudo-label: {training: {steps: 15}, batchSize: 16}\n")
        func planned(_ path: String, _ shard: String) throws -> [String] {
            let r = try runBenchbench(["suite", path, "--shard", shard, "--dry-run"], in: dirA)
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.split(separator: "\n").filter { $0.contains(" glyphs ") }.map { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().prefix(5).joined(separator: " ") }.sorted()
        }
        for shard in ["1/3", "2/3", "3/3"] { #expect(try planned(pathA, shard) == planned(pathB, shard), "\(shard)") }
        let sizes = try ["1/3", "2/3", "3/3"].map { try planned(pathA, $0).count }
        #expect(sizes.reduce(0, +) == 18 && sizes.max()! - sizes.min()! <= 2, "\(sizes)")
    }
}

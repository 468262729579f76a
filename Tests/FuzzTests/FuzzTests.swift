import DataCore
import Foundation
import Suite
import TensorCore
import Testing

/// Seeded random mutations of valid inputs through the three parsers that read what users give:
/// the IDX reader, its gzip path and the suite parser. Each input must parse or be refused with a
/// DataError / SuiteError: no trap (a trap ends the test process), no hang (an input slower than
/// a second fails), and memory bounded (peak RSS checked at the end).
///
/// `make test` runs `BENCHBENCH_FUZZ_ITERATIONS` (default 2,000) per parser; `make fuzz` 100,000.
@Suite struct FuzzTests {
    static var iterations: Int { Int(ProcessInfo.processInfo.environment["BENCHBENCH_FUZZ_ITERATIONS"] ?? "") ?? 2_000 }

    /// One random mutation of `bytes`: bit flips, overwritten or inserted bytes (often 0x00, 0xFF
    /// or a byte from elsewhere in the input), deletions, truncation, duplicated stretches, and
    /// big-endian extents written into the header region.
    static func mutate(_ input: [UInt8], _ rng: inout RNG, headerBytes: Int = 0) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + rng.int(4)) {
            let at = b.isEmpty ? 0 : rng.int(b.count)
            switch rng.int(8) {
            case 0 where !b.isEmpty: b[at] ^= UInt8(1 << rng.int(8))
            case 1 where !b.isEmpty: b[at] = [0, 0xFF, 0x7F, 0x80, UInt8(truncatingIfNeeded: rng.next())][rng.int(5)]
            case 2: b.insert(b.isEmpty ? 0 : b[rng.int(b.count)], at: at)
            case 3 where !b.isEmpty: b.removeSubrange(at..<min(b.count, at + 1 + rng.int(8)))
            case 4: b = Array(b.prefix(rng.int(b.count + 1)))
            case 5 where !b.isEmpty:
                let end = min(b.count, at + 1 + rng.int(32))
                b.insert(contentsOf: b[at..<end], at: rng.int(b.count))
            case 6 where headerBytes > 4 && b.count >= headerBytes:
                // An extent: small, huge, or one that overflows when multiplied.
                let word = 4 + 4 * rng.int((headerBytes - 4) / 4)
                let value: UInt32 = [0, 1, 0xFFFF_FFFF, 0x8000_0000, UInt32(truncatingIfNeeded: rng.next()), UInt32(rng.int(100))][rng.int(6)]
                for k in 0..<4 { b[word + k] = UInt8((value >> (8 * (3 - UInt32(k)))) & 0xFF) }
            default: if !b.isEmpty { b[at] = UInt8(truncatingIfNeeded: rng.next()) }
            }
        }
        return b
    }

    /// A valid IDX file: 3 images of 5 x 4 bytes, or their 3 labels.
    static let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 4] + (0..<60).map { UInt8($0 * 3 % 256) }
    static let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2]

    /// Runs `body` on each input, timing it; returns (accepted, refused).
    static func run(_ name: String, _ count: Int, _ input: (Int) -> [UInt8], _ body: ([UInt8]) throws -> Void) -> (Int, Int) {
        var accepted = 0, refused = 0
        for i in 0..<count {
            let bytes = input(i)
            let start = DispatchTime.now().uptimeNanoseconds
            do { try body(bytes); accepted += 1 } catch is DataError { refused += 1 } catch is SuiteError { refused += 1 } catch {
                Issue.record("\(name) #\(i): an error that is not a DataError or SuiteError: \(error)")
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            if seconds > 1 { Issue.record("\(name) #\(i): took \(seconds) s (a hang?) on \(bytes.count) bytes") }
        }
        return (accepted, refused)
    }

    /// Peak resident memory of this process (VmHWM), in megabytes.
    static var peakMegabytes: Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }

    @Test func idxParserSurvivesMutations() {
        var rng = RNG(seed: 1, key: "fuzz", stream: "idx")
        let (ok, refused) = Self.run("idx", Self.iterations, { i in
            Self.mutate(i % 2 == 0 ? Self.images : Self.labels, &rng, headerBytes: i % 2 == 0 ? 16 : 8)
        }) { bytes in
            let a = try IDX.parse(bytes, source: "fuzz.idx")
            // What parses is self-consistent: as many values as the extents say.
            #expect(a.values.count == a.dims.reduce(1, *))
        }
        print("idx: \(Self.iterations) mutated files, \(ok) parsed, \(refused) refused")
        #expect(ok + refused == Self.iterations)
        #expect(Self.peakMegabytes < 4096, "peak RSS \(Self.peakMegabytes) MB")
    }

    @Test func gzipPathSurvivesMutations() throws {
        // Mutations of the gzip stream itself (header, deflate blocks, CRC, length), read from disk.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("benchbench-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = dir.appendingPathComponent("images")
        try Data(Self.images).write(to: plain)
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gzip.arguments = ["gzip", "-kf", plain.path]
        try gzip.run()
        gzip.waitUntilExit()
        let valid = try [UInt8](Data(contentsOf: URL(fileURLWithPath: plain.path + ".gz")))
        let path = dir.appendingPathComponent("fuzz.gz").path
        var rng = RNG(seed: 2, key: "fuzz", stream: "gzip")
        let (ok, refused) = Self.run("gzip", Self.iterations, { _ in Self.mutate(valid, &rng) }) { bytes in
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let a = try IDX.read(path)
            #expect(a.values.count == a.dims.reduce(1, *))
        }
        print("gzip: \(Self.iterations) mutated streams, \(ok) read, \(refused) refused")
        #expect(ok + refused == Self.iterations)
        #expect(Self.peakMegabytes < 4096, "peak RSS \(Self.peakMegabytes) MB")
    }

    static let suiteText = """
        description: fuzz
        datasets:
          - {name: glyphs, classes: 12, instances: 12, test_instances: 4, split: [6, 1, 5]}
        backbone: {name: conv4, width: 8}
        seeds: [0, 1]
        budgets: [3, all]
        validation: 2
        protocols: [native, linear, knn, episodes]
        episodes: {way: [3, 5], shots: [1], query: 3, count: 20}
        thresholds: {accuracy: 0.01, samples_per_s: 0.25}
        methods:
          supervised: {training: {steps: 15, warmupSteps: 2}, batchSize: 16}
          fixmatch: {training: {steps: 3}, threshold: 0.9, budgets: [3]}
          protonet: {trainWay: 3, trainShot: 1}
          rotation: {featureBlocks: 2}

        """

    @Test func suiteParserSurvivesMutations() {
        var rng = RNG(seed: 3, key: "fuzz", stream: "suite")
        let valid = Array(Self.suiteText.utf8)
        let (ok, refused) = Self.run("suite", Self.iterations, { _ in Self.mutate(valid, &rng) }) { bytes in
            let suite = try Suite.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml", name: "fuzz")
            _ = try Planner.plan(suite)
        }
        print("suite: \(Self.iterations) mutated files, \(ok) planned, \(refused) refused")
        #expect(ok + refused == Self.iterations)
        #expect(Self.peakMegabytes < 4096, "peak RSS \(Self.peakMegabytes) MB")
    }
}

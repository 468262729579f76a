import Foundation
import Vocabulary

/// One of N parts of a suite's trials, for running a suite across machines (`--shard I/N`, a
/// Slurm job array). The assignment depends only on the trials (their keys and estimated costs),
/// never on the order of entries in the suite file, and balances estimated cost: the longest
/// trials first, each to the shard with the least work so far (ties: the lower shard).
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    /// 1-based.
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, (1...count).contains(index) else {
            throw DataError("shard \(index)/\(count): expected I/N with 1 <= I <= N")
        }
        (self.index, self.count) = (index, count)
    }

    /// "I/N".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let i = parts[0], let n = parts[1] else { throw DataError("shard '\(text)': expected I/N, e.g. 3/8") }
        try self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// Where a shard's results go unless `--db` says otherwise.
    public var defaultDatabase: String { "benchbench.shard-\(index)-of-\(count).sqlite" }

    /// The shard (0-based) of each trial of `plan`, in plan order.
    public static func assignment(_ plan: [PlannedTrial], shards: Int) -> [Int] {
        let order = plan.indices.sorted { a, b in
            plan[a].estimatedSeconds != plan[b].estimatedSeconds ? plan[a].estimatedSeconds > plan[b].estimatedSeconds : plan[a].key < plan[b].key
        }
        var load = [Double](repeating: 0, count: shards)
        var out = [Int](repeating: 0, count: plan.count)
        for i in order {
            let s = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 }!
            out[i] = s
            load[s] += max(plan[i].estimatedSeconds, 1e-9)
        }
        return out
    }

    /// This shard's trials, in plan order.
    public func select(_ plan: [PlannedTrial]) -> [PlannedTrial] {
        zip(plan, Shard.assignment(plan, shards: count)).filter { $0.1 == index - 1 }.map(\.0)
    }
}

/// The trials of one suite run split into shards: a campaign id shared by every shard (the
/// suite file's hash, the commit, and an id given or generated from those two).
public enum Campaign {
    public static func id(suiteSha: String, commit: String, given: String?) -> String {
        given ?? "\(suiteSha.prefix(8))-\(commit.prefix(8))"
    }
}

import TensorCore

/// One N-way K-shot Q-query episode: indices into the dataset and labels renumbered 0..<way.
public struct Episode: Equatable, Sendable {
    public let classes: [Int]
    public let support: [Int]
    public let supportLabels: [Int32]
    public let query: [Int]
    public let queryLabels: [Int32]
}

/// Draws episodes from a set of classes. Episode i depends only on (seed, i, the data and the
/// settings), so evaluation episodes are identical across methods, runs and commits.
public struct EpisodeSampler: Sendable {
    public let way: Int, shot: Int, query: Int
    public let seed: UInt64
    private let members: [[Int]]     // per eligible class, its examples
    private let classIDs: [Int]
    private let key: String

    public init(labels: [Int32], classes: [Int], way: Int, shot: Int, query: Int, seed: UInt64, datasetHash: String) throws {
        guard way >= 2, shot >= 1, query >= 1 else {
            throw DataError("episodes: way \(way), shot \(shot) and query \(query) must be at least 2, 1 and 1")
        }
        guard classes.count >= way else {
            throw DataError("episodes: \(way)-way episodes need at least \(way) classes, the split has \(classes.count)")
        }
        var byClass = [Int: [Int]]()
        for (i, y) in labels.enumerated() { byClass[Int(y), default: []].append(i) }
        members = classes.map { byClass[$0] ?? [] }
        for (c, m) in zip(classes, members) where m.count < shot + query {
            throw DataError("episodes: class \(c) has \(m.count) examples, fewer than shot + query = \(shot + query)")
        }
        classIDs = classes
        (self.way, self.shot, self.query, self.seed) = (way, shot, query, seed)
        key = "\(datasetHash)/\(classes.count)c/\(way)w\(shot)s\(query)q"
    }

    /// Episode number `index`: classes drawn without replacement, then disjoint support and query
    /// examples per class.
    public func episode(_ index: Int) -> Episode {
        var rng = RNG(seed: seed, key: key, stream: "episode-\(index)")
        var picks = Array(0..<classIDs.count)
        rng.shuffle(&picks)
        var support: [Int] = [], supportLabels: [Int32] = [], queryIdx: [Int] = [], queryLabels: [Int32] = []
        for (label, p) in picks.prefix(way).enumerated() {
            var examples = members[p]
            rng.shuffle(&examples)
            support += examples.prefix(shot)
            supportLabels += [Int32](repeating: Int32(label), count: shot)
            queryIdx += examples.dropFirst(shot).prefix(query)
            queryLabels += [Int32](repeating: Int32(label), count: query)
        }
        return Episode(classes: picks.prefix(way).map { classIDs[$0] }, support: support, supportLabels: supportLabels,
                       query: queryIdx, queryLabels: queryLabels)
    }
}

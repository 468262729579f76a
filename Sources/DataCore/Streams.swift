import TensorCore

// What a method may see of a trial's data, by type (DESIGN.md §6). The dataset itself, with every
// training label, stays inside DataCore: a method is handed pools built from it, and each pool
// exposes only what its regime grants. An unlabeled pool has no label in its interface at all;
// the held-back labels that let the framework audit pseudo-labels live in `HeldBackLabels`,
// which only the code that built the pool (the trial executor) holds.

/// How an image is presented to a method: as stored, or through weak or strong augmentation.
public enum View: String, Codable, CaseIterable, Sendable {
    case plain, weak, strong
}

/// Images and labels a regime grants.
public struct LabeledBatch {
    public let images: Tensor
    public let labels: [Int32]
    public init(images: Tensor, labels: [Int32]) { (self.images, self.labels) = (images, labels) }
}

/// Images without labels: one tensor per requested view of the same examples, in order.
public struct UnlabeledBatch {
    public let views: [Tensor]
    /// Positions in the pool, for the framework's pseudo-label audit (not indices of the dataset).
    public let positions: [Int]
    public init(views: [Tensor], positions: [Int]) { (self.views, self.positions) = (views, positions) }
}

/// An N-way K-shot episode with labels renumbered 0..<way.
public struct EpisodeBatch {
    public let way: Int
    public let support: Tensor
    public let supportLabels: [Int32]
    public let query: Tensor
    public let queryLabels: [Int32]

    public init(way: Int, support: Tensor, supportLabels: [Int32], query: Tensor, queryLabels: [Int32]) {
        (self.way, self.support, self.supportLabels, self.query, self.queryLabels) = (way, support, supportLabels, query, queryLabels)
    }
}

/// Shared by the pools: the images they draw from and how to augment them.
struct ImageSource {
    let images: Tensor
    let weak: Augmenter
    let strong: Augmenter

    init(_ dataset: Dataset) {
        images = dataset.trainImages
        weak = Augmenter(kind: .weak, dataset: dataset)
        strong = Augmenter(kind: .strong, dataset: dataset)
    }

    func images(_ rows: [Int], view: View, rng: inout RNG) -> Tensor {
        let x = images.gatherRows(rows)
        switch view {
        case .plain: return x
        case .weak: return weak.apply(x, rng: &rng)
        case .strong: return strong.apply(x, rng: &rng)
        }
    }
}

/// The labeled examples a budget grants (few-shot: every example of the base classes).
public struct LabeledPool {
    let source: ImageSource
    let rows: [Int]
    public let labels: [Int32]
    public let classCount: Int

    public init(dataset: Dataset, indices: [Int]) throws {
        guard !indices.isEmpty else { throw DataError("\(dataset.name): the label budget grants no labeled examples") }
        source = ImageSource(dataset)
        rows = indices
        labels = indices.map { dataset.trainLabels[$0] }
        classCount = dataset.classCount
    }

    public var count: Int { rows.count }
    public var imageShape: [Int] { Array(source.images.shape.dropFirst()) }

    /// Every labeled example at once (label propagation's graph, a fitted head).
    public func all(view: View = .plain, rng: inout RNG) -> LabeledBatch {
        LabeledBatch(images: source.images(rows, view: view, rng: &rng), labels: labels)
    }

    public func stream(batchSize: Int, view: View, rng: RNG) throws -> LabeledStream {
        try LabeledStream(pool: self, batchSize: min(batchSize, count), view: view, rng: rng)
    }
}

/// How a stream draws: pool positions reshuffled every epoch, and augmentation randomness, each
/// from its own generator derived from the stream's.
struct Draw {
    var order: BatchStream
    var augment: RNG

    init(count: Int, batchSize: Int, rng: RNG) throws {
        var rng = rng
        order = try BatchStream(indices: Array(0..<count), batchSize: batchSize, rng: rng.derive("order"))
        augment = rng.derive("augment")
    }
}

/// Endless labeled batches, reshuffled every epoch.
public struct LabeledStream {
    let pool: LabeledPool
    let view: View
    var draw: Draw

    init(pool: LabeledPool, batchSize: Int, view: View, rng: RNG) throws {
        (self.pool, self.view) = (pool, view)
        draw = try Draw(count: pool.count, batchSize: batchSize, rng: rng)
    }

    public var batchSize: Int { draw.order.batchSize }

    public mutating func next() -> LabeledBatch {
        let positions = draw.order.next()
        return LabeledBatch(images: pool.source.images(positions.map { pool.rows[$0] }, view: view, rng: &draw.augment),
                            labels: positions.map { pool.labels[$0] })
    }
}

/// Training images whose labels the method may not see.
public struct UnlabeledPool {
    let source: ImageSource
    let rows: [Int]

    /// The pool and the labels it hides, which only the caller (the trial executor) keeps.
    public static func hiding(dataset: Dataset, indices: [Int]) throws -> (pool: UnlabeledPool, heldBack: HeldBackLabels) {
        guard !indices.isEmpty else { throw DataError("\(dataset.name): no unlabeled examples to train on") }
        let pool = UnlabeledPool(source: ImageSource(dataset), rows: indices)
        return (pool, HeldBackLabels(labels: indices.map { dataset.trainLabels[$0] }))
    }

    public var count: Int { rows.count }
    public var imageShape: [Int] { Array(source.images.shape.dropFirst()) }

    /// Images at pool positions (a graph step's features, a clustering pass over the pool).
    public func images(at positions: [Int], view: View = .plain, rng: inout RNG) -> Tensor {
        source.images(positions.map { rows[$0] }, view: view, rng: &rng)
    }

    public func stream(batchSize: Int, views: [View], rng: RNG) throws -> UnlabeledStream {
        try UnlabeledStream(pool: self, batchSize: min(batchSize, count), views: views, rng: rng)
    }
}

/// Endless unlabeled batches, each example presented in every requested view.
public struct UnlabeledStream {
    let pool: UnlabeledPool
    public let views: [View]
    var draw: Draw

    init(pool: UnlabeledPool, batchSize: Int, views: [View], rng: RNG) throws {
        guard !views.isEmpty else { throw DataError("unlabeled stream: ask for at least one view") }
        (self.pool, self.views) = (pool, views)
        draw = try Draw(count: pool.count, batchSize: batchSize, rng: rng)
    }

    public var batchSize: Int { draw.order.batchSize }

    public mutating func next() -> UnlabeledBatch {
        let positions = draw.order.next()
        let rows = positions.map { pool.rows[$0] }
        var out: [Tensor] = []
        for view in views { out.append(pool.source.images(rows, view: view, rng: &draw.augment)) }
        return UnlabeledBatch(views: out, positions: positions)
    }
}

/// The labels an unlabeled pool hides: the framework scores pseudo-labels against them, the
/// method never receives them.
public struct HeldBackLabels {
    let labels: [Int32]

    /// Fraction of `predicted` (one per batch example, pool positions in `positions`) that equal
    /// the hidden label, counting only examples where `mask` is true (all when nil); nil when none count.
    public func accuracy(of predicted: [Int32], at positions: [Int], mask: [Bool]? = nil) -> Double? {
        var right = 0, total = 0
        for (i, p) in positions.enumerated() where mask?[i] ?? true {
            total += 1
            if labels[p] == predicted[i] { right += 1 }
        }
        return total == 0 ? nil : Double(right) / Double(total)
    }
}

/// Episodes over a set of classes (the base classes in training, validation classes for model
/// selection); their labels are the episode's own 0..<way.
public struct EpisodePool {
    let source: ImageSource
    let labels: [Int32]
    let datasetHash: String
    public let classes: [Int]

    public init(dataset: Dataset, classes: [Int]) {
        source = ImageSource(dataset)
        labels = dataset.trainLabels
        datasetHash = dataset.contentHash
        self.classes = classes
    }

    public var imageShape: [Int] { Array(source.images.shape.dropFirst()) }

    /// Episodes drawn afresh from `rng` (training); fixed episodes come from `fixed(...)`.
    public func stream(way: Int, shot: Int, query: Int, rng: RNG) throws -> EpisodeStream {
        var rng = rng
        let sampler = try EpisodeSampler(labels: labels, classes: classes, way: way, shot: shot, query: query,
                                         seed: rng.next(), datasetHash: "training")
        return EpisodeStream(pool: self, sampler: sampler)
    }

    /// A fixed sequence of episodes: episode i depends only on (seed, i, the dataset, the
    /// classes and the settings), the same for every method, run and commit.
    public func fixed(way: Int, shot: Int, query: Int, seed: UInt64) throws -> EpisodeStream {
        EpisodeStream(pool: self, sampler: try EpisodeSampler(labels: labels, classes: classes, way: way, shot: shot, query: query,
                                                              seed: seed, datasetHash: datasetHash))
    }
}

/// N-way K-shot episodes, each drawn by its own index from the sampler.
public struct EpisodeStream {
    let pool: EpisodePool
    public let sampler: EpisodeSampler
    var index = 0

    init(pool: EpisodePool, sampler: EpisodeSampler) { (self.pool, self.sampler) = (pool, sampler) }

    public mutating func next() -> EpisodeBatch {
        defer { index += 1 }
        return episode(index)
    }

    public func episode(_ i: Int) -> EpisodeBatch {
        let e = sampler.episode(i)
        return EpisodeBatch(way: sampler.way, support: pool.source.images.gatherRows(e.support), supportLabels: e.supportLabels,
                            query: pool.source.images.gatherRows(e.query), queryLabels: e.queryLabels)
    }
}

import TensorCore

/// An endless stream of mini-batches over a set of indices: reshuffled every epoch with its own
/// seeded generator, so a labeled and an unlabeled stream advance independently (labeled batch B
/// beside unlabeled batch μB, as FixMatch draws them).
public struct BatchStream: Sendable {
    public let indices: [Int]
    public let batchSize: Int
    private var order: [Int]
    private var position: Int
    private var rng: RNG
    public private(set) var epoch = 0

    public init(indices: [Int], batchSize: Int, rng: RNG) throws {
        guard !indices.isEmpty else { throw DataError("batches: no examples to draw from") }
        guard batchSize >= 1 else { throw DataError("batches: batch size \(batchSize) must be at least 1") }
        self.indices = indices
        self.batchSize = batchSize
        self.rng = rng
        order = indices
        position = indices.count   // shuffle on first use
    }

    /// The next batch; it wraps into a new epoch (fresh shuffle) when the current one runs out, so
    /// every batch is full even when the set is smaller than a batch.
    public mutating func next() -> [Int] {
        var batch: [Int] = []
        batch.reserveCapacity(batchSize)
        while batch.count < batchSize {
            if position == order.count {
                rng.shuffle(&order)
                position = 0
                epoch += 1
            }
            let take = min(batchSize - batch.count, order.count - position)
            batch += order[position..<(position + take)]
            position += take
        }
        return batch
    }
}

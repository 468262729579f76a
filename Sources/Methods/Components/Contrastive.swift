import NNCore
import TensorCore

/// Contrastive losses over L2-normalised embeddings (DESIGN.md §6 components).
public enum Contrastive {
    /// NT-Xent, SimCLR's loss (Chen et al. 2020): the 2N embeddings of N images in two views; for
    /// each, the other view of the same image is the positive and the 2N − 2 others the negatives:
    /// ℓ(i, j) = −log( exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) ), averaged over all 2N
    /// anchors, with sim the cosine similarity. Also the fraction of anchors whose positive is
    /// their most similar embedding.
    public static func ntXent(_ a: Tensor, _ b: Tensor, temperature: Float) -> (loss: Tensor, accuracy: Float) {
        let n = a.shape[0]
        // invariant: the two views are augmentations of the same batch
        precondition(b.shape == a.shape && n >= 1, "Contrastive.ntXent: views \(a.shape) and \(b.shape) differ")
        let z = concat([a, b], axis: 0).l2Normalized()
        // Self-similarity is excluded by a large negative constant on the diagonal.
        var diagonal = [Float](repeating: 0, count: 4 * n * n)
        for i in 0..<(2 * n) { diagonal[i * 2 * n + i] = -1e9 }
        let logits = matmul(z, z, transposeB: true) / temperature + Tensor(shape: [2 * n, 2 * n], scalars: diagonal)
        let positives = (0..<(2 * n)).map { Int32(($0 + n) % (2 * n)) }
        return (Loss.crossEntropy(logits, labels: positives), StepOutput.accuracy(logits, positives))
    }

    /// InfoNCE as MoCo computes it (He et al. 2020; Oord et al. 2018): logits [N, 1 + K] of each
    /// query against its positive key (column 0) and the K negatives, over τ; cross-entropy with
    /// label 0. Queries, keys and negatives are L2-normalised by the caller.
    public static func infoNCE(queries q: Tensor, keys k: Tensor, negatives: Tensor, temperature: Float) -> (loss: Tensor, accuracy: Float) {
        let positive = (q * k).sum(axis: 1, keepDims: true)
        let negative = matmul(q, negatives, transposeB: true)
        let logits = concat([positive, negative], axis: 1) / temperature
        let labels = [Int32](repeating: 0, count: q.shape[0])
        return (Loss.crossEntropy(logits, labels: labels), StepOutput.accuracy(logits, labels))
    }

    /// `images` through `network` in `groups` separate batch-norm batches, the rows in `order`
    /// (nil: as given), the output back in the input's row order. MoCo's shuffling BN (He et al.
    /// 2020, §3.3) runs queries and keys on GPUs holding different subsets, so a query and its key
    /// never share batch statistics that could leak which is which; here the groups play the GPUs.
    public static func groupedForward(_ network: Module, _ images: Tensor, groups: Int, order: [Int]? = nil, _ ctx: inout ForwardContext) -> Tensor {
        let n = images.shape[0]
        let g = Swift.max(1, Swift.min(groups, n))
        let x = order.map { images.gatherRows($0) } ?? images
        let bounds = (0...g).map { $0 * n / g }
        let parts = (0..<g).map { network.forward(x.slice(axis: 0, bounds[$0], bounds[$0 + 1]), &ctx) }
        let out = g == 1 ? parts[0] : concat(parts, axis: 0)
        guard let order else { return out }
        var inverse = [Int](repeating: 0, count: n)
        for (position, row) in order.enumerated() { inverse[row] = position }
        return out.gatherRows(inverse)
    }
}

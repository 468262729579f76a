import DataCore
import TensorCore

/// A mean with its 95% confidence interval half-width (1.96 · std / √n) over n trials.
public struct MeanCI: Equatable, Sendable, CustomStringConvertible {
    public var mean: Double
    public var ci95: Double
    public var n: Int

    public init(_ values: [Double]) {
        let count = values.count
        let m = values.reduce(0, +) / Double(max(count, 1))
        let variance = count > 1 ? values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(count - 1) : 0
        (n, mean, ci95) = (count, m, 1.96 * variance.squareRoot() / Double(max(count, 1)).squareRoot())
    }

    public var description: String { String(format: "%.2f%% ± %.2f (n = %d)", 100 * mean, 100 * ci95, n) }
}

public enum FewShot {
    /// Accuracy of `classify` (an episode in, a predicted class per query out) over episodes
    /// 0..<count of `episodes`: how a method's own adaptation is scored.
    public static func accuracy(_ episodes: EpisodeStream, count: Int, classify: (EpisodeBatch) -> [Int]) -> MeanCI {
        MeanCI((0..<count).map { i in
            let e = episodes.episode(i)
            let predicted = classify(e)
            return Double(zip(predicted, e.queryLabels).filter { $0 == Int($1) }.count) / Double(e.queryLabels.count)
        })
    }

    /// Accuracy of the nearest class mean (Euclidean) of support features on each episode's query,
    /// over episodes 0..<count of `sampler`: a method-free baseline (on raw pixels) and the
    /// classifier of prototype-style evaluation (on learned features).
    public static func nearestMeanAccuracy(features: Tensor, sampler: EpisodeSampler, count: Int) -> MeanCI {
        let d = features.count / max(features.shape[0], 1)
        let accuracies: [Double] = (0..<count).map { index in
            let e = sampler.episode(index)
            return features.withUnsafeBufferPointer { f in
                var means = [Double](repeating: 0, count: sampler.way * d)
                for (row, y) in zip(e.support, e.supportLabels) {
                    for j in 0..<d { means[Int(y) * d + j] += Double(f[row * d + j]) / Double(sampler.shot) }
                }
                var right = 0
                for (row, y) in zip(e.query, e.queryLabels) {
                    var best = 0, bestDistance = Double.infinity
                    for c in 0..<sampler.way {
                        var s = 0.0
                        for j in 0..<d { let t = Double(f[row * d + j]) - means[c * d + j]; s += t * t }
                        if s < bestDistance { bestDistance = s; best = c }
                    }
                    if best == Int(y) { right += 1 }
                }
                return Double(right) / Double(e.query.count)
            }
        }
        return MeanCI(accuracies)
    }
}

public enum KNN {
    /// Cosine k-nearest-neighbour classification of `query` features against `reference` features,
    /// votes weighted by exp(similarity / temperature) (Wu et al. 2018); ties go to the lower class.
    public static func accuracy(reference: Tensor, referenceLabels: [Int32], query: Tensor, queryLabels: [Int32],
                                classes: Int, k: Int = 20, temperature: Float = 0.07, batchSize: Int = 1024) -> AccuracyReport {
        let k = min(k, referenceLabels.count)
        var right = [Int](repeating: 0, count: classes), total = [Int](repeating: 0, count: classes)
        noGrad {
            let ref = reference.flattened().l2Normalized()
            var start = 0
            while start < queryLabels.count {
                let end = min(start + batchSize, queryLabels.count)
                let q = query.gatherRows(Array(start..<end)).flattened().l2Normalized()
                let similarity = matmul(q, ref, transposeB: true)   // [B, N]
                let n = referenceLabels.count
                similarity.withUnsafeBufferPointer { s in
                    for i in 0..<(end - start) {
                        let row = s.baseAddress! + i * n
                        // Top k by partial selection.
                        var top = [(Float, Int)]()
                        top.reserveCapacity(k + 1)
                        for j in 0..<n {
                            let v = row[j]
                            if top.count < k || v > top[top.count - 1].0 {
                                var at = top.count
                                while at > 0 && top[at - 1].0 < v { at -= 1 }
                                top.insert((v, j), at: at)
                                if top.count > k { top.removeLast() }
                            }
                        }
                        var votes = [Double](repeating: 0, count: classes)
                        for (v, j) in top { votes[Int(referenceLabels[j])] += Double(Foundation.exp(v / temperature)) }
                        var best = 0
                        for c in 1..<classes where votes[c] > votes[best] { best = c }
                        let y = Int(queryLabels[start + i])
                        total[y] += 1
                        if best == y { right[y] += 1 }
                    }
                }
                start = end
            }
        }
        let count = total.reduce(0, +)
        return AccuracyReport(accuracy: count == 0 ? 0 : Double(right.reduce(0, +)) / Double(count),
                              perClass: zip(right, total).map { $1 == 0 ? 0 : Double($0) / Double($1) }, count: count)
    }
}

import Foundation

import DataCore
import NNCore
import TensorCore

/// Accuracy of a classifier's own outputs (the `native` protocol), overall and per class.
public struct AccuracyReport: Equatable, Sendable {
    public var accuracy: Double
    public var perClass: [Double]
    public var count: Int
}

public enum Evaluate {
    /// Runs `model` in evaluation mode over `indices` of `images` in batches and scores the argmax
    /// of its outputs against `labels`.
    public static func accuracy(_ model: Module, images: Tensor, labels: [Int32], indices: [Int]? = nil,
                                classes: Int, batchSize: Int = 500, context: ForwardContext = .eval) -> AccuracyReport {
        let rows = indices ?? Array(0..<labels.count)
        var right = [Int](repeating: 0, count: classes), total = [Int](repeating: 0, count: classes)
        noGrad {
            var start = 0
            while start < rows.count {
                let batch = Array(rows[start..<min(start + batchSize, rows.count)])
                var ctx = context
                let logits = model.forward(images.gatherRows(batch), &ctx)
                let predicted = logits.argmaxRows()
                for (i, row) in batch.enumerated() {
                    let y = Int(labels[row])
                    total[y] += 1
                    if predicted[i] == y { right[y] += 1 }
                }
                start += batchSize
            }
        }
        let n = total.reduce(0, +)
        return AccuracyReport(accuracy: n == 0 ? 0 : Double(right.reduce(0, +)) / Double(n),
                              perClass: zip(right, total).map { $1 == 0 ? 0 : Double($0) / Double($1) }, count: n)
    }

    /// The outputs of `encoder` (evaluation mode, no graph) for every image, in batches so that
    /// activations of a whole dataset never sit in memory at once. `path` is the encoder's own
    /// path inside its model, so substituted parameters would find it.
    public static func features(_ encoder: Module, images: Tensor, path: String = "", batchSize: Int = 500,
                                context: ForwardContext = .eval) -> Tensor {
        noGrad {
            var parts: [Tensor] = []
            var start = 0
            while start < images.shape[0] {
                let batch = images.gatherRows(Array(start..<min(start + batchSize, images.shape[0])))
                var ctx = context
                parts.append(path.isEmpty ? encoder.forward(batch, &ctx) : ctx.child(path) { encoder.forward(batch, &$0) })
                start += batchSize
            }
            return concat(parts, axis: 0)
        }
    }
}

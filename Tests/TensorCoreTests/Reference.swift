import Foundation
@testable import TensorCore

/// Naive Double-precision reference implementations of every op: the ground truth the fast
/// Float32 kernels are checked against, and the function that finite differences are taken of.
struct Ref {
    var shape: [Int]
    var data: [Double]

    init(_ shape: [Int], _ data: [Double]) {
        precondition(shape.reduce(1, *) == data.count)
        self.shape = shape; self.data = data
    }
    init(_ t: Tensor) { self.init(t.shape, t.scalars.map(Double.init)) }
    var count: Int { data.count }
    var tensor: Tensor { Tensor(shape: shape, scalars: data.map(Float.init)) }

    func index(_ idx: [Int]) -> Int {
        var o = 0
        for (i, s) in Shape.strides(shape).enumerated() { o += idx[i] * s }
        return o
    }
    /// All multi-indices of a shape, in row-major order.
    static func indices(_ shape: [Int]) -> [[Int]] {
        var out: [[Int]] = [[]]
        for d in shape { out = out.flatMap { p in (0..<d).map { p + [$0] } } }
        return out
    }

    func map(_ f: (Double) -> Double) -> Ref { Ref(shape, data.map(f)) }

    static func broadcastBinary(_ a: Ref, _ b: Ref, _ f: (Double, Double) -> Double) -> Ref {
        let shape = Shape.broadcast(a.shape, b.shape, op: "ref")
        func at(_ x: Ref, _ idx: [Int]) -> Double {
            let pad = shape.count - x.shape.count
            return x.data[x.index((0..<x.shape.count).map { x.shape[$0] == 1 ? 0 : idx[$0 + pad] })]
        }
        return Ref(shape, indices(shape).map { f(at(a, $0), at(b, $0)) })
    }
    static func + (a: Ref, b: Ref) -> Ref { broadcastBinary(a, b, +) }
    static func - (a: Ref, b: Ref) -> Ref { broadcastBinary(a, b, -) }
    static func * (a: Ref, b: Ref) -> Ref { broadcastBinary(a, b, *) }
    static func / (a: Ref, b: Ref) -> Ref { broadcastBinary(a, b, /) }

    func sum(to target: [Int]) -> Ref {
        var out = Ref(target, [Double](repeating: 0, count: target.reduce(1, *)))
        let pad = shape.count - target.count
        for idx in Ref.indices(shape) {
            let t = (0..<target.count).map { target[$0] == 1 ? 0 : idx[$0 + pad] }
            out.data[out.index(t)] += data[index(idx)]
        }
        return out
    }
    func sumAll() -> Double { data.reduce(0, +) }

    func max(axis: Int) -> Ref {
        var kept = shape; kept[axis] = 1
        var out = Ref(kept, [Double](repeating: -.infinity, count: kept.reduce(1, *)))
        for idx in Ref.indices(shape) {
            var t = idx; t[axis] = 0
            out.data[out.index(t)] = Swift.max(out.data[out.index(t)], data[index(idx)])
        }
        return out
    }

    func permuted(_ order: [Int]) -> Ref {
        let outShape = order.map { shape[$0] }
        return Ref(outShape, Ref.indices(outShape).map { o in
            var idx = [Int](repeating: 0, count: shape.count)
            for (i, a) in order.enumerated() { idx[a] = o[i] }
            return data[index(idx)]
        })
    }

    func slice(axis: Int, _ start: Int, _ end: Int) -> Ref {
        var outShape = shape; outShape[axis] = end - start
        return Ref(outShape, Ref.indices(outShape).map { o in var i = o; i[axis] += start; return data[index(i)] })
    }

    static func concat(_ parts: [Ref], axis: Int) -> Ref {
        var outShape = parts[0].shape
        outShape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
        return Ref(outShape, indices(outShape).map { o in
            var i = o, p = 0
            while i[axis] >= parts[p].shape[axis] { i[axis] -= parts[p].shape[axis]; p += 1 }
            return parts[p].data[parts[p].index(i)]
        })
    }

    static func matmul(_ a: Ref, _ b: Ref, ta: Bool = false, tb: Bool = false) -> Ref {
        let batched = a.shape.count == 3
        let batch = batched ? a.shape[0] : 1
        let (ar, ac) = (a.shape[a.shape.count - 2], a.shape[a.shape.count - 1])
        let (br, bc) = (b.shape[b.shape.count - 2], b.shape[b.shape.count - 1])
        let (m, k) = ta ? (ac, ar) : (ar, ac)
        let n = tb ? br : bc
        var out = [Double](repeating: 0, count: batch * m * n)
        for p in 0..<batch {
            for i in 0..<m { for j in 0..<n {
                var s = 0.0
                for l in 0..<k {
                    let av = a.data[p * ar * ac + (ta ? l * ac + i : i * ac + l)]
                    let bv = b.data[p * br * bc + (tb ? j * bc + l : l * bc + j)]
                    s += av * bv
                }
                out[(p * m + i) * n + j] = s
            } }
        }
        return Ref(batched ? [batch, m, n] : [m, n], out)
    }

    func logSoftmax() -> Ref {
        let n = shape.last!
        var out = data
        for r in 0..<(count / n) {
            let row = data[(r * n)..<((r + 1) * n)]
            let m = row.max()!
            let lse = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
            for i in 0..<n { out[r * n + i] = data[r * n + i] - lse }
        }
        return Ref(shape, out)
    }

    static func crossEntropy(_ logits: Ref, labels: [Int32]) -> Double {
        let ls = logits.logSoftmax(), n = logits.shape[1]
        return -labels.enumerated().map { ls.data[$0.offset * n + Int($0.element)] }.reduce(0, +) / Double(labels.count)
    }

    static func conv2d(_ x: Ref, _ w: Ref, stride: (Int, Int), padding: (Int, Int)) -> Ref {
        let (nb, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let oh = (h + 2 * padding.0 - kh) / stride.0 + 1, ow = (wd + 2 * padding.1 - kw) / stride.1 + 1
        var out = Ref([nb, o, oh, ow], [Double](repeating: 0, count: nb * o * oh * ow))
        for n in 0..<nb { for f in 0..<o { for i in 0..<oh { for j in 0..<ow {
            var s = 0.0
            for ch in 0..<c { for a in 0..<kh { for b in 0..<kw {
                let ih = i * stride.0 - padding.0 + a, iw = j * stride.1 - padding.1 + b
                if ih >= 0 && ih < h && iw >= 0 && iw < wd { s += x.data[x.index([n, ch, ih, iw])] * w.data[w.index([f, ch, a, b])] }
            } } }
            out.data[out.index([n, f, i, j])] = s
        } } } }
        return out
    }

    /// Training-mode batch norm of x [N, C, H, W] over the batch's statistics (biased variance,
    /// eps 1e-5), then an optional ReLU.
    func batchNorm(gamma: Ref, beta: Ref, relu: Bool) -> Ref {
        let stat = [1, shape[1], 1, 1], count = Double(self.count / shape[1])
        let c = self - sum(to: stat).map { $0 / count }
        let inv = (c * c).sum(to: stat).map { 1 / ($0 / count + 1e-5).squareRoot() }
        return (c * inv * Ref(stat, gamma.data) + Ref(stat, beta.data)).map { relu ? Swift.max($0, 0) : $0 }
    }

    func pool(kernel: (Int, Int), stride: (Int, Int), _ reduce: ([Double]) -> Double) -> Ref {
        let (nb, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let oh = (h - kernel.0) / stride.0 + 1, ow = (w - kernel.1) / stride.1 + 1
        var out = Ref([nb, c, oh, ow], [Double](repeating: 0, count: nb * c * oh * ow))
        for n in 0..<nb { for ch in 0..<c { for i in 0..<oh { for j in 0..<ow {
            var window: [Double] = []
            for a in 0..<kernel.0 { for b in 0..<kernel.1 { window.append(data[index([n, ch, i * stride.0 + a, j * stride.1 + b])]) } }
            out.data[out.index([n, ch, i, j])] = reduce(window)
        } } } }
        return out
    }
}

/// Random Double values that are exactly representable as Float, so both precisions see the same input.
func randomRef(_ shape: [Int], _ rng: inout RNG, low: Double = -1, high: Double = 1) -> Ref {
    Ref(shape, (0..<shape.reduce(1, *)).map { _ in Double(Float(low + (high - low) * Double(rng.uniform()))) })
}

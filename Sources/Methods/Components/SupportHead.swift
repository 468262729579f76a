import Foundation
import NNCore
import TensorCore

/// A new classifier fitted on an episode's support features, the encoder frozen: the adapter of
/// the fine-tuning baselines (Chen et al. 2019). Paper settings: SGD with momentum 0.9, learning
/// rate 0.01, weight decay 1e-3, 100 epochs over the support set in batches of 4; here 100
/// full-batch steps (the support set is at most a few dozen features, so a batch of 4 only adds noise).
public struct SupportHead: Codable, Equatable, Sendable {
    public var steps = 100
    public var learningRate: Float = 0.01
    public var momentum: Float = 0.9
    public var weightDecay: Float = 1e-3

    public init() {}

    public func validate(key: String) throws {
        try Check.atLeast(steps, 1, key: "\(key).steps")
        try Check.positive(learningRate, key: "\(key).learningRate")
        guard momentum >= 0 && momentum < 1 else { throw ConfigError(key: "\(key).momentum", "must be in [0, 1), got \(momentum)") }
        try Check.nonNegative(weightDecay, key: "\(key).weightDecay")
    }

    /// `head` (a fresh linear or cosine classifier over the way) trained on `features` [S, D]. The
    /// two heads the baselines use are fitted by `DirectHeadFit`, the same steps with their
    /// gradients written out; any other module through the engine's autodiff (`fitByAutodiff`).
    public func fit(_ head: Module, features: Tensor, labels: [Int32]) -> Module {
        if var direct = DirectHeadFit(head) {
            direct.fit(self, features: features, labels: labels)
            direct.store(in: head)
            return head
        }
        return fitByAutodiff(head, features: features, labels: labels)
    }

    /// Full-batch SGD on the mean cross-entropy through the engine's autodiff.
    func fitByAutodiff(_ head: Module, features: Tensor, labels: [Int32]) -> Module {
        let optimizer = SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        let f = features.detached
        for _ in 0..<steps {
            let (_, gradients) = valueAndGradient(at: head.trainableParameters()) { parameters in
                var ctx = ForwardContext(training: true, overrides: parameters)
                return Loss.crossEntropy(head.forward(f, &ctx), labels: labels)
            }
            optimizer.update(head, gradients: gradients)
        }
        return head
    }
}

/// `SupportHead`'s fit for a `Linear` head (with bias) or a `CosineClassifier`, in Double, with the
/// gradients of the mean cross-entropy written out. Through the autodiff engine, each of the
/// 100 steps on a 5 x 64 problem paid the per-op overhead of a dozen graph ops: 1,200 episodes
/// took 70-93 s of a glyphs trial's evaluation (finetune-baseline, fewshot.yaml); this loop is
/// the same SGD (d = g + wd·p, v = μv + d, p -= lr·v, every parameter decayed, as `SGD`).
///
/// Linear: z = F Wᵀ + b, ∂L/∂W = dzᵀ F, ∂L/∂b = Σₛ dz. Cosine (`pairwiseCosineSimilarity`, eps
/// 1e-8 under the square roots): z_sc = s·g_c·(u_s·v̂_c), u = f/‖f‖, v̂ = v/‖v‖; ∂L/∂g_c =
/// Σₛ dz_sc·s·cos_sc, and with G_c = Σₛ dz_sc·s·g_c·u_s, ∂L/∂v_c = (G_c − v̂_c(v̂_c·G_c))/‖v_c‖.
/// dz = (softmax(z) − onehot)/S.
struct DirectHeadFit {
    enum Kind { case linear, cosine(scale: Double, gains: Bool) }
    let kind: Kind
    let classes: Int, width: Int
    /// Parameters as the module names them: weight [C, D] row-major, then bias or gain [C].
    var weight: [Double], second: [Double]

    init?(_ head: Module) {
        let w = head.parameters["weight"]
        if let linear = head as? Linear, let w, let b = head.parameters["bias"], head.parameters.count == 2 {
            (kind, classes, width) = (.linear, linear.outFeatures, linear.inFeatures)
            (weight, second) = (w.scalars.map(Double.init), b.scalars.map(Double.init))
        } else if let cosine = head as? CosineClassifier, let w, w.rank == 2 {
            let gain = head.parameters["gain"]
            (kind, classes, width) = (.cosine(scale: Double(cosine.scale), gains: gain != nil), w.shape[0], w.shape[1])
            (weight, second) = (w.scalars.map(Double.init), gain?.scalars.map(Double.init) ?? [Double](repeating: 1, count: w.shape[0]))
        } else {
            return nil
        }
    }

    /// Logits [S, C] of features [S, D] (rows already unit for the cosine head).
    func logits(_ f: [Double], rows: Int) -> [Double] {
        var z = [Double](repeating: 0, count: rows * classes)
        var norms = [Double](repeating: 1, count: classes)
        if case .cosine = kind {
            for c in 0..<classes { norms[c] = (dot(weight, c * width, weight, c * width) + 1e-8).squareRoot() }
        }
        for s in 0..<rows {
            for c in 0..<classes {
                let d = dot(f, s * width, weight, c * width)
                switch kind {
                case .linear: z[s * classes + c] = d + second[c]
                case .cosine(let scale, _): z[s * classes + c] = scale * second[c] * d / norms[c]
                }
            }
        }
        return z
    }

    func dot(_ a: [Double], _ i: Int, _ b: [Double], _ j: Int) -> Double {
        var s = 0.0
        for k in 0..<width { s += a[i + k] * b[j + k] }
        return s
    }

    mutating func fit(_ settings: SupportHead, features: Tensor, labels: [Int32]) {
        let rows = features.shape[0]
        var f = features.scalars.map(Double.init)
        if case .cosine = kind {
            for s in 0..<rows {
                let n = (dot(f, s * width, f, s * width) + 1e-8).squareRoot()
                for k in 0..<width { f[s * width + k] /= n }
            }
        }
        let (lr, mu, wd) = (Double(settings.learningRate), Double(settings.momentum), Double(settings.weightDecay))
        var (vWeight, vSecond) = ([Double](repeating: 0, count: weight.count), [Double](repeating: 0, count: second.count))
        var (gWeight, gSecond) = (vWeight, vSecond)
        for _ in 0..<settings.steps {
            // dz = (softmax(z) - onehot) / S, in place over the logits.
            var dz = logits(f, rows: rows)
            for s in 0..<rows {
                let row = s * classes
                let top = dz[row..<(row + classes)].max()!
                var total = 0.0
                for c in 0..<classes { dz[row + c] = Foundation.exp(dz[row + c] - top); total += dz[row + c] }
                for c in 0..<classes { dz[row + c] = (dz[row + c] / total - (c == Int(labels[s]) ? 1 : 0)) / Double(rows) }
            }
            gradients(f, dz, rows: rows, &gWeight, &gSecond)
            SupportHeadSGD.step(&weight, gWeight, &vWeight, lr: lr, momentum: mu, weightDecay: wd)
            if case .cosine(_, false) = kind { continue }    // no gain parameter to train
            SupportHeadSGD.step(&second, gSecond, &vSecond, lr: lr, momentum: mu, weightDecay: wd)
        }
    }

    func gradients(_ f: [Double], _ dz: [Double], rows: Int, _ gWeight: inout [Double], _ gSecond: inout [Double]) {
        for c in 0..<classes {
            var g = [Double](repeating: 0, count: width), gs = 0.0
            switch kind {
            case .linear:
                for s in 0..<rows {
                    let d = dz[s * classes + c]
                    gs += d
                    for k in 0..<width { g[k] += d * f[s * width + k] }
                }
                for k in 0..<width { gWeight[c * width + k] = g[k] }
            case .cosine(let scale, _):
                let norm = (dot(weight, c * width, weight, c * width) + 1e-8).squareRoot()
                for s in 0..<rows {
                    let d = dz[s * classes + c] * scale
                    gs += d * dot(f, s * width, weight, c * width) / norm
                    for k in 0..<width { g[k] += d * second[c] * f[s * width + k] }
                }
                // Through the normalisation: (G - v̂ (v̂·G)) / ‖v‖.
                var along = 0.0
                for k in 0..<width { along += weight[c * width + k] / norm * g[k] }
                for k in 0..<width { gWeight[c * width + k] = (g[k] - weight[c * width + k] / norm * along) / norm }
            }
            gSecond[c] = gs
        }
    }

    /// Writes the fitted parameters back into the module, as Float.
    func store(in head: Module) {
        head.parameters["weight"] = Tensor(shape: [classes, width], scalars: weight.map(Float.init))
        switch kind {
        case .linear: head.parameters["bias"] = Tensor(shape: [classes], scalars: second.map(Float.init))
        case .cosine(_, let gains): if gains { head.parameters["gain"] = Tensor(shape: [classes], scalars: second.map(Float.init)) }
        }
    }
}

/// `SGD`'s update (PyTorch's formulation, no Nesterov) on a Double parameter.
enum SupportHeadSGD {
    static func step(_ p: inout [Double], _ g: [Double], _ v: inout [Double], lr: Double, momentum: Double, weightDecay: Double) {
        for i in p.indices {
            v[i] = momentum * v[i] + g[i] + weightDecay * p[i]
            p[i] -= lr * v[i]
        }
    }
}

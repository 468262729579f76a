import Foundation
import Testing
@testable import TensorCore

/// Checks an op's forward value against its Double reference, then its gradient (from the
/// engine's backward pass, in Float32) against central finite differences of the Double
/// reference, for every element of every input in `wrt`.
func checkGradients(_ inputs: [Ref], wrt: [Int]? = nil, tolerance: Double = 2e-3,
                    engine: ([Tensor]) -> Tensor, reference: ([Ref]) -> Ref,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    var rng = RNG(seed: 99)
    let wrt = wrt ?? Array(inputs.indices)
    let tensors = inputs.enumerated().map { wrt.contains($0.offset) ? $0.element.tensor.requiringGrad() : $0.element.tensor }
    let y = engine(tensors)
    let expected = reference(inputs)
    #expect(y.shape == expected.shape, "forward shape", sourceLocation: sourceLocation)
    guard y.shape == expected.shape else { return }
    let scale = max(1, expected.data.map(Swift.abs).max() ?? 1)
    let forwardError = zip(y.scalars, expected.data).map { Swift.abs(Double($0) - $1) }.max() ?? 0
    #expect(forwardError <= 1e-4 * scale, "forward differs from the reference by \(forwardError)", sourceLocation: sourceLocation)

    let w = randomRef(expected.shape, &rng)
    let loss = (y * w.tensor).sum()
    let grads = gradients(of: loss, wrt: wrt.map { tensors[$0] })
    func f(_ xs: [Ref]) -> Double { zip(reference(xs).data, w.data).map(*).reduce(0, +) }
    for (k, i) in wrt.enumerated() {
        #expect(grads[k].shape == inputs[i].shape, "gradient shape of input \(i)", sourceLocation: sourceLocation)
        let numeric = numericGradient(inputs, i, f)
        let gscale = max(1, numeric.map(Swift.abs).max() ?? 1)
        let err = zip(grads[k].scalars, numeric).map { Swift.abs(Double($0) - $1) }.max() ?? 0
        #expect(err <= tolerance * gscale, "gradient of input \(i) differs from finite differences by \(err) (scale \(gscale))",
                sourceLocation: sourceLocation)
    }
}

/// Central differences of a Double function with respect to every element of input `i`.
func numericGradient(_ inputs: [Ref], _ i: Int, _ f: ([Ref]) -> Double, h: Double = 1e-6) -> [Double] {
    (0..<inputs[i].count).map { j in
        var plus = inputs, minus = inputs
        plus[i].data[j] += h
        minus[i].data[j] -= h
        return (f(plus) - f(minus)) / (2 * h)
    }
}

/// Checks a Hessian-vector product computed by differentiating the engine's recorded backward
/// pass (`createGraph`) against mixed second differences of the Double reference.
func checkHessianVector(_ inputs: [Ref], tolerance: Double = 5e-3,
                        engine: ([Tensor]) -> Tensor, reference: ([Ref]) -> Double,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    var rng = RNG(seed: 7)
    let tensors = inputs.map { $0.tensor.requiringGrad() }
    let vs = inputs.map { randomRef($0.shape, &rng) }
    let loss = engine(tensors)
    let g = gradients(of: loss, wrt: tensors, createGraph: true)
    #expect(g.allSatisfy { $0.requiresGrad }, "createGraph should give differentiable gradients", sourceLocation: sourceLocation)
    let gv = zip(g, vs).map { ($0 * $1.tensor).sum() }.reduce(Tensor(0)) { $0 + $1 }
    let hv = gradients(of: gv, wrt: tensors)

    let h = 1e-4
    func shifted(_ i: Int, _ j: Int, _ se: Double, _ sv: Double) -> [Ref] {
        var xs = inputs
        for k in xs.indices { for e in 0..<xs[k].count { xs[k].data[e] += sv * h * vs[k].data[e] } }
        xs[i].data[j] += se * h
        return xs
    }
    for i in inputs.indices {
        let numeric = (0..<inputs[i].count).map { j in
            (reference(shifted(i, j, 1, 1)) - reference(shifted(i, j, 1, -1))
             - reference(shifted(i, j, -1, 1)) + reference(shifted(i, j, -1, -1))) / (4 * h * h)
        }
        let scale = max(1, numeric.map(Swift.abs).max() ?? 1)
        let err = zip(hv[i].scalars, numeric).map { Swift.abs(Double($0) - $1) }.max() ?? 0
        #expect(err <= tolerance * scale, "Hessian-vector product of input \(i) differs by \(err) (scale \(scale))",
                sourceLocation: sourceLocation)
    }
}

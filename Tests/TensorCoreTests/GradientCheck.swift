import Foundation
import Testing
@testable import TensorCore

/// The largest error of `actual` (Float32, from the engine) against `expected` (Double), each
/// element judged relative to its own size: |a − e| / (|e| + floor), the floor a small fraction
/// (`floorFraction`) of the largest |e| so that elements near zero, whose Float32 rounding comes
/// from larger terms, are judged against the scale of those terms. There is no floor at 1: a
/// gradient of size 0.01 is held to the same relative standard as one of size 100.
func relativeError(_ actual: [Float], _ expected: [Double], floorFraction: Double = 1e-2) -> Double {
    let largest = expected.map(Swift.abs).max() ?? 0
    let floor = max(largest * floorFraction, 1e-12)
    return zip(actual, expected).map { Swift.abs(Double($0) - $1) / (Swift.abs($1) + floor) }.max() ?? 0
}

/// Checks an op's forward value against its Double reference, then its gradient (from the
/// engine's backward pass, in Float32) against central finite differences of the Double
/// reference, for every element of every input in `wrt`, by `relativeError` at `tolerance`
/// (1e-4: Float32 arithmetic on these small shapes earns 1e-5, an order of magnitude inside it).
func checkGradients(_ inputs: [Ref], wrt: [Int]? = nil, tolerance: Double = 1e-4,
                    engine: ([Tensor]) -> Tensor, reference: ([Ref]) -> Ref,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    var rng = RNG(seed: 99)
    let wrt = wrt ?? Array(inputs.indices)
    let tensors = inputs.enumerated().map { wrt.contains($0.offset) ? $0.element.tensor.requiringGrad() : $0.element.tensor }
    let y = engine(tensors)
    let expected = reference(inputs)
    #expect(y.shape == expected.shape, "forward shape", sourceLocation: sourceLocation)
    guard y.shape == expected.shape else { return }
    let forwardError = relativeError(y.scalars, expected.data)
    #expect(forwardError <= 1e-4, "forward differs from the reference by \(forwardError) (relative)", sourceLocation: sourceLocation)

    let w = randomRef(expected.shape, &rng)
    let loss = (y * w.tensor).sum()
    let grads = gradients(of: loss, wrt: wrt.map { tensors[$0] })
    func f(_ xs: [Ref]) -> Double { zip(reference(xs).data, w.data).map(*).reduce(0, +) }
    for (k, i) in wrt.enumerated() {
        #expect(grads[k].shape == inputs[i].shape, "gradient shape of input \(i)", sourceLocation: sourceLocation)
        let numeric = numericGradient(inputs, i, f)
        let err = relativeError(grads[k].scalars, numeric)
        #expect(err <= tolerance, "gradient of input \(i) differs from finite differences by \(err) (relative)", sourceLocation: sourceLocation)
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
func checkHessianVector(_ inputs: [Ref], tolerance: Double = 1e-4,
                        engine: ([Tensor]) -> Tensor, reference: ([Ref]) -> Double,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    var rng = RNG(seed: 7)
    let tensors = inputs.map { $0.tensor.requiringGrad() }
    let vs = inputs.map { randomRef($0.shape, &rng) }
    let loss = engine(tensors)
    let g = gradients(of: loss, wrt: tensors, createGraph: true)
    #expect(g.allSatisfy { $0.requiresGrad }, "createGraph should give differentiable gradients", sourceLocation: sourceLocation)
    // The recorded gradients' values, not only their differentiability.
    for i in inputs.indices {
        let err = relativeError(g[i].scalars, numericGradient(inputs, i, reference))
        #expect(err <= tolerance, "recorded gradient of input \(i) differs from finite differences by \(err) (relative)", sourceLocation: sourceLocation)
    }
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
        let err = relativeError(hv[i].scalars, numeric)
        #expect(err <= tolerance, "Hessian-vector product of input \(i) differs by \(err) (relative)", sourceLocation: sourceLocation)
    }
}

import Foundation
import Testing
@testable import TensorCore

/// The traps of a tape: each test names the one it guards.
@Suite struct AutodiffTests {
    @Test func reusedTensorAccumulates() {
        let x = Tensor(shape: [3], scalars: [1, 2, 3]).requiringGrad()
        let y = (x * x + x * 3).sum()      // d/dx = 2x + 3
        #expect(gradients(of: y, wrt: [x])[0].scalars == [5, 7, 9])
    }

    @Test func unusedInputGetsZeroGradient() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGrad()
        let unused = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]).requiringGrad()
        let g = gradients(of: (x * 2).sum(), wrt: [x, unused])
        #expect(g[0].scalars == [2, 2])
        #expect(g[1].shape == [2, 2] && g[1].scalars == [0, 0, 0, 0])
    }

    @Test func detachStopsGradient() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGrad()
        let y = (x * x.detached).sum()     // d/dx = x only through the first factor
        #expect(gradients(of: y, wrt: [x])[0].scalars == [1, 2])
    }

    @Test func noGradRecordsNothing() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGrad()
        let y = noGrad { (x * x).sum() }
        #expect(!y.requiresGrad)
        #expect(gradients(of: y, wrt: [x])[0].scalars == [0, 0])
    }

    @Test func gradientOfGradient() {
        // f = x^3: f' = 3x^2, f'' = 6x.
        let x = Tensor(shape: [2], scalars: [1, -2]).requiringGrad()
        let g = gradients(of: (x * x * x).sum(), wrt: [x], createGraph: true)[0]
        #expect(g.scalars == [3, 12])
        let h = gradients(of: g.sum(), wrt: [x])[0]
        #expect(h.scalars == [6, -12])
    }

    @Test func firstOrderBackwardRecordsNoGraph() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGrad()
        let g = gradients(of: (x * x).sum(), wrt: [x])[0]
        #expect(!g.requiresGrad)
    }

    @Test func intermediateTargetGetsItsGradient() {
        let x = Tensor(shape: [2], scalars: [1, 2]).requiringGrad()
        let h = x * 2
        let g = gradients(of: (h * h).sum(), wrt: [h, x])
        #expect(g[0].scalars == [4, 8])
        #expect(g[1].scalars == [8, 16])
    }

    @Test func deepGraphDoesNotOverflowTheStack() {
        // 20k chained ops: a recursive sort would overflow the call stack.
        let x = Tensor(shape: [1], scalars: [1]).requiringGrad()
        var y = x
        for _ in 0..<20_000 { y = y * 1.0001 }
        let g = gradients(of: y.sum(), wrt: [x])[0]
        #expect(Swift.abs(g.item - Float(Foundation.pow(1.0001, 20_000.0))) < 1e-2)
    }

    @Test func graphIsFreedAfterUse() {
        weak var node: GradNode?
        do {
            let x = Tensor(shape: [4], scalars: [1, 2, 3, 4]).requiringGrad()
            let y = (x.exp() * x).sum()
            node = y.node
            #expect(node != nil)
            _ = gradients(of: y, wrt: [x], createGraph: true)
        }
        #expect(node == nil, "the graph should be freed once its tensors are gone (no retain cycle)")
    }

    @Test func valueSemanticsCopyOnWrite() {
        let a = Tensor(shape: [2], scalars: [1, 2])
        var b = a
        b[flat: 0] = 9
        #expect(a.scalars == [1, 2] && b.scalars == [9, 2])
    }
}

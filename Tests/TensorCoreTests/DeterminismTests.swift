import Foundation
import Testing
@testable import TensorCore

/// The same inputs give the same bits, call after call (buffers recycled from the pool hold
/// other data each time, and chunks are taken by whichever thread is free).
@Suite struct DeterminismTests {
    @Test func convolutionsAreBitForBitRepeatable() {
        var rng = RNG(seed: 5)
        for g in [ConvGeometry(input: [64, 1, 28, 28], weight: [16, 1, 3, 3], padding: (1, 1)),
                  ConvGeometry(input: [64, 64, 14, 14], weight: [64, 64, 3, 3], padding: (1, 1)),
                  ConvGeometry(input: [128, 64, 7, 7], weight: [64, 64, 3, 3], padding: (1, 1))] {
            let x = Tensor.randn(g.inputShape, rng: &rng), w = Tensor.randn(g.weightShape, rng: &rng), gy = Tensor.randn(g.outputShape, rng: &rng)
            var outputs: [[Float]] = []
            for _ in 0..<4 {
                let y = conv2d(x, w, g)
                let gx = conv2dBackwardData(gy, w, g), gw = conv2dBackwardWeight(x, gy, g)
                outputs.append(y.scalars + gx.scalars + gw.scalars)
                // Dirty the pool between calls.
                for size in [g.patch * 1024, g.outChannels * 1024, g.batch * g.channels * g.height * g.width] {
                    let junk = TensorStorage(uninitializedCount: size)
                    junk.pointer.initialize(repeating: .nan, count: size)
                }
            }
            // Real numbers (NaN from the dirtied pool would compare equal bit for bit too).
            #expect(outputs[0].allSatisfy(\.isFinite) && outputs[0].contains { $0 != 0 }, "\(g)")
            for o in outputs.dropFirst() { #expect(o.elementsEqual(outputs[0]) { $0.bitPattern == $1.bitPattern }, "\(g)") }
        }
    }
}

import Testing
import TensorCore
@testable import DataCore

@Suite struct AugmentTests {
    func dataset(flip: Bool) throws -> Dataset {
        var rng = RNG(seed: 3)
        let images = Tensor.uniform([6, 1, 8, 8], -1, 1, rng: &rng)
        return try Dataset(name: "toy", trainImages: images, trainLabels: [0, 1, 0, 1, 0, 1], testImages: images,
                           testLabels: [0, 1, 0, 1, 0, 1], classNames: ["a", "b"], contentHash: "h", allowsHorizontalFlip: flip,
                           channelMean: [0.5], channelStd: [0.5])
    }

    @Test func deterministicUnderTheSeedAndDifferentAcrossSeeds() throws {
        let d = try dataset(flip: true)
        for kind in [Augmenter.Kind.weak, .strong] {
            let a = Augmenter(kind: kind, dataset: d)
            var r1 = RNG(seed: 1), r2 = RNG(seed: 1), r3 = RNG(seed: 2)
            let x = a.apply(d.trainImages, rng: &r1), y = a.apply(d.trainImages, rng: &r2), z = a.apply(d.trainImages, rng: &r3)
            #expect(x.scalars == y.scalars)
            #expect(x.scalars != z.scalars)
            #expect(x.shape == d.trainImages.shape)
            // Back in standardised units: [0, 1] pixels map to [-1, 1].
            #expect(x.scalars.allSatisfy { $0 >= -1.0001 && $0 <= 1.0001 })
        }
    }

    @Test func weakViewIsAShiftedOrFlippedCopy() throws {
        // With no shift and no flip allowed, the weak view is the image itself.
        let d = try dataset(flip: false)
        var a = Augmenter(kind: .weak, dataset: d)
        a.maxShift = 0
        var rng = RNG(seed: 5)
        let x = a.apply(d.trainImages, rng: &rng)
        for (u, v) in zip(x.scalars, d.trainImages.scalars) { #expect(abs(u - v) < 1e-5) }
    }

    @Test func everyOperationKeepsPixelsInRange() {
        var rng = RNG(seed: 9)
        for op in Augmenter.Operation.allCases {
            var x = (0..<64).map { _ in rng.uniform() }, scratch = x
            Augmenter.apply(op, magnitude: 1, &x, &scratch, channels: 1, height: 8, width: 8, rng: &rng)
            #expect(x.count == 64)
            #expect(x.allSatisfy { $0.isFinite && $0 >= -0.9 && $0 <= 1.9 }, "\(op)")
        }
        // Solarize at full magnitude inverts everything.
        var x: [Float] = [0.2, 0.9], s = x
        Augmenter.apply(.solarize, magnitude: 1, &x, &s, channels: 1, height: 1, width: 2, rng: &rng)
        #expect(abs(x[0] - 0.8) < 1e-6 && abs(x[1] - 0.1) < 1e-6)
    }
}

import Foundation

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

    /// Each image is made from its own seed, so how the batch is cut across the engine's threads
    /// changes nothing: the same views, bit for bit, on 1, 2 and 3 threads (the batch of six is then
    /// cut into four, six and six chunks).
    @Test func viewsDoNotDependOnTheThreadCount() throws {
        let d = try dataset(flip: true)
        let saved = Parallelism.threads
        defer { Parallelism.threads = saved }
        for kind in [Augmenter.Kind.weak, .strong] {
            let a = Augmenter(kind: kind, dataset: d)
            let views: [[Float]] = [1, 2, 3].map { threads in
                Parallelism.threads = threads
                var rng = RNG(seed: 4)
                return a.apply(d.trainImages, rng: &rng).scalars
            }
            #expect(views[1] == views[0] && views[2] == views[0], "\(kind)")
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

    /// Every weak view is the image shifted by (dx, dy) within ±maxShift with replicated edges,
    /// flipped only where the dataset allows it; across a batch the shifts vary and about half the
    /// images are flipped.
    @Test func weakViewsAreShiftsAndFlipsWithinBounds() throws {
        for allowsFlip in [true, false] {
            let d = try dataset(flip: allowsFlip)
            var rng = RNG(seed: 11)
            let images = Tensor.uniform([64, 1, 8, 8], -1, 1, rng: &rng)
            var a = Augmenter(kind: .weak, dataset: d)
            a.maxShift = 2
            let out = a.apply(images, rng: &rng)
            var flips = 0, shifts = Set<[Int]>()
            for i in 0..<64 {
                let src = Array(images.scalars[(i * 64)..<((i + 1) * 64)]), got = Array(out.scalars[(i * 64)..<((i + 1) * 64)])
                var found: (Bool, Int, Int)?
                for flip in [false, true] { for dy in -2...2 { for dx in -2...2 where found == nil {
                    let expected = (0..<64).map { p -> Float in
                        let (y, x) = (p / 8, p % 8)
                        var sx = min(max(x - dx, 0), 7)
                        if flip { sx = 7 - sx }
                        return src[min(max(y - dy, 0), 7) * 8 + sx]
                    }
                    if zip(expected, got).allSatisfy({ abs($0 - $1) < 1e-5 }) { found = (flip, dx, dy) }
                } } }
                let (flip, dx, dy) = try #require(found, "image \(i) is no shift or flip of its source")
                if flip { flips += 1 }
                shifts.insert([dx, dy])
            }
            #expect(shifts.count > 10, "shifts used: \(shifts.count)")
            if allowsFlip { #expect(flips > 16 && flips < 48, "\(flips) of 64 flipped") } else { #expect(flips == 0) }
        }
    }

    /// Each strong operation on pixels in [0, 1]: the resampling, histogram and threshold
    /// operations stay in [0, 1]; brightness and contrast do what they say (they may leave the
    /// range, which the strong view clamps); a whole strong view is back in range.
    @Test func strongOperationsDoWhatTheySayAndViewsStayInRange() throws {
        var rng = RNG(seed: 13)
        let image = (0..<64).map { _ in rng.uniform(0.1, 0.9) }
        let keepsRange: [Augmenter.Operation] = [.identity, .autocontrast, .equalize, .posterize, .solarize, .rotate, .shearX, .shearY,
                                                 .translateX, .translateY]
        for op in keepsRange {
            for m: Float in [0.05, 0.5, 1] {
                var x = image, scratch = image
                Augmenter.apply(op, magnitude: m, &x, &scratch, channels: 1, height: 8, width: 8, rng: &rng)
                #expect(x.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(op) at \(m): \(x.min()!)...\(x.max()!)")
            }
        }
        let mean = image.reduce(0, +) / 64
        for op in [Augmenter.Operation.brightness, .contrast] {
            var x = image, scratch = image
            var probe = RNG(seed: 21), copy = probe
            Augmenter.apply(op, magnitude: 0.5, &x, &scratch, channels: 1, height: 8, width: 8, rng: &probe)
            let f: Float = 1 + (copy.uniform() < 0.5 ? -1 : 1) * 0.45
            let expected = op == .brightness ? image.map { $0 * f } : image.map { mean + f * ($0 - mean) }
            #expect(zip(x, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "\(op)")
        }
        var autocontrast = image, scratch = image
        Augmenter.apply(.autocontrast, magnitude: 1, &autocontrast, &scratch, channels: 1, height: 8, width: 8, rng: &rng)
        #expect(autocontrast.min() == 0 && autocontrast.max() == 1)
        // A whole strong view, back in standardised units: [0, 1] maps to [-1, 1] here.
        let d = try dataset(flip: true)
        let strong = Augmenter(kind: .strong, dataset: d).apply(Tensor.uniform([32, 1, 8, 8], -1, 1, rng: &rng), rng: &rng)
        #expect(strong.scalars.allSatisfy { $0 >= -1.0001 && $0 <= 1.0001 })
    }
}

import Foundation

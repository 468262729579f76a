import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

@Suite struct ConsistencyComponentTests {
    @Test func sharpeningRaisesToOneOverTAndNormalises() {
        let p = Tensor(shape: [1, 3], scalars: [0.5, 0.3, 0.2])
        let s = sharpen(p, temperature: 0.5).scalars
        let z: Float = 0.25 + 0.09 + 0.04
        #expect(zip(s, [0.25 / z, 0.09 / z, 0.04 / z]).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(zip(sharpen(p, temperature: 1).scalars, p.scalars).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func mixUpWeightsFavourTheFirstInput() {
        var rng = RNG(seed: 7)
        let lambdas = (0..<2000).map { _ in MixUp.lambda(alpha: 0.75, rng: &rng) }
        #expect(lambdas.allSatisfy { $0 >= 0.5 && $0 <= 1 })
        // E[max(λ, 1-λ)] for Beta(0.75, 0.75) is about 0.79 (numerical integration).
        let mean = lambdas.reduce(0, +) / Float(lambdas.count)
        #expect(abs(mean - 0.79) < 0.02)
        let mixed = MixUp.mix(Tensor(shape: [2], scalars: [1, 0]), Tensor(shape: [2], scalars: [0, 1]), lambda: 0.7)
        #expect(zip(mixed.scalars, [0.7, 0.3]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func betaSamplesHaveTheRightMean() {
        var rng = RNG(seed: 9)
        let xs = (0..<4000).map { _ in Beta.sample(2, 5, rng: &rng) }
        let mean: Float = xs.reduce(0, +) / 4000
        #expect(abs(mean - 2.0 / 7) < 0.01)
    }

    @Test func rampsStartLowAndReachOne() {
        #expect(abs(RampUp.sigmoid(step: 0, length: 100) - exp(-5)) < 1e-6)
        #expect(RampUp.sigmoid(step: 100, length: 100) == 1 && RampUp.sigmoid(step: 500, length: 100) == 1)
        #expect(RampUp.linear(step: 25, length: 100) == 0.25 && RampUp.linear(step: 3, length: 0) == 1)
    }

    /// With a uniform target and predictions skewed toward class 0, alignment divides the skew out.
    @Test func distributionAlignmentOnAHandBuiltBatch() {
        var da = DistributionAlignment(target: [1, 1])
        let p = Tensor(shape: [2, 2], scalars: [0.8, 0.2,  0.6, 0.4])   // batch mean (0.7, 0.3)
        let q = da.align(p).scalars
        // q ∝ p · (0.5/0.7, 0.5/0.3).
        func row(_ a: Float, _ b: Float) -> [Float] { let (x, y) = (a / 0.7, b / 0.3); return [x / (x + y), y / (x + y)] }
        #expect(zip(q, row(0.8, 0.2) + row(0.6, 0.4)).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(zip(da.running, [0.7, 0.3]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func featureQueueIsFirstInFirstOut() {
        var q = FeatureQueue(capacity: 3, dimension: 2)
        q.enqueue(Tensor(shape: [2, 2], scalars: [1, 1, 2, 2]))
        #expect(q.count == 2 && q.contents.scalars == [1, 1, 2, 2])
        q.enqueue(Tensor(shape: [2, 2], scalars: [3, 3, 4, 4]))
        #expect(q.count == 3 && q.contents.scalars == [4, 4, 2, 2, 3, 3])
    }
}

/// The baselines' adapter: the written-out fit of a linear or cosine head equals the same SGD
/// through autodiff (the reference), and it is what `fit` uses for them.
@Suite struct SupportHeadTests {
    func heads(_ kind: Int, seed: UInt64) -> Module {
        var rng = RNG(seed: seed)
        switch kind {
        case 0: return Linear(7, 3, rng: &rng)
        case 1: return CosineClassifier(7, 3, scale: 2, classGains: true, rng: &rng)
        default: return CosineClassifier(7, 3, scale: 10, rng: &rng)
        }
    }

    @Test func theWrittenOutFitEqualsAutodiff() {
        var rng = RNG(seed: 3)
        let features = Tensor.randn([10, 7], rng: &rng) + 0.5
        let labels: [Int32] = [0, 1, 2, 0, 1, 2, 0, 1, 2, 2]
        var settings = SupportHead()
        settings.steps = 60
        for kind in 0..<3 {
            let (direct, reference) = (heads(kind, seed: 9), heads(kind, seed: 9))
            #expect(DirectHeadFit(direct) != nil, "kind \(kind) takes the written-out fit")
            _ = settings.fit(direct, features: features, labels: labels)
            _ = settings.fitByAutodiff(reference, features: features, labels: labels)
            for (name, want) in reference.parameters {
                let got = direct.parameters[name]!
                let moved = zip(want.scalars, heads(kind, seed: 9).parameters[name]!.scalars).map { abs($0 - $1) }.max()!
                let error = zip(got.scalars, want.scalars).map { abs($0 - $1) }.max()!
                #expect(moved > 1e-2, "kind \(kind) \(name): the fit must move the parameter for the check to mean anything")
                #expect(error < 1e-4 * max(1, want.scalars.map(abs).max()!), "kind \(kind) \(name): off by \(error)")
            }
        }
        // A head the written-out fit does not know goes through autodiff.
        var r = RNG(seed: 1)
        #expect(DirectHeadFit(Linear(7, 3, bias: false, rng: &r)) == nil)
    }
}

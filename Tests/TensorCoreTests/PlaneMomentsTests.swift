import CKernels
import Foundation
import Testing
@testable import TensorCore

/// A convolution's output planes' sums and sums of squares (`PlaneMoments`), made as it writes
/// them, give a following batch norm the statistics its own pass over the activation would: the
/// moments against their definition, four planes at a time against one at a time, and the norms'
/// outputs and statistics bit for bit with and without them on each of the convolution's paths.
@Suite struct PlaneMomentsTests {
    var rng = RNG(seed: 57)

    /// How many elements differ in their bits (the arrays have the same length).
    static func differing(_ a: [Float], _ b: [Float]) -> Int { zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count }

    @Test mutating func momentsMatchTheirDefinitionFourPlanesAtATimeAsOneAtATime() {
        // Plane lengths with and without a tail past the last whole vector, shorter than a vector;
        // plane counts with and without a remainder past the groups of four.
        for hw in [63, 8, 5, 196] {
            for planes in [1, 3, 4, 9] {
                let y = (0..<(planes * hw)).map { _ in Float(rng.normal()) * 3 + 1 }
                var together = [Float](repeating: .nan, count: 2 * planes), apart = together
                bb_plane_moments(y, 0, planes, hw, &together)
                for p in 0..<planes {
                    apart.withUnsafeMutableBufferPointer { bb_plane_moments(y, p, p + 1, hw, $0.baseAddress!) }
                }
                #expect(Self.differing(together, apart) == 0, "hw \(hw), \(planes) planes")
                for p in 0..<planes {
                    let plane = y[(p * hw)..<((p + 1) * hw)].map(Double.init)
                    let (sum, squares) = (plane.reduce(0, +), plane.reduce(0) { $0 + $1 * $1 })
                    #expect(Swift.abs(Double(together[2 * p]) - sum) <= 1e-5 * (1 + Swift.abs(sum)), "hw \(hw) plane \(p)")
                    #expect(Swift.abs(Double(together[2 * p + 1]) - squares) <= 1e-5 * squares, "hw \(hw) plane \(p)")
                }
            }
        }
    }

    /// One geometry per way the forward runs: direct (a 1-channel first layer), whole-batch im2col
    /// + GEMM, and chunk by chunk (per-chunk GEMMs, the chunk's output written in place when a
    /// chunk is one image).
    static let geometries: [(ConvGeometry, String)] = [
        (ConvGeometry(input: [5, 1, 11, 9], weight: [6, 1, 3, 3], padding: (1, 1)), "direct"),
        (ConvGeometry(input: [3, 8, 7, 9], weight: [5, 8, 3, 3], padding: (1, 1)), "whole batch"),
        (ConvGeometry(input: [40, 16, 20, 20], weight: [6, 16, 3, 3], padding: (1, 1)), "chunked"),
        (ConvGeometry(input: [2, 8, 33, 33], weight: [3, 8, 3, 3], padding: (1, 1)), "an image a chunk"),
    ]

    @Test func theGeometriesTakeEachPath() {
        let paths = Self.geometries.map { g, _ in
            Kernels.direct(g) ? "direct" : !Kernels.chunkedForward(g) ? "whole batch" : ConvChunks(g).perChunk > 1 ? "chunked" : "an image a chunk"
        }
        #expect(paths == Self.geometries.map(\.1))
    }

    @Test mutating func normsGivenTheMomentsGiveTheSameBits() {
        for (g, path) in Self.geometries {
            let x = Tensor.randn(g.inputShape, rng: &rng), w = Tensor.randn(g.weightShape, rng: &rng)
            let bias = Tensor.randn([g.outChannels], rng: &rng)
            let gamma = Tensor.randn([g.outChannels], rng: &rng), beta = Tensor.randn([g.outChannels], rng: &rng)
            let moments = PlaneMoments()
            let y = conv2d(x, w, g, bias: bias, moments: moments)
            #expect(moments.of(y) != nil, "\(path): the moments describe the convolution's output")
            #expect(y.scalars == conv2d(x, w, g, bias: bias).scalars, "\(path): the output does not change")
            let given = batchNormReluMaxPool(y, gamma: gamma, beta: beta, moments: moments)
            let own = batchNormReluMaxPool(y, gamma: gamma, beta: beta)
            for (a, b, what) in [(given.output, own.output, "pooled output"), (given.mean, own.mean, "mean"), (given.variance, own.variance, "variance")] {
                #expect(Self.differing(a.scalars, b.scalars) == 0, "\(path): \(what)")
            }
            let plainGiven = batchNorm(y, gamma: gamma, beta: beta, relu: true, moments: moments)
            let plainOwn = batchNorm(y, gamma: gamma, beta: beta, relu: true)
            #expect(Self.differing(plainGiven.output.scalars, plainOwn.output.scalars) == 0, "\(path): batchNorm")
        }
    }

    /// Moments made for one tensor are never taken for another of the same shape.
    @Test mutating func momentsOfAnotherTensorAreNotUsed() {
        let g = Self.geometries[0].0
        let x = Tensor.randn(g.inputShape, rng: &rng), w = Tensor.randn(g.weightShape, rng: &rng)
        let moments = PlaneMoments()
        let y = conv2d(x, w, g, moments: moments)
        let other = y * 2
        #expect(moments.of(y) != nil && moments.of(other) == nil)
        let gamma = Tensor(repeating: 1, shape: [g.outChannels]), beta = Tensor(zeros: [g.outChannels])
        #expect(batchNorm(other, gamma: gamma, beta: beta, moments: moments).mean.scalars
                == batchNorm(other, gamma: gamma, beta: beta).mean.scalars)
    }
}

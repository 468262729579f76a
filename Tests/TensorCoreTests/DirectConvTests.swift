import Foundation
import Testing
@testable import TensorCore

/// The direct convolution of a small patch (a first layer): forward and weight/bias gradients
/// against the Double reference and against the im2col + GEMM path, on odd shapes (a ragged last
/// vector of a row, odd and even row counts, since the forward sums two rows at a time, channel
/// counts that are not a multiple of eight, several chunks of images with a ragged last one,
/// rectangular and wide kernels, a 1-D signal), and by finite differences.
@Suite struct DirectConvTests {
    var rng = RNG(seed: 41)

    static let geometries = [
        ConvGeometry(input: [30, 1, 27, 25], weight: [5, 1, 3, 3], padding: (1, 1)),    // 3 chunks of 12 images, the last ragged
        ConvGeometry(input: [2, 3, 9, 13], weight: [11, 3, 3, 3], padding: (1, 1)),     // patch 27, 11 channels
        ConvGeometry(input: [3, 2, 6, 8], weight: [9, 2, 2, 3], padding: (0, 1)),       // rectangular, out_w exactly 8
        ConvGeometry(input: [3, 1, 1, 19], weight: [7, 1, 1, 3], padding: (0, 1)),      // a 1-D signal
        ConvGeometry(input: [2, 1, 5, 9], weight: [3, 1, 5, 5], padding: (2, 2)),       // 25 taps
        ConvGeometry(input: [2, 1, 7, 12], weight: [4, 1, 3, 3]),                        // no padding: out 5 x 10
        ConvGeometry(input: [3, 2, 8, 10], weight: [13, 2, 3, 3], padding: (1, 1)),     // an even row count: row pairs only
    ]

    static func maxRelativeError(_ a: [Float], _ b: [Float]) -> Double {
        let scale = max(1e-6, b.map { Double(Swift.abs($0)) }.max() ?? 0)
        return zip(a, b).map { Double(Swift.abs($0 - $1)) }.max()! / scale
    }

    @Test func theFirstLayersTakeTheDirectPath() {
        #expect(Self.geometries.allSatisfy(Kernels.direct))
        #expect(Kernels.direct(ConvGeometry(input: [128, 1, 28, 28], weight: [64, 1, 3, 3], padding: (1, 1))))
        #expect(!Kernels.direct(ConvGeometry(input: [128, 64, 14, 14], weight: [64, 64, 3, 3], padding: (1, 1))), "a patch of 576 rows")
        #expect(!Kernels.direct(ConvGeometry(input: [2, 1, 9, 9], weight: [4, 1, 3, 3], stride: (2, 2))), "strided")
        #expect(!Kernels.direct(ConvGeometry(input: [2, 1, 6, 6], weight: [4, 1, 3, 3])), "rows narrower than a vector")
    }

    @Test mutating func forwardEqualsTheReference() {
        for g in Self.geometries {
            let x = Tensor.randn(g.inputShape, rng: &rng), w = Tensor.randn(g.weightShape, rng: &rng), b = Tensor.randn([g.outChannels], rng: &rng)
            let ref = Ref.conv2d(Ref(x), Ref(w), stride: (1, 1), padding: (g.padH, g.padW))
            let refBiasReLU = (ref + Ref([1, g.outChannels, 1, 1], b.scalars.map(Double.init))).map { max($0, 0) }
            for (bias, relu, want) in [(nil, false, ref), (b, true, refBiasReLU)] {
                let y = Tensor(uninitialized: g.outputShape)
                Kernels.conv2dDirect(g, x.storage.pointer, w.storage.pointer, bias: bias?.storage.pointer, relu: relu, y.storage.pointer)
                #expect(Self.maxRelativeError(y.scalars, want.data.map(Float.init)) < 1e-5, "\(g) relu \(relu)")
            }
        }
    }

    /// The weight and bias gradients, masked by a fused ReLU or not, equal the GEMM path's
    /// (gy reordered and masked by `gradColumns`, then the weight-gradient GEMM).
    @Test mutating func weightGradientEqualsTheGEMMPath() {
        for g in Self.geometries {
            let x = Tensor.randn(g.inputShape, rng: &rng), gy = Tensor.randn(g.outputShape, rng: &rng)
            let mask = Tensor.randn(g.outputShape, rng: &rng)     // a ReLU output: positive where it passed
            for relu in [false, true] {
                let (gw, gb) = (Tensor(uninitialized: g.weightShape), Tensor(uninitialized: [g.outChannels]))
                Kernels.conv2dDirectWeightGrad(g, x.storage.pointer, gy.storage.pointer, reluOutput: relu ? mask.storage.pointer : nil,
                                               gw.storage.pointer, biasGrad: gb.storage.pointer)
                let (wantW, wantB) = (Tensor(uninitialized: g.weightShape), Tensor(zeros: [g.outChannels]))
                let columns = Kernels.gradColumns(g, gy.storage.pointer, reluOutput: relu ? mask.storage.pointer : nil, biasGrad: wantB.storage.pointer)
                Kernels.conv2dBackwardWeight(g, x.storage.pointer, nil, columns, wantW.storage.pointer, chunked: false)
                #expect(Self.maxRelativeError(gw.scalars, wantW.scalars) < 1e-5, "\(g) relu \(relu)")
                #expect(Self.maxRelativeError(gb.scalars, wantB.scalars) < 1e-5, "\(g) relu \(relu)")
            }
        }
    }

    /// L = <conv(x, w) + b, gy> in Double; dL/dw and dL/db from the direct kernel.
    @Test mutating func weightGradientMatchesFiniteDifferences() {
        let g = ConvGeometry(input: [3, 1, 9, 10], weight: [3, 1, 3, 3], padding: (1, 1))
        let x = Tensor.randn(g.inputShape, rng: &rng), w = Tensor.randn(g.weightShape, rng: &rng), gy = Tensor.randn(g.outputShape, rng: &rng)
        let (gwt, gbt) = (Tensor(uninitialized: g.weightShape), Tensor(uninitialized: [g.outChannels]))
        Kernels.conv2dDirectWeightGrad(g, x.storage.pointer, gy.storage.pointer, reluOutput: nil, gwt.storage.pointer, biasGrad: gbt.storage.pointer)
        let (gw, gb) = (gwt.scalars, gbt.scalars)
        let (rx, rw, rgy) = (Ref(x), Ref(w), Ref(gy))
        func loss(_ w: Ref) -> Double { zip(Ref.conv2d(rx, w, stride: (1, 1), padding: (1, 1)).data, rgy.data).map { $0 * $1 }.reduce(0, +) }
        let h = 1e-3
        for i in 0..<w.count {
            var (plus, minus) = (rw, rw)
            plus.data[i] += h; minus.data[i] -= h
            let fd = (loss(plus) - loss(minus)) / (2 * h)
            #expect(abs(Double(gw[i]) - fd) <= 1e-3 * max(1, abs(fd)), "dw[\(i)]: \(gw[i]) vs \(fd)")
        }
        // The bias's derivative is the sum of gy over its channel.
        let per = g.outH * g.outW
        for o in 0..<g.outChannels {
            let want = (0..<g.batch).map { n in rgy.data[(n * g.outChannels + o) * per ..< (n * g.outChannels + o + 1) * per].reduce(0, +) }.reduce(0, +)
            #expect(abs(Double(gb[o]) - want) <= 1e-4 * max(1, abs(want)), "db[\(o)]: \(gb[o]) vs \(want)")
        }
    }

    /// Through autodiff, first-order and recorded, with the input needing a gradient or not (a
    /// first layer): the weight, bias and input gradients equal the GEMM path's, with and without
    /// the fused ReLU.
    @Test mutating func gradientsThroughAutodiffEqualTheGEMMPath() {
        let g = Self.geometries[1]
        let x = Tensor.randn(g.inputShape, rng: &rng), gy = Tensor.randn(g.outputShape, rng: &rng)
        let w = Tensor.randn(g.weightShape, rng: &rng).requiringGrad(), b = Tensor.randn([g.outChannels], rng: &rng).requiringGrad()
        for relu in [false, true] {
            let y = noGrad { conv2d(x, w, g, bias: b, relu: relu) }
            let (wantW, wantB, wantX) = (Tensor(uninitialized: g.weightShape), Tensor(zeros: [g.outChannels]), Tensor(uninitialized: g.inputShape))
            let columns = Kernels.gradColumns(g, gy.storage.pointer, reluOutput: relu ? y.storage.pointer : nil, biasGrad: wantB.storage.pointer)
            Kernels.conv2dBackwardWeight(g, x.storage.pointer, nil, columns, wantW.storage.pointer, chunked: false)
            Kernels.conv2dBackwardData(g, columns, w.storage.pointer, wantX.storage.pointer, chunked: false)
            for (inputNeedsGradient, createGraph) in [(false, false), (true, false), (false, true), (true, true)] {
                let input = inputNeedsGradient ? x.requiringGrad() : x
                let got = gradients(of: (conv2d(input, w, g, bias: b, relu: relu) * gy).sum(), wrt: inputNeedsGradient ? [w, b, input] : [w, b],
                                    createGraph: createGraph)
                let what = "relu \(relu) input gradient \(inputNeedsGradient) recorded \(createGraph)"
                #expect(Self.maxRelativeError(got[0].scalars, wantW.scalars) < 1e-5, "weight, \(what)")
                #expect(Self.maxRelativeError(got[1].scalars, wantB.scalars) < 1e-5, "bias, \(what)")
                if inputNeedsGradient { #expect(Self.maxRelativeError(got[2].scalars, wantX.scalars) < 1e-5, "input, \(what)") }
            }
        }
    }
}

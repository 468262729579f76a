import CKernels
import Foundation
import Testing
@testable import TensorCore

/// The packed AVX-512 GEMM (`gemm.c`) and the chunk-by-chunk convolution against naive references
/// and against the whole-batch path, on odd shapes that cross every block boundary.
@Suite struct ChunkedKernelTests {
    var rng = RNG(seed: 23)

    /// C = alpha op(A) op(B) + beta C in Double, straight from the definition.
    static func referenceGEMM(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: [Float],
                              _ b: [Float], _ beta: Float, _ c: [Float]) -> [Double] {
        (0..<(m * n)).map { e in
            let (i, j) = (e / n, e % n)
            var s = 0.0
            for t in 0..<k { s += Double(ta ? a[t * m + i] : a[i * k + t]) * Double(tb ? b[j * k + t] : b[t * n + j]) }
            return Double(alpha) * s + (beta == 0 ? 0 : Double(beta) * Double(c[e]))
        }
    }

    @Test(.enabled(if: bb_sgemm_available() != 0, "the packed GEMM needs AVX-512"))
    mutating func packedGEMMMatchesTheDefinition() {
        // Rows past a block of 128 (and a ragged 8-row panel), columns past a block of 1,536 (and a
        // ragged 48-column panel), depth past a block of 128, and the degenerate sizes.
        let shapes = [(1, 1, 1), (9, 49, 3), (130, 50, 20), (9, 1540, 5), (10, 60, 300), (8, 48, 128), (17, 97, 257)]
        for (m, n, k) in shapes {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1.5)] {
                    let a = (0..<(m * k)).map { _ in Float(rng.normal()) }, b = (0..<(k * n)).map { _ in Float(rng.normal()) }
                    // With beta 0, C's old contents (NaN here) must not be read.
                    var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : (0..<(m * n)).map { _ in Float(rng.normal()) }
                    let want = Self.referenceGEMM(ta, tb, m, n, k, alpha, a, b, beta, c)
                    bb_sgemm(ta ? 1 : 0, tb ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, ta ? m : k, b, tb ? k : n, beta, &c, n)
                    let err = zip(c, want).map { Swift.abs(Double($0) - $1) / (1 + Swift.abs($1)) }.max() ?? 0
                    #expect(err < 1e-5, "m \(m) n \(n) k \(k) ta \(ta) tb \(tb) alpha \(alpha) beta \(beta): error \(err)")
                }
            }
        }
    }

    @Test(.enabled(if: bb_sgemm_available() != 0, "the packed GEMM needs AVX-512"))
    mutating func packedGEMMResultDoesNotDependOnHowCIsSplit() {
        // Threads compute blocks of C's columns: a block's values equal the whole product's, bit for bit.
        let (m, n, k) = (20, 300, 150)
        let a = (0..<(m * k)).map { _ in Float(rng.normal()) }, b = (0..<(k * n)).map { _ in Float(rng.normal()) }
        var whole = [Float](repeating: 0, count: m * n), split = whole
        bb_sgemm(0, 0, Int32(m), Int32(n), Int32(k), 1, a, k, b, n, 0, &whole, n)
        b.withUnsafeBufferPointer { bp in
            split.withUnsafeMutableBufferPointer { cp in
                for (lo, hi) in [(0, 97), (97, 250), (250, 300)] {
                    bb_sgemm(0, 0, Int32(m), Int32(hi - lo), Int32(k), 1, a, k, bp.baseAddress! + lo, n, 0, cp.baseAddress! + lo, n)
                }
            }
        }
        #expect(whole == split)
    }

    /// Random input, weight and output gradient for a geometry.
    mutating func operands(_ g: ConvGeometry) -> (x: Tensor, w: Tensor, gy: Tensor) {
        (Tensor.randn(g.inputShape, rng: &rng), Tensor.randn(g.weightShape, rng: &rng), Tensor.randn(g.outputShape, rng: &rng))
    }

    func forward(_ g: ConvGeometry, _ x: Tensor, _ w: Tensor, bias: Tensor? = nil, relu: Bool = false, chunked: Bool) -> [Float] {
        let y = Tensor(uninitialized: g.outputShape)
        _ = Kernels.conv2dForward(g, x.storage.pointer, w.storage.pointer, bias: bias?.storage.pointer, relu: relu, y.storage.pointer,
                                  chunked: chunked)
        return y.scalars
    }

    func backward(_ g: ConvGeometry, _ x: Tensor, _ w: Tensor, _ gy: Tensor, chunked: Bool) -> (gx: [Float], gw: [Float]) {
        let gx = Tensor(uninitialized: g.inputShape), gw = Tensor(uninitialized: g.weightShape)
        let gyColumns = Kernels.gradColumns(g, gy.storage.pointer)
        Kernels.conv2dBackwardData(g, gyColumns, w.storage.pointer, gx.storage.pointer, chunked: chunked)
        Kernels.conv2dBackwardWeight(g, x.storage.pointer, nil, gyColumns, gw.storage.pointer, chunked: chunked)
        return (gx.scalars, gw.scalars)
    }

    static func maxRelativeError(_ a: [Float], _ b: [Float]) -> Double {
        let scale = max(1e-6, b.map { Double(Swift.abs($0)) }.max() ?? 0)
        return zip(a, b).map { Double(Swift.abs($0 - $1)) }.max()! / scale
    }

    @Test mutating func chunkedConvolutionEqualsTheReferenceAndTheWholeBatchPath() {
        // Geometries whose chunks hold one image (many output positions), several, and a ragged
        // last chunk; strides, rectangular kernels and padding; bias and ReLU fused.
        let geometries = [
            ConvGeometry(input: [3, 1, 27, 25], weight: [5, 1, 3, 3], padding: (1, 1)),               // one image a chunk
            ConvGeometry(input: [7, 3, 9, 8], weight: [4, 3, 2, 3], stride: (1, 2), padding: (1, 0)), // 36 positions: 7 images, one chunk
            ConvGeometry(input: [61, 2, 5, 5], weight: [3, 2, 3, 3], padding: (1, 1)),                // 40 a chunk, ragged last
            ConvGeometry(input: [5, 2, 1, 700], weight: [6, 2, 1, 3], stride: (1, 2), padding: (0, 1)), // a 1-D signal
        ]
        for g in geometries {
            let (x, w, gy) = operands(g)
            let b = Tensor.randn([g.outChannels], rng: &rng)
            let ref = Ref.conv2d(Ref(x), Ref(w), stride: (g.strideH, g.strideW), padding: (g.padH, g.padW))
            let refBiasReLU = (ref + Ref([1, g.outChannels, 1, 1], b.scalars.map(Double.init))).map { max($0, 0) }
            #expect(Self.maxRelativeError(forward(g, x, w, chunked: true), ref.data.map(Float.init)) < 1e-5, "\(g)")
            #expect(Self.maxRelativeError(forward(g, x, w, bias: b, relu: true, chunked: true), refBiasReLU.data.map(Float.init)) < 1e-5,
                    "\(g)")
            let (chunked, whole) = (backward(g, x, w, gy, chunked: true), backward(g, x, w, gy, chunked: false))
            #expect(Self.maxRelativeError(chunked.gx, whole.gx) < 1e-5, "\(g)")
            #expect(Self.maxRelativeError(chunked.gw, whole.gw) < 1e-5, "\(g)")
        }
    }

    @Test mutating func sameShapeIm2colShiftsWholePlanes() {
        // Stride-1 "same" convolutions take the whole-plane path: taps that shift by up to the
        // padding in each direction, kernels as wide as the plane allows, 1x1, rectangular, 1-D;
        // a padding as wide as the plane takes the row-by-row path.
        let cases: [(input: [Int], weight: [Int], padding: (Int, Int))] = [
            ([2, 3, 6, 5], [4, 3, 3, 3], (1, 1)), ([1, 2, 3, 3], [2, 2, 5, 5], (2, 2)), ([2, 2, 4, 4], [3, 2, 1, 1], (0, 0)),
            ([2, 1, 5, 7], [2, 1, 3, 1], (1, 0)), ([3, 2, 1, 9], [2, 2, 1, 5], (0, 2)), ([1, 1, 2, 2], [1, 1, 5, 5], (2, 2)),
        ]
        for (input, weight, padding) in cases {
            let x = randomRef(input, &rng), w = randomRef(weight, &rng)
            let y = conv2d(x.tensor, w.tensor, padding: padding)
            let want = Ref.conv2d(x, w, stride: (1, 1), padding: padding)
            #expect(Self.maxRelativeError(y.scalars, want.data.map(Float.init)) < 1e-5, "\(input) \(weight) \(padding)")
        }
    }

    /// The whole-plane im2col and col2im against their definitions, element for element, each run
    /// as two image ranges cut at an odd image (as threads split them): planes shorter than one
    /// vector and with a ragged last vector, rectangular kernels, a 1-D signal, 1x1. col2im adds
    /// each input's taps in the general loop's order, so both must be exact.
    @Test mutating func sameShapeIm2colAndCol2imMatchTheirDefinitions() {
        let cases: [(input: [Int], weight: [Int], padding: (Int, Int))] = [
            ([5, 3, 7, 7], [1, 3, 3, 3], (1, 1)), ([4, 2, 2, 3], [1, 2, 3, 3], (1, 1)), ([3, 2, 5, 6], [1, 2, 3, 5], (1, 2)),
            ([6, 1, 1, 13], [1, 1, 1, 3], (0, 1)), ([3, 2, 4, 4], [1, 2, 1, 1], (0, 0)), ([3, 2, 9, 11], [1, 2, 5, 3], (2, 1)),
        ]
        for (input, weight, padding) in cases {
            let g = ConvGeometry(input: input, weight: weight, padding: padding)
            var cg = Kernels.cGeometry(g)
            let (hw, cut) = (g.height * g.width, Int32(g.batch / 2 + 1))
            let x = (0..<(g.batch * g.channels * hw)).map { _ in rng.uniform(-1, 1) }
            let colsIn = (0..<(g.patch * g.positions)).map { _ in rng.uniform(-1, 1) }
            var cols = [Float](repeating: .nan, count: g.patch * g.positions)
            var gx = [Float](repeating: .nan, count: x.count)
            for (lo, hi) in [(0, cut), (cut, Int32(g.batch))] {
                bb_im2col(&cg, x, &cols, lo, hi)
                bb_col2im(&cg, colsIn, &gx, lo, hi)
            }
            var wantCols = [Float](repeating: 0, count: cols.count), wantGx = [Float](repeating: 0, count: x.count)
            for n in 0..<g.batch {
                for c in 0..<g.channels {
                    for i in 0..<g.kernelH {
                        for j in 0..<g.kernelW {
                            let row = (c * g.kernelH + i) * g.kernelW + j
                            for oh in 0..<g.height {
                                for ow in 0..<g.width {
                                    let (ih, iw) = (oh - g.padH + i, ow - g.padW + j)
                                    guard ih >= 0 && ih < g.height && iw >= 0 && iw < g.width else { continue }
                                    wantCols[row * g.positions + n * hw + oh * g.width + ow] = x[(n * g.channels + c) * hw + ih * g.width + iw]
                                }
                            }
                        }
                    }
                    // Each input element sums its taps in order (kernel row, then column).
                    for ih in 0..<g.height {
                        for iw in 0..<g.width {
                            var sum: Float = 0
                            for i in 0..<g.kernelH {
                                for j in 0..<g.kernelW {
                                    let (oh, ow) = (ih + g.padH - i, iw + g.padW - j)
                                    guard oh >= 0 && oh < g.height && ow >= 0 && ow < g.width else { continue }
                                    sum += colsIn[((c * g.kernelH + i) * g.kernelW + j) * g.positions + n * hw + oh * g.width + ow]
                                }
                            }
                            wantGx[(n * g.channels + c) * hw + ih * g.width + iw] = sum
                        }
                    }
                }
            }
            // Counts, not the arrays: a failure names how many elements differ.
            #expect(zip(cols, wantCols).filter { $0 != $1 }.count == 0, "im2col \(input) \(weight) \(padding)")
            #expect(zip(gx, wantGx).filter { $0 != $1 }.count == 0, "col2im \(input) \(weight) \(padding)")
        }
    }

    /// The fused batch norm + ReLU + max-pool gradient writes each window's maximum from a vector
    /// of eight windows, and a plane's last windows one at a time; the two must give the same bits
    /// (one expression). The same 16 windows (2x2, values, gradients, maxima) are laid out once as
    /// one 2x32 plane (two vectors of eight) and once as four 2x8 planes (four windows each: all
    /// one at a time); every maximum gets the same value in both, the ReLU's rejects included.
    @Test mutating func maxPoolGradientWindowsAtATimeEqualOneAtATime() {
        let windows = 16, channels = 1
        let g = (0..<windows).map { _ in rng.uniform(-1, 1) }
        let corner = (0..<windows).map { _ in rng.int(4) }
        let x4 = (0..<(windows * 4)).map { _ in rng.uniform(-1, 1) }
        let (scale, shift, mean, invstd) = ([Float(0.7)], [Float(-0.1)], [Float(0.05)], [Float(1.3)])
        let (meanG, meanGXhat) = ([Float(0.02)], [Float(-0.03)])
        // Window w's four values x4[4w ..< 4w + 4], row-major within the window; in planes of two
        // rows `width` wide, window w is columns 2(w mod width/2) ..< +2 of plane w / (width/2).
        func layout(width: Int) -> (x: [Float], argmax: [Int32], xmax: [Float], at: [Int]) {
            let perRow = width / 2, hw = 2 * width
            var x = [Float](repeating: 0, count: windows / perRow * hw), argmax = [Int32](), xmax = [Float](), at = [Int]()
            for w in 0..<windows {
                let (plane, column) = (w / perRow, 2 * (w % perRow))
                for e in 0..<4 { x[plane * hw + (e / 2) * width + column + e % 2] = x4[4 * w + e] }
                let m = plane * hw + (corner[w] / 2) * width + column + corner[w] % 2
                argmax.append(Int32(m)); xmax.append(x[m]); at.append(m)
            }
            return (x, argmax, xmax, at)
        }
        func maxima(width: Int) -> [Float] {
            let l = layout(width: width), hw = 2 * width, planes = windows / (width / 2)
            var dx = [Float](repeating: .nan, count: l.x.count)
            bb_bn_relu_maxpool_grad(g, l.argmax, l.xmax, l.x, &dx, scale, shift, mean, invstd, meanG, meanGXhat, Int32(channels),
                                    0, Int32(planes), hw, width / 2)
            return l.at.map { dx[$0] }
        }
        let vectors = maxima(width: 32), single = maxima(width: 8)
        #expect(vectors.map(\.bitPattern) == single.map(\.bitPattern))
        #expect(zip(vectors, layout(width: 32).xmax).contains { $0.1 * 0.7 - 0.1 <= 0 } && !vectors.contains { $0.isNaN })
    }

    /// Finite differences through the chunked path itself: L = <conv(x, w), gy> in Double (the
    /// reference), dL/dx and dL/dw from the chunked kernels, on coordinates across the chunks.
    @Test mutating func chunkedGradientsMatchFiniteDifferences() {
        // 72 output positions an image: chunks of 14 images, the last of 3.
        let g = ConvGeometry(input: [45, 2, 12, 10], weight: [3, 2, 3, 2], stride: (1, 2), padding: (1, 1))
        #expect(ConvChunks(g).count == 4 && ConvChunks(g).images(3).count == 3)
        checkFiniteDifferences(g, inputs: [0, 7, 2_900, 44 * 240 + 11])
    }

    /// The same through a same-shape convolution (whose columns are shifted planes; the chunks'
    /// GEMMs make them from the images while packing, `bb_sgemm_conv`, where the CPU has AVX-512).
    @Test mutating func sameShapeChunkedGradientsMatchFiniteDifferences() {
        // 255 positions an image: chunks of 4 images, the last of 2; planes 17 wide (ragged vectors).
        let g = ConvGeometry(input: [6, 2, 15, 17], weight: [2, 2, 3, 3], padding: (1, 1))
        #expect(ConvChunks(g).count == 2)
        checkFiniteDifferences(g, inputs: [0, 5, 510 + 33, 4 * 510 + 100])
    }

    /// dL/dx at `inputs` (and the last input) and dL/dw everywhere from the chunked kernels, against
    /// central differences of L = <conv(x, w), gy> computed in Double.
    mutating func checkFiniteDifferences(_ g: ConvGeometry, inputs: [Int]) {
        let (x, w, gy) = operands(g)
        let (gx, gw) = backward(g, x, w, gy, chunked: true)
        let (rx, rw, rgy) = (Ref(x), Ref(w), Ref(gy))
        func loss(_ x: Ref, _ w: Ref) -> Double {
            zip(Ref.conv2d(x, w, stride: (g.strideH, g.strideW), padding: (g.padH, g.padW)).data, rgy.data).map { $0 * $1 }.reduce(0, +)
        }
        let h = 1e-3
        for i in inputs + [x.count - 1] {
            var (plus, minus) = (rx, rx)
            plus.data[i] += h; minus.data[i] -= h
            let fd = (loss(plus, rw) - loss(minus, rw)) / (2 * h)
            #expect(abs(Double(gx[i]) - fd) <= 1e-3 * max(1, abs(fd)), "\(g) dx[\(i)]: \(gx[i]) vs \(fd)")
        }
        for i in 0..<w.count {
            var (plus, minus) = (rw, rw)
            plus.data[i] += h; minus.data[i] -= h
            let fd = (loss(rx, plus) - loss(rx, minus)) / (2 * h)
            #expect(abs(Double(gw[i]) - fd) <= 1e-3 * max(1, abs(fd)), "\(g) dw[\(i)]: \(gw[i]) vs \(fd)")
        }
    }

    /// The GEMM that packs a same-shape convolution's im2col columns straight from the images
    /// against bb_im2col then bb_sgemm, bit for bit (the same products in the same order), as the
    /// forward's product (columns as B) and the weight gradient's (their transpose): planes shorter
    /// than a vector and with ragged vectors, rectangular kernels, a 1-D signal, 1x1, a patch deeper
    /// than a k-block (135 > 128 rows), more positions than a column block (1,764 > 1,536), C's old
    /// contents scaled and added. Other geometries, and shapes that are not the geometry's
    /// columns, are refused and C left alone.
    @Test(.enabled(if: bb_sgemm_available() != 0, "the packed GEMM needs AVX-512"))
    mutating func implicitColumnsGEMMEqualsIm2colThenGEMM() {
        let cases: [(input: [Int], weight: [Int], stride: (Int, Int), padding: (Int, Int))] = [
            ([5, 3, 7, 7], [6, 3, 3, 3], (1, 1), (1, 1)), ([4, 2, 2, 3], [9, 2, 3, 3], (1, 1), (1, 1)),
            ([3, 2, 5, 6], [5, 2, 3, 5], (1, 1), (1, 2)), ([6, 1, 1, 13], [17, 1, 1, 3], (1, 1), (0, 1)),
            ([3, 20, 4, 4], [8, 20, 1, 1], (1, 1), (0, 0)), ([9, 15, 14, 14], [11, 15, 3, 3], (1, 1), (1, 1)),
            ([2, 3, 20, 21], [4, 3, 5, 3], (1, 1), (2, 1)),
        ]
        for (input, weight, stride, padding) in cases {
            let g = ConvGeometry(input: input, weight: weight, stride: stride, padding: padding)
            var cg = Kernels.cGeometry(g)
            let (o, patch, positions) = (g.outChannels, g.patch, g.positions)
            let x = (0..<(g.batch * g.channels * g.height * g.width)).map { _ in rng.uniform(-1, 1) }
            var cols = [Float](repeating: 0, count: patch * positions)
            bb_im2col(&cg, x, &cols, 0, Int32(g.batch))
            let w = (0..<(o * patch)).map { _ in rng.uniform(-1, 1) }, gy = (0..<(o * positions)).map { _ in rng.uniform(-1, 1) }
            for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1.5)] {
                let start = (0..<(o * max(patch, positions))).map { _ in rng.uniform(-1, 1) }
                // Forward: [o, patch] x columns [patch, positions].
                var want = Array(start.prefix(o * positions)), got = want
                bb_sgemm(0, 0, Int32(o), Int32(positions), Int32(patch), alpha, w, patch, cols, positions, beta, &want, positions)
                #expect(bb_sgemm_conv(0, 0, Int32(o), Int32(positions), Int32(patch), alpha, w, patch, &cg, x, beta, &got, positions) == 1)
                #expect(zip(got, want).filter { $0 != $1 }.count == 0, "forward \(g) alpha \(alpha) beta \(beta)")
                // Weight gradient: gy [o, positions] x columnsᵀ.
                var wantW = Array(start.prefix(o * patch)), gotW = wantW
                bb_sgemm(0, 1, Int32(o), Int32(patch), Int32(positions), alpha, gy, positions, cols, positions, beta, &wantW, patch)
                #expect(bb_sgemm_conv(0, 1, Int32(o), Int32(patch), Int32(positions), alpha, gy, positions, &cg, x, beta, &gotW, patch) == 1)
                #expect(zip(gotW, wantW).filter { $0 != $1 }.count == 0, "weight gradient \(g) alpha \(alpha) beta \(beta)")
            }
        }
        // A strided and a "valid" convolution, and shapes that are not a geometry's columns (72
        // positions, 18 rows): refused, C untouched.
        var strided = Kernels.cGeometry(ConvGeometry(input: [2, 2, 6, 6], weight: [3, 2, 3, 3], stride: (2, 2), padding: (1, 1)))
        var valid = Kernels.cGeometry(ConvGeometry(input: [2, 2, 6, 6], weight: [3, 2, 3, 3]))
        var same = Kernels.cGeometry(ConvGeometry(input: [2, 2, 6, 6], weight: [3, 2, 3, 3], padding: (1, 1)))
        let x = [Float](repeating: 1, count: 144), a = [Float](repeating: 1, count: 3 * 72)
        var c = [Float](repeating: 7, count: 3 * 72)
        #expect(bb_sgemm_conv(0, 0, 3, 18, 18, 1, a, 18, &strided, x, 0, &c, 18) == 0)
        #expect(bb_sgemm_conv(0, 0, 3, 32, 18, 1, a, 18, &valid, x, 0, &c, 32) == 0)
        #expect(bb_sgemm_conv(0, 0, 3, 72, 17, 1, a, 17, &same, x, 0, &c, 72) == 0)
        #expect(bb_sgemm_conv(0, 1, 3, 18, 71, 1, a, 71, &same, x, 0, &c, 18) == 0)
        #expect(c.allSatisfy { $0 == 7 })
    }
}

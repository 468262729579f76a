import CKernels

/// Geometry of a 2-D pooling window over NCHW input (no padding, floor mode).
public struct PoolGeometry: Hashable, Sendable {
    public var planes, height, width, kernelH, kernelW, strideH, strideW: Int
    public var outH: Int { (height - kernelH) / strideH + 1 }
    public var outW: Int { (width - kernelW) / strideW + 1 }

    init(input: [Int], kernel: (Int, Int), stride: (Int, Int), op: String) {
        require(input.count == 4, "\(op): input \(describe(input)) must be [N, C, H, W]")
        require(kernel.0 > 0 && kernel.1 > 0 && stride.0 > 0 && stride.1 > 0,
                "\(op): kernel \(kernel) and stride \(stride) must be positive")
        require(input[2] >= kernel.0 && input[3] >= kernel.1,
                "\(op): window \(kernel.0)x\(kernel.1) is larger than the input \(describe(input))")
        planes = input[0] * input[1]
        (height, width) = (input[2], input[3])
        (kernelH, kernelW, strideH, strideW) = (kernel.0, kernel.1, stride.0, stride.1)
    }
}

extension Kernels {
    /// Max pooling; also writes, per output, the flat input index of its maximum (first on ties),
    /// which is all the backward pass needs.
    static func maxPool(_ g: PoolGeometry, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        _ argmax: UnsafeMutablePointer<Int32>) {
        KernelProfiler.shared.measure("maxpool", dims(g.planes, g.height, g.width, g.kernelH),
                                      bytes: Double(4 * g.planes * (g.height * g.width + 2 * g.outH * g.outW))) {
            parallelRanges(g.planes, grain: max(1, 65_536 / (g.height * g.width))) { lo, hi in
                bb_maxpool(x, y, argmax, Int32(lo), Int32(hi), Int32(g.height), Int32(g.width),
                           Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW))
            }
        }
    }

    /// Average pooling.
    static func avgPool(_ g: PoolGeometry, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (g.outH, g.outW)
        let scale = 1 / Float(g.kernelH * g.kernelW)
        KernelProfiler.shared.measure("avgpool", dims(g.planes, g.height, g.width, g.kernelH),
                                      bytes: Double(4 * g.planes * (g.height * g.width + oh * ow))) {
            parallelRanges(g.planes, grain: max(1, 65_536 / (g.height * g.width))) { lo, hi in for p in lo..<hi {
                let base = p * g.height * g.width
                for i in 0..<oh {
                    for j in 0..<ow {
                        var s: Float = 0
                        for a in 0..<g.kernelH {
                            let row = base + (i * g.strideH + a) * g.width + j * g.strideW
                            for b in 0..<g.kernelW { s += x[row + b] }
                        }
                        y[(p * oh + i) * ow + j] = s * scale
                    }
                }
            } }
        }
    }

    /// The adjoint of `avgPool`: each output gradient spread evenly over its window. `gx` is overwritten.
    static func avgPoolBackward(_ g: PoolGeometry, _ gy: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (g.outH, g.outW)
        let scale = 1 / Float(g.kernelH * g.kernelW)
        KernelProfiler.shared.measure("avgpool_backward", dims(g.planes, g.height, g.width, g.kernelH),
                                      bytes: Double(4 * g.planes * (g.height * g.width + oh * ow))) {
            parallelRanges(g.planes, grain: max(1, 65_536 / (g.height * g.width))) { lo, hi in for p in lo..<hi {
                let base = p * g.height * g.width
                (gx + base).update(repeating: 0, count: g.height * g.width)
                for i in 0..<oh {
                    for j in 0..<ow {
                        let v = gy[(p * oh + i) * ow + j] * scale
                        for a in 0..<g.kernelH {
                            let row = base + (i * g.strideH + a) * g.width + j * g.strideW
                            for b in 0..<g.kernelW { gx[row + b] += v }
                        }
                    }
                }
            } }
        }
    }

    /// y[i] = x[index[i]]: the forward of max pooling and row selection.
    static func gatherFlat(_ x: UnsafePointer<Float>, _ index: UnsafePointer<Int32>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        KernelProfiler.shared.measure("gather", dims(n), bytes: Double(12 * n)) {
            for i in 0..<n { y[i] = x[Int(index[i])] }
        }
    }

    /// y[index[i]] += g[i] over a zeroed y of `m` elements: the adjoint of `gatherFlat`. With
    /// `segments` > 1 (an index whose equal runs each point into their own equal segment of y, as
    /// max pooling's planes do), each core takes whole segments and zeroes each just before it
    /// fills it, so the zeroes are still in L1 when the terms land (zeroing a core's whole share
    /// first wrote 5.5 MB out to memory and read it back: train-cnn's first pooling, 1.46 ms a
    /// step); each element still receives its terms in index order, so the result is the serial
    /// one bit for bit.
    static func scatterAddFlat(_ g: UnsafePointer<Float>, _ index: UnsafePointer<Int32>, _ n: Int,
                               _ y: UnsafeMutablePointer<Float>, _ m: Int, segments: Int = 1) {
        let split = segments > 1 && n % segments == 0 && m % segments == 0
        let (runs, per, target) = split ? (segments, n / segments, m / segments) : (1, n, m)
        KernelProfiler.shared.measure("scatter_add", dims(n), bytes: Double(12 * n + 4 * m)) {
            parallelRanges(runs, grain: max(1, 65_536 / max(1, target))) { lo, hi in
                for s in lo..<hi {
                    (y + s * target).update(repeating: 0, count: target)
                    for i in (s * per)..<((s + 1) * per) { y[Int(index[i])] += g[i] }
                }
            }
        }
    }
}

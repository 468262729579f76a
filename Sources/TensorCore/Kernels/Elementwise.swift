import CKernels
import Foundation

/// Scalar functions the elementwise kernels are specialised on (generic over these, so each loop
/// compiles to straight-line code with no closure call per element).
protocol UnaryFunction { static func apply(_ x: Float, _ p: Float) -> Float }
protocol BinaryFunction { static func apply(_ a: Float, _ b: Float) -> Float }

enum Fn {
    enum Neg: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { -x } }
    enum Exp: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { Foundation.exp(x) } }
    enum Log: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { Foundation.log(x) } }
    enum Sqrt: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { x.squareRoot() } }
    enum Abs: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { Swift.abs(x) } }
    enum Sign: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) } }
    enum Pow: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { Foundation.pow(x, p) } }
    enum LeakyRelu: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { x > 0 ? x : p * x } }
    enum Sigmoid: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { 1 / (1 + Foundation.exp(-x)) } }
    enum Tanh: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { Foundation.tanh(x) } }
    enum Scale: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { x * p } }
    enum Shift: UnaryFunction { @inline(__always) static func apply(_ x: Float, _ p: Float) -> Float { x + p } }

    enum Add: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
    enum Sub: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
    enum Mul: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
    enum Div: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
    enum Equal: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a == b ? 1 : 0 } }
}

enum Kernels {
    /// y = f(x, p) elementwise.
    static func unary<F: UnaryFunction>(_ f: F.Type, _ name: StaticString, _ x: UnsafePointer<Float>,
                                         _ y: UnsafeMutablePointer<Float>, _ n: Int, _ p: Float = 0) {
        KernelProfiler.shared.measure(name, dims(n), flops: Double(n), bytes: Double(8 * n)) {
            for i in 0..<n { y[i] = F.apply(x[i], p) }
        }
    }

    /// out = f(a, b) with NumPy broadcasting; `loop` holds the broadcast strides of (out, a, b).
    static func binary<F: BinaryFunction>(_ f: F.Type, _ name: StaticString, _ loop: StridedLoop,
                                           _ out: UnsafeMutablePointer<Float>,
                                           _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        let n = loop.innerCount
        let sa = loop.innerStride(1), sb = loop.innerStride(2)
        KernelProfiler.shared.measure(name, dims(count), flops: Double(count), bytes: Double(12 * count)) {
            loop.forEachRun { oo, oa, ob in
                let o = out + oo, pa = a + oa, pb = b + ob
                switch (sa, sb) {
                case (1, 1): for i in 0..<n { o[i] = F.apply(pa[i], pb[i]) }
                case (1, 0): let vb = pb[0]; for i in 0..<n { o[i] = F.apply(pa[i], vb) }
                case (0, 1): let va = pa[0]; for i in 0..<n { o[i] = F.apply(va, pb[i]) }
                default: for i in 0..<n { o[i] = F.apply(pa[i * sa], pb[i * sb]) }
                }
            }
        }
    }

    /// out (shape of the loop's operand 0 with zero strides on summed axes) += x; out starts zeroed.
    static func sumInto(_ loop: StridedLoop, _ out: UnsafeMutablePointer<Float>,
                        _ x: UnsafePointer<Float>, count: Int) {
        let n = loop.innerCount
        let so = loop.innerStride(0), sx = loop.innerStride(1)
        KernelProfiler.shared.measure("sum", dims(count), flops: Double(count), bytes: Double(4 * count)) {
            loop.forEachRun { oo, ox, _ in
                let o = out + oo, px = x + ox
                if so == 0 {
                    if sx == 1 {
                        o[0] += bb_sum(px, n)
                    } else {
                        var acc: Float = 0
                        for i in 0..<n { acc += px[i * sx] }
                        o[0] += acc
                    }
                } else if so == 1 && sx == 1 {
                    for i in 0..<n { o[i] += px[i] }
                } else {
                    for i in 0..<n { o[i * so] += px[i * sx] }
                }
            }
        }
    }

    /// out = x read through arbitrary strides (permutation, broadcast expansion).
    static func gatherStrided(_ name: StaticString, _ loop: StridedLoop, _ out: UnsafeMutablePointer<Float>,
                              _ x: UnsafePointer<Float>, count: Int) {
        let n = loop.innerCount
        let so = loop.innerStride(0), sx = loop.innerStride(1)
        KernelProfiler.shared.measure(name, dims(count), bytes: Double(8 * count)) {
            loop.forEachRun { oo, ox, _ in
                let o = out + oo, px = x + ox
                if so == 1 && sx == 1 { o.update(from: px, count: n) }
                else if sx == 0 { o.update(repeating: px[0], count: n) }
                else { for i in 0..<n { o[i * so] = px[i * sx] } }
            }
        }
    }

    /// A 2-D transpose in cache-sized tiles: [rows, cols] -> [cols, rows], for each of `batch`.
    static func transpose2D(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            batch: Int, rows: Int, cols: Int) {
        let tile = 32
        KernelProfiler.shared.measure("transpose", dims(batch, rows, cols), bytes: Double(8 * batch * rows * cols)) {
            for b in 0..<batch {
                let xb = x + b * rows * cols, yb = y + b * rows * cols
                var r0 = 0
                while r0 < rows {
                    let r1 = min(r0 + tile, rows)
                    var c0 = 0
                    while c0 < cols {
                        let c1 = min(c0 + tile, cols)
                        for r in r0..<r1 { for c in c0..<c1 { yb[c * rows + r] = xb[r * cols + c] } }
                        c0 = c1
                    }
                    r0 = r1
                }
            }
        }
    }
}

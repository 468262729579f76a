import CKernels

// MARK: - Unary elementwise ops

extension Tensor {
    func mapUnary<F: UnaryFunction>(_ f: F.Type, _ name: StaticString, _ p: Float = 0) -> Tensor {
        var out = Tensor(uninitialized: shape)
        Kernels.unary(f, name, storage.pointer, out.storage.pointer, count, p)
        out.node = nil
        return out
    }

    public func exp() -> Tensor { Tensor.result(.exp, [self], mapUnary(Fn.Exp.self, "exp")) }
    public func log() -> Tensor { Tensor.result(.log, [self], mapUnary(Fn.Log.self, "log")) }
    public func sqrt() -> Tensor { Tensor.result(.sqrt, [self], mapUnary(Fn.Sqrt.self, "sqrt")) }
    public func abs() -> Tensor { Tensor.result(.abs, [self], mapUnary(Fn.Abs.self, "abs")) }
    public func pow(_ p: Float) -> Tensor { Tensor.result(.pow(p), [self], mapUnary(Fn.Pow.self, "pow", p)) }
    public func sigmoid() -> Tensor { Tensor.result(.sigmoid, [self], mapUnary(Fn.Sigmoid.self, "sigmoid")) }
    public func tanh() -> Tensor { Tensor.result(.tanh, [self], mapUnary(Fn.Tanh.self, "tanh")) }
    public func relu() -> Tensor { leakyRelu(0) }
    public func leakyRelu(_ slope: Float = 0.01) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let n = count, px = storage.pointer, po = out.storage.pointer
        KernelProfiler.shared.measure(slope == 0 ? "relu" : "leaky_relu", dims(n), flops: Double(n), bytes: Double(8 * n)) {
            bb_leaky_relu(px, po, n, slope)
        }
        return Tensor.result(.leakyRelu(slope), [self], out)
    }

    /// Elementwise sign (-1, 0, 1); not differentiable (a constant).
    public func sign() -> Tensor { mapUnary(Fn.Sign.self, "sign") }

    /// 1 where this equals `other` (same shape), else 0; a constant.
    func equalMask(_ other: Tensor) -> Tensor { broadcastBinary(Fn.Equal.self, "equal", other) }

    public static prefix func - (x: Tensor) -> Tensor { Tensor.result(.neg, [x], x.mapUnary(Fn.Neg.self, "neg")) }
    public static func * (x: Tensor, s: Float) -> Tensor { Tensor.result(.scale(s), [x], x.mapUnary(Fn.Scale.self, "scale", s)) }
    public static func * (s: Float, x: Tensor) -> Tensor { x * s }
    public static func / (x: Tensor, s: Float) -> Tensor { x * (1 / s) }
    public static func + (x: Tensor, s: Float) -> Tensor { Tensor.result(.shift(s), [x], x.mapUnary(Fn.Shift.self, "shift", s)) }
    public static func + (s: Float, x: Tensor) -> Tensor { x + s }
    public static func - (x: Tensor, s: Float) -> Tensor { x + (-s) }
    public static func - (s: Float, x: Tensor) -> Tensor { (-x) + s }
    public static func / (s: Float, x: Tensor) -> Tensor { Tensor(s) / x }
}

/// g where x > 0, else slope * g: the backward of (leaky) ReLU in one pass.
func reluGrad(_ g: Tensor, _ x: Tensor, slope: Float) -> Tensor {
    require(g.shape == x.shape, "reluGrad: gradient \(describe(g.shape)) and input \(describe(x.shape)) differ")
    var out = Tensor(uninitialized: x.shape)
    let n = x.count
    let pg = g.storage.pointer, px = x.storage.pointer, po = out.storage.pointer
    KernelProfiler.shared.measure("relu_backward", dims(n), flops: Double(n), bytes: Double(12 * n)) {
        bb_relu_backward(pg, px, po, n, slope)
    }
    out.node = nil
    return Tensor.result(.reluGrad(slope), [g, x], out)
}

// MARK: - Binary elementwise ops with broadcasting

extension Tensor {
    func broadcastBinary<F: BinaryFunction>(_ f: F.Type, _ name: StaticString, _ other: Tensor) -> Tensor {
        let outShape = shape == other.shape ? shape : Shape.broadcast(shape, other.shape, op: "\(name)")
        var out = Tensor(uninitialized: outShape)
        let loop = StridedLoop(shape: outShape, strides: [
            Shape.strides(outShape),
            Shape.broadcastStrides(shape, to: outShape),
            Shape.broadcastStrides(other.shape, to: outShape),
        ])
        Kernels.binary(f, name, loop, out.storage.pointer, storage.pointer, other.storage.pointer, count: out.count)
        out.node = nil
        return out
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { result(.add, [a, b], a.broadcastBinary(Fn.Add.self, "add", b)) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { result(.sub, [a, b], a.broadcastBinary(Fn.Sub.self, "sub", b)) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { result(.mul, [a, b], a.broadcastBinary(Fn.Mul.self, "mul", b)) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { result(.div, [a, b], a.broadcastBinary(Fn.Div.self, "div", b)) }

}

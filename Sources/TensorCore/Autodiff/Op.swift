/// Every differentiable primitive of the engine. Composite ops (softmax, mean, L2-normalize,
/// dropout, batch-norm statistics, cosine similarity, ...) are built from these and need no rule.
/// A primitive exists either because no composite expresses it or because a fused kernel is
/// faster or numerically better than the composite; each case says which.
enum Op: CustomStringConvertible {
    case leaf
    // Elementwise, with NumPy broadcasting for the binary ones.
    case add, sub, mul, div
    case neg, exp, log, sqrt, abs, sigmoid, tanh
    case pow(Float)
    case scale(Float)             // x * s without materialising a scalar tensor
    case shift(Float)             // x + s
    case leakyRelu(Float)         // relu is slope 0
    case reluGrad(Float)          // (g, x) -> g where x > 0, else slope * g: one pass instead of mask + mul
    // Linear algebra.
    case matmul(transA: Bool, transB: Bool)
    case linear(relu: Bool)       // act(x Wᵀ + b): bias laid down for the GEMM to add to, ReLU in place
    // Reductions and broadcasting (each is the other's gradient).
    case sumTo([Int])
    case broadcastTo([Int])
    case maxAlong(axis: Int)      // keeps the axis
    // Layout.
    case reshape
    case permute([Int])
    case concat(axis: Int)
    case slice(axis: Int, start: Int)
    case padSlice(axis: Int, start: Int, shape: [Int])   // places a slice's gradient into zeros
    case gather(IndexBuffer)      // y = x.flat[index]: max-pool and row selection
    case scatterAdd(IndexBuffer, shape: [Int])
    // Fused numerics.
    case logSoftmax               // stable x - logsumexp(x) along the last axis
    case softmaxCrossEntropy(labels: [Int32], probs: TensorStorage)
    case conv2d(ConvGeometry, columns: TensorStorage?, relu: Bool)   // keeps im2col(x) for the weight gradient, when made whole
    case conv2dBackwardData(ConvGeometry)
    case conv2dBackwardWeight(ConvGeometry)
    case batchNorm(eps: Float, relu: Bool, mean: TensorStorage, invstd: TensorStorage)   // training mode, batch statistics
    // Training-mode batch norm, ReLU and max pooling (windows apart): no full-size activation between them.
    // xmax: x at each window's maximum, so the first-order backward's sums read pooled arrays only.
    case batchNormReluMaxPool(eps: Float, pool: PoolGeometry, mean: TensorStorage, invstd: TensorStorage, index: IndexBuffer,
                              xmax: TensorStorage)
    case avgPool(PoolGeometry)
    case avgPoolBackward(PoolGeometry)

    var description: String {
        switch self {
        case .leaf: return "leaf"
        case .add: return "add"
        case .sub: return "sub"
        case .mul: return "mul"
        case .div: return "div"
        case .neg: return "neg"
        case .exp: return "exp"
        case .log: return "log"
        case .sqrt: return "sqrt"
        case .abs: return "abs"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .pow(let p): return "pow(\(p))"
        case .scale(let s): return "scale(\(s))"
        case .shift(let s): return "shift(\(s))"
        case .leakyRelu(let a): return "leakyRelu(\(a))"
        case .reluGrad(let a): return "reluGrad(\(a))"
        case .matmul(let ta, let tb): return "matmul(\(ta), \(tb))"
        case .linear(let relu): return "linear(relu: \(relu))"
        case .sumTo(let s): return "sumTo(\(describe(s)))"
        case .broadcastTo(let s): return "broadcastTo(\(describe(s)))"
        case .maxAlong(let a): return "max(axis: \(a))"
        case .reshape: return "reshape"
        case .permute(let p): return "permute(\(p))"
        case .concat(let a): return "concat(axis: \(a))"
        case .slice(let a, let s): return "slice(axis: \(a), start: \(s))"
        case .padSlice(let a, let s, _): return "padSlice(axis: \(a), start: \(s))"
        case .gather: return "gather"
        case .scatterAdd: return "scatterAdd"
        case .logSoftmax: return "logSoftmax"
        case .softmaxCrossEntropy: return "softmaxCrossEntropy"
        case .conv2d: return "conv2d"
        case .conv2dBackwardData: return "conv2dBackwardData"
        case .conv2dBackwardWeight: return "conv2dBackwardWeight"
        case .batchNorm(_, let relu, _, _): return "batchNorm(relu: \(relu))"
        case .batchNormReluMaxPool: return "batchNormReluMaxPool"
        case .avgPool: return "avgPool"
        case .avgPoolBackward: return "avgPoolBackward"
        }
    }
}

import CKernels

/// In-place parameter updates for the optimizers in NNCore: one pass over each parameter and its
/// state (SGD reads three arrays and writes two), split across cores for large parameters, counted
/// by the profiler like any kernel.
public enum UpdateKernels {
    /// Elements per core below which an update stays on one thread. Each element's update depends
    /// on that element alone, so the split changes no result; it pays where a parameter's arrays
    /// (the MLP's 200k-element first layer: 4 MB of parameter, gradient and velocity) take longer
    /// to stream than a core takes to wake (train-mlp's breakdown: the SGD updates were 0.41 ms of
    /// a 3.3 ms step on one thread).
    public static let updateGrain = 1 << 15

    /// SGD with momentum `mu` (state `velocity`, unused when nil), Nesterov and coupled weight decay.
    public static func sgd(_ parameter: inout Tensor, gradient: Tensor, velocity: inout Tensor?,
                           lr: Float, momentum mu: Float, weightDecay wd: Float, nesterov: Bool) {
        require(gradient.shape == parameter.shape, "sgd: gradient \(describe(gradient.shape)) for parameter \(describe(parameter.shape))")
        let n = parameter.count
        parameter.makeUnique()
        parameter.node = nil
        let p = parameter.storage.pointer, g = gradient.storage.pointer
        var v: UnsafeMutablePointer<Float>?
        if velocity != nil {
            velocity!.makeUnique()
            v = velocity!.storage.pointer
        }
        KernelProfiler.shared.measure("sgd_update", dims(n), flops: Double(5 * n), bytes: Double(4 * n * (v == nil ? 3 : 5))) {
            parallelRanges(n, grain: updateGrain) { lo, hi in bb_sgd_update(p + lo, g + lo, v.map { $0 + lo }, hi - lo, lr, mu, wd, nesterov ? 1 : 0) }
        }
    }

    /// Adam (or AdamW when `decoupled`) with moments `m`, `v` and bias corrections c1, c2.
    public static func adam(_ parameter: inout Tensor, gradient: Tensor, m: inout Tensor, v: inout Tensor,
                            lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool,
                            c1: Float, c2: Float) {
        require(gradient.shape == parameter.shape, "adam: gradient \(describe(gradient.shape)) for parameter \(describe(parameter.shape))")
        let n = parameter.count
        parameter.makeUnique(); m.makeUnique(); v.makeUnique()
        parameter.node = nil
        let (pp, pg, pm, pv) = (parameter.storage.pointer, gradient.storage.pointer, m.storage.pointer, v.storage.pointer)
        KernelProfiler.shared.measure("adam_update", dims(n), flops: Double(14 * n), bytes: Double(28 * n)) {
            parallelRanges(n, grain: updateGrain) { lo, hi in
                bb_adam_update(pp + lo, pg + lo, pm + lo, pv + lo, hi - lo, lr, beta1, beta2, eps, weightDecay, decoupled ? 1 : 0, c1, c2)
            }
        }
    }
}

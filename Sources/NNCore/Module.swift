import TensorCore

/// What a forward pass needs besides its input: train or eval mode, randomness (dropout), and
/// optionally parameters that stand in for the module's own, by full path. Substitution is how
/// MAML's fast weights, EMA teachers and momentum encoders run the same network.
public struct ForwardContext {
    public var training: Bool
    public var rng: RNG
    public var overrides: [String: Tensor]
    /// Whether batch-norm running statistics are updated in training mode (off for a teacher pass).
    public var updatesRunningStatistics: Bool
    var prefix = ""

    public init(training: Bool, rng: RNG = RNG(seed: 0), overrides: [String: Tensor] = [:],
                updatesRunningStatistics: Bool = true) {
        self.training = training
        self.rng = rng
        self.overrides = overrides
        self.updatesRunningStatistics = updatesRunningStatistics
    }

    public static var eval: ForwardContext { ForwardContext(training: false) }

    /// The parameter `name` of `module` at the current path: the override if one is given.
    public func parameter(_ module: Module, _ name: String) -> Tensor {
        if !overrides.isEmpty, let t = overrides[prefix + name] { return t }
        guard let t = module.parameters[name] else {
            // invariant: layers read their own parameters by names they registered
            fatalError("NNCore: \(type(of: module)) at '\(prefix)' has no parameter '\(name)'")
        }
        return t
    }

    /// The buffer `name` of `module` at the current path: the override if one is given (an EMA
    /// teacher's running statistics).
    public func buffer(_ module: Module, _ name: String) -> Tensor {
        if !overrides.isEmpty, let t = overrides[prefix + name] { return t }
        guard let t = module.buffers[name] else {
            // invariant: layers read their own buffers by names they registered
            fatalError("NNCore: \(type(of: module)) at '\(prefix)' has no buffer '\(name)'")
        }
        return t
    }

    /// Runs a child module with the path extended by its name.
    public mutating func child<R>(_ name: String, _ body: (inout ForwardContext) -> R) -> R {
        let saved = prefix
        prefix = saved + name + "."
        defer { prefix = saved }
        return body(&self)
    }
}

/// A layer or a network: its own parameters and buffers by local name, and named children.
/// Full paths join names with dots (`encoder.0.weight`), as in PyTorch state dicts.
open class Module {
    /// Trainable tensors by local name.
    public var parameters: [String: Tensor] = [:]
    /// Non-trainable state (batch-norm running statistics) by local name.
    public var buffers: [String: Tensor] = [:]
    /// Local names of parameters that are frozen.
    public var frozen: Set<String> = []
    /// Sub-modules in order, by local name.
    public var children: [(name: String, module: Module)] = []

    public init() {}

    /// The forward pass; layers read parameters through `ctx.parameter(self, name)`.
    open func forward(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        // invariant: abstract method; every module overrides it
        fatalError("\(type(of: self)) does not implement forward")
    }

    /// Forward in a fresh context (convenience for evaluation and tests).
    public func callAsFunction(_ x: Tensor, training: Bool = false) -> Tensor {
        var ctx = ForwardContext(training: training)
        return forward(x, &ctx)
    }

    // MARK: Paths

    /// Every parameter with its full path, in a stable order (children in order, names sorted).
    public func namedParameters(trainableOnly: Bool = false) -> [(path: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = []
        visit { prefix, m in
            for name in m.parameters.keys.sorted() where !(trainableOnly && m.frozen.contains(name)) {
                out.append((prefix + name, m.parameters[name]!))
            }
        }
        return out
    }

    /// Trainable parameters as a dictionary by path: what gradients and optimizers work on.
    public func trainableParameters() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters(trainableOnly: true).map { ($0.path, $0.tensor) })
    }

    /// Every buffer with its full path.
    public func namedBuffers() -> [(path: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = []
        visit { prefix, m in for name in m.buffers.keys.sorted() { out.append((prefix + name, m.buffers[name]!)) } }
        return out
    }

    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.tensor.count } }

    /// Freezes every parameter whose path starts with `prefix` ("" freezes all).
    public func freeze(prefix: String = "") { setFrozen(prefix: prefix, true) }
    public func unfreeze(prefix: String = "") { setFrozen(prefix: prefix, false) }

    private func setFrozen(prefix: String, _ value: Bool) {
        visit { p, m in
            for name in m.parameters.keys where (p + name).hasPrefix(prefix) {
                if value { m.frozen.insert(name) } else { m.frozen.remove(name) }
            }
        }
    }

    /// Replaces parameters (and buffers) by path; unknown paths or shape changes stop with the path.
    public func load(_ values: [String: Tensor]) {
        var seen = 0
        visit { p, m in
            for name in Array(m.parameters.keys) where values[p + name] != nil {
                let v = values[p + name]!
                // invariant: weights loaded are this network's own (best-on-validation, EMA), never read from a user's file
                precondition(v.shape == m.parameters[name]!.shape,
                             "NNCore: load: \(p + name) has shape \(m.parameters[name]!.shape), got \(v.shape)")
                m.parameters[name] = v.detached
                seen += 1
            }
            for name in Array(m.buffers.keys) where values[p + name] != nil {
                m.buffers[name] = values[p + name]!.detached
                seen += 1
            }
        }
        // invariant: weights loaded are this network's own (best-on-validation, EMA), never read from a user's file
        precondition(seen == values.count, "NNCore: load: \(values.count - seen) paths do not name a parameter or buffer")
    }

    /// Gives in-place access to every trainable parameter by path (optimizer updates).
    public func updateParameters(_ body: (String, inout Tensor) -> Void) {
        visit { p, m in
            for name in m.parameters.keys.sorted() where !m.frozen.contains(name) {
                body(p + name, &m.parameters[name]!)
            }
        }
    }

    /// Visits this module and its descendants depth-first with their path prefixes.
    public func visit(prefix: String = "", _ body: (String, Module) -> Void) {
        body(prefix, self)
        for (name, child) in children { child.visit(prefix: prefix + name + ".", body) }
    }
}

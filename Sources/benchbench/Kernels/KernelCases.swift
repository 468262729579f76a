import CBLAS
import DataCore
import Evaluation
import Foundation
import Methods
import NNCore
import TensorCore
import Vocabulary

/// The kernels `benchbench kernels` times and the two whole training steps.
struct KernelCases {
    var stopwatch: Stopwatch
    var quick: Bool
    var progress: (String) -> Void

    // MARK: GEMM

    /// Square GEMMs and the MLP's first layer (256x256x784), each through the engine (`matmul`:
    /// it allocates its result, records the call and splits the work across the engine's threads)
    /// and as a bare `cblas_sgemm` call into a reused buffer with OpenBLAS's own threading at the
    /// same thread count, as a C program would call it: the ratio is what the engine adds or saves.
    func gemmSquare() -> [KernelResult] {
        let shapes = (quick ? [64, 256] : [64, 128, 256, 512, 1024, 2048]).map { ($0, $0, $0) } + [(256, 256, 784)]
        return shapes.flatMap { (m, n, k) -> [KernelResult] in
            var rng = RNG(seed: UInt64(m * n + k))
            let a = Tensor.randn([m, k], rng: &rng), b = Tensor.randn([k, n], rng: &rng)
            var c = Tensor(zeros: [m, n])
            let shape = "\(m)x\(n)x\(k)", gflop = 2e-9 * Double(m) * Double(n) * Double(k)
            progress("gemm \(shape)")
            let engine = stopwatch.result("gemm", shape, unit: "GFLOP/s", work: gflop) { _ = matmul(a, b) }
            let raw = BLASRuntime.withOwnThreads(Parallelism.threads) { a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        stopwatch.result("sgemm (bare BLAS)", shape, unit: "GFLOP/s", work: gflop) {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                                        1, pa.baseAddress, Int32(k), pb.baseAddress, Int32(n), 0, pc.baseAddress, Int32(n))
                        }
                    }
                }
            } }
            return [engine, raw]
        }
    }

    /// Every GEMM the MLP training step issues, found by profiling one step (so the list follows
    /// the engine, not a guess), each timed alone; then what one step's GEMMs cost at those rates,
    /// as samples/s: a floor on the step's time that no work outside the GEMMs can beat; and the
    /// step's speed as a share of that floor, from the two timed in alternation.
    func gemmAtTrainingShapes() throws -> [KernelResult] {
        let step = TrainingBenchmark.mlp()
        KernelProfiler.shared.reset()
        try step.run()
        let gemms = KernelProfiler.shared.snapshot().filter { $0.key.name.hasPrefix("gemm") }
        var rows: [KernelResult] = []
        var seconds = (min: 0.0, median: 0.0, max: 0.0)
        var floorGEMMs: [() -> Void] = []
        for (key, entry) in gemms.sorted(by: { $0.key.shape < $1.key.shape }) {
            let (m, n, k) = (key.dims[0], key.dims[1], key.dims[2])
            let ta = key.name == "gemm_tn" || key.name == "gemm_tt", tb = key.name == "gemm_nt" || key.name == "gemm_tt"
            var rng = RNG(seed: 1)
            let a = Tensor.randn(ta ? [k, m] : [m, k], rng: &rng), b = Tensor.randn(tb ? [n, k] : [k, n], rng: &rng)
            progress("\(key.name) \(m)x\(n)x\(k)")
            let gflop = 2e-9 * Double(m * n * k)
            let r = stopwatch.result(key.name, "\(m)x\(n)x\(k)", unit: "GFLOP/s", work: gflop) {
                _ = matmul(a, b, transposeA: ta, transposeB: tb)
            }
            rows.append(r)
            floorGEMMs += Array(repeating: { _ = matmul(a, b, transposeA: ta, transposeB: tb) }, count: entry.calls)
            // Slowest rate gives the longest time: min samples/s pairs with max seconds.
            let calls = Double(entry.calls)
            seconds.min += calls * gflop / r.max
            seconds.median += calls * gflop / r.median
            seconds.max += calls * gflop / r.min
        }
        let batch = Double(step.batch)
        rows.append(KernelResult(kernel: "train-mlp GEMMs alone", shape: step.shape, unit: "samples/s", reps: stopwatch.repetitions,
                                 min: batch / seconds.max, median: batch / seconds.median, max: batch / seconds.min))
        rows.append(try stepAgainstFloor(step, floor: floorGEMMs))
        return rows
    }

    /// A training step's speed as a percentage of its GEMMs-alone floor: per repetition, the step
    /// then its GEMMs alone (`floor`, each call as often as the step makes it) are timed back to
    /// back, and the row holds floor seconds / step seconds. Timed in separate groups, the two
    /// drifted apart with the host's load (the ratio read 64% to 87% across three runs).
    func stepAgainstFloor(_ step: TrainingBenchmark, floor: [() -> Void]) throws -> KernelResult {
        progress("\(step.name) against its GEMMs alone")
        var failure: Error?
        let runStep = { do { try step.run() } catch { failure = failure ?? error } }
        let runFloor = { for gemm in floor { gemm() } }
        let warm = Stopwatch.seconds { for _ in 0..<3 { runStep(); runFloor() } } / 3
        let inner = max(1, Int((stopwatch.minSeconds / max(warm, 1e-9)).rounded(.up)))
        let shares = (0..<stopwatch.repetitions).map { _ in
            let stepSeconds = Stopwatch.seconds { for _ in 0..<inner { runStep() } }
            return Stopwatch.seconds { for _ in 0..<inner { runFloor() } } / stepSeconds * 100
        }.sorted()
        if let failure { throw failure }
        return KernelResult(kernel: "\(step.name) of GEMMs alone", shape: step.shape, unit: "%", reps: shares.count,
                            min: shares.first!, median: shares[shares.count / 2], max: shares.last!)
    }

    // MARK: Convolution at conv4 shapes

    /// conv4 (width 64) on 28x28 inputs, batch 64: the four layers' geometries.
    func conv4() -> [KernelResult] {
        let layers: [[Int]] = quick ? [[64, 64, 14, 14]] : [[64, 1, 28, 28], [64, 64, 14, 14], [64, 64, 7, 7], [64, 64, 3, 3]]
        var out: [KernelResult] = []
        for input in layers {
            let geo = ConvGeometry(input: input, weight: [64, input[1], 3, 3], padding: (1, 1))
            var rng = RNG(seed: 2)
            let x = Tensor.randn(input, rng: &rng), w = Tensor.randn([64, input[1], 3, 3], rng: &rng)
            let gy = Tensor.randn([input[0], 64, geo.outH, geo.outW], rng: &rng)
            let shape = "\(input.map(String.init).joined(separator: "x"))->64"
            let gflop = 2e-9 * Double(64 * input[1] * 9 * input[0] * geo.outH * geo.outW)
            progress("conv2d \(shape)")
            out.append(stopwatch.result("conv2d_fwd", shape, unit: "GFLOP/s", work: gflop) { _ = conv2d(x, w, geo) })
            out.append(stopwatch.result("conv2d_bwd_data", shape, unit: "GFLOP/s", work: gflop) { _ = conv2dBackwardData(gy, w, geo) })
            out.append(stopwatch.result("conv2d_bwd_weight", shape, unit: "GFLOP/s", work: gflop) { _ = conv2dBackwardWeight(x, gy, geo) })
        }
        return out
    }

    // MARK: Memory-bound kernels

    func memoryBound() -> [KernelResult] {
        let n = quick ? 1 << 18 : 1 << 22
        var rng = RNG(seed: 3)
        let a = Tensor.randn([n], rng: &rng), b = Tensor.randn([n], rng: &rng)
        let m = Tensor.randn([n / 256, 256], rng: &rng)
        progress("elementwise and reductions")
        return [
            // add reads two arrays and writes one: 12 bytes per element.
            stopwatch.result("add", "\(n)", unit: "GB/s", work: 12e-9 * Double(n)) { _ = a + b },
            stopwatch.result("relu", "\(n)", unit: "GB/s", work: 8e-9 * Double(n)) { _ = a.relu() },
            stopwatch.result("sum", "\(n)", unit: "GB/s", work: 4e-9 * Double(n)) { _ = a.sum() },
            stopwatch.result("sum_rows", "\(n / 256)x256", unit: "GB/s", work: 4e-9 * Double(n)) { _ = m.sum(axis: 0) },
        ]
    }

    // MARK: Augmentation

    /// Weak and strong augmentation of a FixMatch-sized unlabeled batch (448 images, 28x28).
    func augmentation() -> [KernelResult] {
        var rng = RNG(seed: 4)
        let images = Tensor.randn([448, 1, 28, 28], rng: &rng)
        guard let d = try? Dataset(name: "bench", trainImages: images, trainLabels: [Int32](repeating: 0, count: 448),
                                   testImages: images, testLabels: [Int32](repeating: 0, count: 448), classNames: ["x"],
                                   contentHash: "bench", allowsHorizontalFlip: true) else { return [] }
        progress("augmentation")
        return [Augmenter.Kind.weak, .strong].map { kind in
            let a = Augmenter(kind: kind, dataset: d)
            var r = RNG(seed: 5)
            return stopwatch.result("augment_\(kind.rawValue)", "448x1x28x28", unit: "images/s", work: 448) { _ = a.apply(images, rng: &r) }
        }
    }

    // MARK: Evaluation

    /// One loss-and-gradient evaluation of the linear probe's objective at the shape of a probe
    /// with all of Fashion-MNIST's labels on 576 features (a conv4-64 encoder's third block), 10
    /// classes: L-BFGS makes thousands of these per probe, the bulk of a `linear` protocol's time.
    /// Work: the two GEMMs, 4 n d k FLOPs.
    func linearProbe() -> [KernelResult] {
        let (n, d, k) = quick ? (4_096, 64, 10) : (54_000, 576, 10)
        var rng = RNG(seed: 6)
        let features = Tensor.randn([n, d], rng: &rng)
        let labels = (0..<n).map { Int32($0 % k) }
        let objective = LogisticObjective(features, labels, classes: k, l2: 1e-4)
        let theta = (0..<(d * k + k)).map { _ in Double(rng.normal()) * 0.01 }
        progress("linear probe objective")
        return [stopwatch.result("probe_objective", "\(n)x\(d)x\(k)", unit: "GFLOP/s", work: 4e-9 * Double(n * d * k)) { _ = objective(theta) }]
    }

    // MARK: Whole training steps

    func trainingSteps(_ steps: [TrainingBenchmark]) throws -> [KernelResult] {
        var out: [KernelResult] = []
        for step in steps {
            progress(step.name)
            // The FLOPs of one step, as its kernels count them, per sample (a first step also
            // surfaces any error before the timing loop, which cannot throw).
            let mark = KernelProfiler.shared.mark()
            try step.run()
            let flops = KernelProfiler.shared.snapshot(since: mark).filter { !$0.entry.composite }.reduce(0) { $0 + $1.entry.flops }
            var failure: Error?
            var r = stopwatch.result(step.name, step.shape, unit: "samples/s", work: Double(step.batch)) {
                do { try step.run() } catch { failure = failure ?? error }
            }
            if let failure { throw failure }
            r.gflopPerUnit = flops > 0 ? flops / Double(step.batch) * 1e-9 : nil
            out.append(r)
        }
        return out
    }

    /// Per-kernel share of each training step's time, from the profiler over 20 steps.
    func breakdown(_ steps: [TrainingBenchmark]) throws -> String {
        var lines: [String] = []
        for step in steps {
            for _ in 0..<3 { try step.run() }
            KernelProfiler.shared.reset()
            let wall = try Stopwatch.seconds { for _ in 0..<20 { try step.run() } }
            let entries = KernelProfiler.shared.snapshot()
            let counted = entries.filter { !$0.entry.composite }.reduce(0) { $0 + $1.entry.seconds }
            lines.append("\n\(step.name): \(String(format: "%.2f", wall / 20 * 1000)) ms/step, kernels \(String(format: "%.0f", counted / wall * 100))% of it (* encloses other kernels)")
            // Every kernel with at least 0.5% of the step; the rest summed on one line.
            let shown = entries.filter { $0.entry.seconds >= 0.005 * wall }
            for (key, e) in shown {
                let rate = e.flops > 0 ? String(format: "%.1f GFLOP/s", e.flops / e.seconds * 1e-9)
                                       : String(format: "%.1f GB/s", e.bytes / e.seconds * 1e-9)
                lines.append(String(format: "  %-32@ %-22@ %6.3f ms/step %5d calls  %@", (key.name + (e.composite ? "*" : "")) as NSString, key.shape as NSString,
                                    e.seconds / 20 * 1000, e.calls, rate as NSString))
            }
            let rest = entries.filter { !$0.entry.composite && $0.entry.seconds < 0.005 * wall }
            lines.append(String(format: "  %d kernels of less than 0.5%% each: %.3f ms/step", rest.count,
                                rest.reduce(0) { $0 + $1.entry.seconds } / 20 * 1000))
        }
        KernelProfiler.shared.reset()
        return lines.joined(separator: "\n")
    }

    /// What the always-on profiler costs: per call, and on the MLP step (profiler off vs on).
    func profilerOverhead() throws -> [KernelResult] {
        let profiler = KernelProfiler.shared
        let calls = 100_000
        progress("profiler overhead")
        let perCall = (0..<stopwatch.repetitions).map { _ in
            Stopwatch.seconds { for _ in 0..<calls { profiler.measure("noop", SIMD4(1, 0, 0, 0)) {} } } / Double(calls) * 1e9
        }.sorted()
        let step = TrainingBenchmark.mlp()
        var ratios: [Double] = []
        for _ in 0..<stopwatch.repetitions {
            profiler.isEnabled = false
            let off = try Stopwatch.seconds { for _ in 0..<20 { try step.run() } }
            profiler.isEnabled = true
            let on = try Stopwatch.seconds { for _ in 0..<20 { try step.run() } }
            ratios.append((on / off - 1) * 100)
        }
        ratios.sort()
        profiler.reset()
        return [
            KernelResult(kernel: "profiler", shape: "per call", unit: "ns", reps: perCall.count,
                         min: perCall.first!, median: perCall[perCall.count / 2], max: perCall.last!),
            KernelResult(kernel: "profiler", shape: "train-mlp step", unit: "% slower", reps: ratios.count,
                         min: ratios.first!, median: ratios[ratios.count / 2], max: ratios.last!),
        ]
    }
}

/// A whole training step, timed as a unit: `batch` samples a step.
struct TrainingBenchmark {
    let name: String
    let shape: String
    let batch: Int
    let step: () throws -> Void

    func run() throws { try step() }

    /// A supervised step on synthetic data (a pool of 8 batches, as the reference programs use):
    /// forward, softmax cross-entropy, backward and an SGD-momentum update (lr 0.01, μ 0.9).
    init(name: String, shape: String, model: Module, input: [Int], batch: Int) {
        (self.name, self.shape, self.batch) = (name, shape, batch)
        let optimizer = SGD(learningRate: 0.01, momentum: 0.9)
        var rng = RNG(seed: 0, key: name, stream: "data")
        let inputs = (0..<8).map { _ in Tensor.randn([batch] + input, rng: &rng) }
        let labels = (0..<8).map { _ in (0..<batch).map { _ in Int32(rng.int(10)) } }
        var index = 0
        step = {
            supervisedStep(model, optimizer, x: inputs[index % 8], labels: labels[index % 8])
            index += 1
        }
    }

    /// A registered method's own training step, exactly as the trainer runs it (streams,
    /// augmentation, forward, backward, update, EMA), on 28x28 glyphs with its default config.
    init<M: StepMethod>(method: M.Type, name: String, shape: String, regime: Regime, budget: LabelBudget,
                        config: M.Config = M.Config()) throws {
        var glyphs = GlyphsConfig()
        (glyphs.classes, glyphs.instancesPerClass) = (20, 60)
        let d = try Glyphs.make(glyphs)
        let split = try LabelSplit(labels: d.trainLabels, classes: d.classCount, budget: budget, validationPerClass: 0, seed: 1,
                                   datasetHash: d.contentHash, datasetName: d.name)
        let (data, heldBack) = try TrainingData.granted(to: regime, dataset: d, split: split)
        let input = TrainingInput(data: data, seed: 0, key: "kernels/\(name)", heldBack: heldBack)
        var rng = input.rng("init")
        let steps = try LearnerSteps(try M.build(data, config: config, rng: &rng), input: input, spec: config.training, method: M.id)
        (self.name, self.shape, batch) = (name, shape, steps.samplesPerStep)
        var k = 0
        step = {
            _ = try steps.run(step: k, learningRate: config.training.learningRate)
            k += 1
        }
    }

    /// FixMatch (default config: conv4-64, a labeled batch of 64 and 448 unlabeled images in a
    /// weak and a strong view, EMA), 10 labels per class.
    static func fixmatch() throws -> TrainingBenchmark {
        try TrainingBenchmark(method: FixMatch.self, name: "train-fixmatch", shape: "conv4-64 b64+448x2", regime: .semiSupervised,
                              budget: .perClass(10))
    }

    /// MAML's second-order meta-step (default config: conv4-64, 4 tasks of 5-way 1-shot with 15
    /// queries, one inner step differentiated through).
    static func maml() throws -> TrainingBenchmark {
        try TrainingBenchmark(method: MAML.self, name: "train-maml", shape: "conv4-64 4x5w1s15q", regime: .fewShot, budget: .all)
    }

    /// The same meta-step first-order (FOMAML: the query gradient at the fast weights, no
    /// differentiation through the inner step).
    static func fomaml() throws -> TrainingBenchmark {
        var config = MAML.Config()
        config.firstOrder = true
        return try TrainingBenchmark(method: MAML.self, name: "train-fomaml", shape: "conv4-64 4x5w1s15q", regime: .fewShot, budget: .all,
                                     config: config)
    }

    /// MLP 784-256-256-10, ReLU, batch 256.
    static func mlp() -> TrainingBenchmark {
        var rng = RNG(seed: 0, key: "train-mlp", stream: "init")
        let model = Sequential([Linear(784, 256, rng: &rng), ReLU(), Linear(256, 256, rng: &rng), ReLU(), Linear(256, 10, rng: &rng)])
        return TrainingBenchmark(name: "train-mlp", shape: "784-256-256-10 b256", model: model, input: [784], batch: 256)
    }

    /// The few-shot Conv-4 backbone (width 64, batch-norm) with a linear head, 28x28, batch 128.
    static func conv4() -> TrainingBenchmark {
        var rng = RNG(seed: 0, key: "train-conv4", stream: "init")
        let (body, features) = Backbone.conv4(inputShape: [1, 28, 28], width: 64, rng: &rng)
        return TrainingBenchmark(name: "train-conv4", shape: "conv4-64 bn b128", model: Sequential([body, Linear(features, 10, rng: &rng)]),
                                 input: [1, 28, 28], batch: 128)
    }

    /// conv3x3(32, valid)-ReLU-maxpool2-conv3x3(64, valid)-ReLU-maxpool2-fc128-ReLU-fc10, batch 128.
    static func cnn() -> TrainingBenchmark {
        var rng = RNG(seed: 0, key: "train-cnn", stream: "init")
        let model = Sequential([
            Conv2D(1, 32, rng: &rng), ReLU(), MaxPool(),
            Conv2D(32, 64, rng: &rng), ReLU(), MaxPool(), Flatten(),
            Linear(1600, 128, rng: &rng), ReLU(), Linear(128, 10, rng: &rng),
        ])
        return TrainingBenchmark(name: "train-cnn", shape: "c32-c64-fc128-10 b128", model: model, input: [1, 28, 28], batch: 128)
    }
}

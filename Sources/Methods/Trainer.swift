import DataCore
import Foundation
import NNCore
import TensorCore

/// Why a training run stopped early.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// What a run hands to whoever watches it: progress lines, curves, validation scores.
public protocol TrainingObserver: AnyObject {
    /// `scalars` are the step's named values, smoothed, the loss first.
    func trainingStep(_ step: Int, of total: Int, scalars: [(name: String, value: Float)], learningRate: Float, samplesPerSecond: Double,
                      etaSeconds: Double)
    func validation(_ step: Int, score: Double)
    /// The last step and validation are done.
    func trainingFinished()
}

extension TrainingObserver {
    public func trainingFinished() {}
}

/// One point of a learning curve.
public struct CurvePoint: Codable, Equatable, Sendable {
    public var step: Int
    public var name: String
    public var value: Double
}

public struct TrainingSummary: Sendable {
    public var steps: Int
    public var seconds: Double
    public var samplesPerSecond: Double
    public var curves: [CurvePoint]
    /// Best validation score and the step it was reached at (nil without validation).
    public var best: (step: Int, score: Double)?
    public var finalLoss: Float

    public init(steps: Int, seconds: Double, samplesPerSecond: Double, curves: [CurvePoint], best: (step: Int, score: Double)?, finalLoss: Float) {
        (self.steps, self.seconds, self.samplesPerSecond, self.curves, self.best, self.finalLoss) = (steps, seconds, samplesPerSecond, curves, best, finalLoss)
    }
}

/// The loop every method trains with: a step budget, a learning-rate schedule, periodic
/// validation (keeping the best score), a smoothed curve per named scalar, progress for an
/// observer, and a clean stop with the reason when the loss stops being finite.
public struct Trainer {
    public var steps: Int
    public var schedule: LearningRateSchedule
    public var samplesPerStep: Int
    /// Validate every this many steps (and after the last); 0: only after the last.
    public var validateEvery: Int
    /// Record the smoothed scalars and the rate in the curves every this many steps.
    public var curveEvery: Int
    /// The curve validation scores are recorded under.
    public var validationMetric: String
    public weak var observer: TrainingObserver?

    public init(steps: Int, schedule: LearningRateSchedule, samplesPerStep: Int, validateEvery: Int = 0, curveEvery: Int = 50,
                validationMetric: String = "val_accuracy", observer: TrainingObserver? = nil) {
        (self.steps, self.schedule, self.samplesPerStep) = (steps, schedule, samplesPerStep)
        (self.validateEvery, self.curveEvery, self.validationMetric, self.observer) = (validateEvery, max(1, curveEvery), validationMetric, observer)
    }

    /// Runs `step(k, learningRate)` for k in 0..<steps; it trains and returns named scalars, the
    /// first of which is the loss. `validate()` runs on schedule and after the last step;
    /// `onBest` is called whenever it improves, so the caller can keep those weights.
    public func run(step: (Int, Float) throws -> [(name: String, value: Float)], validate: (() -> Double)? = nil,
                    onBest: (() -> Void)? = nil) throws -> TrainingSummary {
        var curves: [CurvePoint] = []
        var best: (step: Int, score: Double)?
        var smoothed: [(name: String, value: Float)] = []
        var loss: Float = .nan
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
        func check(_ k: Int) {
            guard let validate else { return }
            let score = validate()
            curves.append(CurvePoint(step: k, name: validationMetric, value: score))
            observer?.validation(k, score: score)
            if best == nil || score > best!.score {
                best = (k, score)
                onBest?()
            }
        }
        for k in 0..<steps {
            let lr = schedule.rate(at: k)
            let scalars = try step(k, lr)
            loss = scalars.first?.value ?? .nan
            guard loss.isFinite else {
                throw TrainingError(message: "training diverged: loss is \(loss) at step \(k + 1) of \(steps) (learning rate \(lr))")
            }
            // Each scalar smoothed with its own running average; a scalar that is absent at a step
            // (no confident pseudo-label to audit) keeps its value.
            for (name, value) in scalars where value.isFinite {
                if let i = smoothed.firstIndex(where: { $0.name == name }) {
                    smoothed[i].value = 0.98 * smoothed[i].value + 0.02 * value
                } else {
                    smoothed.append((name, value))
                }
            }
            if (k + 1) % curveEvery == 0 || k + 1 == steps {
                for (name, value) in smoothed { curves.append(CurvePoint(step: k + 1, name: name, value: Double(value))) }
                curves.append(CurvePoint(step: k + 1, name: "lr", value: Double(lr)))
            }
            let t = elapsed()
            observer?.trainingStep(k + 1, of: steps, scalars: smoothed, learningRate: lr,
                                   samplesPerSecond: Double((k + 1) * samplesPerStep) / max(t, 1e-9),
                                   etaSeconds: t / Double(k + 1) * Double(steps - k - 1))
            if validateEvery > 0 && (k + 1) % validateEvery == 0 && k + 1 != steps { check(k + 1) }
        }
        check(steps)
        let seconds = elapsed()
        observer?.trainingFinished()
        return TrainingSummary(steps: steps, seconds: seconds, samplesPerSecond: Double(steps * samplesPerStep) / max(seconds, 1e-9),
                               curves: curves, best: best, finalLoss: loss)
    }
}

extension Trainer {
    /// Trains `learner` by `spec` on what `input` grants: draws each step's typed batch from the
    /// streams the learner needs (each with its own random stream of the trial), differentiates
    /// the step's loss with respect to the network's trainable parameters, updates them, keeps the
    /// EMA of the weights, audits pseudo-labels against the held-back labels, validates on
    /// schedule and returns the best-validated weights (the EMA's when it is on).
    public static func fit<L: Learner>(_ learner: L, input: TrainingInput, spec: TrainingSpec, method: String) throws -> TrainedModel {
        let steps = try LearnerSteps(learner, input: input, spec: spec, method: method)
        let network = learner.network
        let trainer = Trainer(steps: spec.steps, schedule: spec.learningRateSchedule, samplesPerStep: steps.samplesPerStep,
                              validateEvery: spec.validateEvery, validationMetric: input.validator?.metric ?? "val_accuracy",
                              observer: input.observer)
        // The weights validated and returned: the method's own average (a mean teacher), else the
        // framework's EMA, else the raw weights.
        func averaged() -> [String: Tensor]? { learner.evaluationWeights ?? steps.ema?.shadow }
        func current() -> [String: Tensor] {
            averaged() ?? Dictionary(uniqueKeysWithValues: (network.namedParameters() + network.namedBuffers()).map { ($0.path, $0.tensor.detached) })
        }
        var best: [String: Tensor]?
        let summary = try trainer.run(step: { k, lr in try steps.run(step: k, learningRate: lr) },
                                      validate: input.validator.map { validator in
            { validator.score(learner.evaluables, averaged().map { ForwardContext(training: false, overrides: $0, updatesRunningStatistics: false) } ?? .eval) }
        },
           onBest: { best = current() })
        network.load(best ?? current())
        return TrainedModel(learner.evaluables, summary: summary)
    }
}

/// A learner's training steps as the trainer runs them, one at a time: the typed batch drawn from
/// the streams it needs, its loss differentiated with respect to the network's trainable
/// parameters, the optimizer's update, the learner's `afterUpdate`, the EMA of the weights, and
/// the audit of pseudo-labels against the held-back labels. `Trainer.fit` drives it with a
/// schedule and validation; `benchbench kernels` times it as a method's step.
public final class LearnerSteps<L: Learner> {
    public let learner: L
    let input: TrainingInput
    let spec: TrainingSpec
    var streams: Streams
    let optimizer: Optimizer
    var ema: EMA?
    var stepRNG: RNG

    public init(_ learner: L, input: TrainingInput, spec: TrainingSpec, method: String) throws {
        self.learner = learner
        (self.input, self.spec) = (input, spec)
        streams = try Streams(learner.needs, input: input, method: method)
        optimizer = spec.makeOptimizer()
        ema = spec.emaDecay > 0 ? EMA(of: learner.network, decay: spec.emaDecay, warmup: true) : nil
        stepRNG = input.rng("step")
    }

    /// Images a step draws (labeled, unlabeled and episode images; a view of one is not counted twice).
    public var samplesPerStep: Int { streams.samplesPerStep }

    /// Step `k` (0-based) at `learningRate`; returns the loss first, then the step's other scalars.
    public func run(step k: Int, learningRate: Float) throws -> [(name: String, value: Float)] {
        let network = learner.network
        optimizer.learningRate = learningRate
        try learner.prepare(step: k, of: spec.steps)
        var batch = streams.next()
        (batch.step, batch.steps) = (k, spec.steps)
        // Only the step's numbers leave the closure: its loss tensor would keep the graph, and
        // through it every parameter, alive across the update.
        var extra: [(name: String, value: Float)] = [], pseudo: PseudoLabels?
        let forwardRNG = stepRNG.derive("forward")
        let (loss, gradients) = valueAndGradient(at: network.trainableParameters()) { parameters in
            // The context lives only inside the closure, so once the graph is gone the network
            // holds the only reference to each parameter and the optimizer updates in place.
            var ctx = ForwardContext(training: true, rng: forwardRNG, overrides: parameters)
            let out = learner.step(batch, &ctx)
            (extra, pseudo) = (out.scalars, out.pseudoLabels)
            return out.loss
        }
        optimizer.update(network, gradients: gradients)
        learner.afterUpdate()
        ema?.update(from: network)
        var scalars: [(name: String, value: Float)] = [("loss", loss.item)]
        scalars += extra
        if let pseudo, let heldBack = input.heldBack, let positions = batch.unlabeled?.positions {
            let accuracy = heldBack.accuracy(of: pseudo.predicted, at: positions, mask: pseudo.mask)
            scalars.append(("pseudo_label_accuracy", accuracy.map(Float.init) ?? .nan))
        }
        return scalars
    }
}

/// The streams a learner asked for, each seeded from its own named stream of the trial.
struct Streams {
    var labeled: LabeledStream?
    var unlabeled: UnlabeledStream?
    var episodes: EpisodeStream?
    let episodesPerStep: Int

    init(_ needs: StreamNeeds, input: TrainingInput, method: String) throws {
        episodesPerStep = max(1, needs.episodesPerStep)
        let data = input.data
        if let n = needs.labeled {
            guard let pool = data.labeled else { throw TrainingError(message: "\(method) needs labeled examples, which its regime does not grant") }
            labeled = try pool.stream(batchSize: n.batchSize, view: n.view, rng: input.rng("labeled"))
        }
        if let n = needs.unlabeled {
            unlabeled = try data.unlabeledPool(for: method).stream(batchSize: n.batchSize, views: n.views, rng: input.rng("unlabeled"))
        }
        if let n = needs.episodes {
            guard let pool = data.episodes else { throw TrainingError(message: "\(method) needs training episodes, which its regime does not grant") }
            episodes = try pool.stream(way: n.way, shot: n.shot, query: n.query, rng: input.rng("episodes"))
        }
        guard labeled != nil || unlabeled != nil || episodes != nil else {
            throw TrainingError(message: "\(method) asks for no data to train on")
        }
    }

    var samplesPerStep: Int {
        (labeled?.batchSize ?? 0) + (unlabeled?.batchSize ?? 0) + (episodes.map { $0.sampler.way * ($0.sampler.shot + $0.sampler.query) * episodesPerStep } ?? 0)
    }

    mutating func next() -> TrainingBatch {
        var drawn: [EpisodeBatch] = []
        if episodes != nil { for _ in 0..<episodesPerStep { drawn.append(episodes!.next()) } }
        return TrainingBatch(labeled: labeled?.next(), unlabeled: unlabeled?.next(), episodes: drawn)
    }
}

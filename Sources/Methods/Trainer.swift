import Foundation
import NNCore
import TensorCore

/// Why a training run stopped early.
public struct TrainingError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
}

/// What a run hands to whoever watches it: progress lines, curves, validation scores.
public protocol TrainingObserver: AnyObject {
    func trainingStep(_ step: Int, of total: Int, loss: Float, learningRate: Float, samplesPerSecond: Double, etaSeconds: Double)
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
}

/// The loop every method trains with: a step budget, a learning-rate schedule, periodic
/// validation (keeping the best score), curves, progress for an observer, and a clean stop with
/// the reason when the loss stops being finite.
public struct Trainer {
    public var steps: Int
    public var schedule: LearningRateSchedule
    public var samplesPerStep: Int
    /// Validate every this many steps (and after the last); 0 for never.
    public var validateEvery: Int
    /// Record the (smoothed) loss and rate in the curves every this many steps.
    public var curveEvery: Int
    public weak var observer: TrainingObserver?

    public init(steps: Int, schedule: LearningRateSchedule, samplesPerStep: Int, validateEvery: Int = 0, curveEvery: Int = 50,
                observer: TrainingObserver? = nil) {
        (self.steps, self.schedule, self.samplesPerStep) = (steps, schedule, samplesPerStep)
        (self.validateEvery, self.curveEvery, self.observer) = (validateEvery, max(1, curveEvery), observer)
    }

    /// Runs `step(k, learningRate)` (which trains and returns the loss) for k in 0..<steps, and
    /// `validate()` on schedule. `onBest` is called whenever validation improves, so the caller can
    /// keep those weights.
    public func run(step: (Int, Float) throws -> Float, validate: (() -> Double)? = nil,
                    onBest: (() -> Void)? = nil) throws -> TrainingSummary {
        var curves: [CurvePoint] = []
        var best: (step: Int, score: Double)?
        var smoothed: Float = .nan, loss: Float = .nan
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
        func check(_ k: Int) {
            guard let validate else { return }
            let score = validate()
            curves.append(CurvePoint(step: k, name: "val_accuracy", value: score))
            observer?.validation(k, score: score)
            if best == nil || score > best!.score {
                best = (k, score)
                onBest?()
            }
        }
        for k in 0..<steps {
            let lr = schedule.rate(at: k)
            loss = try step(k, lr)
            guard loss.isFinite else {
                throw TrainingError(message: "training diverged: loss is \(loss) at step \(k + 1) of \(steps) (learning rate \(lr))")
            }
            smoothed = smoothed.isNaN ? loss : 0.98 * smoothed + 0.02 * loss
            if (k + 1) % curveEvery == 0 || k + 1 == steps {
                curves.append(CurvePoint(step: k + 1, name: "loss", value: Double(smoothed)))
                curves.append(CurvePoint(step: k + 1, name: "lr", value: Double(lr)))
            }
            let t = elapsed()
            observer?.trainingStep(k + 1, of: steps, loss: smoothed, learningRate: lr,
                                   samplesPerSecond: Double((k + 1) * samplesPerStep) / max(t, 1e-9),
                                   etaSeconds: t / Double(k + 1) * Double(steps - k - 1))
            if validateEvery > 0 && (k + 1) % validateEvery == 0 && k + 1 != steps { check(k + 1) }
        }
        if validateEvery > 0 || validate != nil { check(steps) }
        let seconds = elapsed()
        observer?.trainingFinished()
        return TrainingSummary(steps: steps, seconds: seconds, samplesPerSecond: Double(steps * samplesPerStep) / max(seconds, 1e-9),
                               curves: curves, best: best, finalLoss: loss)
    }
}

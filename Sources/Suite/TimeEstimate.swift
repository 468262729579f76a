import DataCore
import Evaluation
import Methods

/// A rough duration of a trial on a 2-core laptop-class CPU, from throughputs measured in suites
/// on such a machine (release build, a 2-vCPU Xeon with AVX-512, the engine's own GEMM, December
/// 2026; an AVX2-only machine of the same class is about a quarter slower). conv4 trains about
/// 1,100 images/s at width 64 and 2,900 at width 32 on 28x28 greyscale (supervised, batches of 128,
/// validation included): the narrow network spends more of its step outside the GEMMs, so the cost
/// grows less than the width squared. The 256-wide MLP trains ~75,000 images/s. Each method scales
/// the supervised step by its own `Workload.stepCost` (inner loops, extra passes) and its
/// few-shot adapter by `adapterCost`; validation runs are counted (100 episodes through the
/// adapter, or the validation images once). The linear probe costs ~4 µs per labeled example and
/// feature for 10 classes, in proportion to the classes (L-BFGS to convergence streams the
/// features hundreds of times), so a wide
/// representation (3,136 features of two conv4 blocks, 784 raw pixels) dominates evaluation.
/// Scaled by width and image size; the dry run says these are estimates, and prefers measured
/// times of earlier identical trials.
public enum TimeEstimate {
    /// A trial's estimate by part, in seconds.
    public struct Parts: Equatable, Sendable {
        public var training = 0.0, validation = 0.0, evaluation = 0.0
        public var total: Double { training + validation + evaluation }
    }

    /// Seconds of a supervised training step per image (one forward and one backward pass).
    static func trainSecondsPerSample(_ w: Workload, imageShape: [Int]) -> Double {
        let pixels = Double(imageShape.reduce(1, *))
        let area = Double(imageShape.dropFirst().reduce(1, *)) / 784
        if w.backbone == "mlp" {
            return (pixels * Double(max(w.width, 1)) / (784 * 256)) / 75_000
        }
        let width = Double(max(w.width, 1)) / 64
        return area * (0.52 * width + 0.48 * width * width) / 1100
    }

    public static func seconds(for trial: PlannedTrial) -> Double { parts(for: trial).total }

    public static func parts(for trial: PlannedTrial) -> Parts {
        let spec = trial.dataset.spec
        let shape = spec.knownImageShape ?? [1, 28, 28]
        let w = trial.config.workload
        let perSample = trainSecondsPerSample(w, imageShape: shape)
        // A forward pass costs about a third of a training step; fitted and raw-pixel
        // representations are a GEMM or a copy, next to nothing.
        let fitted = w.backbone == "fit" || w.backbone == "pixels"
        let forward = fitted ? 0 : perSample / 3
        let (train, test) = (Double(spec.knownTrainCount ?? 60_000), Double(spec.knownTestCount ?? 10_000))
        let features = w.features(imageShape: shape)
        var parts = Parts()
        // Methods fitted by passes over the pool ("fit": PCA, k-means, a mixture) cost a GEMM of
        // the pool against `width` vectors per pass, at about 10 GFLOP/s.
        parts.training = w.backbone == "fit" ? Double(max(w.steps, 1)) * train * Double(shape.reduce(1, *)) * Double(max(w.width, 1)) * 4 / 1e10
                                             : Double(w.steps * w.samplesPerStep) * perSample * w.stepCost
        let classes = Double(spec.trainingClassCount ?? 10)
        // As the executor does: the validation split is capped at a fifth of a class.
        let perClassValidation = min(trial.validationPerClass ?? (trial.trainBudget == .all ? 300 : 100), max(1, (spec.knownImagesPerClass ?? 6000) / 5))
        let validation = Double(perClassValidation) * classes
        let e = trial.evaluation.episodes
        /// Images of `count` episodes of each setting, through the adapter.
        func episodeImages(_ settings: [(way: Int, shot: Int)], count: Int) -> Double {
            settings.reduce(0) { $0 + Double(count * $1.way * ($1.shot + e.query)) }
        }
        if !fitted {
            // What the trainer's validator reads at each validation (TrialContext.validator).
            let pass: Double
            switch trial.method.regime {
            case .fewShot:
                // Without validation classes (a split such as [5, 0, 5]) there is nothing to validate on.
                let way = min(e.way, spec.knownValidationClasses ?? e.way)
                pass = way < 2 ? 0 : episodeImages([(way, e.shots.first ?? 1)], count: TrialContext.validationEpisodes) * forward * w.adapterCost
            case .supervised, .semiSupervised, .selfSupervised: pass = validation * forward
            }
            parts.validation = Double(w.validations) * pass
        }
        let p = trial.evaluation.protocols
        var evaluation = 0.0
        if p.contains(.native) { evaluation += test * forward }
        if p.contains(where: { [.linear, .knn, .finetune].contains($0) }) {
            // Features of the test images and of the training images the budgets use.
            let used = trial.evaluation.budgets.map { b -> Double in
                if case .perClass(let n) = b { return Double(n) * classes + validation }
                return train
            }.max() ?? 0
            evaluation += (test + used) * forward
        }
        let plan = trial.evaluation
        for budget in plan.budgets {
            let labeled: Double
            if case .perClass(let n) = budget { labeled = Double(n) * classes } else { labeled = max(0, train - validation) }
            func at(_ q: EvaluationProtocol) -> Bool { p.contains(q) && plan.budgets(for: q).contains(budget) }
            if at(.linear) { evaluation += 0.5 + labeled * Double(features) * classes / 10 * 4e-6 }
            if at(.knn) { evaluation += 0.5 + labeled * test * 1.4e-8 }
            // Fine-tuning: 400 steps of up to 64, validated 8 times, then the test images.
            if at(.finetune) { evaluation += 400 * min(64, labeled) * perSample + (8 * validation + test) * forward }
        }
        let episodeRuns = Double(e.count * e.settings.count)
        // Frozen features of every training image once, then a small logistic fit per episode.
        if p.contains(.episodesLinear) { evaluation += train * forward + episodeRuns * 0.004 }
        // The method's adapter reads each episode's support and query images.
        if p.contains(.episodes) { evaluation += episodeImages(e.settings, count: e.count) * forward * w.adapterCost }
        parts.evaluation = evaluation
        return parts
    }
}

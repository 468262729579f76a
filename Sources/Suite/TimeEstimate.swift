import DataCore
import Evaluation
import Methods

/// A rough duration of a trial on a 2-core laptop-class CPU, from throughputs measured in suites
/// on such a machine (release build; conv4 from the default suite of 2026-12-01 on the engine with
/// its own AVX-512 GEMM, where supervised conv4-64 trained 2,500-2,800 samples/s; an AVX2-only
/// machine of the same class is about a quarter slower): conv4-64 trains ~2,600 samples/s on 28x28
/// greyscale, the 256-wide MLP ~75,000; the linear
/// probe costs ~4 µs per labeled example and feature (L-BFGS to convergence streams the features
/// hundreds of times), so a wide representation (3,136 features of two conv4 blocks, 784 raw
/// pixels) dominates evaluation. Scaled by width and image size; the dry run says these are
/// estimates, and prefers measured times of earlier identical trials.
public enum TimeEstimate {
    static func trainSecondsPerSample(_ w: Workload, imageShape: [Int]) -> Double {
        let pixels = Double(imageShape.reduce(1, *))
        let area = Double(imageShape.dropFirst().reduce(1, *)) / 784
        if w.backbone == "mlp" {
            return (pixels * Double(max(w.width, 1)) / (784 * 256)) / 75_000
        }
        let width = Double(max(w.width, 1)) / 64
        return area * (0.15 * width + 0.85 * width * width) / 2600
    }

    public static func seconds(for trial: PlannedTrial) -> Double {
        let spec = trial.dataset.spec
        let shape = spec.knownImageShape ?? [1, 28, 28]
        let perSample = trainSecondsPerSample(trial.config.workload, imageShape: shape)
        let forward = perSample / 3    // a forward pass costs about a third of a training step
        let (train, test) = (Double(spec.knownTrainCount ?? 60_000), Double(spec.knownTestCount ?? 10_000))
        let w = trial.config.workload
        let features = w.features(imageShape: shape)
        // Methods fitted by passes over the pool ("fit": PCA, k-means, a mixture) cost a GEMM of
        // the pool against `width` vectors per pass, at about 10 GFLOP/s.
        let training = w.backbone == "fit" ? Double(max(w.steps, 1)) * train * Double(shape.reduce(1, *)) * Double(max(w.width, 1)) * 4 / 1e10
                                           : Double(w.steps * w.samplesPerStep) * perSample
        let classes = Double(spec.trainingClassCount ?? 10)
        // As the executor does: the validation split is capped at a fifth of a class.
        let perClassValidation = min(trial.validationPerClass ?? (trial.trainBudget == .all ? 300 : 100), max(1, (spec.knownImagesPerClass ?? 6000) / 5))
        let validation = Double(perClassValidation) * classes
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
            if at(.linear) { evaluation += 0.5 + labeled * Double(features) * 4e-6 }
            if at(.knn) { evaluation += 0.5 + labeled * test * 1.4e-8 }
            // Fine-tuning: 400 steps of up to 64, validated 8 times, then the test images.
            if at(.finetune) { evaluation += 400 * min(64, labeled) * perSample + (8 * validation + test) * forward }
        }
        let e = trial.evaluation.episodes
        let episodeRuns = Double(e.count * e.settings.count)
        // Frozen features of every training image once, then a small logistic fit per episode.
        if p.contains(.episodesLinear) { evaluation += train * forward + episodeRuns * 0.004 }
        // The method's adapter embeds each episode's support and query images.
        if p.contains(.episodes) {
            let imagesPerEpisode = Double((e.ways.max() ?? e.way) * (e.query + (e.shots.max() ?? 1)))
            evaluation += episodeRuns * imagesPerEpisode * forward
        }
        return training + evaluation
    }
}

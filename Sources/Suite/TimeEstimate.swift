import DataCore
import Evaluation
import Methods

/// A rough duration of a trial on a 2-core laptop-class CPU, from throughputs measured with
/// `benchbench kernels` and suites on such a machine (release build): conv4-64 trains ~730
/// samples/s on 28x28 greyscale, the 256-wide MLP ~75,000. Scaled by width and image size;
/// the dry run says these are estimates, and prefers measured times of earlier identical trials.
public enum TimeEstimate {
    static func trainSecondsPerSample(_ w: Workload, imageShape: [Int]) -> Double {
        let pixels = Double(imageShape.reduce(1, *))
        let area = Double(imageShape.dropFirst().reduce(1, *)) / 784
        if w.backbone == "mlp" {
            return (pixels * Double(max(w.width, 1)) / (784 * 256)) / 75_000
        }
        let width = Double(max(w.width, 1)) / 64
        return area * (0.15 * width + 0.85 * width * width) / 730
    }

    public static func seconds(for trial: PlannedTrial) -> Double {
        let shape = trial.dataset.spec.knownImageShape ?? [1, 28, 28]
        let perSample = trainSecondsPerSample(trial.config.workload, imageShape: shape)
        let training = Double(trial.config.workload.steps * trial.config.workload.samplesPerStep) * perSample
        let images = Double(trial.dataset.spec.knownImageCount ?? 70_000)
        var evaluation = 0.0
        let p = trial.evaluation.protocols
        // Features of every image once (a forward pass costs about a third of a training step).
        if !p.isEmpty { evaluation += images * perSample / 3 }
        for budget in trial.evaluation.budgets {
            let scale = budget == .all ? 1.0 : 0.2
            if p.contains(.linear) { evaluation += 6 * scale }
            if p.contains(.knn) { evaluation += 2 * scale }
            if p.contains(.finetune) { evaluation += 400 * 64 * perSample + images * perSample / 3 }
        }
        if p.contains(.episodes) {
            evaluation += Double(trial.evaluation.episodes.count * trial.evaluation.episodes.shots.count) * 0.004
        }
        return training + evaluation
    }
}

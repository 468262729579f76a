import DataCore
import TensorCore

extension FewShot {
    /// Accuracy of a logistic-regression head fitted on each episode's support features (L2-
    /// normalised, fixed L2 strength: five examples leave nothing to choose it on), over episodes
    /// 0..<count: the adaptation of methods without their own (Chen et al.'s fine-tune baseline
    /// freezes the encoder and trains only the head, as here).
    /// `features` holds row `row(i)` for the episodes' image i (all images by default).
    public static func linearHeadAccuracy(features: Tensor, row: (Int) -> Int = { $0 }, sampler: EpisodeSampler, count: Int,
                                          l2: Float = 0.01) -> MeanCI {
        let normalised = noGrad { features / ((features * features).sum(axis: 1, keepDims: true) + 1e-12).sqrt() }
        var probe = LinearProbe()
        probe.maxIterations = 100
        probe.tolerance = 1e-4
        let accuracies: [Double] = (0..<count).map { index in
            let e = sampler.episode(index)
            let fit = probe.fit(normalised.gatherRows(e.support.map(row)), e.supportLabels, classes: sampler.way, l2: l2)
            return LinearProbe.accuracy(fit, normalised.gatherRows(e.query.map(row)), e.queryLabels, sampler.way).accuracy
        }
        return MeanCI(accuracies)
    }
}

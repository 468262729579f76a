import DataCore
import Evaluation
import Foundation
import Methods
import NNCore
import TensorCore

/// One measured value of a trial, as it is stored and shown.
struct Score {
    var protocolName: String
    var budget: String
    var name: String
    var value: Double
    var ci95: Double?
    var n: Int?
    var show = true

    /// A score of protocol `p`.
    init(_ p: EvaluationProtocol, _ budget: String, _ name: String, _ value: Double, ci95: Double? = nil, n: Int? = nil, show: Bool = true) {
        self.init(p.rawValue, budget, name, value, ci95: ci95, n: n, show: show)
    }

    /// A fact of training (best validation score, loss, memory, times), stored under "train".
    static func train(_ budget: String, _ name: String, _ value: Double, show: Bool = true) -> Score {
        Score("train", budget, name, value, show: show)
    }

    private init(_ protocolName: String, _ budget: String, _ name: String, _ value: Double, ci95: Double? = nil, n: Int? = nil, show: Bool = true) {
        (self.protocolName, self.budget, self.name, self.value, self.ci95, self.n, self.show) = (protocolName, budget, name, value, ci95, n, show)
    }
}

/// The frozen encoder's features, computed at most once per trial and shared by the linear and
/// kNN protocols: those of the training images some evaluation budget uses (its labeled and
/// validation examples, drawn like a training split's) and of every test image.
final class FrozenFeatures {
    let trained: TrainedModel
    let context: TrialContext
    private var computed: (row: [Int: Int], train: Tensor, test: Tensor)?
    /// Time spent computing the features, for the evaluation-time breakdown.
    private(set) var seconds = 0.0

    init(trained: TrainedModel, context: TrialContext) { (self.trained, self.context) = (trained, context) }

    /// The features of the training images the frozen protocols' budgets use (all of them, the
    /// first time: a protocol restricted to fewer budgets may ask first) and of the test images.
    func of() throws -> (train: ([Int]) -> Tensor, test: Tensor) {
        if computed == nil {
            let start = Date()
            defer { seconds += Date().timeIntervalSince(start) }
            let d = context.training
            let plan = context.trial.evaluation
            let budgets = Set([EvaluationProtocol.linear, .knn].filter(plan.protocols.contains).flatMap(plan.budgets(for:)))
            let splits = try plan.budgets.filter(budgets.contains).map(context.split)
            let used = Array(Set(splits.flatMap { $0.labeled + $0.validation })).sorted()
            let row = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($0.element, $0.offset) })
            let train = Evaluate.features(trained.encoder, images: used.count == d.trainLabels.count ? d.trainImages : d.trainImages.gatherRows(used),
                                          path: trained.encoderPath)
            computed = (row, train, Evaluate.features(trained.encoder, images: d.testImages, path: trained.encoderPath))
        }
        let c = computed!
        return ({ indices in c.train.gatherRows(indices.map { c.row[$0]! }) }, c.test)
    }
}

/// A protocol of DESIGN.md §7 as code: what it scores of a trained model. `TrialExecutor` runs
/// the evaluators of the protocols a trial's plan lists, in order.
struct Evaluator {
    let kind: EvaluationProtocol
    let score: (TrainedModel, TrialContext, FrozenFeatures) throws -> [Score]

    static let all: [Evaluator] = [native, linear, knn, finetune, episodes, episodesLinear]

    /// The method's own classifier on the test images of its training classes, and what it
    /// measures of itself there (clusters scored against the labels, likelihoods, errors).
    static let native = Evaluator(kind: .native) { trained, c, _ in
        let d = c.training
        guard !d.testLabels.isEmpty else { return [] }
        let budget = "\(c.trial.trainBudget)"
        var scores: [Score] = []
        if let classifier = trained.classifier {
            let r = Evaluate.accuracy(classifier, images: d.testImages, labels: d.testLabels, classes: d.classCount)
            scores += [Score(.native, budget, "accuracy", r.accuracy, n: r.count)]
                + r.perClass.enumerated().map { Score(.native, budget, "class_accuracy/\(d.classNames[$0.offset])", $0.element, show: false) }
        }
        if let m = trained.parts.measures {
            if let clusters = m.clusters {
                let a = clusters(d.testImages), n = d.testLabels.count
                scores.append(Score(.native, budget, "cluster_accuracy", Clustering.accuracy(a, d.testLabels, clusters: m.clusterCount, classes: d.classCount), n: n))
                scores.append(Score(.native, budget, "nmi", Clustering.nmi(a, d.testLabels, clusters: m.clusterCount, classes: d.classCount), n: n))
            }
            for (name, value) in try m.values?(d.testImages) ?? [] { scores.append(Score(.native, budget, name, value, n: d.testLabels.count)) }
        }
        return scores
    }

    static let linear = frozen(.linear) { trained, c, budget, eval, train, test in
        let d = c.training
        let r = LinearProbe().evaluate(labeled: train(eval.labeled), labels: eval.labeled.map { d.trainLabels[$0] },
                                       validation: train(eval.validation), validationLabels: eval.validation.map { d.trainLabels[$0] },
                                       test: test, testLabels: d.testLabels, classes: d.classCount)
        // What the fit cost and whether it finished: the L-BFGS iterations of the whole
        // regularisation path, and the share of its fits that met the gradient tolerance; and the
        // kept fit's validation accuracy, what a choice made on the validation split reads (a
        // representation's layer, a setting) when the probe is what it is chosen for.
        return [Score(.linear, "\(budget)", "accuracy", r.testAccuracy.accuracy, n: r.testAccuracy.count),
                Score(.linear, "\(budget)", "validation_accuracy", r.validationAccuracy, n: eval.validation.count, show: false),
                Score(.linear, "\(budget)", "fit_iterations", Double(r.path.map(\.iterations).reduce(0, +)), show: false),
                Score(.linear, "\(budget)", "converged_rate", Double(r.path.filter(\.converged).count) / Double(r.path.count), show: false)]
    }

    static let knn = frozen(.knn) { trained, c, budget, eval, train, test in
        let d = c.training
        let y = eval.labeled.map { d.trainLabels[$0] }
        let r = KNN.accuracy(reference: train(eval.labeled), referenceLabels: y, query: test, queryLabels: d.testLabels,
                             classes: d.classCount, k: min(20, y.count))
        return [Score(.knn, "\(budget)", "accuracy", r.accuracy, n: r.count)]
    }

    static let finetune = Evaluator(kind: .finetune) { trained, c, _ in
        guard !c.training.testLabels.isEmpty else { return [] }
        return try c.trial.evaluation.budgets(for: .finetune).map { budget in
            let r = try FineTune().evaluate(encoder: trained.encoder, features: trained.featureCount, dataset: c.training,
                                            split: try c.split(budget), seed: c.trial.seed)
            return Score(.finetune, "\(budget)", "accuracy", r.testAccuracy.accuracy, n: r.testAccuracy.count)
        }
    }

    /// The method's own adaptation on fixed novel-class episodes.
    static let episodes = Evaluator(kind: .episodes) { trained, c, _ in
        guard let adapter = trained.adapter else { return [] }
        return try novelEpisodes(c).map { label, stream, count in
            let r = FewShot.accuracy(stream, count: count) { episode in
                adapter.logits(support: episode.support, supportLabels: episode.supportLabels, way: episode.way, query: episode.query,
                               context: .eval).argmaxRows()
            }
            return Score(.episodes, label, "accuracy", r.mean, ci95: r.ci95, n: r.n)
        }
    }

    /// The same episodes, a logistic head on frozen L2-normalised support features.
    /// Features are computed for the images the episodes read only: every training image took
    /// 44-57 s of a Fashion-MNIST 5/5 trial (conv4-64, 60,000 images, half of them base classes
    /// no episode draws).
    static let episodesLinear = Evaluator(kind: .episodesLinear) { trained, c, _ in
        let runs = try novelEpisodes(c)
        guard !runs.isEmpty else { return [] }
        var used = Set<Int>()
        for run in runs {
            for i in 0..<run.count {
                let e = run.stream.sampler.episode(i)
                used.formUnion(e.support)
                used.formUnion(e.query)
            }
        }
        let rows = used.sorted()
        var position = [Int](repeating: -1, count: c.full.trainImages.shape[0])
        for (k, i) in rows.enumerated() { position[i] = k }
        let features = Evaluate.features(trained.encoder, images: c.full.trainImages.gatherRows(rows), path: trained.encoderPath)
        return runs.map { label, stream, count in
            let r = FewShot.linearHeadAccuracy(features: features, row: { position[$0] }, sampler: stream.sampler, count: count)
            return Score(.episodesLinear, label, "accuracy", r.mean, ci95: r.ci95, n: r.n)
        }
    }

    /// Fixed episodes (seed 0) of the novel classes for each (way, shot) of the plan, with the
    /// label their scores are stored under and how many to score.
    static func novelEpisodes(_ c: TrialContext) throws -> [(label: String, stream: EpisodeStream, count: Int)] {
        guard let classes = c.full.classSplit?.novel else { return [] }
        let e = c.trial.evaluation.episodes
        let pool = EpisodePool(dataset: c.full, classes: classes)
        return try e.settings.map { way, shot in
            (EpisodeSettings.label(way: way, shot: shot), try pool.fixed(way: way, shot: shot, query: e.query, seed: 0), e.count)
        }
    }

    /// A frozen-feature protocol scored at each of the plan's budgets.
    static func frozen(_ kind: EvaluationProtocol,
                       _ score: @escaping (TrainedModel, TrialContext, LabelBudget, LabelSplit, ([Int]) -> Tensor, Tensor) -> [Score]) -> Evaluator {
        Evaluator(kind: kind) { trained, c, features in
            guard !c.training.testLabels.isEmpty else { return [] }
            let splits = try c.trial.evaluation.budgets(for: kind).map { ($0, try c.split($0)) }
            guard !splits.isEmpty else { return [] }   // no budget to score at (the planner and `run` refuse such plans)
            let (train, test) = try features.of()
            return splits.flatMap { budget, eval in score(trained, c, budget, eval, train, test) }
        }
    }
}

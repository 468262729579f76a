import DataCore
import Evaluation
import Foundation
import Methods
import NNCore
import TensorCore

/// One trial's data as its regime divides it: what the method is granted (DESIGN.md §6), how it
/// is validated, and what evaluation may read. The test split appears only in the evaluators.
struct TrialContext {
    let trial: PlannedTrial
    /// The dataset as loaded, with its few-shot class split if any.
    let full: Dataset
    /// The classes the method trains on: the base classes with a class split, else all.
    let training: Dataset
    let validationPerClass: Int
    let trainSplit: LabelSplit

    init(trial: PlannedTrial, full: Dataset) throws {
        self.trial = trial
        self.full = full
        training = try full.classSplit.map { try full.restricted(to: $0.base) } ?? full
        let smallest = training.trainClassCounts.min() ?? 0
        // Few-shot model selection uses the validation classes: the base classes keep every example.
        let usesValidationClasses = trial.method.regime == .fewShot && (full.classSplit?.validation.count ?? 0) >= 2
        validationPerClass = usesValidationClasses ? 0
            : min(trial.validationPerClass ?? (trial.trainBudget == .all ? 300 : 100), max(1, smallest / 5))
        trainSplit = try LabelSplit(labels: training.trainLabels, classes: training.classCount, budget: trial.trainBudget,
                                    validationPerClass: validationPerClass, seed: trial.seed, datasetHash: training.contentHash,
                                    datasetName: trial.dataset.id)
    }

    /// The split of the training classes at `budget` (same validation examples as training's).
    func split(_ budget: LabelBudget) throws -> LabelSplit {
        try LabelSplit(labels: training.trainLabels, classes: training.classCount, budget: budget, validationPerClass: validationPerClass,
                       seed: trial.seed, datasetHash: training.contentHash, datasetName: trial.dataset.id)
    }

    /// What the method is handed: pools by regime, the regime's validator and the labels the
    /// unlabeled pool hides (kept by the framework for its pseudo-label audit).
    func trainingInput(observer: TrainingObserver?) throws -> TrainingInput {
        let d = training
        let (data, heldBack) = try TrainingData.granted(to: trial.method.regime, dataset: d, split: trainSplit)
        return TrainingInput(data: data, seed: trial.seed, key: "\(trial.method.id)/\(d.contentHash)/\(trainSplit.hash)",
                             validator: try validator(), heldBack: heldBack, observer: observer)
    }

    /// Model selection by regime: accuracy on the labeled validation split for classifiers;
    /// fixed validation-class episodes for few-shot methods (none without validation classes);
    /// a kNN score between two halves of the validation split for encoders without a classifier.
    /// Episodes of the validation classes a few-shot validation scores.
    static let validationEpisodes = 100

    func validator() throws -> Validator? {
        switch trial.method.regime {
        case .supervised, .semiSupervised:
            let (d, rows) = (training, trainSplit.validation)
            guard !rows.isEmpty else { return nil }
            return Validator(metric: "val_accuracy") { parts, ctx in
                guard let classifier = parts.classifier else { return Self.knnScore(parts, ctx, d, rows) }
                return Evaluate.accuracy(classifier, images: d.trainImages, labels: d.trainLabels, indices: rows, classes: d.classCount,
                                         context: ctx).accuracy
            }
        case .fewShot:
            guard let classes = full.classSplit?.validation, classes.count >= 2 else { return nil }
            let e = trial.evaluation.episodes
            let smallest = classes.map { c in full.trainLabels.lazy.filter { $0 == Int32(c) }.count }.min() ?? 0
            let shot = e.shots.first ?? 1
            guard smallest > shot else { return nil }
            let stream = try EpisodePool(dataset: full, classes: classes)
                .fixed(way: min(e.way, classes.count), shot: shot, query: min(e.query, smallest - shot), seed: 1)
            return Validator(metric: "val_episode_accuracy") { parts, ctx in
                FewShot.accuracy(stream, count: Self.validationEpisodes) { Self.classify($0, parts, ctx) }.mean
            }
        case .selfSupervised:
            let (d, rows) = (training, trainSplit.validation)
            guard rows.count >= 4 else { return nil }
            return Validator(metric: "val_knn_accuracy") { parts, ctx in Self.knnScore(parts, ctx, d, rows) }
        }
    }

    /// kNN accuracy of one half of `rows` (alternate examples) against the other, on the encoder's
    /// features in `ctx`.
    static func knnScore(_ parts: Evaluables, _ ctx: ForwardContext, _ d: Dataset, _ rows: [Int]) -> Double {
        let features = Evaluate.features(parts.encoder, images: d.trainImages.gatherRows(rows), path: parts.encoderPath, context: ctx)
        let reference = stride(from: 0, to: rows.count, by: 2).map { $0 }, query = stride(from: 1, to: rows.count, by: 2).map { $0 }
        return KNN.accuracy(reference: features.gatherRows(reference), referenceLabels: reference.map { d.trainLabels[rows[$0]] },
                            query: features.gatherRows(query), queryLabels: query.map { d.trainLabels[rows[$0]] },
                            classes: d.classCount, k: min(20, reference.count)).accuracy
    }

    /// An episode's query predictions: the method's own adapter, else the nearest support mean of
    /// its frozen features.
    static func classify(_ e: EpisodeBatch, _ parts: Evaluables, _ ctx: ForwardContext) -> [Int] {
        if let adapter = parts.adapter {
            return adapter.logits(support: e.support, supportLabels: e.supportLabels, way: e.way, query: e.query, context: ctx).argmaxRows()
        }
        let s = Evaluate.features(parts.encoder, images: e.support, path: parts.encoderPath, context: ctx)
        let q = Evaluate.features(parts.encoder, images: e.query, path: parts.encoderPath, context: ctx)
        let means = noGrad { ProtoNet.classMeans(s, labels: e.supportLabels, classes: e.way) }
        return noGrad { -ProtoNet.squaredDistances(q, means) }.argmaxRows()
    }
}

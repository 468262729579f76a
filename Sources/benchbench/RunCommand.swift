import ArgumentParser
import DataCore
import Evaluation
import Foundation
import Methods
import NNCore
import TensorCore

/// `benchbench run`: one trial, printed (the results store records it from the store issue on).
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train and evaluate one method at one label budget and seed.")

    @Option(help: "Method: supervised.")
    var method: String

    @Option(help: "Dataset: fashion-mnist, glyphs, glyphs-color, idx (with --idx-files).")
    var dataset: String

    @Option(help: "Label budget: all, or labels per class (10, 100, ...).")
    var budget: String

    @Option(help: "Seed of every random stream of the trial.")
    var seed: UInt64 = 0

    @Option(help: "Training steps (default: the method's own).")
    var steps: Int?

    @Option(help: "Backbone: conv4 or mlp.")
    var backbone = "conv4"

    @Option(help: "Use an exponential moving average of the weights (this decay, e.g. 0.999) for validation and the result.")
    var ema: Float?

    @Option(help: "Validation examples per class carved from the training part (default: 300 with all labels, 100 otherwise).")
    var validationPerClass: Int?

    @Option(help: "Evaluation protocols (comma-separated): native, linear, knn, finetune.")
    var protocols = "native,linear,knn"

    var protocolList: [String] { protocols.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    @Option(help: "Label budgets the linear, knn and finetune protocols are scored at (comma-separated; default: the training budget).")
    var evalBudgets: String?

    func evaluationBudgets(default budget: LabelBudget) throws -> [LabelBudget] {
        guard let evalBudgets else { return [budget] }
        return try evalBudgets.split(separator: ",").map { text in
            do {
                let b = try LabelBudget(parsing: String(text))
                if case .shot = b { throw DataError("K-shot budgets are scored by episodes, not by these protocols") }
                if case .none = b { throw DataError("'none' grants no labels to fit a probe on") }
                return b
            } catch let e as DataError { throw ValidationError("--eval-budgets '\(text)': \(e.message)") }
        }
    }

    @OptionGroup var data: DataOptions

    func validate() throws {
        guard method == "supervised" else { throw ValidationError("unknown method '\(method)'; available: supervised") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        for p in protocolList where !["native", "linear", "knn", "finetune"].contains(p) {
            throw ValidationError("--protocols: unknown protocol '\(p)'; expected native, linear, knn or finetune")
        }
        if let v = validationPerClass, v < 1 { throw ValidationError("--validation-per-class must be at least 1, got \(v)") }
        _ = try evaluationBudgets(default: .all)   // reject bad --eval-budgets before any training
    }

    func run() throws {
        let budget: LabelBudget
        do { budget = try LabelBudget(parsing: self.budget) } catch let e as DataError { throw ValidationError("--budget: \(e.message)") }
        let full = try data.load(dataset)
        // A dataset with a few-shot class split trains on its base classes; its novel classes are
        // scored by episodes on the learned features afterwards.
        let d = try full.classSplit.map { try full.restricted(to: $0.base) } ?? full
        let perClass = d.trainClassCounts.min() ?? 0
        // With every label, a larger validation set makes the best-weights choice less noisy (1,000
        // images picked a mid-training checkpoint 0.5 points worse on test).
        let validation = min(validationPerClass ?? (budget == .all ? 300 : 100), max(1, perClass / 5))
        let split = try LabelSplit(labels: d.trainLabels, classes: d.classCount, budget: budget, validationPerClass: validation,
                                   seed: seed, datasetHash: d.contentHash, datasetName: d.name)
        var config = Supervised.Config()
        config.backbone = backbone
        config.emaDecay = ema
        if let steps { config.steps = steps }
        if case .perClass(let n) = budget, steps == nil {
            // Few labels: fewer steps (they are epochs over a tiny set), same schedule shape.
            config.steps = min(config.steps, max(200, n * d.classCount * 2))
        }
        config.validateEvery = max(1, config.steps / 8)
        let progress = ProgressPrinter()
        let result = try Supervised.train(dataset: d, split: split, config: config, seed: seed, validate: { model, context in
            Evaluate.accuracy(model, images: d.trainImages, labels: d.trainLabels, indices: split.validation, classes: d.classCount,
                              context: context).accuracy
        }, observer: progress)
        progress.finish()
        let s = result.summary
        print("method: \(method) v\(Supervised.version)  dataset: \(d.name) (\(d.contentHash))  budget: \(budget)  seed: \(seed)  split: \(split.hash)")
        print("backbone: \(config.backbone)  steps: \(s.steps)  batch: \(min(config.batchSize, split.labeled.count))  labeled: \(split.labeled.count)  validation: \(split.validation.count)")
        if let best = s.best { print(String(format: "best validation accuracy: %.4f at step %d (weights kept)", best.score, best.step)) }
        if !d.testLabels.isEmpty && protocolList.contains("native") {
            let test = Evaluate.accuracy(result.model, images: d.testImages, labels: d.testLabels, classes: d.classCount)
            print(String(format: "native: test accuracy %.4f  (%d images)", test.accuracy, test.count))
            print("per-class test accuracy: " + test.perClass.map { String(format: "%.3f", $0) }.joined(separator: " "))
        }
        if !d.testLabels.isEmpty, let encoder = (result.model as? Sequential)?.children.first?.module,
           protocolList.contains(where: { ["linear", "knn", "finetune"].contains($0) }) {
            // The encoder frozen: its features of every training and test image, computed once and
            // scored at each evaluation budget (its labeled examples drawn like the training split's).
            let trainFeatures = Evaluate.features(encoder, images: d.trainImages, path: "0")
            let testFeatures = Evaluate.features(encoder, images: d.testImages, path: "0")
            for evalBudget in try evaluationBudgets(default: budget) {
                let eval = try LabelSplit(labels: d.trainLabels, classes: d.classCount, budget: evalBudget, validationPerClass: validation,
                                          seed: seed, datasetHash: d.contentHash, datasetName: d.name)
                guard !eval.labeled.isEmpty else { continue }
                let labeled = trainFeatures.gatherRows(eval.labeled), ylabeled = eval.labeled.map { d.trainLabels[$0] }
                if protocolList.contains("linear") {
                    let r = LinearProbe().evaluate(labeled: labeled, labels: ylabeled, validation: trainFeatures.gatherRows(eval.validation),
                                                   validationLabels: eval.validation.map { d.trainLabels[$0] },
                                                   test: testFeatures, testLabels: d.testLabels, classes: d.classCount)
                    print(String(format: "linear @ %@: test accuracy %.4f  (L2 %g chosen on validation, %d L-BFGS iterations, gradient %.1e)",
                                 evalBudget.description, r.testAccuracy.accuracy, r.fit.l2, r.fit.iterations, r.fit.gradientNorm))
                }
                if protocolList.contains("knn") {
                    let k = min(20, ylabeled.count)
                    let r = KNN.accuracy(reference: labeled, referenceLabels: ylabeled, query: testFeatures, queryLabels: d.testLabels,
                                         classes: d.classCount, k: k)
                    print(String(format: "knn @ %@: test accuracy %.4f  (k = %d, cosine, temperature 0.07)", evalBudget.description, r.accuracy, k))
                }
                if protocolList.contains("finetune") {
                    let r = try FineTune().evaluate(encoder: encoder, features: trainFeatures.shape[1], dataset: d, split: eval, seed: seed)
                    print(String(format: "finetune @ %@: test accuracy %.4f  (new head, encoder at 0.1x the rate, %d steps, validation %.4f)",
                                 evalBudget.description, r.testAccuracy.accuracy, r.steps, r.validationAccuracy))
                }
            }
        }
        print(String(format: "train time: %.1f s  samples/s: %.0f", s.seconds, s.samplesPerSecond))
        if let classes = full.classSplit, let backbone = (result.model as? Sequential)?.children.first?.module {
            // Features of every image (the backbone without its head), scored on novel-class episodes.
            let features = Evaluate.features(backbone, images: full.trainImages, path: "0")
            for shot in [1, 5] {
                let sampler = try EpisodeSampler(labels: full.trainLabels, classes: classes.novel, way: 5, shot: shot, query: 15,
                                                 seed: 0, datasetHash: full.contentHash)
                print("novel classes, 5-way \(shot)-shot, nearest class mean of features: \(FewShot.nearestMeanAccuracy(features: features, sampler: sampler, count: 600))")
            }
        }
    }
}

/// Progress on a terminal as one rewritten line; plain lines, a few per run, otherwise.
final class ProgressPrinter: TrainingObserver {
    let interactive = isatty(STDERR_FILENO) != 0
    var lastPrint = 0.0
    var lastValidation = ""

    func trainingStep(_ step: Int, of total: Int, loss: Float, learningRate: Float, samplesPerSecond: Double, etaSeconds: Double) {
        let now = Date().timeIntervalSince1970
        guard step == total || now - lastPrint >= (interactive ? 0.2 : 10) else { return }
        lastPrint = now
        let line = String(format: "step %d/%d  loss %.4f  lr %.4f  %.0f samples/s  ETA %.0f s%@", step, total, loss, learningRate,
                          samplesPerSecond, etaSeconds, lastValidation)
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + (interactive ? "" : "\n")).utf8))
    }

    func validation(_ step: Int, score: Double) { lastValidation = String(format: "  val %.4f", score) }

    func finish() { if interactive { FileHandle.standardError.write(Data("\n".utf8)) } }
}

import DataCore
import Foundation
import Methods
import Testing
import TensorCore
@testable import Suite

/// What a regime grants is checked by poisoning: images a method must not read are NaN, so any
/// read of them turns its loss or its validation score into NaN (a diverged trial).
@Suite struct TrialContextTests {
    static let text = """
        datasets: [{name: glyphs, classes: 12, instances: 20, test_instances: 4, split: [6, 2, 4]}]
        backbone: {name: conv4, width: 8}
        seeds: [0]
        budgets: [4]
        validation: 3
        episodes: {way: 2, shots: [1], query: 3, count: 6}
        methods:
          supervised: {training: {steps: 4, validateEvery: 2}, batchSize: 8}
          fixmatch: {training: {steps: 3, validateEvery: 2}, batchSize: 4, unlabeledRatio: 2, threshold: 0.5}
          protonet: {training: {steps: 4, validateEvery: 2, decayEvery: 2}, trainWay: 3, trainShot: 1, trainQuery: 3}
          rotation: {training: {steps: 3, validateEvery: 2}, batchSize: 8}
        """

    /// Every few-shot method, tiny: none of them may read a novel class while training.
    static let fewShotText = """
        datasets: [{name: glyphs, classes: 12, instances: 20, test_instances: 4, split: [6, 2, 4]}]
        backbone: {name: conv4, width: 8}
        seeds: [0]
        episodes: {way: 2, shots: [1], query: 3, count: 6}
        methods:
          finetune-baseline: {training: {steps: 3, validateEvery: 3}, batchSize: 8}
          baseline-plus-plus: {training: {steps: 3, validateEvery: 3}, batchSize: 8}
          matching-net: {training: {steps: 3, validateEvery: 3}, trainWay: 3, trainShot: 1, trainQuery: 2}
          maml: {training: {steps: 2, validateEvery: 2}, trainWay: 3, trainShot: 1, trainQuery: 2, tasksPerStep: 1}
          meta-lstm: {training: {steps: 2, validateEvery: 2}, trainWay: 3, trainShot: 1, trainQuery: 2}
          snail: {training: {steps: 2, validateEvery: 2}, trainWay: 3, trainShot: 1, trainQuery: 2}
          mann: {training: {steps: 2, validateEvery: 2}, trainWay: 3, trainShot: 1, trainQuery: 2}
        """

    /// The trial's dataset with NaN in every image of `poisonedClasses` and in the whole test split.
    func poisoned(_ trial: PlannedTrial, classes poisonedClasses: (ClassSplit) -> [Int]) throws -> Dataset {
        let d = try trial.dataset.spec.load(dataDir: nil, baseDirectory: nil)
        let split = try #require(d.classSplit)
        let bad = Set(poisonedClasses(split))
        var train = d.trainImages
        let size = d.imageShape.reduce(1, *)
        train.withUnsafeMutableBufferPointer { p in
            for (i, y) in d.trainLabels.enumerated() where bad.contains(Int(y)) { for j in 0..<size { p[i * size + j] = .nan } }
        }
        return try Dataset(name: d.name, trainImages: train, trainLabels: d.trainLabels,
                           testImages: Tensor(repeating: .nan, shape: d.testImages.shape), testLabels: d.testLabels,
                           classNames: d.classNames, contentHash: d.contentHash, allowsHorizontalFlip: d.allowsHorizontalFlip,
                           classSplit: split, channelMean: d.channelMean, channelStd: d.channelStd)
    }

    func plan() throws -> [PlannedTrial] {
        try Planner.plan(try Suite.parse(Self.text, file: "t.yaml", name: "t", methods: MethodRegistry.all))
    }

    /// Training and model selection of every regime run on poisoned novel classes and a poisoned
    /// test split and stay finite: neither is read before evaluation.
    @Test func trainingAndSelectionNeverReadNovelClassesOrTheTestSplit() throws {
        for trial in try plan() {
            let full = try poisoned(trial) { $0.novel }
            let context = try TrialContext(trial: trial, full: full)
            let trained = try trial.method.train(try context.trainingInput(observer: nil), configJSON: trial.config.json)
            #expect(trained.summary.finalLoss.isFinite, "\(trial.method.id)")
            let best = try #require(trained.summary.best, "\(trial.method.id) is validated")
            #expect(best.score.isFinite && best.score >= 0 && best.score <= 1, "\(trial.method.id)")
        }
    }

    /// The same for every few-shot method: trained with the novel classes (and the test split)
    /// poisoned, each stays finite; and the evaluation episodes draw novel classes only.
    @Test func fewShotMethodsNeverReadNovelClassesAndEpisodesAreNovel() throws {
        let trials = try Planner.plan(try Suite.parse(Self.fewShotText, file: "t.yaml", name: "t", methods: MethodRegistry.all))
        #expect(Set(trials.map(\.method.id)) == Set(MethodRegistry.all.filter { $0.regime == .fewShot && $0.id != "protonet" }.map(\.id)))
        for trial in trials {
            let full = try poisoned(trial) { $0.novel }
            let context = try TrialContext(trial: trial, full: full)
            let trained = try trial.method.train(try context.trainingInput(observer: nil), configJSON: trial.config.json)
            #expect(trained.summary.finalLoss.isFinite, "\(trial.method.id)")
        }
        let trial = trials[0]
        let context = try TrialContext(trial: trial, full: try trial.dataset.spec.load(dataDir: nil, baseDirectory: nil))
        let novel = Set(try #require(context.full.classSplit).novel)
        for (_, stream, count) in try Evaluator.novelEpisodes(context) {
            for i in 0..<count { #expect(Set(stream.sampler.episode(i).classes).isSubset(of: novel)) }
        }
    }

    /// The poison is real: a few-shot method validated on episodes of poisoned validation classes
    /// sees NaN (its selection does read the validation classes, and only them).
    @Test func fewShotSelectionReadsTheValidationClasses() throws {
        let trial = try #require(try plan().first { $0.method.id == "protonet" })
        let context = try TrialContext(trial: trial, full: try poisoned(trial) { $0.validation })
        let trained = try trial.method.train(try context.trainingInput(observer: nil), configJSON: trial.config.json)
        #expect(trained.summary.finalLoss.isFinite, "training reads base classes only")
        // NaN logits make every arg-max class 0: exactly one query in `way` (2) is right.
        let scores = trained.summary.curves.filter { $0.name == "val_episode_accuracy" }.map(\.value)
        #expect(!scores.isEmpty && scores.allSatisfy { $0 == 0.5 }, "\(scores)")
    }

    @Test func regimesGrantTheirPoolsOnly() throws {
        let trials = try plan()
        func data(_ id: String) throws -> TrainingData {
            let trial = try #require(trials.first { $0.method.id == id })
            let full = try trial.dataset.spec.load(dataDir: nil, baseDirectory: nil)
            return try TrialContext(trial: trial, full: full).trainingInput(observer: nil).data
        }
        let supervised = try data("supervised"), semi = try data("fixmatch"), fewShot = try data("protonet"), ssl = try data("rotation")
        #expect(supervised.labeled?.count == 6 * 4 && supervised.unlabeled == nil && supervised.episodes == nil)
        // The unlabeled pool is the training part less validation (labeled examples included, labels hidden).
        #expect(semi.labeled?.count == 6 * 4 && semi.unlabeled?.count == 6 * (20 - 3) && semi.episodes == nil)
        // Few-shot: every example of the base classes (validation classes do the selecting), base-class episodes.
        #expect(fewShot.labeled?.count == 6 * 20 && fewShot.episodes?.classes == Array(0..<6) && fewShot.unlabeled == nil)
        #expect(ssl.labeled == nil && ssl.unlabeled?.count == 6 * (20 - 3) && ssl.episodes == nil)
        #expect(Set(fewShot.labeled!.labels).count == 6 && fewShot.classCount == 6)
    }
}

@Suite struct EvaluatorTests {
    /// Several ways in `episodes` score one trained model at each: 2-way and 3-way from one training.
    @Test func oneTrainingIsScoredAtEveryWay() throws {
        let text = TrialContextTests.text.replacingOccurrences(of: "episodes: {way: 2, shots: [1], query: 3, count: 6}",
                                                               with: "episodes: {way: [2, 3], shots: [1], query: 3, count: 6}\nprotocols: [episodes, episodes-linear]")
        let suite = try Suite.parse(text, file: "t.yaml", name: "t", methods: MethodRegistry.all)
        #expect(suite.episodes.ways == [2, 3] && suite.episodes.way == 2)
        let plan = try Planner.plan(suite)
        #expect(plan.filter { $0.method.id == "protonet" }.count == 1, "one training")
        let result = try TrialExecutor(data: DatasetCache(), observer: nil, log: { _ in }).run(try #require(plan.first { $0.method.id == "protonet" }))
        for p in ["episodes", "episodes-linear"] {
            let budgets = Set(result.metrics.filter { $0.protocolName == p && $0.name == "accuracy" }.map(\.evalBudget))
            #expect(budgets == ["2-way 1-shot", "3-way 1-shot"], "\(p): \(budgets)")
        }
        let twice = text.replacingOccurrences(of: "way: [2, 3]", with: "way: [2, 2]")
        #expect { _ = try Suite.parse(twice, file: "t.yaml", name: "t", methods: MethodRegistry.all) } throws: { "\($0)".contains("a way is listed twice") }
    }

    /// `episodes` scores the method's own adapter, `episodes-linear` a logistic head on frozen
    /// features, on the same fixed novel-class episodes; a method without an adapter gets only the latter.
    @Test func episodesUseTheMethodsAdapterAndEpisodesLinearTheFrozenFeatures() throws {
        let text = TrialContextTests.text.replacingOccurrences(of: "episodes: {way: 2, shots: [1], query: 3, count: 6}",
                                                               with: "episodes: {way: 2, shots: [1], query: 3, count: 6}\nprotocols: [episodes, episodes-linear, linear]")
        let plan = try Planner.plan(try Suite.parse(text, file: "t.yaml", name: "t", methods: MethodRegistry.all))
        let protonet = try #require(plan.first { $0.method.id == "protonet" })
        #expect(protonet.evaluation.protocols == [.episodes, .episodesLinear])
        #expect(plan.filter { $0.method.id != "protonet" }.allSatisfy { !$0.evaluation.protocols.contains(.episodes) })
        let executor = TrialExecutor(data: DatasetCache(), observer: nil, log: { _ in })
        let result = try executor.run(protonet)
        let own = try #require(result.metrics.first { $0.protocolName == "episodes" && $0.name == "accuracy" })
        let frozen = try #require(result.metrics.first { $0.protocolName == "episodes-linear" && $0.name == "accuracy" })
        #expect(own.evalBudget == "2-way 1-shot" && frozen.evalBudget == "2-way 1-shot" && own.n == 6 && frozen.n == 6)
        #expect(own.ci95 != nil && (0...1).contains(own.value) && (0...1).contains(frozen.value))
        #expect(result.metrics.contains { $0.protocolName == "train" && $0.name == "best_val_episode_accuracy" })
        // Evaluation time, split by protocol (issue 13): each protocol's seconds beside the total.
        let seconds = Dictionary(uniqueKeysWithValues: result.metrics.filter { $0.name.hasSuffix("eval_seconds") }.map { ($0.name, $0.value) })
        #expect(Set(seconds.keys) == ["episodes_eval_seconds", "episodes-linear_eval_seconds", "eval_seconds"], "\(seconds.keys)")
        #expect(seconds.values.allSatisfy { $0 >= 0 } && seconds["eval_seconds"]! >= seconds["episodes_eval_seconds"]! + seconds["episodes-linear_eval_seconds"]!)
    }
}

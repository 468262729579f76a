import Comparison
import DataCore
import Evaluation
import Foundation
import Methods
@testable import ResultsStore
import Testing
@testable import Suite
import TestSupport

@Suite struct PlannerTests {
    static let mixed = """
        datasets:
          - name: glyphs
            classes: 12
            instances: 12
            test_instances: 4
            split: [6, 1, 5]
          - fashion-mnist
        seeds: [0, 1]
        budgets: [5, all]
        episodes: {way: 3, shots: [1], query: 3, count: 10}
        methods:
          supervised: {training: {steps: 4}}
          fake-fewshot:
          fake-ssl:
        """

    @Test func expandsTheGridByRegime() throws {
        let plan = try Planner.plan(try Suite.parse(Self.mixed, file: "t.yaml", name: "t", methods: testMethods))
        let supervised = plan.filter { $0.method.id == "supervised" }
        let fewShot = plan.filter { $0.method.id == "fake-fewshot" }
        let selfSup = plan.filter { $0.method.id == "fake-ssl" }
        // Supervised: every dataset x budget x seed, scored at its own budget, episodes only where there is a split.
        #expect(supervised.count == 2 * 2 * 2)
        #expect(supervised.allSatisfy { $0.evaluation.budgets == [$0.trainBudget] })
        #expect(supervised.filter { $0.dataset.id == "glyphs" }.allSatisfy { $0.evaluation.protocols == [.native, .linear, .knn, .finetune, .episodesLinear] })
        #expect(supervised.filter { $0.dataset.id == "fashion-mnist" }.allSatisfy { $0.evaluation.protocols == [.native, .linear, .knn, .finetune] })
        // Few-shot: once per seed on the dataset with a class split, all base labels, episodes only
        // (its own adaptation only for a method that has one).
        #expect(fewShot.map(\.dataset.id) == ["glyphs", "glyphs"] && fewShot.map(\.seed) == [0, 1])
        #expect(fewShot.allSatisfy { $0.trainBudget == .all && $0.evaluation.protocols == [.episodesLinear] && $0.evaluation.budgets.isEmpty })
        // Self-supervised: once per dataset and seed with no labels, scored at every budget, no native classifier.
        #expect(selfSup.count == 2 * 2)
        #expect(selfSup.allSatisfy { $0.trainBudget == .none && $0.evaluation.budgets == [.perClass(5), .all] && !$0.evaluation.protocols.contains(.native) })
        #expect(Set(plan.map(\.key)).count == plan.count, "every trial is told apart")
        #expect(plan.allSatisfy { $0.estimatedSeconds > 0 }, "\(plan.map { "\($0.method.id) \($0.dataset.id) \($0.estimatedSeconds)" })")
    }

    /// A method entry may narrow the suite's seeds and protocols; the others keep the suite's.
    @Test func entriesNarrowSeedsAndProtocols() throws {
        let text = Self.mixed.replacingOccurrences(of: "supervised: {training: {steps: 4}}",
                                                   with: "supervised: {training: {steps: 4}, seeds: [1], protocols: [native, knn]}")
        let plan = try Planner.plan(try Suite.parse(text, file: "t.yaml", name: "t", methods: testMethods))
        let supervised = plan.filter { $0.method.id == "supervised" }
        #expect(supervised.count == 2 * 2 && supervised.allSatisfy { $0.seed == 1 && $0.evaluation.protocols == [.native, .knn] })
        #expect(Set(plan.filter { $0.method.id == "fake-ssl" }.map(\.seed)) == [0, 1])
        let twice = Self.mixed.replacingOccurrences(of: "supervised: {training: {steps: 4}}", with: "supervised: {protocols: [knn, knn]}")
        #expect { _ = try Suite.parse(twice, file: "t.yaml", name: "t", methods: testMethods) } throws: { "\($0)".contains("listed twice") }
    }

    /// Estimates follow where the time goes: the linear probe's cost grows with the width of the
    /// representation (784 raw pixels cost more than PCA's 64; rotation's two-block cut, 3,136
    /// features, more than its three-block cut, 576), measured at about 4 µs per example and feature.
    /// A named variant runs its method at its own settings beside the method's own entry, under its
    /// own name in results (the record says which method it is a variant of), and draws the same
    /// random streams as the method, so the two are compared on equal terms.
    @Test func aNamedVariantRunsItsMethodUnderItsOwnName() throws {
        let text = Self.mixed.replacingOccurrences(of: "supervised: {training: {steps: 4}}",
                                                   with: "supervised: {training: {steps: 4}}\n  supervised-long: {method: supervised, training: {steps: 8}}")
        let plan = try Planner.plan(try Suite.parse(text, file: "t.yaml", name: "t", methods: testMethods))
        let base = plan.filter { $0.name == "supervised" }, variant = plan.filter { $0.name == "supervised-long" }
        #expect(base.count == 8 && variant.count == 8)
        #expect(variant.allSatisfy { $0.method.id == "supervised" && $0.config.workload.steps == 8 })
        #expect(base.allSatisfy { $0.config.workload.steps == 4 })
        #expect(Set(plan.map(\.key)).count == plan.count, "the variant's trials are told apart from the method's")
        #expect(variant.map { $0.record(runID: 1) }.allSatisfy { $0.method == "supervised-long" && $0.variantOf == "supervised" && $0.registeredMethod == "supervised" })
        #expect(base.map { $0.record(runID: 1) }.allSatisfy { $0.method == "supervised" && $0.variantOf == nil })
        // Same dataset, budget and seed: the same stream key, so the same initialisation and batches.
        let (a, b) = try (#require(base.first { $0.dataset.id == "glyphs" }), #require(variant.first { $0.dataset.id == "glyphs" }))
        #expect((a.trainBudget, a.seed) == (b.trainBudget, b.seed))
        let full = try a.dataset.spec.load(dataDir: nil, baseDirectory: nil)
        let keys = try [a, b].map { try TrialContext(trial: $0, full: full).trainingInput(observer: nil).key }
        #expect(keys[0] == keys[1])
    }

    @Test func estimatesGrowWithTheRepresentationWidth() throws {
        let text = """
            datasets: [fashion-mnist]
            seeds: [0]
            budgets: [all]
            protocols: [linear]
            methods:
              pixels:
              pca:
              rotation: {featureBlocks: 2, training: {steps: 10}}
            """
        let plan = try Planner.plan(try Suite.parse(text, file: "t.yaml", name: "t"))
        func estimate(_ id: String) throws -> Double { try #require(plan.first { $0.method.id == id }).estimatedSeconds }
        #expect(try estimate("pixels") > 4 * estimate("pca"))
        let wide = try estimate("rotation")
        let narrow = try Planner.plan(try Suite.parse(text.replacingOccurrences(of: "featureBlocks: 2", with: "featureBlocks: 3"), file: "t.yaml", name: "t"))
            .first { $0.method.id == "rotation" }!.estimatedSeconds
        #expect(wide > 4 * narrow, "\(wide) vs \(narrow)")
        #expect(wide > 600 && wide < 900, "a 3,136-feature probe on 57,000 examples took over ten minutes: \(wide)")
        #expect(Workload(steps: 1, samplesPerStep: 1, backbone: "conv4", width: 64, representationBlocks: 2).features(imageShape: [1, 28, 28]) == 3136)
    }

    /// The time model charges each method's own step and adapter costs, and the validations the
    /// trainer will run: few-shot ones only where the class split has validation classes.
    @Test func estimatesCountStepCostsAdaptersAndValidation() throws {
        let text = """
            datasets:
              - name: glyphs
              - {name: fashion-mnist, id: fashion-mnist-5/5, split: [5, 0, 5]}
            seeds: [0]
            budgets: [all]
            protocols: [episodes]
            episodes: {way: 5, shots: [1], query: 15, count: 100}
            methods:
              protonet: {trainWay: 5, trainShot: 1, trainQuery: 15, training: {steps: 100, validateEvery: 25}}
              maml: {tasksPerStep: 1, training: {steps: 100, validateEvery: 25}}
            """
        let plan = try Planner.plan(try Suite.parse(text, file: "t.yaml", name: "t"))
        func parts(_ id: String, _ dataset: String) throws -> TimeEstimate.Parts {
            TimeEstimate.parts(for: try #require(plan.first { $0.method.id == id && $0.dataset.id == dataset }))
        }
        let (proto, maml) = (try parts("protonet", "glyphs"), try parts("maml", "glyphs"))
        // The same episodes a step: only the methods' step costs differ.
        #expect(abs(maml.training / proto.training - MAML.Config().stepCost) < 1e-9)
        // Four validations of 100 episodes, each through the adapter, as evaluation's 100 episodes.
        #expect(abs(proto.validation - 4 * proto.evaluation) < 1e-9)
        #expect(abs(maml.evaluation / proto.evaluation - MAML.Config().adapterCost) < 1e-9)
        #expect(try parts("protonet", "fashion-mnist-5/5").validation == 0)
        #expect(Workload(steps: 100, samplesPerStep: 1, backbone: "conv4", width: 64, validateEvery: 25).validations == 4)
        #expect(Workload(steps: 101, samplesPerStep: 1, backbone: "conv4", width: 64, validateEvery: 25).validations == 5)
        #expect(Workload(steps: 100, samplesPerStep: 1, backbone: "conv4", width: 64).validations == 1)
    }

    /// IDX datasets are named by their folder and training-images file unless given an `id`, so
    /// runs on different files are told apart (they were all "idx").
    @Test func idxDatasetsAreNamedByTheirFiles() throws {
        let text = """
            datasets:
              - {name: idx, files: [kmnist/train-images-idx3-ubyte.gz, kmnist/l.gz, kmnist/t.gz, kmnist/tl.gz]}
              - {name: idx, files: [/data/mnist/train-images-idx3-ubyte, a, b, c]}
              - {name: idx, id: mine, files: [x/y.gz, a, b, c]}
            seeds: [0]
            budgets: [5]
            methods:
              supervised:
            """
        let suite = try Suite.parse(text, file: "t.yaml", name: "t")
        #expect(suite.datasets.map(\.id) == ["kmnist/train-images-idx3-ubyte", "mnist/train-images-idx3-ubyte", "mine"])
        #expect(DatasetSpec(kind: .glyphs).defaultID == "glyphs")
    }

    /// An entry's `datasets` narrows where it runs; a name the suite lacks is an error at its line.
    /// A method that cannot learn from a dataset's images (colorization on greyscale) is left out
    /// of it with a note saying why, and kept on the colour dataset.
    @Test func entriesNarrowDatasetsAndUnsuitableImagesAreLeftOutWithANote() throws {
        let text = """
            datasets:
              - name: glyphs
                classes: 12
                instances: 12
                test_instances: 4
              - name: glyphs-color
                classes: 12
                instances: 12
                test_instances: 4
            seeds: [0]
            budgets: [5]
            methods:
              supervised: {training: {steps: 4}, datasets: [glyphs-color]}
              colorization:
            """
        let (plan, notes) = try Planner.planWithNotes(try Suite.parse(text, file: "t.yaml", name: "t"))
        #expect(plan.filter { $0.method.id == "supervised" }.map(\.dataset.id) == ["glyphs-color"])
        #expect(plan.filter { $0.method.id == "colorization" }.map(\.dataset.id) == ["glyphs-color"])
        #expect(notes == ["colorization left out on dataset 'glyphs': colorization needs colour images (3 channels); these are greyscale 1x28x28 images"])
        let wrong = text.replacingOccurrences(of: "datasets: [glyphs-color]", with: "datasets: [glyph-color]")
        #expect { _ = try Planner.plan(try Suite.parse(wrong, file: "t.yaml", name: "t")) } throws: {
            "\($0)".contains("t.yaml:13") && "\($0)".contains("no dataset 'glyph-color'")
        }
    }

    /// conv4 on images too small for its four poolings is refused at planning, naming the shapes
    /// that fit; the image shape of an IDX dataset comes from its files' headers.
    @Test func aBackboneThatCannotTakeTheImagesIsRefusedWhenPlanned() throws {
        let dir = Scratch.folder("plan").path
        func header(_ dims: [Int]) -> Data {
            var bytes: [UInt8] = [0, 0, 8, UInt8(dims.count)]
            for d in dims { bytes += [0, 0, UInt8(d >> 8 & 255), UInt8(d & 255)] }
            return Data(bytes)
        }
        for (name, dims) in [("small.idx", [4, 8, 8]), ("signals.idx", [4, 40])] {
            FileManager.default.createFile(atPath: dir + "/" + name, contents: header(dims))
        }
        func suite(_ file: String, backbone: String) -> String {
            """
            datasets: [{name: idx, files: [\(file), \(file), \(file), \(file)]}]
            seeds: [0]
            budgets: [1]
            methods:
              supervised: {backbone: {name: \(backbone)}}
            """
        }
        let path = dir + "/t.yaml"
        #expect { _ = try Planner.plan(try Suite.parse(suite("small.idx", backbone: "conv4"), file: path, name: "t", methods: testMethods)) } throws: {
            "\($0)".contains("methods.supervised: dataset 'small.idx': conv4 cannot take 1x8x8 inputs") && "\($0)".contains("at least 16x16")
        }
        _ = try Planner.plan(try Suite.parse(suite("small.idx", backbone: "mlp"), file: path, name: "t", methods: testMethods))
        _ = try Planner.plan(try Suite.parse(suite("signals.idx", backbone: "conv4"), file: path, name: "t", methods: testMethods))
    }

    @Test func configsDependOnBudgetAndOverridesOnly() throws {
        let plan = try Planner.plan(try Suite.parse(Self.mixed, file: "t.yaml", name: "t", methods: testMethods))
        let s = plan.filter { $0.method.id == "supervised" && $0.dataset.id == "glyphs" }
        // Seeds share a config; budgets may not (the step budget shrinks with few labels, unless set).
        #expect(Set(s.filter { $0.trainBudget == .all }.map(\.config.sha)).count == 1)
        #expect(s.allSatisfy { $0.config.workload.steps == 4 })
        let defaults = try #require(MethodRegistry.method("supervised")).resolve(budget: .perClass(10), classes: 10)
        #expect(defaults.workload.steps == 200)
        let all = try #require(MethodRegistry.method("supervised")).resolve(budget: .all, classes: 10)
        #expect(all.workload.steps == 1450 && all.sha != defaults.sha)
    }
}

@Suite struct SuiteRunnerTests {
    func suite(_ methods: String) throws -> (Suite, [PlannedTrial]) {
        let text = """
            datasets: [{name: glyphs, classes: 10, instances: 10, test_instances: 3, split: [5, 1, 4]}]
            seeds: [0]
            budgets: [3]
            validation: 2
            episodes: {way: 3, shots: [1], query: 3, count: 8}
            methods:
            \(methods)
            """
        let suite = try Suite.parse(text, file: "t.yaml", name: "t", methods: testMethods)
        return (suite, try Planner.plan(suite))
    }

    /// Resuming matches stored trials to the plan: a planned trial the run lacks is reported (it
    /// would otherwise never run), as is a stored trial the plan no longer has.
    @Test func resumingReportsPlannedTrialsTheRunLacks() throws {
        let (suite, plan) = try suite("  fake-semi:\n  fake-ssl:\n")
        let store = try ResultsStore(path: temporaryDatabase())
        let runner = SuiteRunner(store: store, data: DatasetCache(), output: { _ in })
        let (runID, trials) = try runner.start(suite: suite.name, suiteSha: suite.sha, trials: plan, git: .unknown, argv: ["test"])
        #expect(try runner.remaining(runID: runID, plan: plan).todo.count == 2)
        try store.pool.write { try $0.execute(sql: "DELETE FROM trial WHERE id = ?", arguments: [trials[1].0]) }
        #expect { _ = try runner.remaining(runID: runID, plan: plan) } throws: {
            "\($0)".contains("lacks 1 planned trial(s) (fake-ssl on glyphs, budget none, seed 0)")
        }
        #expect { _ = try runner.remaining(runID: runID, plan: [plan[1]]) } throws: { "\($0)".contains("no longer plans") }
    }

    /// A protocol that fails at evaluation (here the method's own measure) fails the trial with
    /// its reason, and the training and the other protocols' scores are kept, and counted.
    @Test func aFailingProtocolKeepsTheOtherScores() throws {
        let (suite, plan) = try suite("  fake-failing-measure: {fail: true}\n")
        let trial = try #require(plan.first)
        #expect(trial.evaluation.protocols.contains(.native) && trial.evaluation.protocols.contains(.linear))
        let store = try ResultsStore(path: temporaryDatabase())
        var lines: [String] = []
        let runner = SuiteRunner(store: store, data: DatasetCache(), output: { lines.append($0) })
        let (runID, trials) = try runner.start(suite: suite.name, suiteSha: suite.sha, trials: [trial], git: .unknown, argv: ["test"])
        #expect(try runner.execute(trials) == 1)
        let data = try #require(try store.runData(runID))
        let stored = try #require(data.trials.first)
        #expect(stored.trial.status == "failed" && stored.trial.error == "protocol failed: native: the measure cannot be taken", "\(stored.trial.error ?? "")")
        #expect(stored.metrics.contains { $0.protocolName == "linear" && $0.name == "accuracy" }, "the other protocols' scores are kept")
        #expect(stored.metrics.contains { $0.protocolName == "episodes-linear" && $0.name == "accuracy" })
        #expect(lines.contains { $0.contains("protocol native FAILED") })
        // Comparisons see the failure and the kept cells.
        let cells = RunCells(data)
        #expect(cells.failures.count == 1 && cells.cells.keys.contains { $0.protocolName == "linear" })
    }

    /// A non-finite score is never stored: it fails its protocol with the reason; the finite
    /// scores of the same protocol and the others are kept.
    @Test func aNonFiniteScoreIsAFailureNotAStoredNaN() throws {
        let (suite, plan) = try suite("  fake-failing-measure:\n")
        let store = try ResultsStore(path: temporaryDatabase())
        let runner = SuiteRunner(store: store, data: DatasetCache(), output: { _ in })
        let (runID, trials) = try runner.start(suite: suite.name, suiteSha: suite.sha, trials: [try #require(plan.first)], git: .unknown, argv: ["test"])
        #expect(try runner.execute(trials) == 1)
        let stored = try #require(try store.runData(runID)?.trials.first)
        #expect(stored.trial.error == "protocol failed: native: reconstruction_error @ none is nan", "\(stored.trial.error ?? "")")
        #expect(stored.metrics.allSatisfy { $0.value.isFinite } && stored.metrics.contains { $0.name == "inertia" })
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM metric WHERE value != value") } == 0)
    }

    /// What evaluation needs is checked before training: a budget larger than a class fails the
    /// trial at once, naming it, with nothing trained.
    @Test func evaluationNeedsAreCheckedBeforeTraining() throws {
        let (suite, plan) = try suite("  fake-ssl:\n")
        var trial = try #require(plan.first)
        trial.evaluation.budgets = [.perClass(50)]   // the classes have 10 training images
        let store = try ResultsStore(path: temporaryDatabase())
        var lines: [String] = []
        let runner = SuiteRunner(store: store, data: DatasetCache(), output: { lines.append($0) })
        let (runID, trials) = try runner.start(suite: suite.name, suiteSha: suite.sha, trials: [trial], git: .unknown, argv: ["test"])
        #expect(try runner.execute(trials) == 1)
        let stored = try #require(try store.runData(runID)?.trials.first)
        #expect(stored.trial.status == "failed" && stored.metrics.isEmpty && stored.trial.steps == nil)
        #expect(stored.trial.error?.contains("50") == true, "\(stored.trial.error ?? "")")
    }

    /// `{finetune: [1]}` fine-tunes at that budget only: the plan says so, the other protocols keep
    /// every budget (their shared features included, though the restricted protocol runs first),
    /// a supervised trial at the other budget has no fine-tuning at all, and a stored trial holds
    /// exactly the scores planned.
    @Test func aProtocolRestrictedToSomeBudgetsIsScoredAtThoseOnly() throws {
        let text = """
            datasets: [{name: glyphs, classes: 10, instances: 10, test_instances: 3}]
            seeds: [0]
            budgets: [1, 3]
            validation: 2
            protocols: [{knn: [1]}, linear, native]
            methods:
              supervised: {protocols: [native, {finetune: [1]}], training: {steps: 2}}
              fake-ssl:
            """
        let suite = try Suite.parse(text, file: "t.yaml", name: "t", methods: testMethods)
        let plan = try Planner.plan(suite)
        let supervised = plan.filter { $0.name == "supervised" }
        #expect(supervised.map(\.evaluation.protocols) == [[.native, .finetune], [.native]])
        #expect(supervised[0].evaluation.budgets(for: .finetune) == [.perClass(1)])
        let ssl = try #require(plan.first { $0.name == "fake-ssl" })
        #expect(ssl.evaluation.protocols == [.knn, .linear])
        #expect(ssl.evaluation.budgets(for: .knn) == [.perClass(1)] && ssl.evaluation.budgets(for: .linear) == [.perClass(1), .perClass(3)])
        #expect(ssl.evaluation.summary(trainBudget: .none) == "knn @ 1; linear @ 1,3")
        let store = try ResultsStore(path: temporaryDatabase())
        let runner = SuiteRunner(store: store, data: DatasetCache(), output: { _ in })
        let (runID, trials) = try runner.start(suite: suite.name, suiteSha: suite.sha, trials: [ssl], git: .unknown, argv: ["test"])
        #expect(try runner.execute(trials) == 0)
        let stored = try #require(try store.runData(runID)?.trials.first)
        #expect(Set(stored.metrics.filter { $0.name == "accuracy" }.map { "\($0.protocolName)@\($0.evalBudget)" }) == ["knn@1", "linear@1", "linear@3"])
        // A suite-wide restriction beside a few-shot entry (which has no budgets) plans.
        let mixed = try Planner.plan(try Suite.parse(PlannerTests.mixed.replacingOccurrences(of: "seeds: [0, 1]", with: "seeds: [0, 1]\nprotocols: [linear, {finetune: [5]}, episodes]"),
                                                     file: "t.yaml", name: "t", methods: testMethods))
        let fewShot = mixed.filter { $0.method.id == "fake-fewshot" }
        #expect(!fewShot.isEmpty && fewShot.allSatisfy { $0.evaluation.protocols.allSatisfy(\.isEpisodic) }, "\(fewShot.map(\.evaluation.protocols))")
        let finetuned: [LabelBudget] = [.perClass(5)]
        #expect(mixed.filter { $0.method.id == "fake-ssl" }.allSatisfy { $0.evaluation.budgets(for: .finetune) == finetuned })
    }

    @Test func aFailedTrialIsStoredWithItsReasonAndTheRunGoesOn() throws {
        let (suite, plan) = try suite("  fake-semi: {fail: true}\n  fake-ssl:\n")
        let store = try ResultsStore(path: temporaryDatabase())
        var lines: [String] = []
        let runner = SuiteRunner(store: store, data: DatasetCache(), output: { lines.append($0) })
        let (runID, trials) = try runner.start(suite: suite.name, suiteSha: suite.sha, trials: plan, git: .unknown, argv: ["test"])
        #expect(try runner.execute(trials) == 1)
        #expect(try runner.finish(runID: runID) == RunStatus.failed)
        let data = try #require(try store.runData(runID))
        #expect(data.run.commit == "unknown" && data.run.finishedAt != nil)
        let failed = try #require(data.trials.first { $0.trial.method == "fake-semi" })
        #expect(failed.trial.status == "failed" && failed.trial.error?.contains("training diverged: loss is nan") == true && failed.metrics.isEmpty)
        let ssl = try #require(data.trials.first { $0.trial.method == "fake-ssl" })
        #expect(ssl.trial.status == "done" && ssl.trial.trainBudget == "none" && ssl.trial.methodVersion == "2")
        #expect(ssl.trial.datasetSha.count == 16 && ssl.trial.splitSha.count == 16)
        // Self-supervised: linear, kNN, fine-tune at the suite's budget and the frozen-feature
        // episodes; no native score, and no `episodes` (it has no adapter of its own).
        let scored = Set(ssl.metrics.filter { $0.name == "accuracy" }.map { "\($0.protocolName)@\($0.evalBudget)" })
        #expect(scored == ["linear@3", "knn@3", "finetune@3", "episodes-linear@3-way 1-shot"])
        for m in ssl.metrics where m.name == "accuracy" { #expect(m.value >= 0 && m.value <= 1 && (m.n ?? 0) > 0) }
        let episodes = try #require(ssl.metrics.first { $0.protocolName == "episodes-linear" })
        #expect(episodes.n == 8 && episodes.ci95 != nil)
        // What was printed is what was stored.
        for m in ssl.metrics where m.name == "accuracy" {
            #expect(lines.contains { $0.contains("metric \(m.protocolName) @ \(m.evalBudget): accuracy = \(String(format: "%.6f", m.value))") })
        }
        #expect(lines.contains { $0.contains("FAILED: training diverged") })
        #expect(try store.curves(trial: ssl.trial.id!).map(\.name) == ["loss"])
    }

    @Test func resumingRunsWhatWasNotFinishedAndKeepsWhatWas() throws {
        let (suite, plan) = try suite("  fake-semi:\n  fake-ssl:\n")
        let store = try ResultsStore(path: temporaryDatabase())
        let runner = SuiteRunner(store: store, data: DatasetCache(), output: { _ in })
        let (runID, trials) = try runner.start(suite: suite.name, suiteSha: suite.sha, trials: plan, git: .unknown, argv: ["test"])
        // The first trial finishes; the second is "in flight" when the process dies.
        #expect(try runner.execute([trials[0]]) == 0)
        try store.startTrial(trials[1].0)
        let done = try store.trials(run: runID)[0]
        let (todo, kept) = try runner.remaining(runID: runID, plan: plan)
        #expect(kept == 1 && todo.map(\.0) == [trials[1].0])
        #expect(try runner.execute(todo, offset: kept, total: plan.count) == 0)
        let after = try store.trials(run: runID)
        #expect(after.map(\.status) == ["done", "done"])
        #expect(after[0] == done, "the finished trial was not run again")
        // A changed plan cannot resume this run.
        let (_, other) = try self.suite("  fake-semi: {steps: 5}\n  fake-ssl:\n")
        #expect(throws: StoreError.self) { try runner.remaining(runID: runID, plan: other) }
    }

    /// The suite ETA is the model's remaining estimate until a trial has run, then that estimate
    /// scaled by measured over estimated seconds of the trials run so far.
    @Test func theSuiteETAFollowsThePaceOfTheTrialsRun() {
        var eta = SuiteETA(remainingEstimate: 100)
        #expect(eta.pace == 1 && eta.seconds == 100)
        eta.finished(estimate: 10, took: 40)
        #expect(eta.remainingEstimate == 90 && eta.pace == 4 && eta.seconds == 360)
        eta.finished(estimate: 30, took: 40)
        #expect(eta.pace == 2 && eta.seconds == 120)
        eta.finished(estimate: 60, took: 1)
        #expect(eta.seconds == 0, "nothing left is no time left")
    }
}

func temporaryDatabase() -> String {
    Scratch.folder("suite").appendingPathComponent("results.sqlite").path
}

import DataCore
import Evaluation
import Foundation
import Methods
import Testing
@testable import Suite

/// The repository's root, found from this file's place in it.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func parse(_ yaml: String) throws -> Suite { try Suite.parse(yaml, file: "test.yaml", name: "test", methods: testMethods) }

@Suite struct SuiteFileTests {
    static let minimal = """
        datasets: [glyphs]
        seeds: [0]
        budgets: [5]
        methods:
          supervised:

        """

    @Test func theShippedSuitesParseAndPlan() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/suites")
            .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
        #expect(names.contains("smoke") && names.contains("default"))
        for name in names {
            let path = try #require(Suite.resolvePath(name, suitesDirectory: repositoryRoot + "/suites"), "suites/\(name).yaml")
            let suite = try Suite.load(path: path)
            let plan = try Planner.plan(suite)
            #expect(!plan.isEmpty, "\(name)")
            // Every registered method is in the smoke suite.
            if name == "smoke" { #expect(Set(plan.map(\.method.id)) == Set(MethodRegistry.ids)) }
        }
    }

    @Test func readsEverySetting() throws {
        let suite = try parse("""
            description: a test
            datasets:
              - fashion-mnist
              - name: glyphs
                id: small-glyphs
                classes: 30
                instances: 12
                test_instances: 3
                split: [20, 4, 6]
                seed: 7
                regimes: [few-shot, supervised]
            backbone: {name: mlp, hidden: [64]}
            seeds: 3
            budgets: [1, 10, all]
            validation: 2
            protocols: [native, knn, episodes]
            episodes: {way: 3, shots: [1, 2], query: 4, count: 50}
            methods:
              supervised: {training: {steps: 77, learningRate: 0.05}, budgets: [1, all]}
            """)
        #expect(suite.description == "a test" && suite.seeds == [0, 1, 2] && suite.budgets == [.perClass(1), .perClass(10), .all])
        #expect(suite.datasets.map(\.id) == ["fashion-mnist", "small-glyphs"])
        let g = suite.datasets[1].spec.glyphs
        #expect(g.classes == 30 && g.instancesPerClass == 12 && g.testInstancesPerClass == 3 && g.seed == 7)
        #expect((g.baseClasses, g.validationClasses, g.novelClasses) == (20, 4, 6))
        #expect(suite.datasets[1].regimes == [.fewShot, .supervised])
        #expect(suite.protocols == [.native, .knn, .episodes] && suite.validationPerClass == 2)
        #expect(suite.episodes.way == 3 && suite.episodes.shots == [1, 2] && suite.episodes.query == 4 && suite.episodes.count == 50)
        #expect(suite.methods[0].budgets == [.perClass(1), .all])
        let plan = try Planner.plan(suite)
        #expect(plan.count == 2 * 2 * 3)
        let config = try JSONSerialization.jsonObject(with: Data(plan[0].config.json.utf8)) as! [String: Any]
        let training = config["training"] as? [String: Any] ?? [:], backbone = config["backbone"] as? [String: Any] ?? [:]
        #expect(training["steps"] as? Int == 77 && backbone["name"] as? String == "mlp" && backbone["hidden"] as? [Int] == [64])
        #expect(abs((training["learningRate"] as? Double ?? 0) - 0.05) < 1e-6)
    }

    /// Each kind of mistake, as (file text, the start of the message it must give).
    static let badFiles: [(String, String)] = {
        let m = minimal
        func edit(_ of: String, _ with: String) -> String { m.replacingOccurrences(of: of, with: with) }
        var cases: [(String, String)] = []
        cases.append(("seed: [0]\n" + m, "test.yaml:1:1: seed: unknown key; expected one of: description, datasets"))
        cases.append((edit("supervised:", "mixmatcher:"), "test.yaml:5:3: methods.mixmatcher: unknown method 'mixmatcher'; available: supervised, pseudo-label"))
        cases.append((edit("[glyphs]", "[cifar10]"), "test.yaml:1:12: datasets: unknown dataset 'cifar10'; available: fashion-mnist, glyphs"))
        cases.append((edit("supervised:", "supervised: {training: {steps: many}}"), "test.yaml:5:27: methods.supervised.training.steps: expected a whole number like the default"))
        cases.append((edit("supervised:", "supervised: {stepz: 3}"), "test.yaml:5:16: methods.supervised.stepz: not a setting of supervised (settings: backbone, batchSize"))
        cases.append((edit("supervised:", "supervised: {training: {stepz: 3}}"), "test.yaml:5:27: methods.supervised.training.stepz: not a setting of supervised training (settings: decayEvery"))
        cases.append((edit("supervised:", "supervised: {training: {learningRate: -1}}"), "test.yaml:5:27: methods.supervised.training.learningRate: must be > 0"))
        cases.append((edit("supervised:", "supervised: {backbone: {name: resnet}}"), "test.yaml:5:27: methods.supervised.backbone.name: 'resnet' is not a backbone"))
        cases.append((edit("budgets: [5]", "budgets: [5]\nprotocols: [linear, {native: [5]}]"), "test.yaml:4:21: protocols: native is not scored per label budget"))
        cases.append((edit("budgets: [5]", "budgets: [5]\nprotocols: [{finetune: [5], knn: [5]}]"), "test.yaml:4:13: protocols: expected one protocol and its budgets"))
        cases.append((edit("budgets: [5]", "budgets: [5]\nprotocols: [{finetune: [7]}]"), "test.yaml:4:24: protocols.finetune: finetune at 7 labels per class: not one of supervised's budgets (5)"))
        cases.append((edit("[5]", "[5-shot]"), "test.yaml:3:11: budgets: budget '5-shot' is a few-shot episode setting; supervised (supervised) needs labels per class"))
        cases.append((edit("[5]", "[none]"), "test.yaml:3:11: budgets: budget 'none' gives supervised (supervised) no labels to train on"))
        cases.append((edit("[5]", "[ten]"), "test.yaml:3:11: budgets: label budget 'ten' is not understood"))
        cases.append((edit("[5]", "[25]"), "test.yaml:3:11: budgets: 25 labels per class is more than dataset 'glyphs' has (20 per class"))
        cases.append((edit("[5]", "[17]"), "test.yaml:3:11: budgets: 17 labels per class is more than dataset 'glyphs' has (20 per class, 4 kept for validation: at most 16)"))
        cases.append((edit("[0]", "[zero]"), "test.yaml:2:9: seeds: expected a whole number, got 'zero'"))
        // Named variants: the method they run must exist, a method's name is not a variant's, names are plain.
        cases.append((edit("supervised:", "tuned: {method: supervizd}"), "test.yaml:5:19: methods.tuned.method: unknown method 'supervizd'; available: supervised"))
        cases.append((edit("supervised:", "fixmatch: {method: supervised}"), "test.yaml:5:3: methods.fixmatch: 'fixmatch' is a method of its own; name a variant of supervised otherwise"))
        cases.append((edit("supervised:", "Tuned Up: {method: supervised}"), "test.yaml:5:3: methods.Tuned Up: variant name 'Tuned Up' must be lower-case letters"))
        cases.append((edit("supervised:", "tuned: {method: [supervised]}"), "test.yaml:5:19: methods.tuned.method: expected"))
        cases.append((edit("[glyphs]", "[glyphs"), "test.yaml:2:6: not valid YAML"))
        cases.append((edit("supervised:", "fake-fewshot: {budgets: [5]}"), "test.yaml:5:28: methods.fake-fewshot.budgets: fake-fewshot is few-shot"))
        cases.append((edit("supervised:", "fake-ssl: {budgets: [none]}"), "test.yaml:5:24: methods.fake-ssl.budgets: budget 'none' gives no labels to score"))
        cases.append((edit("[glyphs]", "[fashion-mnist]").replacingOccurrences(of: "supervised:", with: "fake-fewshot:"), "test.yaml:5:3: methods.fake-fewshot: no dataset of the suite is used for few-shot methods (few-shot needs a dataset with a class split)"))
        cases.append((edit("[glyphs]", "[{name: glyphs, classes: 10, split: [5, 5]}]"), "test.yaml:1:47: datasets.split: expected three class counts"))
        cases.append((edit("[glyphs]", "[{name: fashion-mnist, classes: 10}]"), "test.yaml:1:34: datasets.classes: not a setting of dataset 'fashion-mnist'"))
        cases.append(("datasets: [glyphs]\nmethods: {supervised: }\n", "test.yaml:1:1: missing key 'seeds'"))
        cases.append(("", "test.yaml: the file is empty"))
        cases.append((edit("seeds: [0]", "seeds: [0, 0]"), "test.yaml:2:8: seeds: a seed is listed twice"))
        // Evaluation episodes the novel classes cannot hold, found when the plan is made.
        cases.append((edit("seeds: [0]", "seeds: [0]\nepisodes: {way: 5, shots: [1, 10], query: 15}"),
                      "test.yaml:1:12: datasets: dataset 'glyphs': episodes of 10 shots and 15 queries need 25 images of each novel class; these classes have 20"))
        cases.append((edit("[glyphs]", "[{name: glyphs, classes: 10, split: [4, 2, 4]}]"),
                      "test.yaml:1:12: datasets: dataset 'glyphs': 5-way episodes need 5 novel classes; the class split has 4"))
        // Per-metric thresholds for compare.
        cases.append((edit("seeds: [0]", "seeds: [0]\nthresholds: {accuracy: -1}"), "test.yaml:3:24: thresholds.accuracy: a threshold must be a number >= 0, got -1.0"))
        cases.append((edit("seeds: [0]", "seeds: [0]\nthresholds: {Accuracy: 0.01}"), "test.yaml:3:24: thresholds.Accuracy: 'Accuracy' is not a metric name"))
        cases.append((edit("seeds: [0]", "seeds: [0]\nthresholds: {samples_per_s: 25}"), "test.yaml:3:29: thresholds.samples_per_s: samples_per_s is a relative change (0.25 is 25%), got 25.0"))
        cases.append((edit("seeds: [0]", "seeds: [0]\nthresholds: [0.01]"), "test.yaml:3:13: thresholds: expected a mapping of metric thresholds"))
        cases.append((edit("seeds: [0]", "seeds: [0]\nthresholds: {nmi: lots}"), "test.yaml:3:19: thresholds.nmi: expected a number, got 'lots'"))
        return cases
    }()

    /// Each kind of mistake: the message names file, line, key and what was expected.
    @Test(arguments: badFiles)
    func badFilesNameFileLineKeyAndExpectation(yaml: String, expected: String) {
        #expect { try parse(yaml).plan() } throws: { error in
            let text = "\(error)"
            let ok = error is SuiteError && text.hasPrefix(expected)
            if !ok { Issue.record("got: \(text)\nexpected prefix: \(expected)") }
            return ok
        }
    }

    @Test func thresholdsAreReadPerMetric() throws {
        let suite = try parse(Self.minimal.replacingOccurrences(of: "seeds: [0]", with: "seeds: [0]\nthresholds: {accuracy: 0.02, nmi: 0, samples_per_s: 0.3}"))
        #expect(suite.thresholds == ["accuracy": 0.02, "nmi": 0, "samples_per_s": 0.3])
        #expect(try parse(Self.minimal).thresholds.isEmpty)
    }

    @Test func theSameFileGivesTheSamePlan() throws {
        let text = try String(contentsOfFile: repositoryRoot + "/suites/smoke.yaml", encoding: .utf8)
        let a = try Planner.plan(try Suite.parse(text, file: "a", name: "smoke")), b = try Planner.plan(try Suite.parse(text, file: "b", name: "smoke"))
        #expect(a.map(\.key) == b.map(\.key))
        #expect(a.map(\.config.json) == b.map(\.config.json))
        let edited = try Suite.parse(text + "\n# edited", file: "a", name: "smoke")
        #expect(try Suite.parse(text, file: "a", name: "smoke").sha != edited.sha)
    }
}

extension Suite {
    func plan() throws -> [PlannedTrial] { try Planner.plan(self) }
}

import ArgumentParser
import DataCore
import Evaluation
import Foundation
import Methods
import Reporting
import ResultsStore
import Suite

/// `benchbench run`: one trial, trained, scored, printed and stored (a run of suite "run").
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train and evaluate one method at one label budget and seed, and store the result.")

    @Option(help: "Method (see 'benchbench list methods').")
    var method: String

    @Option(help: "Dataset: fashion-mnist, glyphs, glyphs-color, glyph-motion, idx (with --idx-files).")
    var dataset: String

    @Option(help: "How results name the dataset (default: its name; for idx, the folder and name of the training images file).")
    var datasetId: String?

    @Option(help: "Label budget: all, or labels per class (10, 100, ...); 'none' for self-supervised methods.")
    var budget: String

    @Option(help: "Seed of every random stream of the trial.")
    var seed: UInt64 = 0

    @Option(help: "Training steps (default: the method's own for the budget).")
    var steps: Int?

    @Option(help: "Backbone: conv4 or mlp (default: the method's own, conv4; methods without a network take none).")
    var backbone: String?

    @Option(help: "Use an exponential moving average of the weights (this decay, e.g. 0.999) for validation and the result.")
    var ema: Float?

    @Option(name: .customLong("set"), help: "A config setting, KEY=VALUE, dotted for nested settings and VALUE in JSON (e.g. training.steps=2000, threshold=0.9); repeatable.")
    var settings: [String] = []

    @Option(help: "Validation examples per class carved from the training part (default: 300 with all labels, 100 otherwise).")
    var validationPerClass: Int?

    @Option(help: "Evaluation protocols (comma-separated): native, linear, knn, finetune, episodes, episodes-linear; those that do not apply to the method and dataset are skipped.")
    var protocols = "native,linear,knn,episodes,episodes-linear"

    @Option(help: "Label budgets the linear, knn and finetune protocols are scored at (comma-separated; default: the training budget).")
    var evalBudgets: String?

    @OptionGroup var data: DataOptions
    @OptionGroup var store: StoreOptions

    func protocolList() throws -> [EvaluationProtocol] {
        try protocols.split(separator: ",").map { text in
            do { return try EvaluationProtocol(parsing: String(text)) } catch let e as DataError { throw ValidationError("--protocols: \(e.message)") }
        }
    }

    func evaluationBudgets(default budget: LabelBudget) throws -> [LabelBudget] {
        guard let evalBudgets else { return budget == .none ? [] : [budget] }
        return try evalBudgets.split(separator: ",").map { text in
            do {
                let b = try LabelBudget(parsing: String(text))
                if case .shot = b { throw DataError("K-shot budgets are scored by episodes, not by these protocols") }
                if case .none = b { throw DataError("'none' grants no labels to fit a probe on") }
                return b
            } catch let e as DataError { throw ValidationError("--eval-budgets '\(text)': \(e.message)") }
        }
    }

    /// `--set` settings as nested overrides: `training.steps=2000` → ["training": ["steps": 2000]].
    func settingOverrides() throws -> [String: Any] {
        var result: [String: Any] = [:]
        for setting in settings {
            guard let eq = setting.firstIndex(of: "="), eq != setting.startIndex else {
                throw ValidationError("--set '\(setting)': expected KEY=VALUE")
            }
            let path = setting[..<eq].split(separator: ".").map(String.init)
            let text = String(setting[setting.index(after: eq)...])
            let value = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? text
            func insert(_ dict: [String: Any], _ keys: ArraySlice<String>) -> [String: Any] {
                var d = dict
                let key = keys.first!
                d[key] = keys.count == 1 ? value : insert(d[key] as? [String: Any] ?? [:], keys.dropFirst())
                return d
            }
            result = insert(result, path[...])
        }
        return result
    }

    func validate() throws {
        _ = try settingOverrides()
        guard MethodRegistry.method(method) != nil else {
            throw ValidationError("unknown method '\(method)'; available: \(MethodRegistry.ids.joined(separator: ", "))")
        }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        _ = try protocolList()
        if let v = validationPerClass, v < 1 { throw ValidationError("--validation-per-class must be at least 1, got \(v)") }
        _ = try evaluationBudgets(default: .all)   // reject bad --eval-budgets before any training
    }

    func run() throws {
        let method = MethodRegistry.method(self.method)!
        let budget: LabelBudget
        do { budget = try LabelBudget(parsing: self.budget) } catch let e as DataError { throw ValidationError("--budget: \(e.message)") }
        let spec = try data.spec(dataset)
        var overrides = try settingOverrides()
        if let backbone {
            overrides["backbone"] = (overrides["backbone"] as? [String: Any] ?? [:]).merging(["name": backbone]) { own, _ in own }
        }
        var training = overrides["training"] as? [String: Any] ?? [:]
        if let steps { training["steps"] = steps }
        if let ema { training["emaDecay"] = Double(ema) }
        if !training.isEmpty { overrides["training"] = training }
        let config: ResolvedConfig
        do { config = try method.resolve(budget: budget, classes: 10, overrides: overrides) } catch let e as ConfigError {
            throw ValidationError("\(method.id): \(e)")
        }
        if let kind = try? spec.imageKind(), let reason = method.unsuitable(kind) {
            throw ValidationError("\(method.id) cannot run on dataset '\(dataset)': \(reason)")
        }
        let evaluation = EvaluationPlan(protocols: try protocolList().filter { Planner.applies($0, method: method, dataset: spec) }, budgets: try evaluationBudgets(default: budget), episodes: EpisodeSettings())
        // Probes, kNN and fine-tuning fit on labels: with none granted they need budgets of their own.
        let labelled = evaluation.protocols.filter { !$0.isEpisodic && $0 != .native }
        if evaluation.budgets.isEmpty && !labelled.isEmpty {
            throw ValidationError("--budget \(self.budget) grants no labels for \(labelled.map(\.rawValue).joined(separator: ", ")) to fit on: give --eval-budgets (e.g. 10,all)")
        }
        var trial = PlannedTrial(dataset: SuiteDataset(id: datasetId ?? spec.defaultID, spec: spec, regimes: nil), method: method, trainBudget: budget, seed: seed,
                                 config: config, evaluation: evaluation, validationPerClass: validationPerClass, estimatedSeconds: 0)
        trial.estimatedSeconds = TimeEstimate.seconds(for: trial)

        let db = try store.open()
        let runner = SuiteRunner(store: db, data: DatasetCache(dataDir: data.dataDir))
        var hash = ContentHash()
        hash.add(CommandLine.arguments.dropFirst().joined(separator: " "))
        let (runID, trials) = try runner.start(suite: "run", suiteSha: hash.hex, trials: [trial], git: GitState.current(), argv: CommandLine.arguments)
        print("run \(runID): \(method.id) v\(method.version), config \(config.json)")
        let failed = try runner.execute(trials)
        let status = try runner.finish(runID: runID)
        if let data = try db.runData(runID) { print(""); print(RunTables.trials(data)) }
        print("stored as run \(runID) in \(db.path)")
        if failed > 0 || status != RunStatus.done { throw ExitCode(ExitCodes.trialFailed) }
    }
}

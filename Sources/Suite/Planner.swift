import DataCore
import Evaluation
import Foundation
import Methods

/// How a trial is scored once trained.
public struct EvaluationPlan: Equatable, Sendable {
    /// Protocols that apply to this trial, in the suite's order.
    public var protocols: [EvaluationProtocol]
    /// Budgets the linear, kNN and fine-tune protocols fit at (native scores at the train budget).
    public var budgets: [LabelBudget]
    public var episodes: EpisodeSettings
    /// Protocols fitted at only some of `budgets` (the suite's `{finetune: [10]}`).
    public var only: [EvaluationProtocol: [LabelBudget]]

    /// A plan; a protocol restricted by `only` to none of `budgets` is left out of it.
    public init(protocols: [EvaluationProtocol], budgets: [LabelBudget], episodes: EpisodeSettings, only: [EvaluationProtocol: [LabelBudget]] = [:]) {
        let only = only.filter { protocols.contains($0.key) }
        (self.budgets, self.episodes, self.only) = (budgets, episodes, only)
        self.protocols = protocols.filter { p in only[p].map { r in budgets.contains(where: r.contains) } ?? true }
    }

    /// The budgets protocol `p` is fitted at: the plan's, or those of them it is restricted to.
    public func budgets(for p: EvaluationProtocol) -> [LabelBudget] {
        only[p].map { r in budgets.filter(r.contains) } ?? budgets
    }

    /// The plan in a line: protocols that share budgets together, e.g. "linear,knn @ 10,100,all;
    /// finetune @ 10" (budgets left out where they are just the training budget).
    public func summary(trainBudget: LabelBudget) -> String {
        var groups: [(budgets: [LabelBudget], protocols: [String])] = []
        for p in protocols {
            let b = p.usesBudgets ? budgets(for: p) : budgets
            if let i = groups.firstIndex(where: { $0.budgets == b }) { groups[i].protocols.append(p.rawValue) } else { groups.append((b, [p.rawValue])) }
        }
        return groups.map { g in
            g.protocols.joined(separator: ",") + (g.budgets.isEmpty || g.budgets == [trainBudget] ? "" : " @ " + g.budgets.map { "\($0)" }.joined(separator: ","))
        }.joined(separator: "; ")
    }
}

/// One trial of a plan: everything needed to run it and to recognise it when resuming.
public struct PlannedTrial: Sendable {
    public var dataset: SuiteDataset
    /// The suite entry's name, under which results are stored: the method's id, or a variant's name.
    public var name: String
    public var method: AnyMethod
    public var trainBudget: LabelBudget
    public var seed: UInt64
    public var config: ResolvedConfig
    public var evaluation: EvaluationPlan
    /// Validation examples per class asked for (the runner caps it by the smallest class).
    public var validationPerClass: Int?
    public var estimatedSeconds: Double

    public init(dataset: SuiteDataset, name: String? = nil, method: AnyMethod, trainBudget: LabelBudget, seed: UInt64, config: ResolvedConfig,
                evaluation: EvaluationPlan, validationPerClass: Int?, estimatedSeconds: Double) {
        (self.dataset, self.name, self.method, self.trainBudget, self.seed, self.config) = (dataset, name ?? method.id, method, trainBudget, seed, config)
        (self.evaluation, self.validationPerClass, self.estimatedSeconds) = (evaluation, validationPerClass, estimatedSeconds)
    }

    /// Identifies the trial within a run: a resumed run matches stored trials by it.
    /// The same identity as `TrialRecord.key`.
    public var key: String { "\(dataset.id)|\(name)|\(trainBudget)|\(seed)|\(config.sha)" }
}

/// The grid of a suite expanded into trials by regime (DESIGN.md §1, issue 4):
/// supervised and semi-supervised methods at each per-class budget; few-shot methods trained once
/// per seed on the base classes and scored on novel-class episodes; self-supervised methods
/// pre-trained once per seed without labels, then scored by each protocol at each budget.
public enum Planner {
    public static func plan(_ suite: Suite) throws -> [PlannedTrial] { try planWithNotes(suite).trials }

    /// The trials, and a line for each method left out of a dataset whose images it cannot learn
    /// from (colorization on greyscale data), saying why.
    public static func planWithNotes(_ suite: Suite) throws -> (trials: [PlannedTrial], notes: [String]) {
        var trials: [PlannedTrial] = [], notes: [String] = []
        let base = URL(fileURLWithPath: suite.path).deletingLastPathComponent().path
        for entry in suite.methods {
            let regime = entry.method.regime
            if let named = entry.datasets, let field = entry.datasetsField {
                for id in named where !suite.datasets.contains(where: { $0.id == id }) {
                    throw field.fail("no dataset '\(id)' in the suite; its datasets: \(suite.datasets.map(\.id).joined(separator: ", "))")
                }
            }
            let datasets = zip(suite.datasets, suite.datasetFields).filter { d, _ in
                (entry.datasets?.contains(d.id) ?? true)
                    && (d.regimes.map { $0.contains(regime) } ?? (regime != .fewShot || d.spec.hasClassSplit))
            }
            guard !datasets.isEmpty else {
                throw entry.field.failAtKey("no dataset of the suite is used for \(regime.rawValue) methods"
                                       + (regime == .fewShot ? " (few-shot needs a dataset with a class split)" : ""))
            }
            // The suite's budgets are per-class budgets: few-shot methods ignore them (their shots
            // are under `episodes`); budgets a few-shot entry names itself are an error.
            let (budgets, budgetFields) = entry.budgets.map { ($0, entry.budgetFields) }
                ?? (regime == .fewShot ? ([], []) : (suite.budgets, suite.budgetFields))
            try checkBudgets(budgets, fields: budgetFields, regime: regime, method: entry)
            // Budgets a protocol is restricted to must be budgets the entry has (few-shot entries
            // have none, and no protocol fitted per budget: a suite-wide restriction is not theirs).
            let restricted = entry.protocols == nil ? suite.protocolBudgets : entry.protocolBudgets
            for (p, only) in restricted.budgets where regime != .fewShot {
                for b in only where !budgets.contains(b) {
                    throw restricted.fields[p]!.fail("\(p.rawValue) at \(b) labels per class: not one of \(entry.name)'s budgets (\(budgets.map { "\($0)" }.joined(separator: ", ")))")
                }
            }
            for (dataset, field) in datasets {
                if let kind = try? dataset.spec.imageKind(baseDirectory: base), let reason = entry.method.unsuitable(kind) {
                    notes.append("\(entry.name) left out on dataset '\(dataset.id)': \(reason)")
                    continue
                }
                if regime == .fewShot && !dataset.spec.hasClassSplit {
                    throw field.fail("few-shot methods need a dataset with a class split (set 'split: [base, validation, novel]')")
                }
                let classes = dataset.spec.trainingClassCount ?? 10
                let protocols = (entry.protocols ?? suite.protocols).filter { applies($0, method: entry.method, dataset: dataset.spec) }
                if protocols.contains(where: \.isEpisodic), let problem = dataset.spec.episodeProblem(suite.episodes) {
                    throw field.fail("dataset '\(dataset.id)': \(problem)")
                }
                let seeds = entry.seeds ?? suite.seeds
                if let perClass = dataset.spec.knownImagesPerClass {
                    // As the executor will: validation examples come first, at most a fifth of a class.
                    let available = perClass - min(suite.validationPerClass ?? 100, max(1, perClass / 5))
                    for (budget, field) in zip(budgets, budgetFields.isEmpty ? budgets.map { _ in field } : budgetFields) {
                        if case .perClass(let n) = budget, n > available {
                            throw field.fail("\(n) labels per class is more than dataset '\(dataset.id)' has (\(perClass) per class, \(perClass - available) kept for validation: at most \(available))")
                        }
                    }
                }
                switch regime {
                case .supervised, .semiSupervised:
                    for budget in budgets {
                        let config = try entry.resolve(budget: budget, classes: classes, backbone: suite.backbone)
                        try checkBackbone(config, dataset: dataset, field: entry.field, suite: suite)
                        for seed in seeds {
                            trials.append(trial(dataset, entry, budget, seed, config, EvaluationPlan(protocols: protocols, budgets: [budget], episodes: suite.episodes, only: restricted.budgets), suite))
                        }
                    }
                case .fewShot:
                    let config = try entry.resolve(budget: .all, classes: classes, backbone: suite.backbone)
                    try checkBackbone(config, dataset: dataset, field: entry.field, suite: suite)
                    for seed in seeds {
                        trials.append(trial(dataset, entry, .all, seed, config, EvaluationPlan(protocols: protocols, budgets: [], episodes: suite.episodes), suite))
                    }
                case .selfSupervised:
                    let config = try entry.resolve(budget: .none, classes: classes, backbone: suite.backbone)
                    try checkBackbone(config, dataset: dataset, field: entry.field, suite: suite)
                    for seed in seeds {
                        trials.append(trial(dataset, entry, .none, seed, config, EvaluationPlan(protocols: protocols, budgets: budgets, episodes: suite.episodes, only: restricted.budgets), suite))
                    }
                }
            }
        }
        return (trials, notes)
    }

    static func trial(_ dataset: SuiteDataset, _ entry: SuiteMethod, _ budget: LabelBudget, _ seed: UInt64, _ config: ResolvedConfig,
                      _ evaluation: EvaluationPlan, _ suite: Suite) -> PlannedTrial {
        var t = PlannedTrial(dataset: dataset, name: entry.name, method: entry.method, trainBudget: budget, seed: seed, config: config, evaluation: evaluation,
                             validationPerClass: suite.validationPerClass, estimatedSeconds: 0)
        t.estimatedSeconds = TimeEstimate.seconds(for: t)
        return t
    }

    /// Which protocols make sense for a method on a dataset.
    public static func applies(_ p: EvaluationProtocol, method: AnyMethod, dataset: DatasetSpec) -> Bool {
        let regime = method.regime
        switch p {
        case .native: return (regime == .supervised || regime == .semiSupervised || method.measuresItself) && dataset.hasTestSet
        case .linear, .knn, .finetune: return regime != .fewShot && dataset.hasTestSet
        case .episodes: return method.adapts && dataset.hasClassSplit
        case .episodesLinear: return dataset.hasClassSplit
        }
    }

    /// A backbone that cannot take the dataset's images is refused when the trial is planned.
    /// (IDX datasets are checked against their files' headers; a file that cannot be read is left
    /// for the trial to report.)
    static func checkBackbone(_ config: ResolvedConfig, dataset: SuiteDataset, field: YAMLField, suite: Suite) throws {
        let base = URL(fileURLWithPath: suite.path).deletingLastPathComponent().path
        guard let spec = config.backbone, let shape = try? dataset.spec.imageShape(baseDirectory: base) else { return }
        do { try spec.check(imageShape: shape) } catch let e as ConfigError {
            throw field.failAtKey("dataset '\(dataset.id)': \(e.message)")
        }
    }

    /// Budgets that make no sense for a regime are errors at the budget's line.
    static func checkBudgets(_ budgets: [LabelBudget], fields: [YAMLField], regime: Regime, method: SuiteMethod) throws {
        let fields = fields.isEmpty ? budgets.map { _ in method.field } : fields
        if budgets.isEmpty && regime != .fewShot {
            throw method.field.failAtKey("\(method.name) is \(regime.rawValue) and needs label budgets: set 'budgets' for the suite or the method")
        }
        for (budget, field) in zip(budgets, fields) {
            switch (regime, budget) {
            case (.fewShot, _):
                throw field.fail("\(method.name) is few-shot: it trains on the base classes with all their labels and is scored on episodes; set 'episodes.shots' instead of budgets")
            case (_, .shot):
                throw field.fail("budget '\(budget)' is a few-shot episode setting; \(method.name) (\(regime.rawValue)) needs labels per class or 'all' (set shots under 'episodes')")
            case (.selfSupervised, .none):
                throw field.fail("budget 'none' gives no labels to score \(method.name)'s encoder with; self-supervised methods always train without labels")
            case (_, .none):
                throw field.fail("budget 'none' gives \(method.name) (\(regime.rawValue)) no labels to train on")
            default: break
            }
        }
    }
}

extension DatasetSpec {
    var hasClassSplit: Bool {
        switch kind {
        case .glyphs, .glyphsColor, .glyphMotion: return glyphs.novelClasses > 0
        default: return classSplit != nil
        }
    }

    var hasTestSet: Bool {
        switch kind {
        case .glyphs, .glyphsColor, .glyphMotion: return glyphs.testInstancesPerClass > 0
        default: return true
        }
    }

    /// Why the novel classes cannot hold these evaluation episodes (nil when they can or it is
    /// not known without reading files): too few classes for the way, or too few images per class
    /// for the largest shot plus the queries.
    func episodeProblem(_ e: EpisodeSettings) -> String? {
        let novel: Int? = kind.isGlyphs ? glyphs.novelClasses : classSplit?[2]
        guard let novel, novel > 0 else { return nil }
        let way = e.ways.max() ?? e.way
        if way > novel { return "\(way)-way episodes need \(way) novel classes; the class split has \(novel)" }
        let need = (e.shots.max() ?? 1) + e.query
        if let perClass = knownImagesPerClass, need > perClass {
            return "episodes of \(e.shots.max() ?? 1) shots and \(e.query) queries need \(need) images of each novel class; these classes have \(perClass)"
        }
        return nil
    }

    /// Training images per class, where known without reading files.
    var knownImagesPerClass: Int? {
        switch kind {
        case .glyphs, .glyphsColor, .glyphMotion: return glyphs.instancesPerClass
        case .fashionMNIST: return 6000
        case .idx: return nil
        }
    }

    /// Classes a method trains on (the base classes with a split), where known without reading files.
    var trainingClassCount: Int? {
        switch kind {
        case .glyphs, .glyphsColor, .glyphMotion: return hasClassSplit ? glyphs.baseClasses : glyphs.classes
        case .fashionMNIST: return classSplit?[0] ?? 10
        case .idx: return classSplit?[0]
        }
    }

    /// Validation classes of the class split (where few-shot training validates on episodes),
    /// where known without reading files.
    var knownValidationClasses: Int? {
        kind.isGlyphs ? (hasClassSplit ? glyphs.validationClasses : 0) : classSplit.map { $0[1] }
    }

    /// [C, H, W] where known without reading files.
    var knownImageShape: [Int]? {
        switch kind {
        case .glyphs: return [1, 28, 28]
        case .glyphsColor: return [3, 28, 28]
        case .glyphMotion: return [frames, 28, 28]
        case .fashionMNIST: return [1, 28, 28]
        case .idx: return nil
        }
    }

    /// Training images of the classes a method trains on, where known without reading files.
    var knownTrainCount: Int? {
        switch kind {
        case .glyphs, .glyphsColor, .glyphMotion: return (trainingClassCount ?? 0) * glyphs.instancesPerClass
        case .fashionMNIST: return (trainingClassCount ?? 10) * 6000
        case .idx: return nil
        }
    }

    var knownTestCount: Int? {
        switch kind {
        case .glyphs, .glyphsColor, .glyphMotion: return (trainingClassCount ?? 0) * glyphs.testInstancesPerClass
        case .fashionMNIST: return (trainingClassCount ?? 10) * 1000
        case .idx: return nil
        }
    }
}

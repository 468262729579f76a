import DataCore
import Evaluation
import Foundation
import Methods
import Yams

/// A dataset entry of a suite: its id in results (the name unless given), what to load, and the
/// regimes it is used for.
public struct SuiteDataset: Equatable, Sendable {
    public var id: String
    public var spec: DatasetSpec
    /// nil: every regime the dataset allows (few-shot needs a class split).
    public var regimes: [Regime]?

    public init(id: String, spec: DatasetSpec, regimes: [Regime]? = nil) { (self.id, self.spec, self.regimes) = (id, spec, regimes) }
}

/// A method entry: its name in results, the method, its config overrides (JSON-compatible values)
/// and, optionally, its own budgets instead of the suite's.
public struct SuiteMethod: @unchecked Sendable {   // overrides hold Foundation JSON values only
    /// The entry's key in the suite file: the method's id, or the name of a variant of it
    /// (`fomaml: {method: maml, firstOrder: true}`). Results are stored and compared under it.
    public var name: String
    public var method: AnyMethod
    public var overrides: [String: Any]
    public var budgets: [LabelBudget]?
    /// The entry's own seeds and protocols, where it narrows the suite's (nil: the suite's).
    public var seeds: [UInt64]?
    public var protocols: [EvaluationProtocol]?
    /// Protocols of the entry's own list scored at only some of its budgets (`{finetune: [10]}`).
    public var protocolBudgets: ProtocolBudgets = .init()
    /// The ids of the suite's datasets the entry runs on (nil: every dataset of its regime).
    public var datasets: [String]?
    /// Where the entry and its budgets are written, for errors found while planning.
    let field: YAMLField
    let budgetFields: [YAMLField]
    var datasetsField: YAMLField?
}

/// A suite file, parsed and checked (its format is documented in README.md, "Suite files").
public struct Suite: @unchecked Sendable {
    public var name: String
    public var path: String
    /// Hash of the file's bytes: runs of different suite contents are told apart.
    public var sha: String
    public var description: String
    public var datasets: [SuiteDataset]
    public var seeds: [UInt64]
    public var budgets: [LabelBudget]
    public var methods: [SuiteMethod]
    public var protocols: [EvaluationProtocol]
    /// Protocols of the suite's list scored at only some of its budgets (`{finetune: [10]}`).
    public var protocolBudgets: ProtocolBudgets = .init()
    public var episodes: EpisodeSettings
    /// Validation examples per class (nil: 300 with all labels, 100 otherwise; at most a fifth of the smallest class).
    public var validationPerClass: Int?
    /// Backbone settings given to every method that has them (e.g. backbone, width).
    public var backbone: [String: Any]
    /// The smallest change `compare` counts, per metric name, in the metric's units (0.01 is one
    /// point of accuracy); `samples_per_s` is the relative change of a throughput (0.25 is 25%).
    public var thresholds: [String: Double] = [:]
    let budgetFields: [YAMLField]
    let datasetFields: [YAMLField]

    static let topKeys = ["description", "datasets", "backbone", "seeds", "budgets", "validation", "protocols", "episodes", "thresholds", "methods"]

    /// `name` is a suite under `suitesDirectory` (suites/NAME.yaml) or a path to a file.
    public static func resolvePath(_ name: String, suitesDirectory: String = "suites") -> String? {
        let fm = FileManager.default
        if name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.contains("/") { return fm.fileExists(atPath: name) ? name : nil }
        for ext in ["yaml", "yml"] {
            let path = "\(suitesDirectory)/\(name).\(ext)"
            if fm.fileExists(atPath: path) { return path }
        }
        return nil
    }

    /// The suites in `suitesDirectory`, by name.
    public static func available(suitesDirectory: String = "suites") -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: suitesDirectory)) ?? []
        return files.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
            .map { String($0.prefix(upTo: $0.lastIndex(of: ".")!)) }.sorted()
    }

    /// The largest suite file read: the biggest shipped one is a few kilobytes, so a megabyte is
    /// a wrong path (a dataset, a log), refused before it is read into memory.
    public static let maxFileBytes = 1 << 20

    public static func load(path: String, methods registry: [AnyMethod] = MethodRegistry.all) throws -> Suite {
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size > maxFileBytes {
            throw SuiteError(file: path, line: 0, column: 0, key: "",
                             message: "is \(size) bytes; a suite file is at most \(maxFileBytes) bytes (is this the right file?)")
        }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SuiteError(file: path, line: 0, column: 0, key: "", message: "cannot read the suite file (\(error.localizedDescription))")
        }
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return try parse(text, file: path, name: name, methods: registry)
    }

    /// Parses a suite; `registry` is where method names are looked up (tests add their own).
    public static func parse(_ text: String, file: String, name: String, methods registry: [AnyMethod] = MethodRegistry.all) throws -> Suite {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw SuiteError(file: file, line: 0, column: 0, key: "", message: "the file is empty; a suite needs at least datasets, seeds and methods")
            }
            root = node
        } catch let error as YamlError {
            switch error {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                 .composer(let context, let problem, let mark, _):
                throw SuiteError(file: file, line: mark.line, column: mark.column, key: "",
                                 message: "not valid YAML: \(problem)\(context.map { " \($0.text)" } ?? "")")
            default:
                // Yams's other errors span lines (a duplicated key lists the mapping): the first says it.
                let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
                throw SuiteError(file: file, line: 0, column: 0, key: "", message: "not valid YAML: \(first.replacingOccurrences(of: "Parser: ", with: ""))")
            }
        }
        let top = YAMLField(node: root, key: "", file: file)
        var fields: [String: YAMLField] = [:]
        for (key, field) in try top.mapping(allowed: topKeys, what: "suite settings") { fields[key] = field }
        for required in ["datasets", "seeds", "methods"] where fields[required] == nil {
            throw top.fail("missing key '\(required)'")
        }
        var hash = ContentHash()
        hash.add(text)

        let datasetFields = try fields["datasets"]!.list(single: true)
        let datasets = try datasetFields.map(parseDataset)
        var ids = Set<String>()
        for (d, field) in zip(datasets, datasetFields) where !ids.insert(d.id).inserted {
            throw field.fail("dataset id '\(d.id)' is used twice; give one of them another 'id'")
        }

        let seeds = try parseSeeds(fields["seeds"]!)
        let budgetFields = try fields["budgets"]?.list() ?? []
        let budgets = try budgetFields.map(parseBudget)
        var protocols = EvaluationProtocol.allCases
        var protocolBudgets = ProtocolBudgets()
        if let field = fields["protocols"] {
            (protocols, protocolBudgets) = try parseProtocols(field)
        }
        var episodes = EpisodeSettings()
        if let field = fields["episodes"] {
            for (key, value) in try field.mapping(allowed: ["way", "shots", "query", "count"]) {
                switch key {
                case "way":   // one way, or a list of them scored on the same trained models
                    episodes.ways = try value.list().map { try $0.int(atLeast: 2, atMost: 10_000) }
                    guard Set(episodes.ways).count == episodes.ways.count else { throw value.fail("a way is listed twice") }
                case "shots": episodes.shots = try value.list().map { try $0.int(atLeast: 1, atMost: 10_000) }
                case "query": episodes.query = try value.int(atLeast: 1, atMost: 10_000)
                default: episodes.count = try value.int(atLeast: 1, atMost: 1_000_000)
                }
            }
        }
        let validation = try fields["validation"].map { try $0.int(atLeast: 1, atMost: 1_000_000) }
        var backbone: [String: Any] = [:]
        if let field = fields["backbone"] {
            if case .scalar = field.node {
                backbone["name"] = try field.string()
            } else {
                for (key, value) in try field.mapping(allowed: ["name", "width", "hidden"]) { backbone[key] = try value.json() }
            }
        }
        let methods = try fields["methods"]!.mapping(allowed: nil, what: "method names").map { name, field in
            try parseMethod(name: name, field: field, registry: registry)
        }
        guard !methods.isEmpty else { throw fields["methods"]!.fail("names no method") }

        var suite = Suite(name: name, path: file, sha: hash.hex,
                          description: try fields["description"]?.string() ?? "", datasets: datasets, seeds: seeds, budgets: budgets,
                          methods: methods, protocols: protocols, episodes: episodes, validationPerClass: validation,
                          backbone: backbone, budgetFields: budgetFields, datasetFields: datasetFields)
        suite.protocolBudgets = protocolBudgets
        if let field = fields["thresholds"] { suite.thresholds = try parseThresholds(field) }
        return suite
    }

    /// `thresholds: {accuracy: 0.01, nmi: 0.02, samples_per_s: 0.25}`: metric names (the stored
    /// ones: lower case, digits, `_` and `/`) to non-negative numbers; a throughput's is a fraction.
    static func parseThresholds(_ field: YAMLField) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for (name, value) in try field.mapping(allowed: nil, what: "metric thresholds") {
            guard !name.isEmpty, name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" || $0 == "/" }) else {
                throw value.fail("'\(name)' is not a metric name (lower case letters, digits, '_' and '/', e.g. accuracy, nmi, samples_per_s)")
            }
            let v = try value.double()
            guard v.isFinite, v >= 0 else { throw value.fail("a threshold must be a number >= 0, got \(v)") }
            guard name != "samples_per_s" || v < 10 else {
                throw value.fail("samples_per_s is a relative change (0.25 is 25%), got \(v)")
            }
            out[name] = v
        }
        return out
    }

    /// More seeds than this is a typo, not a plan (each is a full training per method and budget).
    static let maxSeeds = 1_000

    static func parseSeeds(_ field: YAMLField) throws -> [UInt64] {
        // `seeds: 3` means seeds 0, 1, 2; a list names them.
        // (A method entry may narrow the suite's seeds and protocols with its own.)
        if case .scalar = field.node {
            return (0..<UInt64(try field.int(atLeast: 1, atMost: maxSeeds))).map { $0 }
        }
        let seeds = try field.list(single: false).map { UInt64(try $0.int(atLeast: 0)) }
        guard !seeds.isEmpty else { throw field.fail("names no seed") }
        guard seeds.count <= maxSeeds else { throw field.fail("lists \(seeds.count) seeds; at most \(maxSeeds)") }
        guard Set(seeds).count == seeds.count else { throw field.fail("a seed is listed twice") }
        return seeds
    }

    /// A list of protocols, each a name (scored at every budget) or a one-key mapping of a name
    /// to the budgets it alone is scored at (`{finetune: [10]}`: fine-tuning, the costly one, only
    /// at 10 labels per class).
    static func parseProtocols(_ field: YAMLField) throws -> ([EvaluationProtocol], ProtocolBudgets) {
        var restricted = ProtocolBudgets()
        let protocols = try field.list().map { item -> EvaluationProtocol in
            var name: String, budgetsField: YAMLField?
            if case .mapping = item.node {
                let pairs = try item.mapping(allowed: nil, what: "a protocol and its budgets")
                guard pairs.count == 1 else { throw item.fail("expected one protocol and its budgets, e.g. {finetune: [10]}; got \(pairs.count) keys") }
                (name, budgetsField) = (pairs[0].name, pairs[0].field)
            } else {
                name = try item.string()
            }
            let p: EvaluationProtocol
            do { p = try EvaluationProtocol(parsing: name) } catch let e as DataError { throw item.fail(e.message) }
            if let budgetsField {
                guard p.usesBudgets else {
                    throw item.fail("\(p.rawValue) is not scored per label budget (only linear, knn and finetune are); list it without budgets")
                }
                let fields = try budgetsField.list()
                let budgets = try fields.map(parseBudget)
                guard !budgets.isEmpty else { throw budgetsField.fail("names no budget") }
                guard Set(budgets).count == budgets.count else { throw budgetsField.fail("a budget is listed twice") }
                restricted.budgets[p] = budgets
                restricted.fields[p] = budgetsField
            }
            return p
        }
        guard Set(protocols).count == protocols.count else { throw field.fail("a protocol is listed twice") }
        return (protocols, restricted)
    }

    static func parseBudget(_ field: YAMLField) throws -> LabelBudget {
        do { return try LabelBudget(parsing: try field.string()) } catch let e as DataError { throw field.fail(e.message) }
    }

    static let glyphKeys = ["classes", "instances", "test_instances", "split", "seed"]

    static func parseDataset(_ field: YAMLField) throws -> SuiteDataset {
        var options: [(name: String, field: YAMLField)] = []
        let name: String
        if case .scalar = field.node {
            name = try field.string()
        } else {
            options = try field.mapping(allowed: nil, what: "dataset settings")
            guard let nameField = options.first(where: { $0.name == "name" })?.field else { throw field.fail("a dataset entry needs a 'name'") }
            name = try nameField.string()
        }
        guard let kind = DatasetSpec.Kind(rawValue: name) else {
            throw field.fail("unknown dataset '\(name)'; available: \(DatasetSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var spec = DatasetSpec(kind: kind)
        var id = name
        var regimes: [Regime]?
        let kindKeys: [String]
        switch kind {
        case .glyphs, .glyphsColor: kindKeys = glyphKeys
        case .glyphMotion: kindKeys = ["classes", "instances", "test_instances", "seed", "frames"]
        case .idx: kindKeys = ["files", "split", "flips"]
        case .fashionMNIST: kindKeys = ["split"]
        }
        let allowed = ["name", "id", "regimes"] + kindKeys
        for (key, value) in options {
            guard allowed.contains(key) else { throw value.failAtKey("not a setting of dataset '\(name)'; expected one of: \(allowed.joined(separator: ", "))") }
            switch key {
            case "name": break
            case "id": id = try value.string()
            case "regimes":
                regimes = try value.list().map { item in
                    let text = try item.string()
                    guard let r = Regime(rawValue: text) else {
                        throw item.fail("unknown regime '\(text)'; expected one of: \(Regime.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return r
                }
            case "files": spec.idxFiles = try value.list(single: false).map { try $0.string() }
            case "flips": spec.flips = try value.bool()
            case "split":
                let counts = try value.list(single: false).map { try $0.int(atLeast: 0, atMost: 100_000) }
                guard counts.count == 3 else { throw value.fail("expected three class counts [base, validation, novel], got \(counts.count)") }
                if kind == .glyphs || kind == .glyphsColor {
                    (spec.glyphs.baseClasses, spec.glyphs.validationClasses, spec.glyphs.novelClasses) = (counts[0], counts[1], counts[2])
                } else {
                    spec.classSplit = counts
                }
            case "classes": spec.glyphs.classes = try value.int(atLeast: 2, atMost: 10_000)
            case "instances": spec.glyphs.instancesPerClass = try value.int(atLeast: 1, atMost: 100_000)
            case "test_instances": spec.glyphs.testInstancesPerClass = try value.int(atLeast: 0, atMost: 100_000)
            case "frames": spec.frames = try value.int(atLeast: 2, atMost: 64)
            default: spec.glyphs.seed = UInt64(try value.int(atLeast: 0))
            }
        }
        if (kind == .glyphs || kind == .glyphsColor), options.contains(where: { $0.name == "classes" }),
           !options.contains(where: { $0.name == "split" }) {
            spec.glyphs.baseClasses = 0; spec.glyphs.validationClasses = 0; spec.glyphs.novelClasses = 0
        }
        do { try spec.validate() } catch let e as DataError { throw field.fail(e.message) }
        // Generated in memory (784 floats an image, per frame or colour): two million images is
        // over 6 GB already.
        let generated = spec.glyphs.classes * (spec.glyphs.instancesPerClass + spec.glyphs.testInstancesPerClass)
        if kind != .idx && kind != .fashionMNIST && generated > 2_000_000 {
            throw field.fail("\(spec.glyphs.classes) classes of \(spec.glyphs.instancesPerClass + spec.glyphs.testInstancesPerClass) images is \(generated) images to generate; at most 2000000")
        }
        if !options.contains(where: { $0.name == "id" }) { id = spec.defaultID }
        return SuiteDataset(id: id, spec: spec, regimes: regimes)
    }

    /// An entry named after a method runs that method; any other name is a variant and says which
    /// method it runs with `method:` (its own settings then differ from the method's entry, if any).
    static func parseMethod(name: String, field: YAMLField, registry: [AnyMethod]) throws -> SuiteMethod {
        let available = registry.map(\.id).joined(separator: ", ")
        var methodField: YAMLField?
        if case .mapping(let pairs) = field.node, let pair = pairs.first(where: { $0.key.string == "method" }) {
            methodField = field.child("method", pair.value, keyNode: pair.key)
        }
        let method: AnyMethod
        if let methodField {
            let id = try methodField.string()
            guard let named = registry.first(where: { $0.id == id }) else {
                throw methodField.fail("unknown method '\(id)'; available: \(available)")
            }
            if name != id, registry.contains(where: { $0.id == name }) {
                throw field.failAtKey("'\(name)' is a method of its own; name a variant of \(id) otherwise")
            }
            guard name.range(of: "^[a-z0-9][a-z0-9._+-]*$", options: .regularExpression) != nil else {
                throw field.failAtKey("variant name '\(name)' must be lower-case letters, digits and . _ + - (it names the entry in results)")
            }
            method = named
        } else {
            guard let named = registry.first(where: { $0.id == name }) else {
                throw field.failAtKey("unknown method '\(name)'; available: \(available) (a variant under another name sets `method:`)")
            }
            method = named
        }
        var overrides: [String: Any] = [:]
        var budgetFields: [YAMLField]?
        var seeds: [UInt64]?, protocols: [EvaluationProtocol]?, datasets: [String]?, datasetsField: YAMLField?
        var protocolBudgets = ProtocolBudgets()
        if case .scalar = field.node, field.node.null != nil {
            // `supervised:` with nothing after it: the defaults.
        } else {
            for (key, value) in try field.mapping(allowed: nil, what: "\(name) settings") {
                if key == "method" { continue }
                if key == "budgets" { budgetFields = try value.list(); continue }
                if key == "seeds" { seeds = try parseSeeds(value); continue }
                if key == "protocols" { (protocols, protocolBudgets) = try parseProtocols(value); continue }
                if key == "datasets" { (datasets, datasetsField) = (try value.list().map { try $0.string() }, value); continue }
                overrides[key] = try value.json()
            }
        }
        let budgets = try budgetFields?.map(parseBudget)
        // Check the overrides now (unknown keys, types, validate()), at the trial's likely budget.
        var entry = SuiteMethod(name: name, method: method, overrides: overrides, budgets: budgets, seeds: seeds, protocols: protocols, datasets: datasets,
                                field: field, budgetFields: budgetFields ?? [], datasetsField: datasetsField)
        entry.protocolBudgets = protocolBudgets
        _ = try entry.resolve(budget: budgets?.first ?? .all, classes: 10, backbone: [:])
        return entry
    }
}

extension SuiteMethod {
    /// The trial's config: the method's defaults at `budget`, then the suite's backbone settings
    /// (for methods that build a backbone), then the entry's own overrides (its own `backbone`
    /// settings win key by key). Errors point at the entry.
    func resolve(budget: LabelBudget, classes: Int, backbone: [String: Any]) throws -> ResolvedConfig {
        var merged = overrides
        if !backbone.isEmpty && method.configKeys().contains("backbone") {
            merged["backbone"] = backbone.merging(overrides["backbone"] as? [String: Any] ?? [:]) { _, own in own }
        }
        do {
            return try method.resolve(budget: budget, classes: classes, overrides: merged)
        } catch let e as ConfigError {
            // The error points at the deepest part of its dotted key (`training.steps`) the entry writes.
            if let key = e.key {
                var at = field, depth = 0
                for part in key.split(separator: ".").map(String.init) {
                    guard case .mapping(let m) = at.node, let pair = m.first(where: { $0.key.string == part }) else { break }
                    at = at.child(part, pair.value, keyNode: pair.key)
                    depth += 1
                }
                if depth > 0 {
                    let rest = key.split(separator: ".").dropFirst(depth).joined(separator: ".")
                    throw at.failAtKey(rest.isEmpty ? e.message : "\(rest): \(e.message)")
                }
                if key.hasPrefix("backbone.") { throw field.failAtKey("backbone setting '\(key.dropFirst("backbone.".count))': \(e.message)") }
                throw field.failAtKey("\(key): \(e.message)")
            }
            throw field.failAtKey(e.message)
        }
    }
}

/// Protocols scored at only some of the budgets (`protocols: [linear, {finetune: [10]}]`), with
/// where each list is written, for the planner's errors.
public struct ProtocolBudgets: @unchecked Sendable {   // fields: YAML nodes, read-only
    public var budgets: [EvaluationProtocol: [LabelBudget]] = [:]
    var fields: [EvaluationProtocol: YAMLField] = [:]

    public init() {}
}

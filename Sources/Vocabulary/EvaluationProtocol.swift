/// The protocols a trained encoder or classifier can be scored by (DESIGN.md §7): one type for
/// suites, the store, comparisons and reports.
public enum EvaluationProtocol: String, CaseIterable, Codable, Sendable {
    /// The method's own classifier on the test images.
    case native
    /// Frozen features, multinomial logistic regression (L2 chosen on validation).
    case linear
    /// Frozen features, cosine k-nearest neighbours.
    case knn
    /// Encoder and a new head trained end to end on the budget's labels.
    case finetune
    /// N-way K-shot episodes on the novel classes, scored by the method's own adaptation.
    case episodes
    /// The same episodes scored by a logistic head on frozen, L2-normalised support features: every
    /// encoder on one footing.
    case episodesLinear = "episodes-linear"

    /// Whether its results are per episode setting ("5-way 1-shot") rather than per label budget.
    public var isEpisodic: Bool { self == .episodes || self == .episodesLinear }
    /// Fitted once per evaluation budget (labels per class) of the trial's plan.
    public var usesBudgets: Bool { self == .linear || self == .knn || self == .finetune }

    /// Parses a protocol name; the error lists the names there are.
    public init(parsing text: String) throws {
        guard let p = EvaluationProtocol(rawValue: text.trimmingCharacters(in: .whitespaces)) else {
            throw DataError("unknown protocol '\(text)'; expected one of: \(EvaluationProtocol.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = p
    }
}

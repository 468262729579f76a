import DataCore

/// The protocols a trained encoder or classifier can be scored by (DESIGN.md §7).
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
}

/// Few-shot episode settings: `way`-way, each of `shots`, `query` queries per class, `count`
/// fixed episodes (DESIGN.md: 600).
public struct EpisodeSettings: Equatable, Codable, Sendable {
    public var way = 5
    public var shots = [1, 5]
    public var query = 15
    public var count = 600

    public init() {}

    /// The eval-budget label episodes are stored under, e.g. "5-way 1-shot".
    public func label(shot: Int) -> String { "\(way)-way \(shot)-shot" }
}

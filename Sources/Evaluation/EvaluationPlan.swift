import DataCore

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

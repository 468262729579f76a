import DataCore

/// Few-shot episode settings: each of `ways`, each of `shots`, `query` queries per class, `count`
/// fixed episodes (DESIGN.md: 600) per (way, shot). One trained model is scored at every setting
/// (5-way and 20-way scores need one training, not two).
public struct EpisodeSettings: Equatable, Codable, Sendable {
    public var ways = [5]
    public var shots = [1, 5]
    public var query = 15
    public var count = 600

    public init() {}

    /// The first way: the one few-shot model selection uses.
    public var way: Int { ways[0] }

    /// Every (way, shot) scored.
    public var settings: [(way: Int, shot: Int)] { ways.flatMap { w in shots.map { (w, $0) } } }

    /// The eval-budget label episodes are stored under, e.g. "5-way 1-shot".
    public static func label(way: Int, shot: Int) -> String { "\(way)-way \(shot)-shot" }
}

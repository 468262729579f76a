/// What a stored result was scored at: a label budget (`10`, `all`, `none`), or an episode setting
/// (`5-way 1-shot`). Parsed and written here only, so every layer orders and reads them alike.
public enum EvaluationBudget: Hashable, Sendable, Comparable, CustomStringConvertible {
    case labels(LabelBudget)
    case episodes(way: Int, shot: Int)

    /// Parses "10", "all", "none", "5-shot" or "5-way 1-shot".
    public init(parsing text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: " ")
        if parts.count == 2, parts[0].hasSuffix("-way"), let way = Int(parts[0].dropLast(4)), way >= 2,
           case .shot(let shot) = try LabelBudget(parsing: String(parts[1])) {
            self = .episodes(way: way, shot: shot)
        } else if parts.count == 1 {
            self = .labels(try LabelBudget(parsing: String(parts[0])))
        } else {
            throw DataError("evaluation budget '\(text)' is not understood; expected a label budget ('10', 'all', 'none') or an episode setting ('5-way 1-shot')")
        }
    }

    public var description: String {
        switch self {
        case .labels(let b): return "\(b)"
        case .episodes(let way, let shot): return "\(way)-way \(shot)-shot"
        }
    }

    /// Labels per class as a number, for plots against labels (nil for `all`, `none` and episodes).
    public var labelsPerClass: Int? {
        if case .labels(.perClass(let n)) = self { return n }
        return nil
    }

    /// none < K-shot < episodes (by shot, then way) < N per class < all.
    private var rank: (Int, Int, Int) {
        switch self {
        case .labels(.none): return (0, 0, 0)
        case .labels(.shot(let k)): return (1, k, 0)
        case .episodes(let way, let shot): return (2, shot, way)
        case .labels(.perClass(let n)): return (3, n, 0)
        case .labels(.all): return (4, 0, 0)
        }
    }

    public static func < (a: EvaluationBudget, b: EvaluationBudget) -> Bool { a.rank < b.rank }

    /// Orders stored budget texts; text that does not parse sorts last, by itself.
    public static func less(_ a: String, _ b: String) -> Bool {
        switch (try? EvaluationBudget(parsing: a), try? EvaluationBudget(parsing: b)) {
        case let (x?, y?): return x < y || (x == y && a < b)
        case (_?, nil): return true
        case (nil, _?): return false
        case (nil, nil): return a < b
        }
    }
}

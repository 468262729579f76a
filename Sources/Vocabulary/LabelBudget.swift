/// How many labels a trial may use, in the one vocabulary of every suite, table and report:
/// `none` (no labels), `K-shot` (few-shot episodes on novel classes), `N` labels per class, `all`.
public enum LabelBudget: Hashable, Sendable, CustomStringConvertible, Comparable {
    case none
    case shot(Int)
    case perClass(Int)
    case all

    /// Parses "none", "all", "5-shot" or "10"; anything else is an error that says what is accepted.
    public init(parsing text: String) throws {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        let accepted = "expected 'none', 'all', 'K-shot' (K >= 1) or a number of labels per class (>= 1)"
        switch s {
        case "none": self = .none
        case "all": self = .all
        default:
            if s.hasSuffix("-shot") {
                let k = String(s.dropLast(5))
                guard let n = Int(k) else { throw DataError("label budget '\(text)': '\(k)' is not a number; \(accepted)") }
                guard n >= 1 else { throw DataError("label budget '\(text)': a K-shot budget needs K >= 1") }
                self = .shot(n)
            } else if let n = Int(s) {
                guard n >= 1 else {
                    throw DataError("label budget '\(text)': \(n < 0 ? "negative" : "zero") labels per class; use 'none' for no labels, or a number >= 1")
                }
                self = .perClass(n)
            } else {
                throw DataError("label budget '\(text)' is not understood; \(accepted)")
            }
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .shot(let k): return "\(k)-shot"
        case .perClass(let n): return "\(n)"
        case .all: return "all"
        }
    }

    /// Labels per class it grants from a class of `available` examples (nil for `none`/episodes).
    public func labelsPerClass(available: Int) -> Int? {
        switch self {
        case .none, .shot: return nil
        case .perClass(let n): return n
        case .all: return available
        }
    }

    /// Checks a per-class budget against the smallest class it must draw from.
    public func validate(smallestClass: Int, dataset: String) throws {
        if case .perClass(let n) = self, n > smallestClass {
            throw DataError("label budget \(n) per class is larger than the smallest class of \(dataset) (\(smallestClass) examples after the validation split)")
        }
    }

    /// none < 1-shot < 5-shot < 1 < 10 < ... < all: the order tables list budgets in.
    private var rank: (Int, Int) {
        switch self {
        case .none: return (0, 0)
        case .shot(let k): return (1, k)
        case .perClass(let n): return (2, n)
        case .all: return (3, 0)
        }
    }
    public static func < (a: LabelBudget, b: LabelBudget) -> Bool { a.rank < b.rank }
}

import Foundation

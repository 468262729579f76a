import Foundation
import Yams

/// A bad suite file: the file, the line and column, the key, and what was expected.
public struct SuiteError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int
    public let column: Int
    public let key: String
    public let message: String

    public var description: String {
        let place = line > 0 ? "\(file):\(line):\(column)" : file
        return key.isEmpty ? "\(place): \(message)" : "\(place): \(key): \(message)"
    }
}

/// A node of a suite file with its dotted key and position, so every error can point at it.
struct YAMLField {
    let node: Node
    let key: String
    let file: String
    /// The key this value is written under, if any: errors about the entry as a whole point there.
    var keyNode: Node? = nil

    /// An error about the value (its type or content), pointing at the value.
    func fail(_ message: String) -> SuiteError {
        SuiteError(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0, key: key, message: message)
    }

    /// An error about the entry as a whole (an unknown name, a setting that does not apply), pointing at its key.
    func failAtKey(_ message: String) -> SuiteError {
        let mark = keyNode?.mark ?? node.mark
        return SuiteError(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, key: key, message: message)
    }

    func child(_ name: String, _ node: Node, keyNode: Node? = nil) -> YAMLField {
        YAMLField(node: node, key: key.isEmpty ? name : "\(key).\(name)", file: file, keyNode: keyNode)
    }

    /// The entries of a mapping, in file order; a key outside `allowed` is an error naming the
    /// keys that are (pass nil to accept any key, e.g. method names checked by the caller).
    func mapping(allowed: [String]?, what: String = "") throws -> [(name: String, field: YAMLField)] {
        guard case .mapping(let m) = node else { throw fail("expected a mapping of \(what.isEmpty ? "keys" : what) (key: value lines), got \(kind)") }
        var seen = Set<String>()
        return try m.map { pair in
            guard case .scalar(let s) = pair.key else { throw fail("keys must be plain text") }
            let keyField = child(s.string, pair.key)
            if let allowed, !allowed.contains(s.string) {
                throw keyField.fail("unknown key; expected one of: \(allowed.joined(separator: ", "))")
            }
            guard seen.insert(s.string).inserted else { throw keyField.fail("given twice") }
            return (s.string, child(s.string, pair.value, keyNode: pair.key))
        }
    }

    func string() throws -> String {
        guard case .scalar(let s) = node else { throw fail("expected a single value, got \(kind)") }
        return s.string
    }

    func int(atLeast minimum: Int = .min, atMost maximum: Int = .max) throws -> Int {
        guard case .scalar = node, let n = node.int else { throw fail("expected a whole number, got \(describe)") }
        guard n >= minimum else { throw fail("must be at least \(minimum), got \(n)") }
        guard n <= maximum else { throw fail("must be at most \(maximum), got \(n)") }
        return n
    }

    func double() throws -> Double {
        guard case .scalar = node, let d = node.float ?? node.int.map(Double.init) else { throw fail("expected a number, got \(describe)") }
        return d
    }

    func bool() throws -> Bool {
        guard case .scalar = node, let b = node.bool else { throw fail("expected true or false, got \(describe)") }
        return b
    }

    /// A sequence's items; a single value counts as a one-item list where `single` allows it.
    func list(single: Bool = true) throws -> [YAMLField] {
        switch node {
        case .sequence(let s): return s.map { YAMLField(node: $0, key: key, file: file) }
        case .scalar where single: return [self]
        default: throw fail("expected a list ([a, b] or lines starting with '- '), got \(kind)")
        }
    }

    /// The value as JSON-compatible Foundation values (for method config overrides): numbers,
    /// booleans and text by YAML's own rules, lists and mappings recursively.
    func json() throws -> Any {
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                if let i = node.int { return i }
                if let d = node.float { return d }
                if let b = node.bool { return b }
                if node.null != nil { throw fail("has no value; remove the key to keep the default") }
            }
            return s.string
        case .sequence: return try list(single: false).map { try $0.json() }
        case .mapping:
            var out: [String: Any] = [:]
            for (name, field) in try mapping(allowed: nil) { out[name] = try field.json() }
            return out
        case .alias: throw fail("aliases are not supported")
        }
    }

    var kind: String {
        switch node {
        case .scalar: return "a single value"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        }
    }

    var describe: String {
        if case .scalar(let s) = node { return "'\(s.string)'" }
        return kind
    }
}

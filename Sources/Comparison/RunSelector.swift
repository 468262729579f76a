import Foundation
import ResultsStore

/// A run named on the command line that matches nothing stored.
public struct RunNotFound: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Turns "12", "latest", "previous", a branch name, a git ref or a commit prefix into a stored run.
/// A commit or branch means the newest finished run at that commit (of `suite`, when given).
public struct RunSelector {
    public let runs: [RunRecord]
    /// Resolves a git ref (HEAD, main, v1.2) to a full commit; nil when it is not one.
    public let resolveRef: (String) -> String?

    public init(runs: [RunRecord], resolveRef: @escaping (String) -> String? = { _ in nil }) {
        (self.runs, self.resolveRef) = (runs, resolveRef)
    }

    public func resolve(_ spec: String, suite: String? = nil) throws -> RunRecord {
        let finished = runs.filter { $0.finishedAt != nil && (suite == nil || $0.suite == suite) }.sorted { $0.id! > $1.id! }
        let scope = suite.map { " of suite '\($0)'" } ?? ""
        switch spec {
        case "latest":
            guard let r = finished.first else { throw RunNotFound(message: "no finished run\(scope) to call 'latest'") }
            return r
        case "previous":
            guard let latest = finished.first, let r = finished.dropFirst().first(where: { $0.suite == latest.suite }) else {
                throw RunNotFound(message: "no finished run\(scope) before the latest one to call 'previous'")
            }
            return r
        default: break
        }
        if spec.count < 7, let id = Int64(spec) {
            guard let r = runs.first(where: { $0.id == id }) else { throw RunNotFound(message: "no run \(id) (see 'benchbench runs')") }
            return r
        }
        if let r = finished.first(where: { $0.branch == spec }) { return r }
        if let commit = resolveRef(spec) {
            if let r = finished.first(where: { $0.commit == commit }) { return r }
            throw RunNotFound(message: "'\(spec)' is commit \(commit.prefix(10)), which has no finished run\(scope)")
        }
        if spec.count >= 4, spec.allSatisfy(\.isHexDigit) {
            let matches = finished.filter { $0.commit.hasPrefix(spec.lowercased()) }
            let commits = Set(matches.map(\.commit))
            if commits.count > 1 { throw RunNotFound(message: "commit prefix '\(spec)' is ambiguous: \(commits.sorted().map { String($0.prefix(12)) }.joined(separator: ", "))") }
            if let r = matches.first { return r }
        }
        if let id = Int64(spec), let r = runs.first(where: { $0.id == id }) { return r }
        throw RunNotFound(message: "no finished run\(scope) matches '\(spec)' (a run id, 'latest', 'previous', a branch, a git ref or a commit prefix)")
    }
}

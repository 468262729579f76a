import Foundation
import ResultsStore
import TensorCore

/// The git state of the working directory's repository, recorded with every run.
public struct GitState: Equatable, Sendable {
    public var commit: String
    public var branch: String
    public var dirty: Bool

    public static let unknown = GitState(commit: "unknown", branch: "unknown", dirty: false)

    /// Reads `git` in `directory`; outside a repository (or without git) the state is `unknown`.
    public static func current(directory: String = FileManager.default.currentDirectoryPath) -> GitState {
        guard let commit = git(["rev-parse", "HEAD"], in: directory) else { return .unknown }
        let branch = git(["rev-parse", "--abbrev-ref", "HEAD"], in: directory) ?? "unknown"
        // Untracked files (databases, reports) do not make a tree dirty; changed tracked files do.
        let status = git(["status", "--porcelain", "--untracked-files=no"], in: directory) ?? ""
        return GitState(commit: commit, branch: branch == "HEAD" ? "detached" : branch, dirty: !status.isEmpty)
    }

    /// Whether `name` is a local branch of the repository.
    public static func isBranch(_ name: String, directory: String = FileManager.default.currentDirectoryPath) -> Bool {
        !name.hasPrefix("-") && git(["rev-parse", "--verify", "--quiet", "refs/heads/" + name], in: directory) != nil
    }

    /// The best common ancestor of two refs (`git merge-base`), nil when there is none.
    public static func mergeBase(_ a: String, _ b: String, directory: String = FileManager.default.currentDirectoryPath) -> String? {
        guard !a.hasPrefix("-"), !b.hasPrefix("-") else { return nil }
        return git(["merge-base", a, b], in: directory)
    }

    /// The full commit a ref (HEAD, a branch, a tag, a prefix) names, nil when git does not know it.
    public static func resolve(_ ref: String, directory: String = FileManager.default.currentDirectoryPath) -> String? {
        guard !ref.hasPrefix("-") else { return nil }
        return git(["rev-parse", "--verify", "--quiet", ref + "^{commit}"], in: directory)
    }

    /// Every commit reachable from any ref, oldest first, with its position (for history order).
    public static func commitOrder(directory: String = FileManager.default.currentDirectoryPath) -> [String: Int] {
        guard let out = git(["rev-list", "--all", "--topo-order", "--reverse"], in: directory) else { return [:] }
        return Dictionary(out.split(separator: "\n").enumerated().map { (String($0.element), $0.offset) }, uniquingKeysWith: { a, _ in a })
    }

    static func git(_ arguments: [String], in directory: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The machine a run ran on.
public enum MachineInfo {
    public static func current() -> MachineRecord {
        MachineRecord(hostname: ProcessInfo.processInfo.hostName, cpu: BLASRuntime.cpuModel, cores: ProcessInfo.processInfo.activeProcessorCount,
                      os: operatingSystem(), swift: swiftVersion, blas: blasLibrary(), blasCore: BLASRuntime.coreName + GEMMImplementation.current.provenanceSuffix)
    }

    /// PRETTY_NAME of /etc/os-release, else the kernel's version string.
    static func operatingSystem() -> String {
        if let text = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PRETTY_NAME=") }) {
            return line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return ProcessInfo.processInfo.operatingSystemVersionString
    }

    /// "OpenBLAS 0.3.21" from the library's own configuration string.
    static func blasLibrary() -> String {
        BLASRuntime.config.split(separator: " ").prefix(2).joined(separator: " ")
    }

    /// The compiler that built this binary.
    static var swiftVersion: String {
        #if compiler(>=6.4)
        return "6.4+"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }
}

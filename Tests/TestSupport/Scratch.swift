import Foundation

/// Scratch folders for tests: all under one folder per test process, removed when the process
/// exits, so `make test` leaves nothing behind in the temporary directory however often it runs
/// (a crashed run leaves its one folder, named by its process id).
public enum Scratch {
    static let root: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("benchbench-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Scratch.root) }
        return url
    }()

    /// A new empty folder, its name starting with `prefix`.
    public static func folder(_ prefix: String) -> URL {
        let dir = root.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

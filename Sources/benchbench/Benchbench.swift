import ArgumentParser
import DataCore
import Foundation
import Reporting
import ResultsStore
import Suite
import TensorCore

@main
struct Benchbench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchbench",
        abstract: "Benchmark low-label learning methods: train, evaluate, store, compare, report.",
        subcommands: [SuiteCommand.self, Run.self, Runs.self, Show.self, Compare.self, Calibrate.self, Merge.self, Slurm.self, HistoryCommand.self, Report.self, ListCommand.self, DataCommand.self, Kernels.self])

    static func main() {
        // Before OpenBLAS does any work: make it use the best kernel this CPU has (may re-exec once).
        BLASRuntime.selectBestKernel(arguments: CommandLine.arguments)
        // A write past a file-size limit then fails with an error the store reports (and the
        // trial in flight is lost, nothing else) instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as SuiteError {
            exit(withError: CleanExit.fail(error.description, code: ExitCodes.badSuite))
        } catch let error as DataError {
            exit(withError: CleanExit.fail(error.message, code: ExitCodes.badInput))
        } catch let error as StoreError {
            exit(withError: CleanExit.fail(error.message, code: ExitCodes.store))
        } catch let error as OutputError {
            exit(withError: CleanExit.fail(error.message, code: ExitCodes.cannotWrite))
        } catch let error as Gnuplot.Failure {
            exit(withError: CleanExit.fail(error.message, code: 1))
        } catch where ResultsStore.isDatabaseError(error) {
            // SQLite failing under a command (disk full, a read-only file, a lock held too long).
            exit(withError: CleanExit.fail("the results database: \(ResultsStore.describe(error))", code: ExitCodes.store))
        } catch {
            // Help and version print in full; every failure is one line, without the usage text
            // ArgumentParser would add (the message names the option or value at fault).
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            let message = Self.message(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data("error: \(message.split(separator: "\n").first ?? "")\n".utf8)) }
            exit(withError: ExitCode(code.rawValue))
        }
    }
}

/// Exit codes (documented in README.md): 0 success; 1 a trial failed (the run is stored); 3 a
/// comparison found a regression (with --fail-on-regression); 4 a run to compare or report was
/// not found; 64 bad command-line usage; 65 a bad suite file; 74 the results database cannot be used.
enum ExitCodes {
    static let trialFailed: Int32 = 1
    static let regression: Int32 = 3
    static let notFound: Int32 = 4
    static let badSuite: Int32 = 65
    /// A data file that cannot be used (missing, truncated, not IDX, inconsistent): 65 like a bad suite file.
    static let badInput: Int32 = 65
    static let store: Int32 = 74
    /// An output (a report folder) that cannot be created or written.
    static let cannotWrite: Int32 = 73
}

enum CleanExit {
    /// Prints "error: MESSAGE" on standard error and gives the exit code to leave with.
    static func fail(_ message: String, code: Int32) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        return ExitCode(code)
    }

    /// Prints MESSAGE on standard output and leaves with code 0: nothing went wrong, there is just
    /// nothing to do (a comparison with no baseline run yet).
    static func success(_ message: String) -> ExitCode {
        print(message)
        return ExitCode.success
    }
}

/// Where results are stored; shared by every command that reads or writes them.
struct StoreOptions: ParsableArguments {
    @Option(help: "The results database (default: $BENCHBENCH_DB, else benchbench.sqlite in the working directory).")
    var db: String?

    var path: String {
        if let db { return db }
        if let env = ProcessInfo.processInfo.environment["BENCHBENCH_DB"], !env.isEmpty { return env }
        return "benchbench.sqlite"
    }

    func open() throws -> ResultsStore { try ResultsStore(path: path) }

    /// Opens the database for reading: a missing file is an error rather than a new empty database.
    func openExisting() throws -> ResultsStore {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError("\(path): no results database here (run a suite first, or pass --db / set BENCHBENCH_DB)")
        }
        return try open()
    }
}

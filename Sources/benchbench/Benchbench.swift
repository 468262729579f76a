import ArgumentParser
import TensorCore

@main
struct Benchbench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchbench",
        abstract: "Benchmark low-label learning methods: train, evaluate, store, compare, report.",
        subcommands: [Run.self, DataCommand.self, Kernels.self])

    static func main() {
        // Before OpenBLAS does any work: make it use the best kernel this CPU has (may re-exec once).
        BLASRuntime.selectBestKernel(arguments: CommandLine.arguments)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

import Foundation
import Testing

@Suite struct RunCommandTests {
    @Test func badInputGetsOneClearLineAndAUsageExit() throws {
        let cases: [([String], String)] = [
            (["run", "--method", "supervised", "--dataset", "fashion-mnist", "--budget", "0"], "zero labels per class"),
            (["run", "--method", "supervised", "--dataset", "fashion-mnist", "--budget", "5-shots"], "is not understood"),
            (["run", "--method", "supervised", "--dataset", "cifar", "--budget", "10"], "unknown dataset 'cifar'"),
            (["run", "--method", "mixmatcher", "--dataset", "fashion-mnist", "--budget", "10"], "unknown method 'mixmatcher'"),
            (["run", "--method", "supervised", "--dataset", "fashion-mnist", "--budget", "10", "--eval-budgets", "1-shot"], "scored by episodes"),
            (["data", "inspect", "fashion-mnist", "--data-dir", "/nonexistent"], "apt-get install dataset-fashion-mnist"),
            (["data", "inspect", "idx", "--idx-files", "a,b"], "needs --idx-files"),
            (["data", "inspect", "idx", "--idx-files", "/no/a,/no/b,/no/c,/no/d"], "/no/"),
        ]
        for (arguments, expected) in cases {
            let r = try runBenchbench(arguments)
            #expect(r.status != 0, "\(arguments)")
            #expect(r.stderr.contains(expected), "\(arguments): \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Backtrace"))
        }
    }

    @Test func inspectPrintsSizesCountsAndHash() throws {
        let r = try runBenchbench(["data", "inspect", "fashion-mnist"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("train: 60000 images, test: 10000 images, 10 classes"))
        #expect(r.stdout.contains("hash: 564528db60358e07"))
        #expect(r.stdout.contains("Ankle boot    6000   1000"))
        // Many classes: their counts summarised in words ("0/20" read as a fraction).
        let glyphs = try runBenchbench(["data", "inspect", "glyphs"])
        #expect(glyphs.status == 0 && glyphs.stdout.contains("(1600 classes: per-class counts left out; 1600 classes have 20 training images)"), "\(glyphs.stdout)")
    }
}

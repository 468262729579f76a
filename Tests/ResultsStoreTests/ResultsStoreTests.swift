import Foundation
import Testing
@testable import ResultsStore

func temporaryDatabase() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("benchbench-store-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("results.sqlite").path
}

@Suite struct ResultsStoreTests {
    let machine = MachineRecord(hostname: "host", cpu: "AMD EPYC", cores: 2, os: "Debian 12", swift: "6.3.1",
                                blas: "OpenBLAS 0.3.21", blasCore: "Zen")

    func run(_ store: ResultsStore) throws -> Int64 {
        try store.startRun(RunRecord(suite: "smoke", suiteSha: "abc", commit: "deadbeef", branch: "main", dirty: false,
                                     machineId: try store.machineID(machine), argv: "benchbench suite smoke",
                                     startedAt: Date(timeIntervalSince1970: 1_800_000_000)))
    }

    func trial(_ runID: Int64) -> TrialRecord {
        TrialRecord(runId: runID, dataset: "fashion-mnist", datasetSha: "564528db60358e07", method: "supervised", methodVersion: "1",
                    configJson: "{\"steps\":200}", configSha: "c0ffee", trainBudget: "10", seed: 2, splitSha: "5988",
                    status: "done", startedAt: Date(timeIntervalSince1970: 1_800_000_100), seconds: 35.2, steps: 200, samplesPerS: 568)
    }

    @Test func migratesFromEmptyToWALWithForeignKeys() throws {
        let store = try ResultsStore(path: temporaryDatabase())
        #expect(try store.journalMode() == "wal")
        #expect(try store.integrityCheck() == "ok")
        #expect(try store.runs().isEmpty)
        // Opening again runs no migration twice.
        _ = try ResultsStore(path: store.path)
    }

    @Test func everyRecordRoundTrips() throws {
        let store = try ResultsStore(path: temporaryDatabase())
        let runID = try run(store)
        #expect(try store.machineID(machine) == store.machineID(machine), "one row per machine")
        let metrics = [MetricRecord(protocolName: "native", evalBudget: "10", name: "accuracy", value: 0.7257, ci95: nil, n: 10_000),
                       MetricRecord(protocolName: "episodes", evalBudget: "1-shot", name: "accuracy", value: 0.95, ci95: 0.0035, n: 600)]
        let curves = [CurveRecord(step: 50, name: "loss", value: 0.9), CurveRecord(step: 100, name: "loss", value: 0.5)]
        let kernels = [KernelRecord(name: "gemm_nn", shape: "64x15488x288", calls: 20, flops: 1.1e10, seconds: 0.14)]
        let trialID = try store.record(trial: trial(runID), metrics: metrics, curves: curves, kernels: kernels)
        var expected = trial(runID)
        expected.id = trialID
        #expect(try store.trials(run: runID) == [expected])
        #expect(try store.metrics(trial: trialID) == metrics.map { var m = $0; m.trialId = trialID; return m })
        #expect(try store.curves(trial: trialID) == curves.map { var c = $0; c.trialId = trialID; return c })
        #expect(try store.kernels(trial: trialID) == kernels.map { var k = $0; k.trialId = trialID; return k })
        let bench = [KernelBenchRecord(name: "gemm", shape: "1024x1024x1024", unit: "GFLOP/s", reps: 7, min: 123, median: 151, max: 156)]
        try store.record(kernelBench: bench, runID: runID)
        #expect(try store.kernelBench(run: runID) == bench.map { var b = $0; b.runId = runID; return b })
        try store.finishRun(runID, status: "done", at: Date(timeIntervalSince1970: 1_800_000_500))
        let stored = try store.runs()
        #expect(stored.count == 1 && stored[0].status == "done" && stored[0].finishedAt == Date(timeIntervalSince1970: 1_800_000_500))
        #expect(stored[0].commit == "deadbeef" && stored[0].dirty == false)
    }

    @Test func aTrialIsStoredWholeOrNotAtAll() throws {
        let store = try ResultsStore(path: temporaryDatabase())
        _ = try run(store)
        // A trial of a run that does not exist breaks a foreign key: nothing of it may remain.
        #expect(throws: (any Error).self) {
            try store.record(trial: trial(999), metrics: [MetricRecord(protocolName: "native", evalBudget: "10", name: "accuracy", value: 0.5)])
        }
        #expect(try store.trials(run: 999).isEmpty)
        #expect(try store.integrityCheck() == "ok")
    }

    @Test func anUnopenableFileIsNamedInTheError() {
        #expect { try ResultsStore(path: "/nonexistent-dir/x/results.sqlite") } throws: {
            ($0 as? StoreError)?.message.hasPrefix("/nonexistent-dir/x/results.sqlite: cannot open") == true
        }
    }
}

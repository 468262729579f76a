import Foundation
import Testing
@testable import ResultsStore
import TestSupport

func temporaryDatabase() -> String {
    Scratch.folder("store").appendingPathComponent("results.sqlite").path
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

    /// A database a newer benchbench wrote (a schema step this build does not know) is refused
    /// with a message naming it, and left as it was.
    @Test func aNewerSchemaIsRefusedAndLeftUntouched() throws {
        let path = temporaryDatabase()
        let store = try ResultsStore(path: path)
        let runID = try run(store)
        try store.pool.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v9: from the future')") }
        #expect { _ = try ResultsStore(path: path) } throws: { error in
            "\(error)".contains("written by a newer benchbench (schema steps this build does not know: v9: from the future)")
        }
        #expect(try store.run(runID) != nil)
    }

    @Test func thresholdsAreKeptWithTheirRun() throws {
        let store = try ResultsStore(path: temporaryDatabase())
        let runID = try run(store)
        try store.record(thresholds: ["accuracy": 0.02, "samples_per_s": 0.3], runID: runID)
        #expect(try store.runData(runID)?.thresholds == ["accuracy": 0.02, "samples_per_s": 0.3])
    }

    @Test func migratesFromEmptyToWALWithForeignKeys() throws {
        let store = try ResultsStore(path: temporaryDatabase())
        #expect(try store.journalMode() == "wal")
        #expect(try store.integrityCheck() == "ok")
        #expect(try store.runs().isEmpty)
        // Opening again runs no migration twice.
        _ = try ResultsStore(path: store.path)
        // Foreign keys are enforced: a trial of a run that does not exist is refused; deleting a
        // run deletes its trials and their metrics; a machine a run names cannot be deleted.
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "PRAGMA foreign_keys") } == 1)
        #expect(throws: (any Error).self) { _ = try store.plan(runID: 999, trials: [trial(999)]) }
        let runID = try run(store)
        let trialID = try store.plan(runID: runID, trials: [trial(runID)])[0]
        try store.finishTrial(trialID, status: "done", metrics: [MetricRecord(protocolName: "native", evalBudget: "10", name: "accuracy", value: 0.5, ci95: nil, n: 4)],
                              curves: [], kernels: [])
        #expect(throws: (any Error).self) { try store.pool.write { try $0.execute(sql: "DELETE FROM machine") } }
        try store.pool.write { try $0.execute(sql: "DELETE FROM run WHERE id = ?", arguments: [runID]) }
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM trial") } == 0)
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM metric") } == 0)
    }

    @Test func everyRecordRoundTrips() throws {
        let store = try ResultsStore(path: temporaryDatabase())
        let runID = try run(store)
        #expect(try store.machineID(machine) == store.machineID(machine), "one row per machine")
        let metrics = [MetricRecord(protocolName: "native", evalBudget: "10", name: "accuracy", value: 0.7257, ci95: nil, n: 10_000),
                       MetricRecord(protocolName: "episodes", evalBudget: "1-shot", name: "accuracy", value: 0.95, ci95: 0.0035, n: 600)]
        let curves = [CurveRecord(step: 50, name: "loss", value: 0.9), CurveRecord(step: 100, name: "loss", value: 0.5)]
        let kernels = [KernelRecord(name: "gemm_nn", shape: "64x15488x288", calls: 20, flops: 1.1e10, seconds: 0.14)]
        let trialID = try #require(try store.plan(runID: runID, trials: [trial(runID)]).first)
        #expect(try store.trials(run: runID).map(\.status) == ["pending"])
        let started = Date(timeIntervalSince1970: 1_800_000_100)
        try store.startTrial(trialID, at: started)
        #expect(try store.trials(run: runID).map(\.status) == ["running"])
        try store.finishTrial(trialID, status: "done", datasetSha: "564528db60358e07", splitSha: "5988", seconds: 35.2, steps: 200,
                              samplesPerSecond: 568, metrics: metrics, curves: curves, kernels: kernels)
        var expected = trial(runID)
        expected.id = trialID
        expected.status = "done"
        #expect(try store.trials(run: runID) == [expected])
        #expect(try store.trialCounts()[runID] == ["done": 1])
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
        let runID = try run(store)
        // A plan naming a run that does not exist breaks a foreign key: none of it may remain.
        #expect(throws: (any Error).self) { try store.plan(runID: 999, trials: [trial(999), trial(999)]) }
        #expect(try store.trials(run: 999).isEmpty)
        // A finish whose metrics cannot all be written (a NaN in a NOT NULL column) leaves the
        // trial as it was: running, with no metric.
        let id = try store.plan(runID: runID, trials: [trial(runID)])[0]
        try store.startTrial(id)
        #expect(throws: (any Error).self) {
            try store.finishTrial(id, status: "done", metrics: [MetricRecord(protocolName: "native", evalBudget: "10", name: "accuracy", value: 0.5),
                                                                MetricRecord(protocolName: "native", evalBudget: "10", name: "accuracy", value: .nan)])
        }
        #expect(try store.trials(run: runID).map(\.status) == ["running"])
        #expect(try store.metrics(trial: id).isEmpty)
        #expect(try store.integrityCheck() == "ok")
    }

    @Test func aRestartedTrialDropsWhatTheInterruptedAttemptLeft() throws {
        let store = try ResultsStore(path: temporaryDatabase())
        let runID = try run(store)
        let id = try store.plan(runID: runID, trials: [trial(runID)])[0]
        try store.startTrial(id)
        try store.finishTrial(id, status: "failed", error: "training diverged", seconds: 3, metrics: [MetricRecord(protocolName: "train", evalBudget: "10", name: "final_loss", value: 9)])
        try store.startTrial(id)
        let t = try store.trials(run: runID)[0]
        #expect(t.status == "running" && t.error == nil && t.seconds == nil)
        #expect(try store.metrics(trial: id).isEmpty)
    }

    @Test func findsTheLatestUnfinishedRunAndMeasuredTimes() throws {
        let store = try ResultsStore(path: temporaryDatabase())
        let first = try run(store), second = try run(store)
        try store.finishRun(second, status: "done")
        #expect(try store.latestUnfinishedRun(suite: "smoke", commit: "deadbeef")?.id == first)
        #expect(try store.latestUnfinishedRun(suite: "smoke", commit: "other") == nil)
        #expect(try store.latestUnfinishedRun(suite: "default", commit: "deadbeef") == nil)
        for (seconds, evalSeconds) in [(10.0, 1.0), (30.0, 2.0), (20.0, 4.0)] {
            let id = try store.plan(runID: first, trials: [trial(first)])[0]
            try store.finishTrial(id, status: "done", seconds: seconds, metrics: [MetricRecord(protocolName: "train", evalBudget: "10", name: "eval_seconds", value: evalSeconds)])
        }
        #expect(try store.measuredSeconds(dataset: "fashion-mnist", method: "supervised", configSha: "c0ffee", trainBudget: "10") == 24)
        #expect(try store.measuredSeconds(dataset: "fashion-mnist", method: "supervised", configSha: "other", trainBudget: "10") == nil)
        let data = try #require(try store.runData(first))
        let machine = try store.machine(data.run.machineId)
        #expect(data.trials.count == 3 && data.trials.allSatisfy { $0.metrics.count == 1 } && data.machine == machine)
    }

    @Test func storesOpenedAtOnceOnANewFileWaitForEachOther() throws {
        // Two processes opening a new database race to switch it to WAL and create its schema;
        // the loser must wait for the winner, not fail with "database is locked". The race is
        // lost now and then, so it is run on many new files.
        for _ in 0..<50 {
            let path = temporaryDatabase()
            let lock = NSLock()
            var errors: [String] = []
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                do {
                    let store = try ResultsStore(path: path)
                    _ = try store.startRun(RunRecord(suite: "s\(i)", suiteSha: "x", commit: "c", branch: "b", dirty: false,
                                                     machineId: try store.machineID(machine), argv: "", startedAt: Date()))
                } catch {
                    lock.lock(); errors.append("\(error)"); lock.unlock()
                }
            }
            #expect(errors.isEmpty, "\(errors)")
            #expect(try ResultsStore(path: path).runs().count == 8)
        }
    }

    @Test func anUnopenableFileIsNamedInTheError() {
        #expect { try ResultsStore(path: "/nonexistent-dir/x/results.sqlite") } throws: {
            ($0 as? StoreError)?.message.hasPrefix("/nonexistent-dir/x/results.sqlite: cannot open") == true
        }
    }
}

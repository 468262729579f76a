import Foundation
import ResultsStore
import TestSupport
import Testing
@testable import Comparison

/// One hand-built pair of runs per category.
@Suite struct CompareTests {
    func compare(_ a: [StoreBuilder.Trial], _ b: [StoreBuilder.Trial], kernelsA: [KernelBenchRecord] = [], kernelsB: [KernelBenchRecord] = [],
                 machineB: MachineRecord = StoreBuilder.machine) throws -> Comparison {
        let s = try StoreBuilder()
        let ra = try s.run(commit: "aaaa1111", trials: a, kernels: kernelsA)
        let rb = try s.run(commit: "bbbb2222", machine: machineB, trials: b, kernels: kernelsB)
        return Comparison(a: try #require(try s.store.runData(ra)), b: try #require(try s.store.runData(rb)))
    }

    func only(_ c: Comparison) throws -> CellComparison { try #require(c.cells.first { $0.key.metric == "accuracy" }) }

    @Test func improvedAndWorsenedNeedASignificantAndLargeEnoughChange() throws {
        let up = try only(try compare(StoreBuilder.seeds([0.70, 0.72, 0.74]), StoreBuilder.seeds([0.75, 0.78, 0.76])))
        #expect(up.category == .improved)
        // Hand-checked against scipy.stats.ttest_ind(equal_var=False): t = 2.9824, p = 0.044236.
        #expect(abs(up.delta! - 0.043333) < 1e-5 && abs(up.p! - 0.044236) < 1e-5)
        let down = try only(try compare(StoreBuilder.seeds([0.75, 0.78, 0.76]), StoreBuilder.seeds([0.70, 0.72, 0.74])))
        #expect(down.category == .worsened && down.category.isRegression)
        // Significant but smaller than the minimum effect (1 point): ~.
        let tiny = try only(try compare(StoreBuilder.seeds([0.7000, 0.7001, 0.7002]), StoreBuilder.seeds([0.7050, 0.7051, 0.7052])))
        #expect(tiny.category == .unchanged && tiny.p! < 0.001)
        // Large but within the noise: ~.
        let noisy = try only(try compare(StoreBuilder.seeds([0.60, 0.80, 0.70]), StoreBuilder.seeds([0.65, 0.85, 0.75])))
        #expect(noisy.category == .unchanged && noisy.p! > 0.05)
    }

    /// One seed a side and no stored CI: the effect size is shown, but there is no test, so no verdict
    /// (a single noisy seed must never fire --fail-on-regression).
    @Test func oneSeedWithoutAnIntervalIsNeverAVerdict() throws {
        let c = try compare(StoreBuilder.seeds([0.80]), StoreBuilder.seeds([0.60]))
        let cell = try only(c)
        #expect(cell.category == .unchanged && cell.p == nil && abs(cell.delta! + 0.2) < 1e-9)
        #expect(cell.note.contains("not tested, effect size only"))
        #expect(c.regressions == 0)
    }

    @Test func episodeCellsAreTestedWithTheirStoredIntervals() throws {
        var a = StoreBuilder.Trial(), b = StoreBuilder.Trial()
        a.episodes = ("5-way 1-shot", 0.50, 0.01)
        b.episodes = ("5-way 1-shot", 0.53, 0.01)
        let c = try compare([a], [b])
        let cell = try #require(c.cells.first { $0.key.protocolName == "episodes" })
        // z = 0.03 / sqrt(2 * (0.01/1.96)^2) = 4.16: p = 3.2e-5.
        #expect(cell.category == .improved && abs(cell.p! - 3.2e-5) < 0.5e-5, "\(cell.p ?? -1)")
    }

    @Test func differentVersionsConfigsOrDataAreNotComparable() throws {
        let c = try only(try compare(StoreBuilder.seeds([0.70, 0.72, 0.74]), StoreBuilder.seeds([0.80, 0.82, 0.84], configSha: "c1")))
        #expect(c.category == .notComparable && c.note.contains("config c0 → c1"))
        var v2 = StoreBuilder.seeds([0.80, 0.82, 0.84])
        for i in v2.indices { v2[i].version = "2" }
        let v = try only(try compare(StoreBuilder.seeds([0.70, 0.72, 0.74]), v2))
        #expect(v.category == .notComparable && v.note.contains("method version 1 → 2"))
    }

    /// Cells on different data (dataset hash) or different label splits (split hash) are not
    /// comparable, and say why.
    @Test func differentDatasetOrSplitHashesAreNotComparable() throws {
        var other = StoreBuilder.seeds([0.80, 0.82, 0.84])
        for i in other.indices { other[i].datasetSha = "d2" }
        let d = try only(try compare(StoreBuilder.seeds([0.70, 0.72, 0.74]), other))
        #expect(d.category == .notComparable && d.note.contains("dataset d → d2"))
        var resplit = StoreBuilder.seeds([0.80, 0.82, 0.84])
        resplit[1].splitSha = "another"
        let s = try only(try compare(StoreBuilder.seeds([0.70, 0.72, 0.74]), resplit))
        #expect(s.category == .notComparable && s.note.contains("split hash differs"))
    }

    /// A group that fails on both sides is no change (and no regression), with both reasons shown.
    @Test func failingOnBothSidesIsUnchanged() throws {
        let both = try compare([StoreBuilder.Trial(failure: "out of memory")], [StoreBuilder.Trial(failure: "training diverged")])
        let cell = try #require(both.cells.first { $0.key.protocolName == "trial" })
        #expect(cell.category == .unchanged && both.regressions == 0)
        #expect(cell.note == "A: seed 0: out of memory | B: seed 0: training diverged")
    }

    /// For a lower-is-better metric (an error, a loss) a drop is an improvement and a rise a regression.
    @Test func lowerIsBetterMetricsAreJudgedTheRightWay() throws {
        func errors(_ values: [Double]) -> [StoreBuilder.Trial] {
            values.enumerated().map { var t = StoreBuilder.Trial(seed: Int64($0.offset)); t.values = ["native@10:reconstruction_error": $0.element]; return t }
        }
        func cell(_ a: [Double], _ b: [Double]) throws -> CellComparison {
            let s = try StoreBuilder()
            let ra = try s.run(commit: "aaaa1111", trials: errors(a)), rb = try s.run(commit: "bbbb2222", trials: errors(b))
            let c = Comparison(a: try #require(try s.store.runData(ra)), b: try #require(try s.store.runData(rb)), metrics: ["reconstruction_error"])
            return try #require(c.cells.first { $0.key.metric == "reconstruction_error" })
        }
        #expect(try cell([0.30, 0.31, 0.32], [0.20, 0.21, 0.22]).category == .improved)
        #expect(try cell([0.20, 0.21, 0.22], [0.30, 0.31, 0.32]).category == .worsened)
    }

    /// The minimum effect (`--threshold`) and the significance level (`--alpha`) decide the verdict.
    @Test func thresholdAndAlphaDecide() throws {
        let s = try StoreBuilder()
        let ra = try s.run(commit: "aaaa1111", trials: StoreBuilder.seeds([0.700, 0.705, 0.710]))
        let rb = try s.run(commit: "bbbb2222", trials: StoreBuilder.seeds([0.722, 0.725, 0.728]))
        let (a, b) = (try #require(try s.store.runData(ra)), try #require(try s.store.runData(rb)))
        func category(threshold: Double, alpha: Double) -> Category? {
            var settings = CompareSettings()
            (settings.minimumEffect, settings.alpha) = (threshold, alpha)
            return Comparison(a: a, b: b, settings: settings).cells.first { $0.key.metric == "accuracy" }?.category
        }
        let p = try #require(Comparison(a: a, b: b).cells.first { $0.key.metric == "accuracy" }?.p)
        #expect(p > 0.001 && p < 0.05, "p = \(p)")
        #expect(category(threshold: 0.01, alpha: 0.05) == .improved)         // +2 points, significant
        #expect(category(threshold: 0.03, alpha: 0.05) == .unchanged)        // smaller than the threshold
        #expect(category(threshold: 0.01, alpha: p / 2) == .unchanged)       // not significant at this level
    }

    /// One measurement a side is no verdict for throughput either: one seed's training samples/s
    /// halving shows its ratio only; two seeds a side are tested.
    @Test func oneThroughputValueASideIsNeverAVerdict() throws {
        var slow = StoreBuilder.seeds([0.7])
        slow[0].samplesPerSecond = 350
        let one = try compare(StoreBuilder.seeds([0.7]), slow)
        let row = try #require(one.throughput.first { $0.group == "training" })
        #expect(row.category == .unchanged && row.note.contains("one value each: not tested") && abs(row.ratio! - 0.5) < 1e-12)
        #expect(one.throughput.filter { $0.group == "profile" }.allSatisfy { $0.category == .unchanged })
        var noisy = StoreBuilder.seeds([0.7, 0.71])
        (noisy[0].samplesPerSecond, noisy[1].samplesPerSecond) = (300, 900)
        var base = StoreBuilder.seeds([0.7, 0.71])
        (base[0].samplesPerSecond, base[1].samplesPerSecond) = (800, 1200)
        let spread = try #require(try compare(base, noisy).throughput.first { $0.group == "training" })
        #expect(spread.category == .unchanged && spread.note.hasPrefix("Welch p = "), "\(spread.note)")
    }

    /// A suite's per-metric threshold replaces the minimum effect for that metric only; a
    /// calibrated spread larger than the threshold raises it for that cell only.
    @Test func perMetricThresholdsAndCalibratedNoiseRaiseTheBarPerCell() throws {
        let s = try StoreBuilder()
        let ra = try s.run(commit: "aaaa1111", trials: StoreBuilder.seeds([0.700, 0.705, 0.710]))
        let rb = try s.run(commit: "bbbb2222", trials: StoreBuilder.seeds([0.722, 0.725, 0.728]))
        let (a, b) = (try #require(try s.store.runData(ra)), try #require(try s.store.runData(rb)))
        func verdict(_ settings: CompareSettings) -> CellComparison? { Comparison(a: a, b: b, settings: settings).cells.first { $0.key.metric == "accuracy" } }
        var settings = CompareSettings()
        #expect(verdict(settings)?.category == .improved)                        // +2 points against 1
        settings.metricThresholds = ["nmi": 0.05]
        #expect(verdict(settings)?.category == .improved)                        // another metric's threshold
        settings.metricThresholds = ["accuracy": 0.03]
        #expect(verdict(settings)?.category == .unchanged)                       // accuracy's own: 3 points
        settings.metricThresholds = [:]
        let key = try #require(verdict(settings)?.key)
        settings.cellNoise = [key.id: 0.025]
        let noisy = try #require(verdict(settings))
        #expect(noisy.category == .unchanged && noisy.note.contains("calibrated noise 0.025 > threshold 0.01"))
        settings.cellNoise = [key.id: 0.005]                                      // below the threshold: no effect
        #expect(verdict(settings)?.category == .improved)
        // A change exactly as large as the spread the calibration saw is not beyond it.
        let delta = try #require(verdict(CompareSettings())?.delta)
        settings.cellNoise = [key.id: delta]
        #expect(verdict(settings)?.category == .unchanged)
        settings.cellNoise = [key.id: delta * 0.99]
        #expect(verdict(settings)?.category == .improved)
    }

    @Test func calibratedThroughputNoiseRaisesTheThroughputThreshold() throws {
        let s = try StoreBuilder()
        func bench(_ median: Double) -> [KernelBenchRecord] {
            [KernelBenchRecord(name: "gemm", shape: "1024x1024x1024", unit: "GFLOP/s", reps: 7, min: median - 1, median: median, max: median + 1)]
        }
        let ra = try s.run(commit: "aaaa1111", trials: [], kernels: bench(100))
        let rb = try s.run(commit: "bbbb2222", trials: [], kernels: bench(65))
        let (a, b) = (try #require(try s.store.runData(ra)), try #require(try s.store.runData(rb)))
        var settings = CompareSettings()
        #expect(Comparison(a: a, b: b, settings: settings).throughput.first?.category == .worsened)
        // The spread is max/min - 1 of same-commit runs: a fall to 0.65 is a factor 1.54.
        settings.throughputNoise = ["kernels|gemm|1024x1024x1024|GFLOP/s": 0.60]
        let row = try #require(Comparison(a: a, b: b, settings: settings).throughput.first)
        #expect(row.category == .unchanged && row.note == "calibrated noise 60%")
        settings.throughputNoise = ["kernels|gemm|1024x1024x1024|GFLOP/s": 0.50]
        #expect(Comparison(a: a, b: b, settings: settings).throughput.first?.category == .worsened)
    }

    /// Same-commit runs: each cell's spread is the range of its means, each throughput's the
    /// largest over the smallest value minus one; stored and read back as one calibration.
    @Test func calibrationMeasuresSpreadsAndIsStored() throws {
        let s = try StoreBuilder()
        var runs: [Int64] = []
        for (accuracy, speed) in [(0.70, 1000.0), (0.72, 1100.0), (0.71, 900.0)] {
            var trials = StoreBuilder.seeds([accuracy, accuracy])
            for i in trials.indices { trials[i].samplesPerSecond = speed }
            runs.append(try s.run(commit: "aaaa1111", trials: trials))
        }
        let data = try runs.map { try #require(try s.store.runData($0)) }
        let c = Calibration(data)
        let key = try #require(RunCells(data[0]).cells.keys.first { $0.metric == "accuracy" })
        #expect(abs(c.cells[key.id]! - 0.02) < 1e-12)
        let training = try #require(c.throughput.first { $0.key.hasPrefix("training|") })
        #expect(abs(training.value - (1100.0 / 900.0 - 1)) < 1e-12)
        let machine = data[0].run.machineId
        try s.store.record(noise: c.records(suite: "test", machineId: machine, commit: "aaaa1111", runs: runs))
        var settings = CompareSettings()
        settings.use(noise: try s.store.latestNoise(suite: "test", machineId: machine))
        #expect(settings.cellNoise == c.cells && settings.throughputNoise == c.throughput)
        #expect(try s.store.latestNoise(suite: "other", machineId: machine).isEmpty)
    }

    /// The measured FMA ceiling is part of the machine: a different ceiling (a throttled or shared
    /// machine) makes throughput not comparable; the same ceiling leaves the rows compared.
    @Test func aDifferentFMACeilingIsAnotherMachine() throws {
        func bench(_ ceiling: Double, _ gemm: Double) -> [KernelBenchRecord] {
            [KernelBenchRecord(name: "fma ceiling", shape: "2 threads", unit: "GFLOP/s", reps: 7, min: ceiling - 1, median: ceiling, max: ceiling + 1),
             KernelBenchRecord(name: "gemm", shape: "1024x1024x1024", unit: "GFLOP/s", reps: 7, min: gemm - 1, median: gemm, max: gemm + 1)]
        }
        let other = try compare([], [], kernelsA: bench(160, 100), kernelsB: bench(80, 50))
        #expect(other.throughput.allSatisfy { $0.category == .notComparable && $0.note == "FMA ceiling differs (160 → 80 GFLOP/s)" })
        let same = try compare([], [], kernelsA: bench(160, 100), kernelsB: bench(158, 60))
        #expect(same.throughput.first { $0.name == "gemm" }?.category == .worsened)
    }

    /// Throughput on another CPU (not only another BLAS core) is not comparable.
    @Test func throughputOnAnotherCPUIsNotComparable() throws {
        let bench = [KernelBenchRecord(name: "gemm", shape: "1024x1024x1024", unit: "GFLOP/s", reps: 7, min: 99, median: 100, max: 101)]
        var other = StoreBuilder.machine
        other.cpu = "Intel Xeon"
        let c = try compare([], [], kernelsA: bench, kernelsB: bench, machineB: other)
        #expect(c.throughput.first?.category == .notComparable && c.throughput.first?.note.contains("machine differs (AMD EPYC, 2 cores → Intel Xeon, 2 cores)") == true)
    }

    @Test func failuresAndCellsOnOneSideOnly() throws {
        let introduced = try compare(StoreBuilder.seeds([0.7, 0.72]), [StoreBuilder.Trial(failure: "training diverged: loss is nan at step 3")])
        let i = try #require(introduced.cells.first { $0.key.protocolName == "trial" })
        #expect(i.category == .introducedFailure && i.note.contains("B: seed 0: training diverged") && introduced.regressions >= 1)
        let fixed = try compare([StoreBuilder.Trial(failure: "out of memory")], StoreBuilder.seeds([0.7, 0.72]))
        #expect(fixed.cells.contains { $0.category == .fixedFailure } && fixed.regressions == 0)
        let sides = try compare(StoreBuilder.seeds([0.7], method: "supervised"), StoreBuilder.seeds([0.7], method: "fixmatch"))
        #expect(Set(sides.cells.map(\.category)) == [.onlyInA, .onlyInB])
    }

    @Test func throughputComparesMedianRatiosOnTheSameMachineOnly() throws {
        func bench(_ median: Double, _ lo: Double, _ hi: Double) -> [KernelBenchRecord] {
            [KernelBenchRecord(name: "gemm", shape: "1024x1024x1024", unit: "GFLOP/s", reps: 7, min: lo, median: median, max: hi)]
        }
        // The default threshold is 25% (this host's rerun noise).
        let faster = try compare([], [], kernelsA: bench(100, 98, 102), kernelsB: bench(130, 128, 132))
        #expect(faster.throughput.first?.category == .improved && abs(faster.throughput.first!.ratio! - 1.3) < 1e-12)
        let within = try compare([], [], kernelsA: bench(100, 98, 102), kernelsB: bench(120, 118, 122))
        #expect(within.throughput.first?.category == .unchanged)
        let slower = try compare([], [], kernelsA: bench(100, 98, 102), kernelsB: bench(70, 68, 72))
        #expect(slower.throughput.first?.category == .worsened && slower.regressions == 1)
        let overlapping = try compare([], [], kernelsA: bench(100, 70, 130), kernelsB: bench(70, 50, 105))
        #expect(overlapping.throughput.first?.category == .unchanged && overlapping.throughput.first?.note == "ranges overlap")
        var other = StoreBuilder.machine
        other.blasCore = "Prescott"
        let core = try compare([], [], kernelsA: bench(100, 98, 102), kernelsB: bench(20, 19, 21), machineB: other)
        #expect(core.throughput.first?.category == .notComparable && core.throughput.first?.note.contains("BLAS core differs (Zen → Prescott)") == true)
        // Training samples/s and the trials' kernel profiles are compared too.
        var slow = StoreBuilder.seeds([0.7, 0.71])
        for i in slow.indices { slow[i].samplesPerSecond = 500 }
        let training = try compare(StoreBuilder.seeds([0.7, 0.71]), slow)
        #expect(training.throughput.contains { $0.group == "training" && $0.category == .worsened })
        #expect(training.throughput.contains { $0.group == "profile" && $0.name == "gemm_nn" && $0.category == .unchanged })
    }

    @Test func runsAreFoundByIdLatestPreviousBranchAndCommitPrefix() throws {
        let s = try StoreBuilder()
        let first = try s.run(commit: "abc1230000", branch: "main", trials: StoreBuilder.seeds([0.7]))
        let second = try s.run(commit: "def4560000", branch: "feature", trials: StoreBuilder.seeds([0.7]))
        let other = try s.run(suite: "smoke", commit: "def4560000", branch: "feature", trials: StoreBuilder.seeds([0.7]))
        let selector = RunSelector(runs: try s.store.runs(), resolveRef: { $0 == "HEAD" ? "def4560000" : nil })
        #expect(try selector.resolve("latest").id == other)
        #expect(try selector.resolve("latest", suite: "default").id == second)
        #expect(try selector.resolve("previous", suite: "default").id == first)
        #expect(try selector.resolve("main").id == first)
        #expect(try selector.resolve("HEAD", suite: "default").id == second)
        #expect(try selector.resolve("abc1").id == first)
        #expect(try selector.resolve("\(first)").id == first)
        #expect(throws: RunNotFound.self) { try selector.resolve("nope") }
        #expect(throws: RunNotFound.self) { try selector.resolve("99") }
    }

    @Test func historyOrdersCommitsAndKeepsTheNewestRunOfEach() throws {
        let s = try StoreBuilder()
        _ = try s.run(commit: "c2", trials: StoreBuilder.seeds([0.70, 0.72]), started: Date(timeIntervalSince1970: 2_000))
        _ = try s.run(commit: "c1", trials: StoreBuilder.seeds([0.60, 0.62]), started: Date(timeIntervalSince1970: 1_000))
        _ = try s.run(commit: "c2", trials: StoreBuilder.seeds([0.80, 0.82]), started: Date(timeIntervalSince1970: 3_000))
        let runs = try s.store.runs().compactMap { try s.store.runData($0.id!) }
        let h = History(runs: runs, metric: "accuracy", commitRank: ["c1": 0, "c2": 1])
        #expect(h.commits.map(\.commit) == ["c1", "c2"])
        let series = try #require(h.series.values.first)
        #expect(abs(series[0]!.mean - 0.61) < 1e-12 && abs(series[1]!.mean - 0.81) < 1e-12, "the newer run at c2 wins")
        #expect(h.series.count == 1)
    }

    /// `benchbench run` stores one trial per run (suite "run"): several runs at one commit each
    /// hold their own series, and the history keeps every one of them, not only the newest run's.
    @Test func historyOfSingleTrialRunsKeepsEverySeries() throws {
        let s = try StoreBuilder()
        _ = try s.run(suite: "run", commit: "c1", trials: StoreBuilder.seeds([0.70], method: "supervised"))
        _ = try s.run(suite: "run", commit: "c1", trials: StoreBuilder.seeds([0.75], method: "fixmatch"))
        _ = try s.run(suite: "run", commit: "c1", trials: StoreBuilder.seeds([0.71], method: "supervised"))
        let runs = try s.store.runs().compactMap { try s.store.runData($0.id!) }
        let h = History(runs: runs, metric: "accuracy")
        #expect(h.commits.count == 1 && h.suite == "run")
        let byMethod = Dictionary(uniqueKeysWithValues: h.series.map { ($0.key.method, $0.value[0]!.mean) })
        #expect(byMethod == ["supervised": 0.71, "fixmatch": 0.75], "the newest run holding each series: \(byMethod)")
    }
}

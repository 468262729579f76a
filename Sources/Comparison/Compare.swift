import Foundation
import ResultsStore
import Vocabulary

/// How a cell changed from run A (the baseline) to run B.
public enum Category: String, CaseIterable, Codable, Sendable {
    case improved, worsened
    /// Not significant: the test does not reject "no change", or the change is below the minimum effect.
    case unchanged = "~"
    case notComparable = "not comparable"
    case introducedFailure = "introduced failure"
    case fixedFailure = "fixed failure"
    case onlyInA = "only in A"
    case onlyInB = "only in B"

    /// What `--fail-on-regression` fails on.
    public var isRegression: Bool { self == .worsened || self == .introducedFailure }
}

/// Thresholds of a comparison.
public struct CompareSettings: Sendable {
    /// Smallest change of a metric that counts, in its units (0.01: one point of accuracy).
    public var minimumEffect = 0.01
    /// Per metric name, in place of `minimumEffect` (a suite's `thresholds:`).
    public var metricThresholds: [String: Double] = [:]
    /// Spreads same-commit runs showed (`benchbench calibrate`): per cell (`CellKey.id`) in the
    /// metric's units, per throughput (`ThroughputValue.id`) relative. A change must exceed both
    /// the threshold and the calibrated spread to count.
    public var cellNoise: [String: Double] = [:]
    public var throughputNoise: [String: Double] = [:]
    /// Significance level of the test on per-seed values.
    public var alpha = 0.05
    /// Smallest relative change of a throughput that counts (0.10: 10%).
    public var kernelThreshold = 0.25
    /// Kernel-profile rows shorter than this in either run are left out (too short to time).
    public var minimumKernelSeconds = 0.05

    public init() {}

    /// The smallest change of `key` that counts: its metric's threshold, raised to the calibrated
    /// spread of the cell when that is larger.
    public func minimumEffect(for key: CellKey) -> (effect: Double, threshold: Double, noise: Double?) {
        let threshold = metricThresholds[key.metric] ?? minimumEffect
        let noise = cellNoise[key.id]
        return (max(threshold, noise ?? 0), threshold, noise)
    }
}

/// One compared cell.
public struct CellComparison: Sendable {
    public var key: CellKey
    public var a: Cell?
    public var b: Cell?
    public var category: Category
    /// B − A of the means, when both exist.
    public var delta: Double?
    /// Welch's p (or a z-test's, from stored episode CIs) when a test was possible.
    public var p: Double?
    /// Why: which hashes differ, the failure reasons, "1 seed: not tested", …
    public var note: String
}

/// One compared throughput: a kernel_bench row, a kernel of the trials' profiles, or a method's training samples/s.
public struct ThroughputComparison: Sendable {
    public var group: String
    public var name: String
    public var shape: String
    public var unit: String
    public var a: Double?
    public var b: Double?
    public var category: Category
    public var ratio: Double?
    public var note: String
}

/// The comparison of two runs (DESIGN.md §9).
public struct Comparison: Sendable {
    public var a: RunData
    public var b: RunData
    public var cells: [CellComparison]
    public var throughput: [ThroughputComparison]
    public var settings: CompareSettings

    public var regressions: Int { cells.filter(\.category.isRegression).count + throughput.filter(\.category.isRegression).count }

    public func count(_ c: Category) -> Int { cells.filter { $0.category == c }.count + throughput.filter { $0.category == c }.count }

    public init(a: RunData, b: RunData, metrics: Set<String>? = ["accuracy"], settings: CompareSettings = CompareSettings()) {
        (self.a, self.b, self.settings) = (a, b, settings)
        let ca = RunCells(a, metrics: metrics), cb = RunCells(b, metrics: metrics)
        var out: [CellComparison] = []
        for key in Set(ca.cells.keys).union(cb.cells.keys).sorted() {
            out.append(Comparison.compare(key, ca.cells[key], cb.cells[key], settings))
        }
        // Failures: a group that fails in B but produced cells in A (or the reverse), or fails in both.
        let groupsA = Set(ca.cells.keys.map { TrialGroup(dataset: $0.dataset, method: $0.method, trainBudget: $0.trainBudget) })
        let groupsB = Set(cb.cells.keys.map { TrialGroup(dataset: $0.dataset, method: $0.method, trainBudget: $0.trainBudget) })
        for group in Set(ca.failures.keys).union(cb.failures.keys).sorted() {
            let key = CellKey(dataset: group.dataset, method: group.method, trainBudget: group.trainBudget, protocolName: "trial", evalBudget: "", metric: "status")
            let (fa, fb) = (ca.failures[group], cb.failures[group])
            let category: Category
            switch (fa != nil, fb != nil) {
            case (false, true): category = groupsA.contains(group) ? .introducedFailure : .onlyInB
            case (true, false): category = groupsB.contains(group) ? .fixedFailure : .onlyInA
            default: category = .unchanged    // failing on both sides: nothing changed
            }
            let note = [fa.map { "A: " + $0.joined(separator: "; ") }, fb.map { "B: " + $0.joined(separator: "; ") }].compactMap { $0 }.joined(separator: " | ")
            out.append(CellComparison(key: key, a: nil, b: nil, category: category, delta: nil, p: nil, note: note))
        }
        cells = out
        throughput = Comparison.throughput(a: ca, b: cb, settings: settings)
    }

    static func compare(_ key: CellKey, _ a: Cell?, _ b: Cell?, _ s: CompareSettings) -> CellComparison {
        guard let a else { return CellComparison(key: key, a: nil, b: b, category: .onlyInB, delta: nil, p: nil, note: "") }
        guard let b else { return CellComparison(key: key, a: a, b: nil, category: .onlyInA, delta: nil, p: nil, note: "") }
        let delta = b.aggregate.mean - a.aggregate.mean
        var differ: [String] = []
        if a.methodVersions != b.methodVersions { differ.append("method version \(list(a.methodVersions)) → \(list(b.methodVersions))") }
        if a.configShas != b.configShas { differ.append("config \(list(a.configShas)) → \(list(b.configShas))") }
        if a.datasetShas != b.datasetShas { differ.append("dataset \(list(a.datasetShas)) → \(list(b.datasetShas))") }
        let sharedSeeds = Set(a.splitShas.keys).intersection(b.splitShas.keys)
        if sharedSeeds.contains(where: { a.splitShas[$0] != b.splitShas[$0] }) { differ.append("split hash differs") }
        if !differ.isEmpty {
            return CellComparison(key: key, a: a, b: b, category: .notComparable, delta: delta, p: nil, note: differ.joined(separator: "; "))
        }
        let better = Metric(key.metric).higherIsBetter ? delta > 0 : delta < 0
        let va = a.values.keys.sorted().map { a.values[$0]! }, vb = b.values.keys.sorted().map { b.values[$0]! }
        var p: Double?
        var note = ""
        if let test = WelchTest(va, vb) {
            p = test.p
            note = String(format: "Welch t = %.2f, df = %.1f", test.t, test.degreesOfFreedom)
        } else if va.count == 1, vb.count == 1, let ciA = a.storedCI, let ciB = b.storedCI {
            // One value each with its own CI (episodes): a z-test on the difference.
            let se = ((ciA.ci95 / 1.96) * (ciA.ci95 / 1.96) + (ciB.ci95 / 1.96) * (ciB.ci95 / 1.96)).squareRoot()
            if se > 0 {
                let z = delta / se
                p = erfc(abs(z) / 2.0.squareRoot())
                note = String(format: "z = %.2f from the episode CIs", z)
            }
        } else {
            note = "\(min(va.count, vb.count)) seed(s): not tested, effect size only"
        }
        let (_, threshold, noise) = s.minimumEffect(for: key)
        if let noise, noise > threshold { note += String(format: "; calibrated noise %.4g > threshold %.4g", noise, threshold) }
        // At least the threshold, and beyond what same-commit runs differed by (a difference as
        // large as the calibrated spread is one the calibration itself saw).
        let large = abs(delta) >= threshold && abs(delta) > (noise ?? -1) * (1 + 1e-9)
        // Untested cells (one seed a side, no stored CI) show their effect size but are never a
        // verdict: one noisy seed must not fire --fail-on-regression.
        let significant = p.map { $0 < s.alpha } ?? false
        let category: Category = large && significant ? (better ? .improved : .worsened) : .unchanged
        return CellComparison(key: key, a: a, b: b, category: category, delta: delta, p: p, note: note)
    }

    static func list(_ s: Set<String>) -> String { s.sorted().joined(separator: ",") }

    static func throughput(a: RunCells, b: RunCells, settings s: CompareSettings) -> [ThroughputComparison] {
        // Throughput depends on the machine and the BLAS kernel: otherwise it is not comparable.
        var machineNote = ""
        if let ma = a.run.machine, let mb = b.run.machine {
            if ma.cpu != mb.cpu || ma.cores != mb.cores { machineNote = "machine differs (\(ma.cpu), \(ma.cores) cores → \(mb.cpu), \(mb.cores) cores)" }
            else if ma.blasCore != mb.blasCore { machineNote = "BLAS core differs (\(ma.blasCore) → \(mb.blasCore))" }
        }
        // The measured FMA ceiling is part of the machine: the same CPU model throttled, shared or
        // run at another clock is another machine for throughput.
        if machineNote.isEmpty, let ca = a.run.kernelBench.first(where: { $0.name == "fma ceiling" })?.median,
           let cb = b.run.kernelBench.first(where: { $0.name == "fma ceiling" })?.median, ca > 0, abs(cb / ca - 1) >= s.kernelThreshold {
            machineNote = String(format: "FMA ceiling differs (%.0f → %.0f GFLOP/s)", ca, cb)
        }
        let (va, vb) = (ThroughputValue.all(a), ThroughputValue.all(b))
        var out: [ThroughputComparison] = []
        for id in Set(va.keys).union(vb.keys).sorted(by: { (va[$0] ?? vb[$0]!).precedes(va[$1] ?? vb[$1]!) }) {
            let (x, y) = (va[id], vb[id])
            let r = x ?? y!
            // Kernel-profile rows too short to time in either run are left out.
            if let sx = x?.seconds ?? y?.seconds, let sy = y?.seconds ?? x?.seconds, min(sx, sy) < s.minimumKernelSeconds { continue }
            var row = ThroughputComparison(group: r.group, name: r.name, shape: r.shape, unit: r.unit, a: x?.value, b: y?.value,
                                           category: .unchanged, ratio: nil, note: "")
            guard let x else { row.category = .onlyInB; out.append(row); continue }
            guard let y else { row.category = .onlyInA; out.append(row); continue }
            row.ratio = x.value > 0 ? y.value / x.value : nil
            if !machineNote.isEmpty {
                (row.category, row.note) = (.notComparable, machineNote)
            } else if let ratio = row.ratio {
                let noise = s.throughputNoise[id]
                if let noise, noise > s.kernelThreshold { row.note = String(format: "calibrated noise %.0f%%", noise * 100) }
                // Beyond the threshold and beyond the calibrated spread (max/min - 1 of same-commit runs).
                let change = ratio >= 1 ? ratio - 1 : 1 / max(ratio, 1e-12) - 1
                if abs(ratio - 1) >= s.kernelThreshold && change > (noise ?? -1) * (1 + 1e-9) {
                    // A verdict needs evidence beyond one measurement a side, as for accuracy: a
                    // kernels row has its repetitions' min..max (overlapping ranges are noise);
                    // training samples/s over several seeds gets Welch's test; one value a side
                    // (one seed's training, a profile's total) shows its ratio only. Same-commit
                    // smoke runs on this shared host moved one trial's samples/s by up to 2.2x.
                    if let ra = x.range, let rb = y.range {
                        if ra.overlaps(rb) { row.note = "ranges overlap" } else { row.category = (ratio > 1) == r.higherIsBetter ? .improved : .worsened }
                    } else if x.samples.count >= 2 && y.samples.count >= 2, let test = WelchTest(x.samples, y.samples) {
                        if test.p < s.alpha { row.category = (ratio > 1) == r.higherIsBetter ? .improved : .worsened }
                        else { row.note = String(format: "Welch p = %.2g: not significant", test.p) }
                    } else {
                        row.note = (row.note.isEmpty ? "" : row.note + "; ") + "one value each: not tested"
                    }
                }
            }
            out.append(row)
        }
        return out
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

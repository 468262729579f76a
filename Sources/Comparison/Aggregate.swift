import Foundation

/// Values over seeds summarised: mean, sample standard deviation, 95% confidence half-width of
/// the mean from Student's t (n - 1 degrees of freedom), and n. With one value, std and ci95 are nil.
public struct Aggregate: Equatable, Sendable {
    public var mean: Double
    public var std: Double?
    public var ci95: Double?
    public var n: Int

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        n = values.count
        mean = values.reduce(0, +) / Double(n)
        guard n > 1 else { std = nil; ci95 = nil; return }
        let m = mean
        let s = (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n - 1)).squareRoot()
        std = s
        ci95 = StudentT.quantile975(degreesOfFreedom: n - 1) * s / Double(n).squareRoot()
    }
}

/// Student's t distribution, as far as comparisons need it.
public enum StudentT {
    /// The 0.975 quantile (two-sided 95%) for `df` degrees of freedom: exact table values up to
    /// 30, then the Cornish-Fisher expansion around the normal quantile (error < 1e-4).
    public static func quantile975(degreesOfFreedom df: Int) -> Double {
        let table: [Double] = [12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
                               2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
                               2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272]
        // invariant: called only for two or more values (Aggregate's CI, Welch's test)
        precondition(df >= 1, "Student's t needs at least one degree of freedom")
        if df <= table.count { return table[df - 1] }
        let z = 1.959963985, v = Double(df)
        let g1 = (z * z * z + z) / 4
        let g2 = (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / 96
        let g3 = (3 * pow(z, 7) + 19 * pow(z, 5) + 17 * z * z * z - 15 * z) / 384
        return z + g1 / v + g2 / (v * v) + g3 / (v * v * v)
    }
}

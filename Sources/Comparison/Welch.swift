import Foundation

/// Welch's unequal-variance t-test on two samples, and the distribution functions it needs.
public struct WelchTest: Equatable, Sendable {
    public var t: Double
    public var degreesOfFreedom: Double
    /// Two-sided p-value.
    public var p: Double

    /// nil when either side has fewer than two values (no spread to test against). When neither
    /// side has any spread, the test degenerates: identical means give t = 0 and p = 1, distinct
    /// ones t = ±∞ (the sign of B − A) and p = 0.
    public init?(_ a: [Double], _ b: [Double]) {
        guard a.count >= 2, b.count >= 2, let sa = Aggregate(a), let sb = Aggregate(b), let da = sa.std, let db = sb.std else { return nil }
        let va = da * da / Double(a.count), vb = db * db / Double(b.count)
        // Spreads and differences at the level of floating-point rounding of the values count as
        // none: [0.7, 0.7] and [0.7, 0.7, 0.7] have the same mean even if their sums round apart.
        let scale = Swift.max(abs(sa.mean), abs(sb.mean), 1)
        let rounding = 1e-12 * scale
        guard (va + vb).squareRoot() > rounding else {
            // No spread on either side: identical means are not different; distinct ones are.
            let delta = sb.mean - sa.mean
            t = abs(delta) <= rounding ? 0 : (delta > 0 ? .infinity : -.infinity)
            degreesOfFreedom = Double(a.count + b.count - 2)
            p = t == 0 ? 1 : 0
            return
        }
        t = (sb.mean - sa.mean) / (va + vb).squareRoot()
        let df = (va + vb) * (va + vb) / (va * va / Double(a.count - 1) + vb * vb / Double(b.count - 1))
        degreesOfFreedom = df
        p = StudentT.twoSidedP(t: t, degreesOfFreedom: df)
    }
}

extension StudentT {
    /// P(|T| >= |t|) for Student's t with `df` (real) degrees of freedom:
    /// I_{df/(df+t²)}(df/2, 1/2), the regularised incomplete beta function.
    public static func twoSidedP(t: Double, degreesOfFreedom df: Double) -> Double {
        guard t.isFinite else { return 0 }
        return IncompleteBeta.regularized(x: df / (df + t * t), a: df / 2, b: 0.5)
    }
}

/// The regularised incomplete beta function I_x(a, b), by Lentz's continued fraction (the
/// standard method: converges fast for x < (a+1)/(a+b+2), and the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) covers the rest).
enum IncompleteBeta {
    static func regularized(x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logFront: Double = logBeta + a * log(x) + b * log(1 - x)
        if x < (a + 1) / (a + b + 2) { return exp(logFront) * continuedFraction(x: x, a: a, b: b) / a }
        return 1 - exp(logFront) * continuedFraction(x: 1 - x, a: b, b: a) / b
    }

    static func continuedFraction(x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...300 {
            let m = Double(m)
            let even: Double = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d; if abs(d) < tiny { d = tiny }
            c = 1 + even / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            let odd: Double = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d; if abs(d) < tiny { d = tiny }
            c = 1 + odd / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-14 { break }
        }
        return h
    }
}

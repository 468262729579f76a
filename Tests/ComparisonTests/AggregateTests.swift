import Testing
@testable import Comparison
import Reporting

@Suite struct AggregateTests {
    @Test func meanStdAndTBasedIntervalMatchHandComputedValues() throws {
        // 0.70, 0.72, 0.74: mean 0.72, sample std 0.02, t(2) = 4.302653, CI = 4.302653 * 0.02 / √3.
        let a = try #require(Aggregate([0.70, 0.72, 0.74]))
        #expect(abs(a.mean - 0.72) < 1e-12)
        #expect(abs(a.std! - 0.02) < 1e-12)
        #expect(abs(a.ci95! - 0.0496828) < 1e-6)
        #expect(a.n == 3)
        let one = try #require(Aggregate([0.5]))
        #expect(one.mean == 0.5 && one.std == nil && one.ci95 == nil && one.n == 1)
        #expect(Aggregate([]) == nil)
    }

    @Test func studentTQuantilesMatchTables() {
        #expect(abs(StudentT.quantile975(degreesOfFreedom: 1) - 12.7062) < 1e-4)
        #expect(abs(StudentT.quantile975(degreesOfFreedom: 4) - 2.7764) < 1e-4)
        // Beyond the table the expansion must still agree with published values.
        #expect(abs(StudentT.quantile975(degreesOfFreedom: 40) - 2.021075) < 2e-4)
        #expect(abs(StudentT.quantile975(degreesOfFreedom: 120) - 1.979930) < 1e-4)
        #expect(abs(StudentT.quantile975(degreesOfFreedom: 100_000) - 1.959985) < 1e-4)
    }

    @Test func textTablesPadColumnsAndRightAlignNumbers() {
        var t = TextTable(["method", "10", "all"])
        t.add(["supervised", "70.88 ± 2.72", "92.01"])
        t.add(["x", "-1.5", "n/a"])
        #expect(t.render() == """
            method                10  all
            ----------  ------------  -----
            supervised  70.88 ± 2.72  92.01
            x                   -1.5  n/a
            """)
    }
}

@Suite struct WelchTests {
    @Test func pValuesMatchScipy() throws {
        // scipy.stats.t.sf(t, df) * 2 for these (t, df).
        #expect(abs(StudentT.twoSidedP(t: 2.0, degreesOfFreedom: 3.5) - 0.12613852) < 1e-7)
        #expect(abs(StudentT.twoSidedP(t: 0.5, degreesOfFreedom: 10) - 0.62789361) < 1e-7)
        #expect(abs(StudentT.twoSidedP(t: -4.0, degreesOfFreedom: 2.2) - 0.04873063) < 1e-7)
        let w = try #require(WelchTest([0.70, 0.72, 0.74], [0.75, 0.78, 0.76]))
        #expect(abs(w.t - 2.9824045) < 1e-6 && abs(w.p - 0.0442361) < 1e-6)
        #expect(WelchTest([0.7], [0.8, 0.9]) == nil)
    }

    /// With no spread on either side, as the doc comment says: equal means p = 1, distinct p = 0
    /// with t of the sign of B − A.
    @Test func zeroSpreadOnBothSides() throws {
        let same = try #require(WelchTest([0.7, 0.7], [0.7, 0.7, 0.7]))
        #expect(same.t == 0 && same.p == 1)
        let up = try #require(WelchTest([0.7, 0.7], [0.8, 0.8])), down = try #require(WelchTest([0.8, 0.8], [0.7, 0.7]))
        #expect(up.p == 0 && up.t == .infinity && down.p == 0 && down.t == -.infinity)
        // Spread on one side only is an ordinary test.
        let one = try #require(WelchTest([0.7, 0.7, 0.7], [0.72, 0.74, 0.76]))
        #expect(one.p > 0 && one.p < 1 && one.t > 0)
    }
}

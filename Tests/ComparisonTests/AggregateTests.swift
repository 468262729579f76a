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

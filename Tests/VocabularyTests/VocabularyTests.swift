import Testing
import Vocabulary

@Suite struct VocabularyTests {
    @Test func evaluationBudgetsParseOrderAndPrint() throws {
        let texts = ["all", "100", "5-way 5-shot", "10", "none", "5-way 1-shot", "20-way 1-shot"]
        let sorted = texts.sorted(by: EvaluationBudget.less)
        #expect(sorted == ["none", "5-way 1-shot", "20-way 1-shot", "5-way 5-shot", "10", "100", "all"])
        for t in texts { #expect("\(try EvaluationBudget(parsing: t))" == t) }
        #expect(try EvaluationBudget(parsing: "5-way 1-shot") == .episodes(way: 5, shot: 1))
        #expect(try EvaluationBudget(parsing: "10").labelsPerClass == 10)
        #expect { _ = try EvaluationBudget(parsing: "5 ways") } throws: { "\($0)".contains("not understood") }
        #expect { _ = try EvaluationBudget(parsing: "ten") } throws: { "\($0)".contains("ten") }
        // Text that is not a budget sorts after every budget instead of failing.
        #expect(EvaluationBudget.less("all", "???") && !EvaluationBudget.less("???", "none"))
    }

    @Test func metricsKnowTheirDirectionAndUnit() {
        #expect(Metric("accuracy").higherIsBetter && Metric("accuracy").unit == .fraction)
        #expect(Metric("class_accuracy/Shirt").unit == .fraction && Metric("best_val_knn_accuracy").higherIsBetter)
        #expect(!Metric("final_loss").higherIsBetter && Metric("final_loss").unit == .value)
        #expect(!Metric("eval_seconds").higherIsBetter && Metric("eval_seconds").unit == .seconds)
        #expect(!Metric("peak_rss_mb").higherIsBetter && Metric("peak_rss_mb").unit == .megabytes)
        #expect(!Metric("reconstruction_error").higherIsBetter && Metric("log_likelihood").higherIsBetter)
        #expect(Metric("mask_rate").unit == .fraction && Metric("nmi").unit == .fraction)
        #expect(!Metric("fit_iterations").higherIsBetter && Metric("fit_iterations").unit == .value)
        #expect(Metric("converged_rate").higherIsBetter && Metric("converged_rate").unit == .fraction)
    }

    @Test func protocolsParseWithTheirNames() throws {
        #expect(try EvaluationProtocol(parsing: "episodes-linear") == .episodesLinear)
        #expect(EvaluationProtocol.episodesLinear.isEpisodic && !EvaluationProtocol.linear.isEpisodic)
        #expect { _ = try EvaluationProtocol(parsing: "probe") } throws: { "\($0)".contains("expected one of: native, linear") }
    }
}

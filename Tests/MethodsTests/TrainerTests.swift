import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

@Suite struct TrainerTests {
    @Test func stopsWithAReasonWhenTheLossIsNotFinite() {
        let trainer = Trainer(steps: 10, schedule: LearningRateSchedule(base: 0.1), samplesPerStep: 1)
        #expect { _ = try trainer.run(step: { k, _ in [("loss", k == 3 ? .nan : 1)] }) } throws: { error in
            (error as? TrainingError)?.message == "training diverged: loss is nan at step 4 of 10 (learning rate 0.1)"
        }
    }

    @Test func validatesOnScheduleAndKeepsTheBest() throws {
        var scores = [0.5, 0.8, 0.6].makeIterator()
        var bestCalls = 0
        let trainer = Trainer(steps: 6, schedule: LearningRateSchedule(base: 1, shape: .cosine(total: 6, floor: 0)), samplesPerStep: 4,
                              validateEvery: 2, curveEvery: 3, validationMetric: "val_knn_accuracy")
        let summary = try trainer.run(step: { _, lr in [("loss", lr), ("mask_rate", 0.5)] }, validate: { scores.next()! }, onBest: { bestCalls += 1 })
        #expect(summary.best?.step == 4 && summary.best?.score == 0.8)
        #expect(bestCalls == 2)
        #expect(summary.curves.filter { $0.name == "val_knn_accuracy" }.map(\.step) == [2, 4, 6])
        #expect(summary.curves.filter { $0.name == "lr" }.map(\.step) == [3, 6])
        // One curve per named scalar, smoothed: a constant stays constant.
        #expect(summary.curves.filter { $0.name == "mask_rate" }.map(\.value) == [0.5, 0.5])
        #expect(summary.steps == 6)
    }

    @Test func aScalarMissingAtAStepKeepsItsValue() throws {
        let trainer = Trainer(steps: 4, schedule: LearningRateSchedule(base: 1), samplesPerStep: 1, curveEvery: 1)
        let summary = try trainer.run(step: { k, _ in [("loss", 1), ("pseudo_label_accuracy", k == 0 ? 1 : .nan)] })
        #expect(summary.curves.filter { $0.name == "pseudo_label_accuracy" }.map(\.value) == [1, 1, 1, 1])
    }
}

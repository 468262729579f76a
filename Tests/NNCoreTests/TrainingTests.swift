import Foundation
import Testing
@testable import NNCore
import TensorCore

/// A tiny separable problem: class k is a Gaussian blob around its own random centre.
func blobs(classes: Int, perClass: Int, shape: [Int], seed: UInt64) -> (x: Tensor, y: [Int32]) {
    var rng = RNG(seed: seed)
    let dim = shape.reduce(1, *)
    let centres = (0..<classes).map { _ in (0..<dim).map { _ in rng.normal() } }
    var values: [Float] = [], labels: [Int32] = []
    for i in 0..<(classes * perClass) {
        let k = i % classes
        values += centres[k].map { $0 + 0.3 * rng.normal() }
        labels.append(Int32(k))
    }
    return (Tensor(shape: [classes * perClass] + shape, scalars: values), labels)
}

func accuracy(_ logits: Tensor, _ labels: [Int32]) -> Double {
    let c = logits.shape[1], v = logits.scalars
    var right = 0
    for (i, y) in labels.enumerated() {
        let row = v[(i * c)..<((i + 1) * c)]
        if row.firstIndex(of: row.max()!)! - i * c == Int(y) { right += 1 }
    }
    return Double(right) / Double(labels.count)
}

/// Trains `model` with full-batch SGD momentum and returns the final training accuracy.
func train(_ model: Module, _ x: Tensor, _ y: [Int32], steps: Int, lr: Float) -> Double {
    let opt = SGD(learningRate: lr, momentum: 0.9)
    for step in 0..<steps {
        let loss = supervisedStep(model, opt, x: x, labels: y, rng: RNG(seed: UInt64(step)))
        #expect(loss.isFinite)
    }
    return accuracy(model(x), y)
}

@Suite struct TrainingTests {
    @Test func mlpFitsSeparableProblem() {
        var rng = RNG(seed: 1)
        let (x, y) = blobs(classes: 4, perClass: 16, shape: [10], seed: 2)
        let (body, width) = Backbone.mlp(inputShape: [10], hidden: [32], rng: &rng)
        let model = Sequential([body, Linear(width, 4, rng: &rng)])
        #expect(train(model, x, y, steps: 60, lr: 0.05) == 1.0)
    }

    @Test func convNetFitsSeparableProblem() {
        var rng = RNG(seed: 3)
        let (x, y) = blobs(classes: 3, perClass: 8, shape: [1, 16, 16], seed: 4)
        let (body, width) = Backbone.conv4(inputShape: [1, 16, 16], width: 8, rng: &rng)
        #expect(width == 8)
        let model = Sequential([body, Linear(width, 3, rng: &rng)])
        #expect(train(model, x, y, steps: 40, lr: 0.05) == 1.0)
    }

    @Test func sameSeedGivesBitIdenticalParameters() {
        func run() -> [Float] {
            var rng = RNG(seed: 9)
            let (x, y) = blobs(classes: 3, perClass: 6, shape: [1, 6, 6], seed: 5)
            let model = Sequential([Conv2D(1, 4, padding: (1, 1), rng: &rng), BatchNorm(4), ReLU(), MaxPool(),
                                    Flatten(), Dropout(0.2), Linear(36, 3, rng: &rng)])
            _ = train(model, x, y, steps: 5, lr: 0.05)
            return model.namedParameters().flatMap { $0.tensor.scalars }
        }
        let a = run(), b = run()
        #expect(a.count > 0)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
    }

    @Test func optimizerUpdatesParametersInPlace() {
        // A reference to a parameter kept alive past the backward pass would make every update
        // copy the parameter: the buffer's address must not change across steps.
        var rng = RNG(seed: 10)
        let (x, y) = blobs(classes: 2, perClass: 4, shape: [5], seed: 11)
        let model = Sequential([Linear(5, 3, rng: &rng)])
        let opt = SGD(learningRate: 0.1, momentum: 0.9)
        func address() -> UnsafePointer<Float>? { model.trainableParameters()["0.weight"]!.withUnsafeBufferPointer { $0.baseAddress } }
        supervisedStep(model, opt, x: x, labels: y)
        let before = address()
        let values = model.trainableParameters()["0.weight"]!.scalars
        supervisedStep(model, opt, x: x, labels: y)
        #expect(address() == before)
        #expect(model.trainableParameters()["0.weight"]!.scalars != values)
    }

    @Test func frozenParametersDoNotMoveAndOthersDo() {
        var rng = RNG(seed: 6)
        let (x, y) = blobs(classes: 2, perClass: 4, shape: [5], seed: 7)
        let model = Sequential([Linear(5, 6, rng: &rng), ReLU(), Linear(6, 2, rng: &rng)])
        model.freeze(prefix: "0.")
        let before = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.path, $0.tensor.scalars) })
        #expect(Set(model.trainableParameters().keys) == ["2.weight", "2.bias"])
        _ = train(model, x, y, steps: 3, lr: 0.1)
        for (path, t) in model.namedParameters() {
            if path.hasPrefix("0.") { #expect(t.scalars == before[path]!, "\(path) is frozen") }
            else { #expect(t.scalars != before[path]!, "\(path) should move") }
        }
    }
}

import DataCore
import Foundation
import NNCore
import Testing
import TensorCore
@testable import Methods

@Suite struct ProtoNetTests {
    @Test func smokeOnEpisodesOfTheBaseClasses() throws {
        let d = try Fixture.glyphs(classes: 6, instances: 10, test: 0)
        var config = ProtoNet.Config()
        config.backbone = Fixture.tinyBackbone
        (config.trainWay, config.trainShot, config.trainQuery) = (3, 2, 3)
        config.training = Fixture.tinyTraining(steps: 3, learningRate: 1e-3)
        config.training.optimizer = .adam
        let trained = try smokeTest(ProtoNet.self, config: config, input: try Fixture.input(d, try Fixture.split(d, budget: .all, validation: 0), regime: .fewShot))
        #expect(trained.adapter != nil && trained.classifier == nil)
        #expect(trained.summary.curves.contains { $0.name == "episode_accuracy" })
    }

    @Test func prototypesAreClassMeans() {
        let x = Tensor(shape: [4, 2], scalars: [1, 2,  3, 4,  10, 10,  5, 6])
        let means = ProtoNet.classMeans(x, labels: [0, 0, 1, 0], classes: 2)
        #expect(means.scalars == [3, 4, 10, 10])
    }

    /// On an episode of 2-D points with the identity as encoder, logits are −‖q − c‖² and the loss
    /// is the cross-entropy of their softmax.
    @Test func lossOnAHandBuiltEpisode() {
        let support = Tensor(shape: [4, 2, 1, 1], scalars: [0, 0,  2, 0,  0, 4,  0, 2])   // class 0: (0,0),(2,0) → (1,0); class 1: (0,4),(0,2) → (0,3)
        let query = Tensor(shape: [2, 2, 1, 1], scalars: [1, 1,  0, 3])
        var ctx = ForwardContext(training: true)
        let logits = ProtoNet.logits(Flatten(), support: support, supportLabels: [0, 0, 1, 1], way: 2, query: query, &ctx)
        // q0 = (1,1): d0 = 1, d1 = 1 + 4 = 5; q1 = (0,3): d0 = 1 + 9 = 10, d1 = 0.
        #expect(logits.scalars == [-1, -5, -10, 0])
        let loss = Loss.crossEntropy(logits, labels: [0, 1]).item
        let expected = (log(1 + exp(-4.0)) + log(1 + exp(-10.0))) / 2
        #expect(abs(Double(loss) - expected) < 1e-6)
    }

    @Test func adapterClassifiesByNearestPrototype() throws {
        var rng = RNG(seed: 2)
        var config = ProtoNet.Config()
        config.backbone = BackboneSpec(name: "mlp", hidden: [6])
        let model = try ProtoNet.build(TrainingData(imageShape: [1, 2, 2], classCount: 3), config: config, rng: &rng)
        let support = Tensor.randn([6, 1, 2, 2], rng: &rng)
        // Queries equal to the supports: the nearest prototype of a 1-shot support is its own class.
        let oneShot = support.gatherRows([0, 1, 2])
        let logits = model.logits(support: oneShot, supportLabels: [0, 1, 2], way: 3, query: oneShot, context: .eval)
        #expect(logits.argmaxRows() == [0, 1, 2])
    }

    @Test func defaultWayFitsTheBaseClasses() {
        #expect(ProtoNet.defaultConfig(budget: .all, classes: 5).trainWay == 5)
        #expect(ProtoNet.defaultConfig(budget: .all, classes: 1200).trainWay == 20)
    }
}

import DataCore
import NNCore
import TensorCore

/// Noisy Student (Xie, Luong, Hovy & Le, "Self-training with Noisy Student improves ImageNet
/// classification", CVPR 2020), the knowledge-distillation form of self-training: a teacher trained
/// on the labels alone predicts soft pseudo-labels for every unlabeled image, without noise
/// (evaluation mode, unaugmented images, softmax at temperature T); a student of equal size is
/// trained with noise (dropout, strong augmentation) on the labels and toward those soft targets;
/// the student becomes the next teacher, for `generations` rounds. Paper settings: soft targets
/// (T = 1), dropout before the classifier, RandAugment on the student, an equal-or-larger student.
///
/// Departures, for one step budget on a CPU: the teacher trains for the first `teacherFraction`
/// of the steps, then each generation gets an equal share; each student starts from its teacher's
/// weights with the optimizer state and schedule running on (the paper trains each student from
/// scratch and notes that initialising from the teacher also works); the student is the same
/// conv4; no data filtering or class balancing of the pseudo-labels.
public enum NoisyStudent: StepMethod {
    public static let id = "noisy-student"
    public static let regime = Regime.semiSupervised
    public static let version = "1"
    public static let summary = "a noised student learns a clean teacher's soft labels on unlabeled data, iterated (Xie et al. 2020)"

    public struct Config: StepConfig {
        public var backbone = BackboneSpec()
        public var training = TrainingSpec(steps: 1500, learningRate: 0.03, validateEvery: 250)
        public var batchSize = 64
        public var unlabeledRatio = 3
        /// Share of the steps that trains the first teacher on labels alone.
        public var teacherFraction: Float = 0.3
        /// Student rounds after the first teacher; each student becomes the next teacher.
        public var generations = 2
        /// Softmax temperature of the teacher's targets.
        public var temperature: Float = 1
        public var unlabeledWeight: Float = 1
        public var dropout: Float = 0.5

        public init() {}

        public func validateOwn() throws {
            try Check.atLeast(batchSize, 1, key: "batchSize")
            try Check.atLeast(unlabeledRatio, 1, key: "unlabeledRatio")
            try RampUp.checkFraction(teacherFraction, key: "teacherFraction")
            try Check.atLeast(generations, 1, key: "generations")
            try Check.positive(temperature, key: "temperature")
            try Check.nonNegative(unlabeledWeight, key: "unlabeledWeight")
            try ClassifierNetwork.checkDropout(dropout, key: "dropout")
        }

        public var samplesPerStep: Int { batchSize * (1 + unlabeledRatio) }
        // Measured (default suite, 2-vCPU Xeon): the teacher's labelling passes make a step about
        // 2.4x a supervised one per image.
        public var stepCost: Double { 2.4 }

        /// The step at which each generation's teacher labels the pool.
        public func generationStarts(steps: Int) -> [Int] {
            let first = RampUp.steps(teacherFraction, of: steps)
            return (0..<generations).map { first + $0 * (steps - first) / generations }
        }
    }

    public static func build(_ data: TrainingData, config: Config, rng: inout RNG) throws -> Model {
        try Model(data, pool: try data.unlabeledPool(for: id), config: config, rng: &rng)
    }

    public final class Model: Learner {
        public let network: Sequential
        public let needs: StreamNeeds
        let features: Int
        let config: Config
        let pool: UnlabeledPool
        /// The current teacher's soft targets by pool position [pool count, C]; nil while the first
        /// teacher trains.
        public private(set) var targets: Tensor?
        public private(set) var generation = 0

        init(_ data: TrainingData, pool: UnlabeledPool, config: Config, rng: inout RNG) throws {
            (network, features) = try ClassifierNetwork.build(data, backbone: config.backbone, dropout: config.dropout, rng: &rng)
            (self.config, self.pool) = (config, pool)
            needs = StreamNeeds(labeled: (config.batchSize, .weak), unlabeled: (config.batchSize * config.unlabeledRatio, [.strong]))
        }

        /// At each generation's start the network as it stands is the teacher: it labels the pool.
        public func prepare(step: Int, of steps: Int) throws {
            guard config.generationStarts(steps: steps).contains(step) else { return }
            targets = teacherTargets()
            generation += 1
        }

        /// softmax(teacher logits / T) of every pool image, unaugmented, in evaluation mode.
        func teacherTargets() -> Tensor {
            pool.mapAll { (network($0) * (1 / config.temperature)).softmax() }
        }

        public func step(_ batch: TrainingBatch, _ ctx: inout ForwardContext) -> StepOutput {
            let (x, u) = (batch.labeled!, batch.unlabeled!)
            guard let targets else {
                let lossX = Loss.crossEntropy(network.forward(x.images, &ctx), labels: x.labels)
                return StepOutput(loss: lossX, scalars: [("loss_x", lossX.item), ("generation", 0)])
            }
            let out = network.forwardParts([x.images, u.views[0]], &ctx)
            let soft = targets.gatherRows(u.positions)
            let lossX = Loss.crossEntropy(out[0], labels: x.labels)
            let lossU = Loss.crossEntropy(out[1], targets: soft)
            return StepOutput(loss: lossX + lossU * config.unlabeledWeight,
                              scalars: [("loss_x", lossX.item), ("loss_u", lossU.item), ("generation", Float(generation))],
                              pseudoLabels: PseudoLabels(predicted: soft.argmaxRows().map(Int32.init)))
        }

        public var evaluables: Evaluables { ClassifierNetwork.evaluables(network, features: features) }
    }
}

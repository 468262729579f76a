/// Every method benchbench can run, once each. A method type that is not listed here cannot be
/// named in a suite (a test checks the list against the types that conform to `Method`).
public enum MethodRegistry {
    public static let all: [AnyMethod] = [
        AnyMethod(Supervised.self),
        AnyMethod(PseudoLabel.self),
        AnyMethod(PiModel.self),
        AnyMethod(MeanTeacher.self),
        AnyMethod(VAT.self),
        AnyMethod(MixMatch.self),
        AnyMethod(ReMixMatch.self),
        AnyMethod(FixMatch.self),
        AnyMethod(LabelPropagation.self),
        AnyMethod(NoisyStudent.self),
        AnyMethod(CoTraining.self),
        AnyMethod(FineTuneBaseline.self),
        AnyMethod(BaselinePlusPlus.self),
        AnyMethod(ProtoNet.self),
        AnyMethod(MatchingNet.self),
        AnyMethod(MAML.self),
        AnyMethod(MetaLSTM.self),
        AnyMethod(SNAIL.self),
        AnyMethod(MANN.self),
        AnyMethod(Rotation.self),
        AnyMethod(Pixels.self),
        AnyMethod(PCA.self),
        AnyMethod(KMeansClustering.self),
        AnyMethod(GMM.self),
        AnyMethod(Autoencoder.self),
        AnyMethod(Jigsaw.self),
        AnyMethod(DeepCluster.self),
        AnyMethod(MoCo.self),
        AnyMethod(SimCLR.self),
        AnyMethod(Colorization.self),
        AnyMethod(NextFrame.self),
    ]

    public static func method(_ id: String) -> AnyMethod? { all.first { $0.id == id } }

    public static var ids: [String] { all.map(\.id) }
}

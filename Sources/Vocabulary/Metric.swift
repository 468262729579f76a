/// What a stored metric's number means: which way is better and in what unit it is (DESIGN.md §7).
/// Comparisons decide improved / worsened by `direction`; reports format by `unit`.
public struct Metric: Equatable, Sendable {
    public enum Direction: String, Sendable { case higherIsBetter = "higher", lowerIsBetter = "lower" }
    public enum Unit: String, Sendable {
        /// A fraction in [0, 1], shown in percent (accuracies, rates, NMI).
        case fraction
        case seconds
        case megabytes
        case samplesPerSecond = "samples/s"
        /// A loss, a log-likelihood, an error: a plain number.
        case value
    }

    public let name: String
    public let direction: Direction
    public let unit: Unit

    /// The metric a stored name denotes. Names are matched by family: `accuracy`,
    /// `class_accuracy/<class>`, `best_val_accuracy`, `mask_rate`, `nmi`, `*_loss`, `*_seconds`,
    /// `*_mb`, `*_iterations`, `log_likelihood`, `reconstruction_error`, `inertia`.
    public init(_ name: String) {
        self.name = name
        switch true {
        case name.hasSuffix("seconds"): (direction, unit) = (.lowerIsBetter, .seconds)
        case name.hasSuffix("_mb"): (direction, unit) = (.lowerIsBetter, .megabytes)
        case name.hasSuffix("_iterations"): (direction, unit) = (.lowerIsBetter, .value)   // a cost, like seconds
        case name == "samples_per_s": (direction, unit) = (.higherIsBetter, .samplesPerSecond)
        case name.contains("loss") || name.contains("error") || name == "inertia": (direction, unit) = (.lowerIsBetter, .value)
        case name.contains("likelihood"): (direction, unit) = (.higherIsBetter, .value)
        case name.contains("accuracy") || name.hasSuffix("_rate") || name == "nmi": (direction, unit) = (.higherIsBetter, .fraction)
        default: (direction, unit) = (.higherIsBetter, .value)
        }
    }

    public var higherIsBetter: Bool { direction == .higherIsBetter }

    /// The primary result of every protocol.
    public static let accuracy = Metric("accuracy")
}

import Foundation
import Methods

/// Progress of training on standard error: one rewritten line on a terminal, a plain line every
/// ten seconds otherwise (logs stay readable). `prefix` says which trial it is.
public final class ProgressPrinter: TrainingObserver {
    let interactive = isatty(STDERR_FILENO) != 0
    var lastPrint = 0.0
    var lastValidation = ""
    public var prefix = ""

    public init() {}

    public func trainingStep(_ step: Int, of total: Int, scalars: [(name: String, value: Float)], learningRate: Float,
                             samplesPerSecond: Double, etaSeconds: Double) {
        let now = Date().timeIntervalSince1970
        guard step == total || now - lastPrint >= (interactive ? 0.2 : 10) else { return }
        lastPrint = now
        // The loss, then the method's own scalars (loss_u, mask_rate, pseudo_label_accuracy, ...).
        let values = scalars.map { String(format: "%@ %.4f", $0.name, $0.value + 0) }.joined(separator: "  ")   // + 0: no "-0.0000"
        let line = prefix + String(format: "step %d/%d  %@  lr %.4f  %.0f samples/s  ETA %.0f s%@", step, total, values, learningRate,
                                   samplesPerSecond, etaSeconds, lastValidation)
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + (interactive ? "" : "\n")).utf8))
    }

    public func validation(_ step: Int, score: Double) { lastValidation = String(format: "  val %.4f", score) }

    /// Ends the rewritten line.
    public func trainingFinished() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        lastValidation = ""
        lastPrint = 0
    }

    /// A line of its own on standard error.
    public static func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }
}

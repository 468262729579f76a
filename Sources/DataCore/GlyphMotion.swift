import Foundation
import TensorCore

/// The procedural video dataset of next-frame prediction: short sequences of one glyph moving and
/// turning. Each sequence draws a glyph instance (as `Glyphs` does: class shape, jitter, stroke
/// width), then its own motion: a velocity of up to `speed` pixels per frame on each axis and a
/// spin of up to `spin` radians per frame; frame t renders the instance shifted by t·velocity and
/// turned by t·spin about the canvas centre. A sequence is stored as one image whose channels are
/// its frames ([frames, 28, 28]); its label is the glyph's class. Everything follows from the seed.
public struct GlyphMotionConfig: Codable, Equatable, Sendable {
    /// Classes, instances (sequences) per class, test sequences per class, seed and jitter.
    public var glyphs: GlyphsConfig
    public var frames = 4
    /// Largest velocity per axis, pixels per frame.
    public var speed = 1.5
    /// Largest spin, radians per frame.
    public var spin = 0.15

    public init(glyphs: GlyphsConfig = GlyphMotionConfig.defaultGlyphs) { self.glyphs = glyphs }

    /// 20 classes of 200 training and 50 test sequences.
    public static var defaultGlyphs: GlyphsConfig {
        var g = GlyphsConfig()
        (g.classes, g.instancesPerClass, g.testInstancesPerClass) = (20, 200, 50)
        return g
    }

    public func validate() throws {
        try glyphs.validate()
        guard !glyphs.color else { throw DataError("glyph-motion: sequences are greyscale; colour is not an option") }
        guard glyphs.baseClasses + glyphs.validationClasses + glyphs.novelClasses == 0 else {
            throw DataError("glyph-motion: a few-shot class split is not supported")
        }
        guard frames >= 2 else { throw DataError("glyph-motion: frames must be at least 2, got \(frames)") }
        guard speed >= 0 && spin >= 0 else { throw DataError("glyph-motion: speed and spin must be >= 0") }
    }
}

public enum GlyphMotion {
    /// One sequence's motion: velocity (pixels per frame) and spin (radians per frame).
    public struct Motion: Equatable, Sendable {
        public var velocity: SIMD2<Double>
        public var spin: Double
    }

    /// The instance and motion of sequence `i` of class `c` (instance numbers continue from the
    /// training sequences into the test ones).
    static func sequence(_ shape: Glyphs.Shape, classIndex c: Int, instance i: Int, config: GlyphMotionConfig) -> (Glyphs.Instance, Motion) {
        var rng = RNG(seed: config.glyphs.seed, key: "glyph-motion/class-\(c)/sequence-\(i)", stream: "draw")
        let instance = Glyphs.instance(shape, config: config.glyphs, rng: &rng)
        let velocity = SIMD2(Double(rng.uniform(-1, 1)), Double(rng.uniform(-1, 1))) * config.speed
        return (instance, Motion(velocity: velocity, spin: Double(rng.uniform(-1, 1)) * config.spin))
    }

    /// The motion of sequence `i` of class `c`: what the frames follow (tests check it).
    public static func motion(classIndex c: Int, instance i: Int, config: GlyphMotionConfig) -> Motion {
        sequence(Glyphs.shape(classIndex: c, seed: config.glyphs.seed), classIndex: c, instance: i, config: config).1
    }

    /// The frames of one sequence: [frames · 28 · 28] intensities in [0, 1].
    static func frames(_ shape: Glyphs.Shape, classIndex c: Int, instance i: Int, config: GlyphMotionConfig) -> [Float] {
        let (start, motion) = sequence(shape, classIndex: c, instance: i, config: config)
        var out: [Float] = []
        for t in 0..<config.frames {
            var frame = start
            frame.shift += motion.velocity * Double(t)
            frame.angle += motion.spin * Double(t)
            out += Glyphs.rasterize(shape, frame)
        }
        return out
    }

    static func draw(_ config: GlyphMotionConfig, shapes: [Glyphs.Shape], instances: Int, firstInstance: Int) -> (Tensor, [Int32]) {
        let (n, frames) = (Glyphs.size, config.frames)
        let sequenceSize = frames * n * n
        var images = Tensor(zeros: [shapes.count * instances, frames, n, n])
        images.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            DispatchQueue.concurrentPerform(iterations: shapes.count) { c in
                for i in 0..<instances {
                    let f = Self.frames(shapes[c], classIndex: c, instance: firstInstance + i, config: config)
                    for k in 0..<sequenceSize { base[(c * instances + i) * sequenceSize + k] = f[k] }
                }
            }
        }
        let labels = (0..<shapes.count).flatMap { c in [Int32](repeating: Int32(c), count: instances) }
        return (images, labels)
    }

    /// Generates the dataset, standardised per frame with the training part's statistics.
    public static func make(_ config: GlyphMotionConfig) throws -> Dataset {
        try config.validate()
        let g = config.glyphs
        let shapes = (0..<g.classes).map { Glyphs.shape(classIndex: $0, seed: g.seed) }
        let (train, ytrain) = draw(config, shapes: shapes, instances: g.instancesPerClass, firstInstance: 0)
        let (test, ytest) = draw(config, shapes: shapes, instances: g.testInstancesPerClass, firstInstance: g.instancesPerClass)
        func idx(_ t: Tensor) -> IDXArray { IDXArray(dims: t.shape, elementType: .float32, values: t.scalars, contentHash: "") }
        func labelArray(_ y: [Int32]) -> IDXArray { IDXArray(dims: [y.count], elementType: .uint8, values: y.map(Float.init), contentHash: "") }
        let raw = try Dataset.fromRaw(name: "glyph-motion", train: idx(train), trainLabels: labelArray(ytrain), test: idx(test),
                                      testLabels: labelArray(ytest), classNames: (0..<g.classes).map { "glyph \($0)" },
                                      allowsHorizontalFlip: false, sources: ("glyph-motion", "glyph-motion", "glyph-motion", "glyph-motion"))
        var hash = ContentHash()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys   // the hash must not vary with key order
        hash.add([UInt8](try encoder.encode(config)))
        hash.add("glyph-motion/v1")
        return try Dataset(name: raw.name, trainImages: raw.trainImages, trainLabels: raw.trainLabels, testImages: raw.testImages,
                           testLabels: raw.testLabels, classNames: raw.classNames, contentHash: hash.hex, allowsHorizontalFlip: false,
                           channelMean: raw.channelMean, channelStd: raw.channelStd, channelsAreFrames: true)
    }
}

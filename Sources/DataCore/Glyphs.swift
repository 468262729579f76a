import Foundation
import TensorCore

/// The embedded procedural dataset: Omniglot-like glyphs that need no download.
///
/// Each class is a random glyph of 1-4 strokes (cubic Bézier curves) drawn from the class's own
/// seed; each instance redraws it with jitter (an affine transform, noise on the control points,
/// its own stroke width) and anti-aliasing on a 28 x 28 canvas. With `color`, each instance gets
/// its own stroke and background colours on 3 channels. Everything follows from the seed.
public struct GlyphsConfig: Codable, Equatable, Sendable {
    public var classes = 100
    public var instancesPerClass = 20
    /// Test instances per class, drawn like the training ones (for per-class budgets).
    public var testInstancesPerClass = 0
    public var seed: UInt64 = 0
    public var color = false
    /// Few-shot class split: base, validation and novel counts (0s for none); they must add up
    /// to `classes`.
    public var baseClasses = 0
    public var validationClasses = 0
    public var novelClasses = 0
    /// Instance jitter: control-point noise (fraction of the canvas), rotation (radians), scale
    /// spread, shear and translation (pixels). Larger values make classes harder to tell apart.
    public var pointNoise: Double = 0.05
    public var rotation: Double = 0.25
    public var scaleSpread: Double = 0.15
    public var shear: Double = 0.2
    public var translation: Double = 2.5

    public init() {}

    public func validate() throws {
        guard classes >= 2, instancesPerClass >= 1, testInstancesPerClass >= 0 else {
            throw DataError("glyphs: classes must be at least 2 and instances per class at least 1")
        }
        let split = baseClasses + validationClasses + novelClasses
        guard split == 0 || split == classes else {
            throw DataError("glyphs: base + validation + novel classes (\(split)) must equal classes (\(classes))")
        }
    }
}

public enum Glyphs {
    static let size = 28

    /// A class's glyph: strokes of four control points each, in [0, 1] canvas coordinates.
    struct Shape { var strokes: [[SIMD2<Double>]] }

    static func shape(classIndex c: Int, seed: UInt64) -> Shape {
        var rng = RNG(seed: seed, key: "glyphs/class-\(c)", stream: "shape")
        let count = 1 + rng.int(4)
        var strokes: [[SIMD2<Double>]] = []
        var pen = SIMD2(Double(rng.uniform(0.2, 0.8)), Double(rng.uniform(0.2, 0.8)))
        for _ in 0..<count {
            // Strokes often start where the last ended, as pen strokes do.
            if rng.uniform() < 0.4 { pen = SIMD2(Double(rng.uniform(0.15, 0.85)), Double(rng.uniform(0.15, 0.85))) }
            var points = [pen]
            for _ in 0..<3 { points.append(SIMD2(Double(rng.uniform(0.12, 0.88)), Double(rng.uniform(0.12, 0.88)))) }
            strokes.append(points)
            pen = points[3]
        }
        return Shape(strokes: strokes)
    }

    /// How one instance redraws its class's glyph: an affine transform about the canvas centre,
    /// a stroke width and noise on every control point (canvas fractions, per stroke).
    struct Instance {
        var angle: Double, scale: Double, shear: Double
        var shift: SIMD2<Double>
        var width: Double
        var noise: [[SIMD2<Double>]]
    }

    /// An instance's jitter, drawn in the order the generator has always drawn it (so datasets of
    /// earlier versions are reproduced exactly).
    static func instance(_ shape: Shape, config: GlyphsConfig, rng: inout RNG) -> Instance {
        let angle = Double(rng.uniform(-1, 1)) * config.rotation
        let scale = 1 + Double(rng.uniform(-1, 1)) * config.scaleSpread
        let shear = Double(rng.uniform(-1, 1)) * config.shear
        let shift = SIMD2(Double(rng.uniform(-1, 1)), Double(rng.uniform(-1, 1))) * config.translation
        let width = Double(rng.uniform(1.3, 2.3))
        let noise = shape.strokes.map { stroke in stroke.map { _ in SIMD2(Double(rng.normal()), Double(rng.normal())) * config.pointNoise } }
        return Instance(angle: angle, scale: scale, shear: shear, shift: shift, width: width, noise: noise)
    }

    /// The instance's glyph as 28 x 28 coverage in [0, 1].
    static func rasterize(_ shape: Shape, _ instance: Instance) -> [Float] {
        let n = size
        let (ca, sa) = (cos(instance.angle) * instance.scale, sin(instance.angle) * instance.scale)
        func place(_ p: SIMD2<Double>) -> SIMD2<Double> {
            let q = p - 0.5
            let sheared = SIMD2(q.x + instance.shear * q.y, q.y)
            let r = SIMD2(ca * sheared.x - sa * sheared.y, sa * sheared.x + ca * sheared.y)
            return (r + 0.5) * Double(n) + instance.shift
        }
        var canvas = [Float](repeating: 0, count: n * n)
        for (stroke, noise) in zip(shape.strokes, instance.noise) {
            let p = zip(stroke, noise).map { place($0 + $1) }
            // The curve as a polyline, each segment stamped with an anti-aliased round brush.
            let steps = 16
            var previous = p[0]
            for k in 1...steps {
                let t = Double(k) / Double(steps), u = 1 - t
                let point = p[0] * (u * u * u) + p[1] * (3 * u * u * t) + p[2] * (3 * u * t * t) + p[3] * (t * t * t)
                stamp(segment: previous, point, width: instance.width, canvas: &canvas)
                previous = point
            }
        }
        return canvas
    }

    /// Renders one instance into `out` (28 x 28 intensities in [0, 1], or 3 channels when colored).
    static func render(_ shape: Shape, config: GlyphsConfig, rng: inout RNG, into out: UnsafeMutablePointer<Float>) {
        let n = size
        let canvas = rasterize(shape, instance(shape, config: config, rng: &rng))
        if config.color {
            var stroke = [Float](repeating: 0, count: 3), background = stroke
            repeat {
                for ch in 0..<3 { stroke[ch] = rng.uniform(); background[ch] = rng.uniform() }
            } while zip(stroke, background).map({ Swift.abs($0 - $1) }).reduce(0, +) < 0.6   // keep the glyph visible
            for ch in 0..<3 {
                for i in 0..<(n * n) { out[ch * n * n + i] = background[ch] + (stroke[ch] - background[ch]) * canvas[i] }
            }
        } else {
            for i in 0..<(n * n) { out[i] = canvas[i] }
        }
    }

    /// Coverage of a round brush of `width` swept from a to b, max-combined into the canvas.
    static func stamp(segment a: SIMD2<Double>, _ b: SIMD2<Double>, width: Double, canvas: inout [Float]) {
        let n = size
        let r = width / 2 + 1
        let x0 = max(0, Int((min(a.x, b.x) - r).rounded(.down))), x1 = min(n - 1, Int((max(a.x, b.x) + r).rounded(.up)))
        let y0 = max(0, Int((min(a.y, b.y) - r).rounded(.down))), y1 = min(n - 1, Int((max(a.y, b.y) + r).rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        let d = b - a
        let length2 = max((d * d).sum(), 1e-12)
        for y in y0...y1 {
            for x in x0...x1 {
                let c = SIMD2(Double(x) + 0.5, Double(y) + 0.5)
                let t = min(max(((c - a) * d).sum() / length2, 0), 1)
                let e = c - (a + d * t)
                let distance = (e * e).sum().squareRoot()
                let coverage = Float(min(max(width / 2 + 0.5 - distance, 0), 1))
                if coverage > canvas[y * n + x] { canvas[y * n + x] = coverage }
            }
        }
    }

    /// Images [count, C, 28, 28] in [0, 1] and labels for `instances` instances of every class,
    /// instance numbers starting at `firstInstance` (so test instances differ from training ones).
    static func draw(_ config: GlyphsConfig, shapes: [Shape], instances: Int, firstInstance: Int) -> (Tensor, [Int32]) {
        let channels = config.color ? 3 : 1
        let imageSize = channels * size * size
        var images = Tensor(zeros: [shapes.count * instances, channels, size, size])
        var labels = [Int32](repeating: 0, count: shapes.count * instances)
        images.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            // Classes are independent: draw them on every core.
            DispatchQueue.concurrentPerform(iterations: shapes.count) { c in
                for i in 0..<instances {
                    var rng = RNG(seed: config.seed, key: "glyphs/class-\(c)/instance-\(firstInstance + i)", stream: "draw")
                    render(shapes[c], config: config, rng: &rng, into: base + (c * instances + i) * imageSize)
                }
            }
        }
        for c in 0..<shapes.count { for i in 0..<instances { labels[c * instances + i] = Int32(c) } }
        return (images, labels)
    }

    /// Generates the dataset. Training images are standardised per channel with the training
    /// part's statistics, test images with the same.
    public static func make(_ config: GlyphsConfig) throws -> Dataset {
        try config.validate()
        let shapes = (0..<config.classes).map { shape(classIndex: $0, seed: config.seed) }
        let (train, ytrain) = draw(config, shapes: shapes, instances: config.instancesPerClass, firstInstance: 0)
        let (test, ytest) = draw(config, shapes: shapes, instances: config.testInstancesPerClass, firstInstance: config.instancesPerClass)
        let channels = config.color ? 3 : 1
        func idx(_ t: Tensor) -> IDXArray {
            IDXArray(dims: [t.shape[0], channels, size, size], elementType: .float32, values: t.scalars, contentHash: "")
        }
        func labelArray(_ y: [Int32]) -> IDXArray { IDXArray(dims: [y.count], elementType: .uint8, values: y.map(Float.init), contentHash: "") }
        var split: ClassSplit?
        if config.baseClasses + config.validationClasses + config.novelClasses > 0 {
            let b = config.baseClasses, v = config.validationClasses
            split = try ClassSplit(base: Array(0..<b), validation: Array(b..<(b + v)), novel: Array((b + v)..<config.classes))
        }
        var hash = ContentHash()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys   // key order is otherwise unspecified, and the hash must not vary
        let encoded = try encoder.encode(config)
        hash.add([UInt8](encoded))
        hash.add("glyphs/v1")
        var d = try Dataset.fromRaw(name: "glyphs", train: idx(train), trainLabels: labelArray(ytrain), test: idx(test),
                                    testLabels: labelArray(ytest), classNames: (0..<config.classes).map { "glyph \($0)" },
                                    allowsHorizontalFlip: false, classSplit: split, sources: ("glyphs", "glyphs", "glyphs", "glyphs"))
        d = try Dataset(name: d.name, trainImages: d.trainImages, trainLabels: d.trainLabels, testImages: d.testImages,
                        testLabels: d.testLabels, classNames: d.classNames, contentHash: hash.hex, allowsHorizontalFlip: false,
                        classSplit: split, channelMean: d.channelMean, channelStd: d.channelStd)
        return d
    }
}

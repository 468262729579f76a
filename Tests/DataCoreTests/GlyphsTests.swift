import Testing
import TensorCore
@testable import DataCore

@Suite struct GlyphsTests {
    func config(_ classes: Int = 6, seed: UInt64 = 3, color: Bool = false) -> GlyphsConfig {
        var c = GlyphsConfig()
        c.classes = classes
        c.instancesPerClass = 4
        c.testInstancesPerClass = 2
        c.seed = seed
        c.color = color
        return c
    }

    @Test func deterministicFromTheSeed() throws {
        let a = try Glyphs.make(config()), b = try Glyphs.make(config())
        #expect(a.contentHash == b.contentHash)
        #expect(a.trainImages.scalars == b.trainImages.scalars)
        let c = try Glyphs.make(config(seed: 4))
        #expect(c.contentHash != a.contentHash && c.trainImages.scalars != a.trainImages.scalars)
    }

    @Test func shapesLabelsAndColor() throws {
        let d = try Glyphs.make(config())
        #expect(d.trainImages.shape == [24, 1, 28, 28] && d.testImages.shape == [12, 1, 28, 28])
        #expect(d.trainClassCounts == [4, 4, 4, 4, 4, 4] && d.testClassCounts == [2, 2, 2, 2, 2, 2])
        #expect(!d.allowsHorizontalFlip)
        let rgb = try Glyphs.make(config(color: true))
        #expect(rgb.trainImages.shape == [24, 3, 28, 28])
    }

    @Test func instancesVaryButStayCloserToTheirOwnClass() throws {
        let d = try Glyphs.make(config(8))
        let x = d.trainImages.flattened().scalars, dim = 784
        func distance(_ i: Int, _ j: Int) -> Float { (0..<dim).reduce(0) { $0 + (x[i * dim + $1] - x[j * dim + $1]) * (x[i * dim + $1] - x[j * dim + $1]) } }
        var within: Float = 0, between: Float = 0
        for c in 0..<8 {
            within += distance(c * 4, c * 4 + 1)
            between += distance(c * 4, ((c + 1) % 8) * 4)
        }
        #expect(within > 0, "instances of a class must differ")
        #expect(within < between, "instances should be closer to their own class on average")
    }

    @Test func classSplitMustCoverTheClasses() {
        var c = config()
        (c.baseClasses, c.validationClasses, c.novelClasses) = (3, 1, 1)
        #expect { try Glyphs.make(c) } throws: { ($0 as? DataError)?.message.contains("must equal classes") == true }
        (c.baseClasses, c.validationClasses, c.novelClasses) = (3, 1, 2)
        #expect((try? Glyphs.make(c))?.classSplit?.novel == [4, 5])
    }
}

@Suite struct GlyphMotionTests {
    static func config(speed: Double = 1, spin: Double = 0, seed: UInt64 = 3) -> GlyphMotionConfig {
        var g = GlyphsConfig()
        (g.classes, g.instancesPerClass, g.testInstancesPerClass, g.seed) = (3, 6, 2, seed)
        var c = GlyphMotionConfig(glyphs: g)
        (c.frames, c.speed, c.spin) = (3, speed, spin)
        return c
    }

    /// The same seed gives the same sequences and hash; another seed other ones. Frames are
    /// channels, marked as such.
    @Test func deterministicPerSeed() throws {
        let a = try GlyphMotion.make(Self.config()), b = try GlyphMotion.make(Self.config())
        #expect(a.contentHash == b.contentHash && a.trainImages.scalars == b.trainImages.scalars)
        let c = try GlyphMotion.make(Self.config(seed: 4))
        #expect(c.contentHash != a.contentHash && c.trainImages.scalars != a.trainImages.scalars)
        #expect(a.trainImages.shape == [18, 3, 28, 28] && a.testImages.shape == [6, 3, 28, 28] && a.channelsAreFrames)
        #expect(a.kind.frames == 3 && !a.kind.isColor)
    }

    /// Without spin, each frame is the first moved by t times the sequence's velocity: the
    /// intensity centroid moves by it (for glyphs that stay on the canvas). Without motion the
    /// frames are identical; with spin alone the ink stays where it is, turned.
    @Test func framesFollowTheStatedMotion() throws {
        let config = Self.config()
        let shape = Glyphs.shape(classIndex: 1, seed: config.glyphs.seed)
        var checked = 0
        for i in 0..<12 {
            let frames = GlyphMotion.frames(shape, classIndex: 1, instance: i, config: config)
            let plane = 28 * 28
            func centroid(_ t: Int) -> (x: Double, y: Double, mass: Double, edge: Bool) {
                var (sx, sy, m, edge) = (0.0, 0.0, 0.0, false)
                for y in 0..<28 { for x in 0..<28 {
                    let v = Double(frames[t * plane + y * 28 + x])
                    (sx, sy, m) = (sx + v * (Double(x) + 0.5), sy + v * (Double(y) + 0.5), m + v)
                    if v > 0 && (x == 0 || y == 0 || x == 27 || y == 27) { edge = true }
                } }
                return (sx / m, sy / m, m, edge)
            }
            let c = (0..<3).map(centroid)
            guard !c.contains(where: \.edge) else { continue }   // clipped by the canvas
            let v = GlyphMotion.motion(classIndex: 1, instance: i, config: config).velocity
            for t in 1..<3 {
                #expect(abs(c[t].x - c[0].x - Double(t) * v.x) < 0.15 && abs(c[t].y - c[0].y - Double(t) * v.y) < 0.15,
                        "sequence \(i) frame \(t): moved (\(c[t].x - c[0].x), \(c[t].y - c[0].y)), velocity \(v)")
            }
            checked += 1
        }
        #expect(checked >= 4)
        let still = GlyphMotion.frames(shape, classIndex: 1, instance: 0, config: Self.config(speed: 0))
        #expect(Array(still[0..<784]) == Array(still[784..<1568]))
        let turning = GlyphMotion.frames(shape, classIndex: 1, instance: 0, config: Self.config(speed: 0, spin: 0.3))
        #expect(Array(turning[0..<784]) != Array(turning[784..<1568]))
        #expect(GlyphMotion.motion(classIndex: 1, instance: 0, config: Self.config(speed: 0, spin: 0.3)).spin != 0)
    }

    /// The procedural glyphs do not change: a pixel sum pinned when the renderer was split for the
    /// motion generator (`data inspect glyphs` printed the same statistics and 5-way episode scores
    /// before and after the split).
    @Test func glyphsArePinned() throws {
        var g = GlyphsConfig()
        (g.classes, g.instancesPerClass, g.seed) = (3, 2, 11)
        let d = try Glyphs.make(g)
        let raw = d.trainImages.scalars.map { $0 * d.channelStd[0] + d.channelMean[0] }
        let pinnedSum: Float = 352.9128
        #expect(abs(raw.reduce(0, +) - pinnedSum) < 1e-2, "sum \(raw.reduce(0, +))")
    }
}

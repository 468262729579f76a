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

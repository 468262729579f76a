import Foundation

/// A dataset as a suite file or the command line names it: which one and its options. The one
/// way every command turns a name into a `Dataset`.
public struct DatasetSpec: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case fashionMNIST = "fashion-mnist", glyphs, glyphsColor = "glyphs-color", glyphMotion = "glyph-motion", idx

        /// The procedural datasets drawn from glyph shapes (their options are `glyphs`'s).
        public var isGlyphs: Bool { self == .glyphs || self == .glyphsColor || self == .glyphMotion }

        /// One line for `benchbench list datasets`.
        public var summary: String {
            switch self {
            case .fashionMNIST: return "Fashion-MNIST: 60,000 + 10,000 greyscale 28x28 images of 10 clothing classes (Debian's dataset-fashion-mnist)"
            case .glyphs: return "procedural handwriting-like glyphs, greyscale 28x28; default 1,600 classes x 20 (1,200 base / 100 val / 300 novel), Omniglot-sized"
            case .glyphsColor: return "the glyphs in colour (3 channels): for methods that need RGB (colorization)"
            case .glyphMotion: return "sequences of a glyph moving and turning (4 frames of 28x28, stored as channels); 20 classes x 200 + 50 test: for next-frame prediction"
            case .idx: return "any four IDX files (train/test images and labels, gzipped or not), with an optional few-shot class split"
            }
        }
    }

    public var kind: Kind
    /// For glyphs, glyphs-color and glyph-motion.
    public var glyphs: GlyphsConfig
    /// For glyph-motion: frames per sequence.
    public var frames = 4
    /// For idx: train images, train labels, test images, test labels.
    public var idxFiles: [String]
    /// Few-shot class split as base, validation, novel class counts (classes in label order);
    /// for idx and fashion-mnist (glyphs set theirs in `glyphs`).
    public var classSplit: [Int]?
    /// For idx: a horizontal flip keeps an image in its class.
    public var flips: Bool

    public init(kind: Kind, glyphs: GlyphsConfig? = nil, idxFiles: [String] = [], classSplit: [Int]? = nil, flips: Bool = false) {
        self.kind = kind
        self.glyphs = glyphs ?? (kind == .glyphMotion ? GlyphMotionConfig.defaultGlyphs : DatasetSpec.defaultGlyphs(color: kind == .glyphsColor))
        (self.idxFiles, self.classSplit, self.flips) = (idxFiles, classSplit, flips)
    }

    /// The default glyphs: Omniglot-sized, 1,600 classes of 20 instances, 1,200 base / 100
    /// validation / 300 novel.
    public static func defaultGlyphs(color: Bool) -> GlyphsConfig {
        var c = GlyphsConfig()
        c.classes = 1600
        c.instancesPerClass = 20
        (c.baseClasses, c.validationClasses, c.novelClasses) = (1200, 100, 300)
        c.color = color
        return c
    }

    /// Checks what can be checked without reading any file.
    public func validate() throws {
        switch kind {
        case .glyphs, .glyphsColor: try glyphs.validate()
        case .glyphMotion: try motion.validate()
        case .idx:
            guard idxFiles.count == 4 else {
                throw DataError("dataset 'idx' needs four files: train images, train labels, test images, test labels (got \(idxFiles.count))")
            }
        case .fashionMNIST: break
        }
        if let counts = classSplit {
            guard kind == .idx || kind == .fashionMNIST else { throw DataError("\(kind.rawValue): set the class split in its glyph options") }
            guard counts.count == 3, counts.allSatisfy({ $0 >= 0 }) else {
                throw DataError("class split \(counts): expected three counts base, validation, novel")
            }
            if kind == .fashionMNIST, counts.reduce(0, +) != 10 {
                throw DataError("fashion-mnist class split \(counts): the counts must add up to its 10 classes")
            }
        }
    }

    var split: ClassSplit? {
        get throws {
            guard let c = classSplit else { return nil }
            return try ClassSplit(base: Array(0..<c[0]), validation: Array(c[0]..<(c[0] + c[1])),
                                  novel: Array((c[0] + c[1])..<(c[0] + c[1] + c[2])))
        }
    }

    /// Reads or generates the dataset. `dataDir` is where Fashion-MNIST is looked for (nil: the
    /// default places); `baseDirectory` makes relative IDX paths relative to it (a suite file's folder).
    public func load(dataDir: String? = nil, baseDirectory: String? = nil) throws -> Dataset {
        try validate()
        switch kind {
        case .fashionMNIST: return try DatasetSource.fashionMNIST(dataDir: dataDir, classSplit: split)
        case .glyphs, .glyphsColor:
            var config = glyphs
            config.color = kind == .glyphsColor
            return try Glyphs.make(config)
        case .glyphMotion: return try GlyphMotion.make(motion)
        case .idx:
            let files = resolvedIDXFiles(baseDirectory: baseDirectory)
            return try DatasetSource.idx(name: defaultID, trainImages: files[0], trainLabels: files[1], testImages: files[2],
                                         testLabels: files[3], allowsHorizontalFlip: flips, classSplit: split)
        }
    }

    /// The IDX paths, relative ones taken from `baseDirectory` (a suite file's folder).
    func resolvedIDXFiles(baseDirectory: String?) -> [String] {
        idxFiles.map { path in
            guard let base = baseDirectory, !path.hasPrefix("/") else { return path }
            return URL(fileURLWithPath: base).appendingPathComponent(path).path
        }
    }

    /// How results name the dataset unless a suite's `id` (or `run --dataset-id`) says otherwise:
    /// the kind, and for IDX files the folder and name of the training images
    /// (`kmnist/train-images-idx3-ubyte`), so runs on different files are told apart.
    public var defaultID: String {
        guard kind == .idx, let train = idxFiles.first else { return kind.rawValue }
        // The path as written (not resolved against the working directory).
        let parts = train.split(separator: "/").map(String.init).filter { $0 != "." }
        var stem = parts.last ?? train
        if stem.hasSuffix(".gz") { stem = String(stem.dropLast(3)) }
        return parts.count >= 2 && parts[parts.count - 2] != ".." ? "\(parts[parts.count - 2])/\(stem)" : stem
    }

    /// The glyph-motion generator's settings.
    public var motion: GlyphMotionConfig {
        var m = GlyphMotionConfig(glyphs: glyphs)
        m.frames = frames
        return m
    }

    /// What the images are (shape, colour or frames), without loading them.
    public func imageKind(baseDirectory: String? = nil) throws -> ImageKind {
        ImageKind(shape: try imageShape(baseDirectory: baseDirectory), channelsAreFrames: kind == .glyphMotion)
    }

    /// [C, H, W] of the images, without loading them: fixed for the built-in datasets, read from
    /// the training images' IDX header otherwise.
    public func imageShape(baseDirectory: String? = nil) throws -> [Int] {
        switch kind {
        case .glyphs, .fashionMNIST: return [1, 28, 28]
        case .glyphsColor: return [3, 28, 28]
        case .glyphMotion: return [frames, 28, 28]
        case .idx:
            let file = resolvedIDXFiles(baseDirectory: baseDirectory)[0]
            return Array(try Dataset.imageShape(try IDX.dimensions(file), source: file).dropFirst())
        }
    }
}

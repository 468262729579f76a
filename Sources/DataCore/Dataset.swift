import Foundation
import TensorCore

/// Classes set aside for few-shot learning: methods train on `base`, select on `validation` and
/// are scored on episodes drawn from `novel`.
public struct ClassSplit: Equatable, Sendable {
    public var base: [Int]
    public var validation: [Int]
    public var novel: [Int]

    public init(base: [Int], validation: [Int], novel: [Int]) throws {
        let all = base + validation + novel
        guard Set(all).count == all.count else {
            throw DataError("class split: base, validation and novel classes must not overlap")
        }
        self.base = base
        self.validation = validation
        self.novel = novel
    }
}

/// Images and labels of a train and a test part, normalised, with the facts results are keyed by.
public struct Dataset {
    public let name: String
    /// [N, C, H, W], standardised per channel with the training part's mean and deviation.
    public let trainImages: Tensor
    public let trainLabels: [Int32]
    public let testImages: Tensor
    public let testLabels: [Int32]
    public let classNames: [String]
    /// Hash of the raw data and of how it was turned into tensors.
    public let contentHash: String
    /// Whether a horizontal flip keeps an image in its class (clothing yes, characters no).
    public let allowsHorizontalFlip: Bool
    public let classSplit: ClassSplit?
    /// Per-channel mean and deviation the pixels were standardised with (pixels in [0, 1] before):
    /// augmentations that work on intensities undo and redo it.
    public let channelMean: [Float]
    public let channelStd: [Float]
    /// Whether the channels are the frames of a sequence (glyph-motion) rather than colours.
    public let channelsAreFrames: Bool

    public init(name: String, trainImages: Tensor, trainLabels: [Int32], testImages: Tensor, testLabels: [Int32],
                classNames: [String], contentHash: String, allowsHorizontalFlip: Bool, classSplit: ClassSplit? = nil,
                channelMean: [Float]? = nil, channelStd: [Float]? = nil, channelsAreFrames: Bool = false) throws {
        guard trainImages.rank == 4, testImages.rank == 4, trainImages.shape.dropFirst() == testImages.shape.dropFirst() else {
            throw DataError("\(name): train images \(trainImages.shape) and test images \(testImages.shape) must both be [N, C, H, W] of one image shape")
        }
        guard trainImages.shape[0] == trainLabels.count, testImages.shape[0] == testLabels.count else {
            throw DataError("\(name): \(trainImages.shape[0]) train images but \(trainLabels.count) labels, \(testImages.shape[0]) test images but \(testLabels.count) labels")
        }
        for y in trainLabels + testLabels where y < 0 || Int(y) >= classNames.count {
            throw DataError("\(name): label \(y) is outside the \(classNames.count) classes")
        }
        if let split = classSplit {
            for c in split.base + split.validation + split.novel where c < 0 || c >= classNames.count {
                throw DataError("\(name): class split names class \(c), outside the \(classNames.count) classes")
            }
            let covered = split.base.count + split.validation.count + split.novel.count
            guard covered == classNames.count else {
                throw DataError("\(name): the class split (\(split.base.count) base, \(split.validation.count) validation, \(split.novel.count) novel) "
                                + "covers \(covered) classes but the labels have \(classNames.count); the counts must add up to every class")
            }
        }
        // A class without one training image cannot be learned, drawn into an episode or given a
        // label budget: labels must number the classes 0..<C without gaps.
        var perClass = [Int](repeating: 0, count: classNames.count)
        for y in trainLabels { perClass[Int(y)] += 1 }
        let empty = perClass.indices.filter { perClass[$0] == 0 }
        guard empty.isEmpty else {
            let shown = empty.prefix(8).map(String.init).joined(separator: ", ") + (empty.count > 8 ? ", …" : "")
            throw DataError("\(name): \(empty.count) of the \(classNames.count) classes (\(shown)) have no training image; "
                            + "labels must number the classes 0..<\(classNames.count) without gaps")
        }
        self.name = name
        self.trainImages = trainImages
        self.trainLabels = trainLabels
        self.testImages = testImages
        self.testLabels = testLabels
        self.classNames = classNames
        self.contentHash = contentHash
        self.allowsHorizontalFlip = allowsHorizontalFlip
        self.classSplit = classSplit
        self.channelsAreFrames = channelsAreFrames
        let channels = trainImages.shape[1]
        self.channelMean = channelMean ?? [Float](repeating: 0, count: channels)
        self.channelStd = channelStd ?? [Float](repeating: 1, count: channels)
        guard self.channelMean.count == channels, self.channelStd.count == channels else {
            throw DataError("\(name): normalisation statistics must have one value per channel (\(channels))")
        }
    }

    /// [C, H, W].
    public var imageShape: [Int] { Array(trainImages.shape.dropFirst()) }
    /// What its images are, for methods that need colour or sequences.
    public var kind: ImageKind { ImageKind(shape: imageShape, channelsAreFrames: channelsAreFrames) }
    public var classCount: Int { classNames.count }

    /// Training examples per class.
    public var trainClassCounts: [Int] { Dataset.counts(trainLabels, classCount) }
    public var testClassCounts: [Int] { Dataset.counts(testLabels, classCount) }

    static func counts(_ labels: [Int32], _ classes: Int) -> [Int] {
        var c = [Int](repeating: 0, count: classes)
        for y in labels { c[Int(y)] += 1 }
        return c
    }
}

extension Dataset {
    /// Builds a dataset from raw pixel values: [N, ...] arrays become [N, C, H, W] (an [N, H, W]
    /// array is one channel; an [N, L] array is a 1 x L signal), byte data is scaled to [0, 1],
    /// then every channel is standardised with the training part's mean and deviation.
    public static func fromRaw(name: String, train: IDXArray, trainLabels: IDXArray, test: IDXArray, testLabels: IDXArray,
                               classNames: [String]?, allowsHorizontalFlip: Bool, classSplit: ClassSplit? = nil,
                               sources: (String, String, String, String)) throws -> Dataset {
        let trainShape = try imageShape(train.dims, source: sources.0)
        let testShape = try imageShape(test.dims, source: sources.2)
        guard trainShape.dropFirst() == testShape.dropFirst() else {
            throw DataError("\(sources.2): test images are \(testShape.dropFirst().map(String.init).joined(separator: "x")) but train images (\(sources.0)) are \(trainShape.dropFirst().map(String.init).joined(separator: "x"))")
        }
        let ytrain = try labels(trainLabels, count: trainShape[0], source: sources.1, imagesSource: sources.0)
        let ytest = try labels(testLabels, count: testShape[0], source: sources.3, imagesSource: sources.2)
        let classes = Int(max(ytrain.max() ?? 0, ytest.max() ?? 0)) + 1
        let names = classNames ?? (0..<classes).map { "class \($0)" }
        guard names.count >= classes else {
            throw DataError("\(name): labels go up to \(classes - 1) but only \(names.count) class names are given")
        }
        let scale: Float = train.elementType == .uint8 ? 1 / 255 : 1
        let channels = trainShape[1], plane = trainShape[2] * trainShape[3]
        // Per-channel statistics of the training part, in double.
        var mean = [Double](repeating: 0, count: channels), square = mean
        train.values.withUnsafeBufferPointer { v in
            for n in 0..<trainShape[0] {
                for c in 0..<channels {
                    let base = (n * channels + c) * plane
                    var s = 0.0, s2 = 0.0
                    for i in 0..<plane { let x = Double(v[base + i] * scale); s += x; s2 += x * x }
                    mean[c] += s; square[c] += s2
                }
            }
        }
        let total = Double(trainShape[0] * plane)
        let std = (0..<channels).map { c -> Double in
            let m = mean[c] / total
            return Swift.max((square[c] / total - m * m).squareRoot(), 1e-6)
        }
        mean = mean.map { $0 / total }
        func normalise(_ a: IDXArray, _ shape: [Int]) -> Tensor {
            var t = Tensor(zeros: shape)
            t.withUnsafeMutableBufferPointer { out in
                a.values.withUnsafeBufferPointer { v in
                    for n in 0..<shape[0] {
                        for c in 0..<channels {
                            let base = (n * channels + c) * plane
                            let m = Float(mean[c]), k = Float(1 / std[c])
                            for i in 0..<plane { out[base + i] = (v[base + i] * scale - m) * k }
                        }
                    }
                }
            }
            return t
        }
        var hash = ContentHash()
        // What is compared is the data as used: the same files with another flip rule or class
        // split give other results, so they get another hash.
        let split = classSplit.map { "\($0.base)/\($0.validation)/\($0.novel)" } ?? "none"
        hash.add([train.contentHash, trainLabels.contentHash, test.contentHash, testLabels.contentHash, "standardised-per-channel/v1",
                  "flip=\(allowsHorizontalFlip)", "split=\(split)"].joined(separator: ","))
        return try Dataset(name: name, trainImages: normalise(train, trainShape), trainLabels: ytrain,
                           testImages: normalise(test, testShape), testLabels: ytest, classNames: Array(names.prefix(Swift.max(classes, names.count))),
                           contentHash: hash.hex, allowsHorizontalFlip: allowsHorizontalFlip, classSplit: classSplit,
                           channelMean: mean.map(Float.init), channelStd: std.map(Float.init))
    }

    static func imageShape(_ dims: [Int], source: String) throws -> [Int] {
        switch dims.count {
        case 2: return [dims[0], 1, 1, dims[1]]
        case 3: return [dims[0], 1, dims[1], dims[2]]
        case 4: return dims
        default: throw DataError("\(source): images must have 2 to 4 dimensions ([N, L], [N, H, W] or [N, C, H, W]), found \(dims.count)")
        }
    }

    static func labels(_ a: IDXArray, count: Int, source: String, imagesSource: String) throws -> [Int32] {
        guard a.dims.count == 1 else {
            throw DataError("\(source): labels must be one-dimensional, found \(a.dims.map(String.init).joined(separator: "x"))")
        }
        guard a.dims[0] == count else {
            throw DataError("\(source): \(a.dims[0]) labels, but \(imagesSource) holds \(count) images")
        }
        return try a.values.map { v in
            guard v >= 0, v == v.rounded(), v < 65_536 else { throw DataError("\(source): label \(v) is not a class index") }
            return Int32(v)
        }
    }
}

extension Dataset: CustomStringConvertible {
    public var description: String {
        "Dataset(\(name): \(trainLabels.count) train + \(testLabels.count) test, \(imageShape.map(String.init).joined(separator: "x")), \(classCount) classes, hash \(contentHash))"
    }
}

extension Dataset {
    /// The examples of `classes` only, relabelled 0..<classes.count in that order (a few-shot
    /// split's base classes, trained on as an ordinary classification problem).
    public func restricted(to classes: [Int]) throws -> Dataset {
        var newLabel = [Int32](repeating: -1, count: classCount)
        for (i, c) in classes.enumerated() { newLabel[c] = Int32(i) }
        func pick(_ images: Tensor, _ labels: [Int32]) -> (Tensor, [Int32]) {
            let rows = labels.indices.filter { newLabel[Int(labels[$0])] >= 0 }
            return (images.gatherRows(rows), rows.map { newLabel[Int(labels[$0])] })
        }
        let (train, ytrain) = pick(trainImages, trainLabels)
        let (test, ytest) = pick(testImages, testLabels)
        var hash = ContentHash()
        hash.add(contentHash)
        hash.add(classes.map(Int64.init))
        return try Dataset(name: "\(name)[\(classes.count) classes]", trainImages: train, trainLabels: ytrain, testImages: test,
                           testLabels: ytest, classNames: classes.map { classNames[$0] }, contentHash: hash.hex,
                           allowsHorizontalFlip: allowsHorizontalFlip, channelMean: channelMean, channelStd: channelStd)
    }
}

/// What a dataset's images hold, as far as a method that needs a kind of image cares: their shape
/// and whether their channels are colours or the frames of a sequence.
public struct ImageKind: Equatable, Sendable {
    /// [C, H, W].
    public var shape: [Int]
    public var channelsAreFrames: Bool

    public init(shape: [Int], channelsAreFrames: Bool = false) { (self.shape, self.channelsAreFrames) = (shape, channelsAreFrames) }

    /// Three colour channels.
    public var isColor: Bool { !channelsAreFrames && shape.first == 3 }
    /// Frames of a sequence, when the channels are frames.
    public var frames: Int? { channelsAreFrames ? shape.first : nil }

    public var description: String {
        let size = shape.map(String.init).joined(separator: "x")
        if let frames { return "sequences of \(frames) frames of \(shape.dropFirst().map(String.init).joined(separator: "x"))" }
        return (isColor ? "colour" : shape.first == 1 ? "greyscale" : "\(shape.first ?? 0)-channel") + " \(size) images"
    }
}

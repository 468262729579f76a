import CZlib
import Foundation
import Testing
@testable import DataCore
import TestSupport

/// IDX bytes for an array of extents `dims` and element type byte `type`, values given raw.
func idxBytes(type: UInt8, dims: [Int], payload: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return bytes + payload
}

func temporaryFile(_ name: String, _ bytes: [UInt8], gzip: Bool = false) -> String {
    let path = Scratch.folder("idx").appendingPathComponent(name).path
    if gzip {
        let f = gzopen(path, "wb")!
        _ = bytes.withUnsafeBytes { gzwrite(f, $0.baseAddress, UInt32($0.count)) }
        gzclose(f)
    } else {
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
    return path
}

@Suite struct IDXTests {
    @Test func readsUbyteImagesGzippedAndPlain() throws {
        let payload: [UInt8] = (0..<24).map { UInt8($0 * 10) }
        let bytes = idxBytes(type: 0x08, dims: [2, 3, 4], payload: payload)
        for gz in [false, true] {
            let a = try IDX.read(temporaryFile("img\(gz).idx", bytes, gzip: gz))
            #expect(a.dims == [2, 3, 4])
            #expect(a.values == payload.map(Float.init))
            #expect(a.elementType == .uint8)
        }
        // Gzipped or not, the content hash is of the inflated bytes.
        #expect(try IDX.read(temporaryFile("h1.idx", bytes)).contentHash == IDX.read(temporaryFile("h2.idx.gz", bytes, gzip: true)).contentHash)
    }

    @Test func readsBigEndianFloatsAndSignals() throws {
        let values: [Float] = [1.5, -2, 0.25, 1e-3]
        let payload = values.flatMap { v -> [UInt8] in let b = v.bitPattern.bigEndian; return withUnsafeBytes(of: b) { Array($0) } }
        let a = try IDX.parse(idxBytes(type: 0x0D, dims: [1, 4], payload: payload), source: "signal.idx")
        #expect(a.values == values && a.dims == [1, 4])
    }

    @Test func errorsNameTheFileAndTheProblem() throws {
        let good = idxBytes(type: 0x08, dims: [2, 2], payload: [1, 2, 3, 4])
        let cases: [([UInt8], String)] = [
            ([1, 2], "too short"),
            ([7, 0, 8, 1, 0, 0, 0, 1, 5], "not an IDX file"),
            ([0, 0, 0x42, 1, 0, 0, 0, 1, 5], "unknown IDX element type 42"),
            (Array(good.dropLast()), "truncated"),
            (good + [9], "trailing data"),
            ([0, 0, 8, 2, 0, 0], "truncated header"),
        ]
        for (bytes, expected) in cases {
            #expect { try IDX.parse(bytes, source: "bad.idx") } throws: { error in
                let m = (error as? DataError)?.message ?? ""
                return m.hasPrefix("bad.idx: ") && m.contains(expected)
            }
        }
        #expect { try IDX.read("/nonexistent/x.idx") } throws: { ($0 as? DataError)?.message.contains("/nonexistent/x.idx") == true }
    }

    /// The header alone tells a dataset's image shape, gzipped or not, without reading the data.
    @Test func dimensionsComeFromTheHeader() throws {
        let bytes = idxBytes(type: 0x08, dims: [5, 8, 8], payload: [UInt8](repeating: 1, count: 320))
        #expect(try IDX.dimensions(temporaryFile("dims.idx.gz", bytes, gzip: true)) == [5, 8, 8])
        #expect(try IDX.dimensions(temporaryFile("dims.idx", Array(bytes.prefix(16)))) == [5, 8, 8], "only the header is read")
        #expect { try IDX.dimensions(temporaryFile("short.idx", [0, 0, 8])) } throws: { "\($0)".contains("short.idx") }
        let signals = temporaryFile("signals.idx", idxBytes(type: 0x08, dims: [3, 40], payload: [UInt8](repeating: 0, count: 120)))
        var spec = DatasetSpec(kind: .idx)
        spec.idxFiles = [signals, signals, signals, signals]
        #expect(try spec.imageShape() == [1, 1, 40])
    }

    @Test func corruptAndTruncatedGzipAreErrorsNotTraps() throws {
        let bytes = idxBytes(type: 0x08, dims: [1000], payload: (0..<1000).map { UInt8($0 % 251) })
        let path = temporaryFile("whole.idx.gz", bytes, gzip: true)
        let gz = [UInt8](FileManager.default.contents(atPath: path)!)
        let truncated = temporaryFile("cut.idx.gz", Array(gz.prefix(gz.count / 2)))
        #expect { try IDX.read(truncated) } throws: { ($0 as? DataError)?.message.hasPrefix(truncated) == true }
        var garbled = gz
        for i in 20..<min(60, garbled.count) { garbled[i] ^= 0x5A }
        let corrupt = temporaryFile("garbled.idx.gz", garbled)
        #expect { try IDX.read(corrupt) } throws: { ($0 as? DataError)?.message.hasPrefix(corrupt) == true }
    }

    @Test func testImagesIdenticalToTheTrainingImagesAreRefused() throws {
        let images = idxBytes(type: 0x08, dims: [2, 2, 2], payload: [UInt8](repeating: 7, count: 8))
        let labels = idxBytes(type: 0x08, dims: [2], payload: [0, 1])
        let (a, b) = (temporaryFile("same-a.idx", images), temporaryFile("same-b.idx.gz", images, gzip: true))
        let l = temporaryFile("same-l.idx", labels)
        // The same bytes under another name, gzipped: compared after inflating.
        #expect { try DatasetSource.idx(name: "toy", trainImages: a, trainLabels: l, testImages: b, testLabels: l) } throws: { error in
            (error as? DataError)?.message == "\(b): the test images are the training images (\(a), byte for byte); a test split must be held out"
        }
    }

    @Test func aHeaderMayNotClaimMoreThanTheFileCanHold() throws {
        // 2^31 values, an overflowing product, and a billion bytes in a 12-byte file: refused from the header alone.
        for (dims, expected) in [([Int(1) << 31], "more than the 2147483647 one file may hold"),
                                 ([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], "more than the 2147483647 one file may hold"),
                                 ([1_000_000_000], "but a file of 12 bytes cannot hold that much")] {
            let header: [UInt8] = [0, 0, 8, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8((d >> (8 * (3 - $0))) & 0xFF) } }
            let path = temporaryFile("claims-\(dims.count)-\(dims[0]).idx", header + [1, 2, 3, 4].prefix(12 - header.count > 0 ? 12 - header.count : 0))
            #expect { try IDX.read(path) } throws: { ($0 as? DataError)?.message.contains(expected) == true }
            #expect { try IDX.parse(header, source: "h") } throws: { $0 is DataError }
        }
    }

    @Test func imageAndLabelCountsMustAgree() throws {
        let images = idxBytes(type: 0x08, dims: [3, 2, 2], payload: [UInt8](repeating: 7, count: 12))
        let labels = idxBytes(type: 0x08, dims: [2], payload: [0, 1])
        let paths = [temporaryFile("i.idx", images), temporaryFile("l.idx", labels),
                     temporaryFile("ti.idx", idxBytes(type: 0x08, dims: [3, 2, 2], payload: [UInt8](repeating: 9, count: 12)))]
        #expect {
            try DatasetSource.idx(name: "toy", trainImages: paths[0], trainLabels: paths[1], testImages: paths[2], testLabels: paths[1])
        } throws: { error in
            let m = (error as? DataError)?.message ?? ""
            return m.contains(paths[1]) && m.contains("2 labels") && m.contains("3 images")
        }
    }

    @Test func idxDatasetIsStandardisedPerChannel() throws {
        let images = idxBytes(type: 0x08, dims: [4, 2, 2], payload: (0..<16).map { UInt8($0 * 16) })
        let labels = idxBytes(type: 0x08, dims: [4], payload: [0, 1, 0, 1])
        let p = [temporaryFile("si.idx", images), temporaryFile("sl.idx", labels),
                 temporaryFile("sti.idx", idxBytes(type: 0x08, dims: [4, 2, 2], payload: (0..<16).map { UInt8(255 - $0 * 16) }))]
        let d = try DatasetSource.idx(name: "toy", trainImages: p[0], trainLabels: p[1], testImages: p[2], testLabels: p[1])
        #expect(d.trainImages.shape == [4, 1, 2, 2])
        let v = d.trainImages.scalars.map(Double.init)
        let mean = v.reduce(0, +) / 16, variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16
        #expect(abs(mean) < 1e-5 && abs(variance - 1) < 1e-4)
        #expect(d.classNames == ["class 0", "class 1"])
    }
}

@Suite struct FashionMNISTTests {
    @Test func loadsFromDebiansPackage() throws {
        let t0 = Date()
        let d = try DatasetSource.fashionMNIST()
        let seconds = Date().timeIntervalSince(t0)
        #expect(d.trainImages.shape == [60_000, 1, 28, 28] && d.testImages.shape == [10_000, 1, 28, 28])
        #expect(d.trainClassCounts == [Int](repeating: 6000, count: 10))
        #expect(d.testClassCounts == [Int](repeating: 1000, count: 10))
        #expect(d.classNames[9] == "Ankle boot")
        #expect(d.contentHash.count == 16)
        // Debug builds are slower; the figure that counts is measured in release (data inspect).
        #expect(seconds < 30)
    }

    @Test func missingDataSaysHowToInstall() {
        #expect { try DatasetSource.fashionMNIST(dataDir: "/nonexistent") } throws: { error in
            let m = (error as? DataError)?.message ?? ""
            return m.contains("apt-get install dataset-fashion-mnist") && m.contains("/nonexistent")
        }
    }
}

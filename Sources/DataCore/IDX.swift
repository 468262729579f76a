import CZlib
import Foundation

/// An array read from an IDX file (the MNIST family's format): its extents and its values as Float.
public struct IDXArray {
    public var dims: [Int]
    public var elementType: IDX.ElementType
    public var values: [Float]
    /// Hash of the raw (decompressed) bytes, header included.
    public var contentHash: String
}

/// Reader for IDX files, gzipped or not: a 4-byte magic (0, 0, element type, number of
/// dimensions), one big-endian 32-bit extent per dimension, then the values, big-endian.
public enum IDX {
    public enum ElementType: UInt8, CustomStringConvertible, Sendable {
        case uint8 = 0x08, int8 = 0x09, int16 = 0x0B, int32 = 0x0C, float32 = 0x0D, float64 = 0x0E
        var size: Int {
            switch self {
            case .uint8, .int8: return 1
            case .int16: return 2
            case .int32, .float32: return 4
            case .float64: return 8
            }
        }
        public var description: String {
            switch self {
            case .uint8: return "ubyte"
            case .int8: return "byte"
            case .int16: return "short"
            case .int32: return "int"
            case .float32: return "float"
            case .float64: return "double"
            }
        }
    }

    /// Most values one file may hold: a header claiming more (2^31 and up) is corrupt, or a
    /// dataset no machine this tool runs on could train from.
    public static let maxValues = Int(Int32.max)
    /// Deflate never compresses better than 1032:1, so no honest gzip stream inflates beyond
    /// that ratio: a header claiming more than that is refused before anything is allocated.
    static let maxInflation = 1032

    /// What a header declares.
    struct Header {
        var type: ElementType
        var dims: [Int]
        var size: Int
        var count: Int
        /// Header and values, in bytes.
        var totalBytes: Int { size + count * type.size }

        /// Decodes the header at the start of `bytes` (which must hold it, or say how much more
        /// is needed through the error); every product is checked, so no header can overflow.
        init(_ bytes: [UInt8], source: String) throws {
            guard bytes.count >= 4 else { throw DataError("\(source): \(bytes.count) bytes is too short for an IDX header") }
            guard bytes[0] == 0, bytes[1] == 0 else {
                throw DataError("\(source): not an IDX file (magic starts \(IDX.hex(bytes[0])) \(IDX.hex(bytes[1])), expected 00 00)")
            }
            guard let type = ElementType(rawValue: bytes[2]) else {
                throw DataError("\(source): unknown IDX element type \(IDX.hex(bytes[2])) (expected 08, 09, 0B, 0C, 0D or 0E)")
            }
            let rank = Int(bytes[3])
            guard rank >= 1 else { throw DataError("\(source): IDX header declares 0 dimensions") }
            let size = 4 + 4 * rank
            guard bytes.count >= size else {
                throw DataError("\(source): truncated header (\(rank) dimensions need \(size) bytes, file has \(bytes.count))")
            }
            let dims = (0..<rank).map { i in (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * i + $1]) } }
            var count = 1
            for d in dims {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, product <= IDX.maxValues else {
                    throw DataError("\(source): header claims \(dims.map(String.init).joined(separator: "x")) values, more than the \(IDX.maxValues) one file may hold")
                }
                count = product
            }
            (self.type, self.dims, self.size, self.count) = (type, dims, size, count)
        }
    }

    /// Reads and parses an IDX file; gzip is detected from the content, not the name.
    public static func read(_ path: String) throws -> IDXArray {
        try parse(readAll(path), source: path)
    }

    /// The dimensions an IDX file declares, reading (and inflating) only its header.
    public static func dimensions(_ path: String) throws -> [Int] {
        try withFile(path) { file, _ in try readHeader(file, path).header.dims }
    }

    /// Opens `path` through zlib (which reads plain files unchanged) with the file's size on disk.
    static func withFile<R>(_ path: String, _ body: (gzFile, Int) throws -> R) throws -> R {
        guard FileManager.default.isReadableFile(atPath: path) else { throw DataError("\(path): no such readable file") }
        let onDisk = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard let file = gzopen(path, "rb") else { throw DataError("\(path): cannot open") }
        defer { gzclose(file) }
        gzbuffer(file, 1 << 20)
        return try body(file, onDisk)
    }

    /// Up to `count` more bytes of the stream (fewer at its end), grown chunk by chunk as they
    /// arrive: memory follows what the stream holds, not what a header claims.
    static func read(_ file: gzFile, _ count: Int, _ path: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(count, 1 << 22))
        while bytes.count < count {
            let want = UInt32(min(count - bytes.count, chunk.count))
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, want) }
            if n < 0 { throw DataError("\(path): corrupt gzip data (\(gzipError(file)))") }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<Int(n)])
        }
        return bytes
    }

    /// The header's bytes and what they declare.
    static func readHeader(_ file: gzFile, _ path: String) throws -> (bytes: [UInt8], header: Header) {
        var bytes = try read(file, 4, path)
        if bytes.count == 4 { bytes += try read(file, 4 * Int(bytes[3]), path) }
        return (bytes, try Header(bytes, source: path))
    }

    /// The file's bytes, inflated if it is gzipped, never more than its header declares: a
    /// header larger than the file could hold (1032 times its size when compressed) is refused
    /// before any allocation, and a stream that inflates past the declared size (a gzip bomb,
    /// trailing data) stops at one byte beyond it.
    static func readAll(_ path: String) throws -> [UInt8] {
        try withFile(path) { file, onDisk in
            let (head, header) = try readHeader(file, path)
            let compressed = gzdirect(file) == 0
            let canHold = onDisk.multipliedReportingOverflow(by: compressed ? maxInflation : 1)
            guard canHold.overflow || header.totalBytes <= canHold.partialValue else {
                throw DataError("\(path): header claims \(header.dims.map(String.init).joined(separator: "x")) \(header.type) (\(header.totalBytes) bytes)"
                                + " but a\(compressed ? " gzipped" : "") file of \(onDisk) bytes cannot hold that much")
            }
            var bytes = head
            bytes += try read(file, header.totalBytes - head.count + 1, path)
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
            if code != Z_OK && code != Z_STREAM_END {
                throw DataError("\(path): gzip stream is truncated or corrupt (\(message))")
            }
            return bytes
        }
    }

    private static func gzipError(_ file: gzFile) -> String {
        var code: Int32 = 0
        return gzerror(file, &code).map { String(cString: $0) } ?? "zlib error \(code)"
    }

    /// Parses IDX bytes; `source` names the file in errors.
    public static func parse(_ bytes: [UInt8], source: String) throws -> IDXArray {
        let header = try Header(bytes, source: source)
        let (type, dims, headerSize, count) = (header.type, header.dims, header.size, header.count)
        let expected = header.totalBytes
        guard bytes.count == expected else {
            let shape = dims.map(String.init).joined(separator: "x")
            throw DataError("\(source): header says \(shape) \(type) (\(expected) bytes with the header) but the file has \(bytes.count)\(bytes.count > expected ? " or more" : "") bytes"
                            + (bytes.count < expected ? " (truncated)" : " (trailing data)"))
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let data = UnsafeRawBufferPointer(rebasing: raw[headerSize...])
            values.withUnsafeMutableBufferPointer { out in
                switch type {
                case .uint8: for i in 0..<count { out[i] = Float(data[i]) }
                case .int8: for i in 0..<count { out[i] = Float(Int8(bitPattern: data[i])) }
                case .int16: for i in 0..<count { out[i] = Float(Int16(bigEndian: data.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
                case .int32: for i in 0..<count { out[i] = Float(Int32(bigEndian: data.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
                case .float32:
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(bigEndian: data.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                case .float64:
                    for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(bigEndian: data.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
                }
            }
        }
        var hash = ContentHash()
        bytes.withUnsafeBytes { hash.add($0) }
        return IDXArray(dims: dims, elementType: type, values: values, contentHash: hash.hex)
    }

    static func hex(_ b: UInt8) -> String { String(format: "%02X", b) }
}

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

    /// Reads and parses an IDX file; gzip is detected from the content, not the name.
    public static func read(_ path: String) throws -> IDXArray {
        try parse(readAll(path), source: path)
    }

    /// The dimensions an IDX file declares, reading (and inflating) only its header.
    public static func dimensions(_ path: String) throws -> [Int] {
        guard FileManager.default.isReadableFile(atPath: path) else { throw DataError("\(path): no such readable file") }
        guard let file = gzopen(path, "rb") else { throw DataError("\(path): cannot open") }
        defer { gzclose(file) }
        func read(_ count: Int) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            let n = bytes.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(count)) }
            guard n == Int32(count) else { throw DataError("\(path): \(max(n, 0)) bytes is too short for an IDX header") }
            return bytes
        }
        let magic = try read(4)
        guard magic[0] == 0, magic[1] == 0, ElementType(rawValue: magic[2]) != nil, magic[3] >= 1 else {
            throw DataError("\(path): not an IDX file (its header starts \(magic.map(hex).joined(separator: " ")))")
        }
        let dims = try read(4 * Int(magic[3]))
        return (0..<Int(magic[3])).map { i in (0..<4).reduce(0) { $0 << 8 | Int(dims[4 * i + $1]) } }
    }

    /// The file's bytes, inflated if it is gzipped (zlib reads plain files through unchanged).
    static func readAll(_ path: String) throws -> [UInt8] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw DataError("\(path): no such readable file")
        }
        guard let file = gzopen(path, "rb") else { throw DataError("\(path): cannot open") }
        defer { gzclose(file) }
        gzbuffer(file, 1 << 20)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw DataError("\(path): corrupt gzip data (\(gzipError(file)))") }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if code != Z_OK && code != Z_STREAM_END {
            throw DataError("\(path): gzip stream is truncated or corrupt (\(message))")
        }
        return out
    }

    private static func gzipError(_ file: gzFile) -> String {
        var code: Int32 = 0
        return gzerror(file, &code).map { String(cString: $0) } ?? "zlib error \(code)"
    }

    /// Parses IDX bytes; `source` names the file in errors.
    public static func parse(_ bytes: [UInt8], source: String) throws -> IDXArray {
        guard bytes.count >= 4 else { throw DataError("\(source): \(bytes.count) bytes is too short for an IDX header") }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw DataError("\(source): not an IDX file (magic starts \(hex(bytes[0])) \(hex(bytes[1])), expected 00 00)")
        }
        guard let type = ElementType(rawValue: bytes[2]) else {
            throw DataError("\(source): unknown IDX element type \(hex(bytes[2])) (expected 08, 09, 0B, 0C, 0D or 0E)")
        }
        let rank = Int(bytes[3])
        guard rank >= 1 else { throw DataError("\(source): IDX header declares 0 dimensions") }
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw DataError("\(source): truncated header (\(rank) dimensions need \(headerSize) bytes, file has \(bytes.count))")
        }
        let dims = (0..<rank).map { i in
            (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * i + $1]) }
        }
        let count = dims.reduce(1, *)
        let expected = headerSize + count * type.size
        guard bytes.count == expected else {
            let shape = dims.map(String.init).joined(separator: "x")
            throw DataError("\(source): header says \(shape) \(type) (\(expected) bytes with the header) but the file has \(bytes.count) bytes"
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

    private static func hex(_ b: UInt8) -> String { String(format: "%02X", b) }
}

/// A 64-bit content hash (word-wise multiply-xorshift over the bytes, length-seeded), printed as
/// 16 hex digits: results on data with different hashes are never compared. Not cryptographic; it
/// only has to tell datasets and splits apart.
public struct ContentHash: Sendable {
    private var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    public init() {}

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = state ^ (UInt64(bytes.count) &* 0xff51_afd7_ed55_8ccd)
        let words = bytes.count / 8
        for i in 0..<words {
            let w = bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
            h = (h ^ (w &* 0xc4ce_b9fe_1a85_ec53)) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
        }
        for i in (words * 8)..<bytes.count { h = (h ^ UInt64(bytes[i])) &* 0x100_0000_01b3 }
        state = h
    }

    public mutating func add<T>(_ values: [T]) { values.withUnsafeBytes { add($0) } }
    public mutating func add(_ text: String) { add(Array(text.utf8)) }

    public var hex: String {
        var z = state
        z = (z ^ (z >> 33)) &* 0xff51_afd7_ed55_8ccd
        z = (z ^ (z >> 33)) &* 0xc4ce_b9fe_1a85_ec53
        z ^= z >> 33
        let s = String(z, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

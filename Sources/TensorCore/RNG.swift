/// The one seeded generator family of benchbench: xoshiro256** seeded through SplitMix64.
///
/// Every random stream (split, init, augmentation, batch order, episodes) is derived from
/// (suite seed, trial key, stream name), so any trial reproduces alone, whatever ran before it.
public struct RNG: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        s0 = RNG.splitMix(&sm); s1 = RNG.splitMix(&sm); s2 = RNG.splitMix(&sm); s3 = RNG.splitMix(&sm)
    }

    /// A stream derived from a seed, a trial key and a stream name.
    public init(seed: UInt64, key: String, stream: String) {
        var h = RNG.fnv1a(key, RNG.fnv1a(stream, 0xcbf2_9ce4_8422_2325))
        h ^= seed &* 0x9E37_79B9_7F4A_7C15
        self.init(seed: h)
    }

    /// An independent child stream, for handing randomness to a component without sharing state.
    public mutating func derive(_ stream: String) -> RNG {
        RNG(seed: next() ^ RNG.fnv1a(stream, 0x84222325cbf29ce4))
    }

    private static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static func fnv1a(_ s: String, _ basis: UInt64) -> UInt64 {
        var h = basis
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    @inline(__always)
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

    /// Standard normal (Box-Muller on doubles, so tails are not truncated by Float rounding).
    public mutating func normal() -> Float {
        let u1 = (Double(next() >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<n, by Lemire's multiply-and-reject ("Fast Random Integer Generation
    /// in an Interval", ACM TOMACS 2019): the high word of a 64 x 64-bit product, redrawn while the
    /// low word falls in the biased zone. Written out rather than left to `Int.random(in:using:)`,
    /// whose algorithm Swift does not promise to keep. FROZEN: every label split, batch order and
    /// episode is drawn through it, so changing it changes every stored result's split hash; a
    /// test pins its values.
    public mutating func int(_ n: Int) -> Int {
        // invariant: bounds are counts of non-empty things (classes with images, pools, episodes): datasets refuse empty classes and the planner empty budgets
        precondition(n > 0, "RNG.int: the bound must be positive, got \(n)")
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// 0..<n in a random order (`shuffle` of the identity).
    public mutating func permutation(_ n: Int) -> [Int] {
        var order = Array(0..<n)
        shuffle(&order)
        return order
    }

    /// Shuffles `items` in place by Fisher-Yates (Durstenfeld's form) from the front: position i
    /// swaps with i + int(count − i). FROZEN for the same reason as `int`: it orders every split,
    /// batch and episode (pinned by a test), independently of the standard library's `shuffle`.
    public mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in 0..<(items.count - 1) {
            let j = i + int(items.count - i)
            if j != i { items.swapAt(i, j) }
        }
    }
}

// Glibc and Darwin name these differently; keep the RNG free of Foundation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@inline(__always) private func _log(_ x: Double) -> Double { log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { cos(x) }

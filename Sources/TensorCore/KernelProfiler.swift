import Foundation

/// Counts every kernel call: calls, FLOPs (or bytes for memory-bound kernels) and seconds, per
/// kernel name and shape. It stays on during training so each trial can store its kernel
/// throughput; the cost is two monotonic clock reads and one dictionary update under a lock per
/// kernel call (measured by `benchbench kernels --profiler-overhead`).
public final class KernelProfiler: @unchecked Sendable {
    public static let shared = KernelProfiler()

    /// A kernel and the shape it ran at (up to four extents; unused ones are 0).
    public struct Key: Hashable, Sendable {
        public let name: String
        public let dims: SIMD4<Int>
        public var shape: String {
            (0..<4).map { dims[$0] }.filter { $0 != 0 }.map(String.init).joined(separator: "x")
        }
    }

    public struct Entry: Sendable {
        public var calls = 0
        public var flops = 0.0
        public var bytes = 0.0
        public var seconds = 0.0
    }

    private var entries: [Key: Entry] = [:]
    private let lock = NSLock()
    public var isEnabled = true

    @inline(__always)
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Runs `body` as one call of kernel `name` at shape `dims`, with its work in FLOPs and bytes.
    @inline(__always)
    public func measure<R>(_ name: String, _ dims: SIMD4<Int>, flops: Double = 0, bytes: Double = 0,
                           _ body: () throws -> R) rethrows -> R {
        guard isEnabled else { return try body() }
        let start = KernelProfiler.now()
        let result = try body()
        record(Key(name: name, dims: dims), flops: flops, bytes: bytes,
               seconds: Double(KernelProfiler.now() - start) * 1e-9)
        return result
    }

    func record(_ key: Key, flops: Double, bytes: Double, seconds: Double) {
        lock.lock()
        entries[key, default: Entry()].calls += 1
        entries[key]!.flops += flops
        entries[key]!.bytes += bytes
        entries[key]!.seconds += seconds
        lock.unlock()
    }

    /// What has been counted since the last reset, heaviest first.
    public func snapshot() -> [(key: Key, entry: Entry)] {
        lock.lock(); defer { lock.unlock() }
        return entries.map { ($0.key, $0.value) }.sorted { $0.entry.seconds > $1.entry.seconds }
    }

    public func reset() {
        lock.lock(); entries.removeAll(); lock.unlock()
    }
}

@inline(__always)
func dims(_ a: Int, _ b: Int = 0, _ c: Int = 0, _ d: Int = 0) -> SIMD4<Int> { SIMD4(a, b, c, d) }

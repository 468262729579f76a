import Foundation

/// Counts every kernel call: calls, FLOPs (or bytes for memory-bound kernels) and seconds, per
/// kernel name and shape. It stays on during training so each trial can store its kernel
/// throughput; the cost is two monotonic clock reads and one hash-table update under a lock per
/// call (`benchbench kernels --only profiler` measures it).
///
/// A measurement that encloses others (a convolution around its im2col and GEMM) is marked
/// `composite`, so totals can count each second once.
public final class KernelProfiler: @unchecked Sendable {
    public static let shared = KernelProfiler()

    /// A kernel and the shape it ran at (up to four extents; unused ones are 0).
    public struct Key: Hashable, @unchecked Sendable {  // nameStart points at an immutable static string
        /// Names are static strings: hashing their address is far cheaper than their text.
        let nameStart: UnsafeRawPointer
        let nameLength: Int
        public let dims: SIMD4<Int>

        public var name: String {
            String(decoding: UnsafeRawBufferPointer(start: nameStart, count: nameLength), as: UTF8.self)
        }
        public var shape: String {
            (0..<4).map { dims[$0] }.filter { $0 != 0 }.map(String.init).joined(separator: "x")
        }
        public static func == (a: Key, b: Key) -> Bool { a.nameStart == b.nameStart && a.dims == b.dims }
        public func hash(into h: inout Hasher) { h.combine(nameStart); h.combine(dims) }
    }

    public struct Entry: Sendable {
        public var calls = 0
        public var flops = 0.0
        public var bytes = 0.0
        public var seconds = 0.0
        public var composite = false
    }

    private var entries: [Key: Entry] = [:]
    private let lock = NSLock()
    /// Measurements started and not yet ended, and a count of all ended ones: together they tell
    /// whether a measurement enclosed another.
    private var open = 0
    private var ended = 0
    public var isEnabled = true

    @inline(__always)
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Runs `body` as one call of kernel `name` at shape `dims`, with its work in FLOPs and bytes.
    @inline(__always)
    public func measure<R>(_ name: StaticString, _ dims: SIMD4<Int>, flops: Double = 0, bytes: Double = 0,
                           _ body: () throws -> R) rethrows -> R {
        guard isEnabled else { return try body() }
        lock.lock(); open += 1; let endedBefore = ended; lock.unlock()
        let start = KernelProfiler.now()
        let result = try body()
        let seconds = Double(KernelProfiler.now() - start) * 1e-9
        let key = Key(nameStart: UnsafeRawPointer(name.utf8Start), nameLength: name.utf8CodeUnitCount, dims: dims)
        lock.lock()
        open -= 1
        let composite = ended != endedBefore
        ended &+= 1
        entries[key, default: Entry()].add(flops: flops, bytes: bytes, seconds: seconds, composite: composite)
        lock.unlock()
        return result
    }

    /// Adds one call of kernel `name` measured elsewhere (a phase of work split across threads,
    /// timed by its threads and apportioned to the wall time). It counts as ended inside any
    /// measurement still open, which is thereby composite.
    public func record(_ name: StaticString, _ dims: SIMD4<Int>, flops: Double = 0, bytes: Double = 0, seconds: Double) {
        guard isEnabled else { return }
        let key = Key(nameStart: UnsafeRawPointer(name.utf8Start), nameLength: name.utf8CodeUnitCount, dims: dims)
        lock.lock()
        ended &+= 1
        entries[key, default: Entry()].add(flops: flops, bytes: bytes, seconds: seconds, composite: false)
        lock.unlock()
    }

    /// What has been counted since the last reset, heaviest first.
    public func snapshot() -> [(key: Key, entry: Entry)] {
        lock.lock(); defer { lock.unlock() }
        return entries.map { ($0.key, $0.value) }.sorted { $0.entry.seconds > $1.entry.seconds }
    }

    /// The counts as they stand, to measure a stretch of work against without a reset (which
    /// would erase what other work running at the same time is counting, e.g. other tests).
    public func mark() -> [Key: Entry] {
        lock.lock(); defer { lock.unlock() }
        return entries
    }

    /// What has been counted since `mark`, heaviest first (kernels with no call since are left out).
    public func snapshot(since mark: [Key: Entry]) -> [(key: Key, entry: Entry)] {
        snapshot().compactMap { key, entry in
            guard let before = mark[key] else { return (key, entry) }
            guard entry.calls > before.calls else { return nil }
            var e = entry
            (e.calls, e.flops, e.bytes, e.seconds) = (entry.calls - before.calls, entry.flops - before.flops, entry.bytes - before.bytes,
                                                      entry.seconds - before.seconds)
            return (key, e)
        }.sorted { $0.entry.seconds > $1.entry.seconds }
    }

    public func reset() {
        lock.lock(); entries.removeAll(keepingCapacity: true); lock.unlock()
    }
}

extension KernelProfiler.Entry {
    @inline(__always)
    mutating func add(flops: Double, bytes: Double, seconds: Double, composite: Bool) {
        calls += 1
        self.flops += flops
        self.bytes += bytes
        self.seconds += seconds
        self.composite = self.composite || composite
    }
}

@inline(__always)
func dims(_ a: Int, _ b: Int = 0, _ c: Int = 0, _ d: Int = 0) -> SIMD4<Int> { SIMD4(a, b, c, d) }

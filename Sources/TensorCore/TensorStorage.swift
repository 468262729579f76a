import Foundation

/// A 64-byte-aligned Float32 buffer. Freed buffers go back to `BufferPool`, so a training step that
/// allocates the same intermediates every iteration reuses memory instead of faulting in fresh
/// pages (large glibc allocations are mmap-ed and returned to the kernel on free).
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    init(uninitializedCount count: Int) {
        self.count = count
        self.pointer = BufferPool.shared.take(count)
    }

    convenience init(zeros count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { BufferPool.shared.give(pointer, count) }

    func copy() -> TensorStorage {
        let s = TensorStorage(uninitializedCount: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }
}

/// Free lists of aligned buffers keyed by element count. Training repeats the same shapes every
/// step, so exact-size keys hit almost always. A byte cap keeps an unusual workload from hoarding;
/// when a returned buffer would pass it, the sizes used longest ago are released first, so buffers
/// of an earlier phase (validation batches, another trial's shapes) make room for the step at hand
/// instead of the step's own buffers going back to the kernel and faulting in again next step.
final class BufferPool {
    static let shared = BufferPool()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    /// When each size was last taken or given (a counter, not a clock).
    private var lastUse: [Int: UInt64] = [:]
    private var tick: UInt64 = 0
    private var pooledBytes = 0
    let maxPooledBytes: Int
    private let lock = NSLock()

    /// A quarter of the machine's memory, between 1 and 8 GB.
    init(maxPooledBytes: Int = min(8 << 30, max(1 << 30, Int(ProcessInfo.processInfo.physicalMemory / 4)))) {
        self.maxPooledBytes = maxPooledBytes
    }

    /// Bytes held in free lists now.
    var pooled: Int { lock.withLock { pooledBytes } }

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = Swift.max(count, 1)
        lock.lock()
        tick += 1
        lastUse[n] = tick
        if let p = free[n]?.popLast() {
            pooledBytes -= n * 4
            if free[n]!.isEmpty { free[n] = nil }
            lock.unlock()
            return p
        }
        lock.unlock()
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, n * MemoryLayout<Float>.stride)
        // invariant: only an exhausted machine fails here; sizes a user controls are capped before (IDX files at 2^31 values and what their bytes can hold, generated datasets at 2 million images, suite files at 1 MB)
        guard status == 0, let raw else { fatalError("TensorCore: out of memory allocating \(n) floats") }
        return raw.bindMemory(to: Float.self, capacity: n)
    }

    func give(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        let n = Swift.max(count, 1)
        guard n * 4 <= maxPooledBytes else { Foundation.free(p); return }
        var released: [UnsafeMutablePointer<Float>] = []
        lock.lock()
        tick += 1
        lastUse[n] = tick
        free[n, default: []].append(p)
        pooledBytes += n * 4
        while pooledBytes > maxPooledBytes {
            // invariant: the pool holds at least the buffer just given, so some size is free
            let oldest = free.keys.min { lastUse[$0, default: 0] < lastUse[$1, default: 0] }!
            released.append(free[oldest]!.removeLast())
            pooledBytes -= oldest * 4
            if free[oldest]!.isEmpty { free[oldest] = nil }
        }
        lock.unlock()
        for q in released { Foundation.free(q) }
    }
}

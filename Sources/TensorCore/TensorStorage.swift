import Foundation

/// A 64-byte-aligned Float32 buffer. Freed buffers go back to `BufferPool`, so a training step that
/// allocates the same intermediates every iteration reuses memory instead of faulting in fresh
/// pages (large glibc allocations are mmap-ed and returned to the kernel on free).
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    init(uninitializedCount count: Int) {
        self.count = count
        self.pointer = BufferPool.shared.take(count).bindMemory(to: Float.self, capacity: Swift.max(count, 1))
    }

    convenience init(zeros count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { BufferPool.shared.give(UnsafeMutableRawPointer(pointer), count) }

    func copy() -> TensorStorage {
        let s = TensorStorage(uninitializedCount: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }
}

/// Flat Int32 indices (a max-pool's argmax, selected rows) in a pooled buffer: the elements are
/// four bytes like a tensor's, so the same recycled memory serves both. (A max-pool's index is as
/// large as its output, 48 MB for FixMatch's 960-image first block: as a Swift array it was
/// mmap-ed and faulted in afresh every step.)
public final class IndexBuffer {
    let pointer: UnsafeMutablePointer<Int32>
    public let count: Int
    /// The index cut into this many equal runs, run s pointing only into segment s of its target
    /// cut as evenly (max pooling's planes: an output's maximum lies in its own plane), so a
    /// scatter through it splits across cores by segment. 1: no such structure known.
    var segments = 1

    init(uninitializedCount count: Int) {
        self.count = count
        pointer = BufferPool.shared.take(count).bindMemory(to: Int32.self, capacity: Swift.max(count, 1))
    }

    deinit { BufferPool.shared.give(UnsafeMutableRawPointer(pointer), count) }
}

/// Free lists of aligned buffers keyed by element count. Training repeats the same shapes every
/// step, so exact-size keys hit almost always. A byte cap keeps an unusual workload from hoarding;
/// when a returned buffer would pass it, the sizes used longest ago are released first, so buffers
/// of an earlier phase (validation batches, another trial's shapes) make room for the step at hand
/// instead of the step's own buffers going back to the kernel and faulting in again next step.
final class BufferPool {
    static let shared = BufferPool()
    /// Free buffers by element count (four bytes each; bound to Float or Int32 by whoever takes one).
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    /// When each free size was last taken or given (a counter, not a clock); a size leaves with its
    /// last free buffer, so this holds exactly the sizes `free` does.
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

    /// Sizes with a recorded last use (the free sizes; a long suite's many shapes cannot grow it).
    var trackedSizes: Int { lock.withLock { lastUse.count } }

    func take(_ count: Int) -> UnsafeMutableRawPointer {
        let n = Swift.max(count, 1)
        lock.lock()
        if let p = free[n]?.popLast() {
            pooledBytes -= n * 4
            tick += 1
            if free[n]!.isEmpty { (free[n], lastUse[n]) = (nil, nil) } else { lastUse[n] = tick }
            lock.unlock()
            return p
        }
        lock.unlock()
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, n * 4)
        // invariant: only an exhausted machine fails here; sizes a user controls are capped before (IDX files at 2^31 values and what their bytes can hold, generated datasets at 2 million images, suite files at 1 MB)
        guard status == 0, let raw else { fatalError("TensorCore: out of memory allocating \(n) floats") }
        return raw
    }

    func give(_ p: UnsafeMutableRawPointer, _ count: Int) {
        let n = Swift.max(count, 1)
        guard n * 4 <= maxPooledBytes else { Foundation.free(p); return }
        var released: [UnsafeMutableRawPointer] = []
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
            if free[oldest]!.isEmpty { (free[oldest], lastUse[oldest]) = (nil, nil) }
        }
        lock.unlock()
        for q in released { Foundation.free(q) }
    }
}

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
/// step, so exact-size keys hit almost always; a byte cap keeps an unusual workload from hoarding.
final class BufferPool {
    static let shared = BufferPool()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var pooledBytes = 0
    private let maxPooledBytes = 2 << 30
    private let lock = NSLock()

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = Swift.max(count, 1)
        lock.lock()
        if let p = free[n]?.popLast() {
            pooledBytes -= n * 4
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
        lock.lock()
        if pooledBytes + n * 4 <= maxPooledBytes {
            free[n, default: []].append(p)
            pooledBytes += n * 4
            lock.unlock()
        } else {
            lock.unlock()
            Foundation.free(p)
        }
    }
}

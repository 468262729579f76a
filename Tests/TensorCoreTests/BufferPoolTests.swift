import Testing
@testable import TensorCore

/// The buffer pool reuses exact sizes and, at its cap, releases the sizes used longest ago first.
@Suite struct BufferPoolTests {
    @Test func reusesExactSizesAndEvictsTheLeastRecentlyUsedSizeAtTheCap() {
        // Room for 100 floats.
        let pool = BufferPool(maxPooledBytes: 400)
        let old = pool.take(40), recent = pool.take(30)
        pool.give(old, 40)
        pool.give(recent, 30)
        #expect(pool.pooled == 280)
        // Taking a pooled size returns the same buffer; giving it back makes it the most recent.
        let again = pool.take(40)
        #expect(again == old && pool.pooled == 120)
        pool.give(again, 40)
        // 50 more floats pass the cap by 20: the 30-float size, used longest ago, goes; 40 stays.
        let fresh = pool.take(50)
        pool.give(fresh, 50)
        #expect(pool.pooled == 360)
        #expect(pool.take(40) == old)
        #expect(pool.take(50) == fresh)
        #expect(pool.pooled == 0)
        #expect(pool.trackedSizes == 0, "a size with no free buffer keeps no bookkeeping")
        pool.give(fresh, 50)
        #expect(pool.trackedSizes == 1)
        // A buffer larger than the whole cap is released at once.
        let huge = pool.take(200)
        pool.give(huge, 200)
        #expect(pool.pooled == 200 && pool.trackedSizes == 1)
    }

    /// Gathered rows and max-pool maxima go through pooled index buffers: the values, repeated
    /// and empty selections, and the max-pool's gradient landing on each window's maximum.
    @Test func indexBuffersCarryGatherAndMaxPool() {
        let x = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        #expect(x.gatherRows([2, 0, 2]).scalars == [5, 6, 1, 2, 5, 6])
        #expect(x.gatherRows([]).shape == [0, 2])
        let image = Tensor(shape: [1, 1, 2, 4], scalars: [1, 9, 3, 2, 4, 0, 8, 5]).requiringGrad()
        let pooled = maxPool2d(image)
        let grad = gradients(of: pooled.sum(), wrt: [image])[0]
        #expect(pooled.scalars == [9, 8])
        #expect(grad.scalars == [0, 1, 0, 0, 0, 0, 1, 0])
    }
}

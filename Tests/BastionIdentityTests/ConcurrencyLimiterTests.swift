@testable import BastionIdentity
import Testing

@Suite struct ConcurrencyLimiterTests {
    @Test func refusesBeyondTheQueue() async {
        let limiter = ConcurrencyLimiter(maximumConcurrent: 1, maximumQueued: 0)
        #expect(await limiter.acquire() == .acquired)
        #expect(await limiter.acquire() == .busy)
        limiter.release()
        #expect(await limiter.acquire() == .acquired)
        limiter.release()
        #expect(limiter.usage.active == 0)
    }

    @Test func waitersGetTheSlotInOrder() async {
        let limiter = ConcurrencyLimiter(maximumConcurrent: 1, maximumQueued: 2)
        #expect(await limiter.acquire() == .acquired)
        let first = Task { await limiter.acquire() }
        while limiter.usage.queued < 1 { await Task.yield() }
        let second = Task { await limiter.acquire() }
        while limiter.usage.queued < 2 { await Task.yield() }
        #expect(await limiter.acquire() == .busy)
        limiter.release()
        #expect(await first.value == .acquired)
        limiter.release()
        #expect(await second.value == .acquired)
        limiter.release()
        #expect(limiter.usage.active == 0 && limiter.usage.queued == 0)
    }

    @Test func aCancelledWaiterLeavesTheQueue() async {
        let limiter = ConcurrencyLimiter(maximumConcurrent: 1, maximumQueued: 1)
        #expect(await limiter.acquire() == .acquired)
        let waiter = Task { await limiter.acquire() }
        while limiter.usage.queued < 1 { await Task.yield() }
        waiter.cancel()
        #expect(await waiter.value == .cancelled)
        #expect(limiter.usage.queued == 0)
        limiter.release()
        #expect(limiter.usage.active == 0)
    }
}

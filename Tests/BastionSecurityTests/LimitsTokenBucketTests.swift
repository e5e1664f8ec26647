import BastionSecurity
import Testing

@Suite struct LimitsTokenBucketTests {
    let t0 = MonotonicInstant.origin

    @Test func allowsTheBurstThenRefusesUntilRefilled() {
        var bucket = TokenBucket(capacity: 3, now: t0)
        for _ in 0..<3 { #expect(bucket.take(rate: 1, capacity: 3, now: t0)) }
        #expect(!bucket.take(rate: 1, capacity: 3, now: t0))
        #expect(!bucket.take(rate: 1, capacity: 3, now: t0 + .milliseconds(900)))
        #expect(bucket.take(rate: 1, capacity: 3, now: t0 + .seconds(1)))
    }

    @Test func refillNeverExceedsCapacity() {
        var bucket = TokenBucket(capacity: 2, now: t0)
        #expect(bucket.take(2, rate: 1, capacity: 2, now: t0))
        let later = t0 + .seconds(100)
        #expect(bucket.take(2, rate: 1, capacity: 2, now: later))
        #expect(!bucket.take(1, rate: 1, capacity: 2, now: later))
    }

    @Test func borrowReportsTheTimeToRepayTheDebt() {
        var bucket = TokenBucket(capacity: 10, now: t0)
        #expect(bucket.borrow(10, rate: 5, capacity: 10, now: t0) == .zero)
        // 10 tokens short at 5/s: two seconds.
        #expect(bucket.borrow(10, rate: 5, capacity: 10, now: t0) == .seconds(2))
        #expect(bucket.isFull(rate: 5, capacity: 10, now: t0 + .seconds(4)))
        #expect(!bucket.isFull(rate: 5, capacity: 10, now: t0 + .seconds(3)))
    }

    @Test func loweredCapacityAppliesAtOnce() {
        var bucket = TokenBucket(capacity: 100, now: t0)
        #expect(bucket.take(5, rate: 1, capacity: 5, now: t0))
        #expect(!bucket.take(1, rate: 1, capacity: 5, now: t0))
    }
}

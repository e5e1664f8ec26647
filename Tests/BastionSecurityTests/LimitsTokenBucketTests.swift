import BastionSecurity
import Testing

@Suite struct LimitsTokenBucketTests {
    let t0 = MonotonicInstant.origin

    /// Takes from the bucket (outside `#expect`, which cannot mutate its argument).
    func take(_ bucket: inout TokenBucket, _ cost: Double = 1, rate: Double, capacity: Double, at now: MonotonicInstant) -> Bool {
        bucket.take(cost, rate: rate, capacity: capacity, now: now)
    }

    @Test func allowsTheBurstThenRefusesUntilRefilled() {
        var bucket = TokenBucket(capacity: 3, now: t0)
        var results: [Bool] = []
        for _ in 0..<4 { results.append(take(&bucket, rate: 1, capacity: 3, at: t0)) }
        results.append(take(&bucket, rate: 1, capacity: 3, at: t0 + .milliseconds(900)))
        results.append(take(&bucket, rate: 1, capacity: 3, at: t0 + .seconds(1)))
        #expect(results == [true, true, true, false, false, true])
    }

    @Test func refillNeverExceedsCapacity() {
        var bucket = TokenBucket(capacity: 2, now: t0)
        let later = t0 + .seconds(100)
        let results = [
            take(&bucket, 2, rate: 1, capacity: 2, at: t0),
            take(&bucket, 2, rate: 1, capacity: 2, at: later),
            take(&bucket, 1, rate: 1, capacity: 2, at: later),
        ]
        #expect(results == [true, true, false])
    }

    @Test func borrowReportsTheTimeToRepayTheDebt() {
        var bucket = TokenBucket(capacity: 10, now: t0)
        let first = bucket.borrow(10, rate: 5, capacity: 10, now: t0)
        // 10 tokens short at 5/s: two seconds.
        let second = bucket.borrow(10, rate: 5, capacity: 10, now: t0)
        #expect(first == .zero)
        #expect(second == .seconds(2))
        #expect(bucket.isFull(rate: 5, capacity: 10, now: t0 + .seconds(4)))
        #expect(!bucket.isFull(rate: 5, capacity: 10, now: t0 + .seconds(3)))
    }

    @Test func loweredCapacityAppliesAtOnce() {
        var bucket = TokenBucket(capacity: 100, now: t0)
        let results = [take(&bucket, 5, rate: 1, capacity: 5, at: t0), take(&bucket, 1, rate: 1, capacity: 5, at: t0)]
        #expect(results == [true, false])
    }
}

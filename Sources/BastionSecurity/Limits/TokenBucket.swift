/// A token bucket: `capacity` tokens at most, refilled at `rate` tokens per second. Rate and
/// capacity are passed on every call so a configuration reload applies at once. Pure value.
public struct TokenBucket: Sendable, Equatable {
    public private(set) var tokens: Double
    public private(set) var updated: MonotonicInstant

    /// A full bucket.
    public init(capacity: Double, now: MonotonicInstant) {
        tokens = capacity
        updated = now
    }

    private mutating func refill(rate: Double, capacity: Double, now: MonotonicInstant) {
        if now > updated {
            tokens = min(capacity, tokens + (now - updated).seconds * rate)
            updated = now
        }
        // A capacity lowered by a reload takes effect immediately.
        tokens = min(tokens, capacity)
    }

    /// Takes `cost` tokens if that many are available.
    public mutating func take(_ cost: Double = 1, rate: Double, capacity: Double, now: MonotonicInstant) -> Bool {
        refill(rate: rate, capacity: capacity, now: now)
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }

    /// Takes `cost` tokens even if that leaves the bucket in debt; returns how long until the debt
    /// is repaid (zero when none). Used for backpressure: the work is already done, the caller
    /// pauses for the returned time.
    public mutating func borrow(_ cost: Double, rate: Double, capacity: Double, now: MonotonicInstant) -> Duration {
        refill(rate: rate, capacity: capacity, now: now)
        tokens -= cost
        guard tokens < 0, rate > 0 else { return .zero }
        return .clampedSeconds(-tokens / rate)
    }

    /// True when the bucket would be full at `now`: it then carries no state worth keeping.
    public func isFull(rate: Double, capacity: Double, now: MonotonicInstant) -> Bool {
        let elapsed = now > updated ? (now - updated).seconds : 0
        return tokens + elapsed * rate >= capacity
    }
}

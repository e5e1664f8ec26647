/// A token bucket over bytes (`max_bytes_per_second`): a link over a satellite or radio must
/// not be filled faster than it drains. The bucket holds one second of budget, so a burst after a
/// quiet spell is still bounded.
public struct ByteRateLimiter: Sendable {
    public let bytesPerSecond: Int
    private var tokens: Double
    private var updatedAtNanoseconds: UInt64

    public init(bytesPerSecond: Int, nowNanoseconds: UInt64) {
        self.bytesPerSecond = max(1, bytesPerSecond)
        self.tokens = Double(self.bytesPerSecond)
        self.updatedAtNanoseconds = nowNanoseconds
    }

    /// Takes `bytes` if the budget allows. A message larger than a second's budget passes once the
    /// bucket is full, so it is slowed rather than blocked forever.
    public mutating func take(_ bytes: Int, nowNanoseconds: UInt64) -> Bool {
        refill(nowNanoseconds)
        let needed = min(Double(bytes), Double(bytesPerSecond))
        guard tokens >= needed else { return false }
        tokens -= Double(bytes)
        return true
    }

    /// Nanoseconds until `bytes` could be taken.
    public mutating func wait(for bytes: Int, nowNanoseconds: UInt64) -> UInt64 {
        refill(nowNanoseconds)
        let missing = min(Double(bytes), Double(bytesPerSecond)) - tokens
        guard missing > 0 else { return 0 }
        return UInt64(missing / Double(bytesPerSecond) * 1e9) + 1
    }

    private mutating func refill(_ now: UInt64) {
        guard now > updatedAtNanoseconds else { return }
        let elapsed = Double(now - updatedAtNanoseconds) / 1e9
        tokens = min(Double(bytesPerSecond), tokens + elapsed * Double(bytesPerSecond))
        updatedAtNanoseconds = now
    }
}

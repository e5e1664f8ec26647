/// Per-client publish rate limits (0 or nil: unlimited).
public struct PublishRatePolicy: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        /// Stop reading the client's socket until it is back under the rate (default).
        case backpressure
        /// MQTT 5.0: DISCONNECT 0x96 (message rate too high); 3.1.1: close.
        case disconnect
    }

    public var messagesPerSecond: Double?
    public var bytesPerSecond: Double?
    /// Seconds of rate a client may send at once (bucket size = rate × burst).
    public var burstSeconds: Double = 1
    /// The bytes bucket holds at least this much so one maximum-size packet can pass.
    public var minimumByteCapacity: Double = 256 * 1024
    public var action: Action = .backpressure

    public init() {}

    public var isUnlimited: Bool { (messagesPerSecond ?? 0) <= 0 && (bytesPerSecond ?? 0) <= 0 }

    var messageCapacity: Double { max(1, (messagesPerSecond ?? 0) * max(burstSeconds, 0.001)) }
    var byteCapacity: Double { max(minimumByteCapacity, (bytesPerSecond ?? 0) * max(burstSeconds, 0.001)) }
}

public enum PublishRateDecision: Sendable, Hashable {
    case ok
    /// Backpressure: the message is accepted; stop reading for this long, then resume.
    case throttle(resumeAfter: Duration)
    /// Disconnect policy: the client is over its rate; the message must not be processed.
    case exceeded
}

/// Messages-per-second and bytes-per-second buckets for one connection. Used on the connection's
/// event loop only (a value type owned by the handler); time is passed in.
public struct PublishRateLimiter: Sendable {
    public var policy: PublishRatePolicy
    private var messages: TokenBucket
    private var bytes: TokenBucket

    public init(policy: PublishRatePolicy, now: MonotonicInstant) {
        self.policy = policy
        messages = TokenBucket(capacity: policy.messageCapacity, now: now)
        bytes = TokenBucket(capacity: policy.byteCapacity, now: now)
    }

    /// Accounts one inbound PUBLISH of `size` bytes (the whole packet).
    public mutating func consume(bytes size: Int, now: MonotonicInstant) -> PublishRateDecision {
        guard !policy.isUnlimited else { return .ok }
        let messageRate = policy.messagesPerSecond ?? 0
        let byteRate = policy.bytesPerSecond ?? 0
        let cost = Double(max(0, size))
        switch policy.action {
        case .disconnect:
            // Check both before taking from either, so a refused message costs nothing.
            var m = messages
            var b = bytes
            if messageRate > 0, !m.take(1, rate: messageRate, capacity: policy.messageCapacity, now: now) { return .exceeded }
            if byteRate > 0, !b.take(cost, rate: byteRate, capacity: policy.byteCapacity, now: now) { return .exceeded }
            messages = m
            bytes = b
            return .ok
        case .backpressure:
            var wait = Duration.zero
            if messageRate > 0 {
                wait = max(wait, messages.borrow(1, rate: messageRate, capacity: policy.messageCapacity, now: now))
            }
            if byteRate > 0 {
                wait = max(wait, bytes.borrow(cost, rate: byteRate, capacity: policy.byteCapacity, now: now))
            }
            return wait > .zero ? .throttle(resumeAfter: wait) : .ok
        }
    }
}

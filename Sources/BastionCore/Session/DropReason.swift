/// Why a message accepted from a publisher did not reach a subscriber. Counted per reason in
/// `/metrics` (`bastion_messages_dropped_total{reason}`) and `$SYS/broker/publish/messages/dropped/REASON`.
public enum DropReason: Int, Sendable, Hashable, CaseIterable {
    /// The session's queue was at `max_queued_messages` / `max_queued_bytes` (with
    /// `drop_oldest`, the oldest queued message made room and is the one dropped).
    case queueFull
    /// QoS 0 to a subscriber whose socket is not writable (it does not keep up).
    case slowConsumer
    /// The Message Expiry Interval passed before delivery.
    case expired
    /// Larger than the subscriber's Maximum Packet Size.
    case tooLarge
    /// QoS 0 to an offline persistent session (QoS 0 is not queued).
    case offline

    public var name: String {
        switch self {
        case .queueFull: "queue_full"
        case .slowConsumer: "slow_consumer"
        case .expired: "expired"
        case .tooLarge: "too_large"
        case .offline: "offline_qos0"
        }
    }
}

import MQTTCodec

/// Protocol limits the session logic enforces. Resolved from the configuration file.
public struct BrokerLimits: Sendable, Hashable {
    public enum QueueDropPolicy: String, Sendable, Hashable {
        /// A message that does not fit is dropped; queued messages stay.
        case dropNewest = "drop_newest"
        /// The oldest queued message makes room for the new one.
        case dropOldest = "drop_oldest"
    }

    public var maximumPacketSize: Int = 256 * 1024
    /// Receive Maximum advertised to 5.0 clients, and the outgoing window cap for every client.
    public var maximumInflight: Int = 32
    public var maximumQueuedMessages: Int = 1000
    public var maximumQueuedBytes: Int = 64 * 1024 * 1024
    public var queueDropPolicy: QueueDropPolicy = .dropNewest
    public var maximumTopicAlias: Int = 10
    /// Outgoing topic aliases the server assigns at most per connection.
    public var maximumOutgoingTopicAliases: Int = 64
    public var maximumKeepAlive: Int = 65535
    /// Upper bound on a client's requested session expiry (nil: unbounded, 0xFFFFFFFF allowed).
    public var maximumSessionExpiry: UInt32? = nil
    public var maximumSubscriptionsPerClient: Int = 1000
    /// Longest topic filter a SUBSCRIBE may use (5.0 0x8F: correctly formed, not accepted here).
    public var maximumFilterLength: Int = 4096
    /// Bytes of topic filters one session may hold, so the subscription index — kept once per event
    /// loop — is bounded per client by bytes as well as by count.
    public var maximumSubscriptionBytesPerClient: Int = 1024 * 1024
    public var maximumTopicLength: Int = 65535
    public var maximumTopicLevels: Int = 128
    public var maximumRetainedMessages: Int = 100_000
    public var maximumRetainedBytes: Int = 256 * 1024 * 1024
    /// One publishing identity's share of the retained budget (nil: a quarter of the broker's), so
    /// one account filling it does not refuse every other identity's retained messages.
    public var maximumRetainedMessagesPerIdentity: Int?
    public var maximumRetainedBytesPerIdentity: Int?
    public var retainedMessagesPerIdentity: Int { maximumRetainedMessagesPerIdentity ?? max(1, maximumRetainedMessages / 4) }
    public var retainedBytesPerIdentity: Int { maximumRetainedBytesPerIdentity ?? max(1, maximumRetainedBytes / 4) }
    /// Largest first packet before authentication: room for credentials, a JWT and a modest will,
    /// so an unauthenticated socket cannot make the broker buffer `maximumPacketSize`.
    public var maximumConnectPacketSize: Int = 16 * 1024
    /// Slowest a CONNECT may arrive once its first byte is in (after `connectGrace`), so a
    /// trickled CONNECT does not hold its buffer for the whole connect timeout.
    public var connectMinimumBytesPerSecond: Int = 1024
    public var connectGrace: Duration = .seconds(2)
    public var maximumUsernameLength: Int = 256
    /// A connection that stays unwritable (its client does not read) this long is closed.
    public var writeStallTimeout: Duration = .seconds(60)

    public init() {}

    public var decoderLimits: DecoderLimits {
        DecoderLimits(maximumPacketSize: maximumPacketSize, maximumTopicLength: maximumTopicLength, maximumTopicLevels: maximumTopicLevels)
    }

    /// The decoder limits before CONNECT: the first packet is capped at `maximumConnectPacketSize`.
    public var connectDecoderLimits: DecoderLimits {
        var limits = decoderLimits
        limits.maximumPacketSize = min(maximumPacketSize, maximumConnectPacketSize)
        return limits
    }
}

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
    public var maximumTopicLength: Int = 65535
    public var maximumTopicLevels: Int = 128
    public var maximumRetainedMessages: Int = 100_000
    public var maximumRetainedBytes: Int = 256 * 1024 * 1024

    public init() {}

    public var decoderLimits: DecoderLimits {
        DecoderLimits(maximumPacketSize: maximumPacketSize, maximumTopicLength: maximumTopicLength, maximumTopicLevels: maximumTopicLevels)
    }
}

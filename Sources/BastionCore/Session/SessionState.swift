import MQTTCodec
import NIOCore

/// Everything that outlives a network connection for a persistent session (spec 4.1): the
/// subscriptions, QoS 1/2 messages in flight or queued towards the client, and QoS 2 packet ids
/// received from it but not yet released. It moves between the connection that owns it and the
/// offline slot of its `SessionHandle`.
public struct SessionState: Sendable {
    public let clientID: String
    public var subscriptions: [String: Subscription] = [:]
    /// Seconds; 0 ends the session with the connection, 0xFFFFFFFF never expires.
    public var expiryInterval: UInt32
    public var outbound = OutboundFlow()
    /// Inbound QoS 2: PUBREC sent, PUBREL not yet received — a repeated PUBLISH with one of these
    /// ids is not forwarded again (spec 4.3.3).
    public var inboundQoS2: Set<UInt16> = []

    public static let neverExpires: UInt32 = 0xFFFF_FFFF

    public init(clientID: String, expiryInterval: UInt32) {
        self.clientID = clientID
        self.expiryInterval = expiryInterval
    }

    /// When an offline session stops existing, or nil for never.
    public func expiryDeadline(from disconnectedAt: NIODeadline) -> NIODeadline? {
        expiryInterval == Self.neverExpires ? nil : disconnectedAt + .seconds(Int64(expiryInterval))
    }
}

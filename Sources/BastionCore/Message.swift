import MQTTCodec
import NIOCore

/// An application message as the broker routes it: decoded once from the publisher's PUBLISH and
/// shared, by reference, by every queue and subscriber it reaches. The payload is a slice of the
/// bytes it arrived in; nothing here is copied per subscriber.
public final class Message: Sendable {
    /// Unique across restarts; the durable store refers to the message by it.
    public let id: MessageID
    public let topic: String
    public let payload: ByteBuffer
    /// QoS the publisher used; each subscriber receives min(this, its granted QoS).
    public let qos: QoS
    public let retain: Bool
    /// Properties forwarded to subscribers (topic alias and subscription identifiers removed).
    public let properties: PublishProperties
    /// For No Local and for the audit trail.
    public let publisherClientID: String
    /// When the message stops being deliverable (5.0 Message Expiry Interval).
    public let expiresAt: NIODeadline?

    public init(
        id: MessageID = 0, topic: String, payload: ByteBuffer, qos: QoS, retain: Bool, properties: PublishProperties = .init(),
        publisherClientID: String, expiresAt: NIODeadline? = nil
    ) {
        self.id = id
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.publisherClientID = publisherClientID
        self.expiresAt = expiresAt
    }

    /// Builds the routed message from a client's PUBLISH whose topic alias has been resolved.
    public convenience init(id: MessageID, publish: PublishPacket, topic: String, publisherClientID: String, now: NIODeadline) {
        var properties = publish.properties
        properties.topicAlias = nil
        let expiresAt = properties.messageExpiryInterval.map { now + .seconds(Int64($0)) }
        self.init(
            id: id, topic: topic, payload: publish.payload, qos: publish.qos, retain: publish.retain,
            properties: properties, publisherClientID: publisherClientID, expiresAt: expiresAt)
    }

    public func isExpired(at now: NIODeadline) -> Bool {
        guard let expiresAt else { return false }
        return now >= expiresAt
    }

    /// Whole seconds left, rounded up, for the Message Expiry Interval sent onwards (spec 3.3.2.3.3).
    public func remainingLifetime(at now: NIODeadline) -> UInt32? {
        guard let expiresAt else { return nil }
        let nanos = (expiresAt - now).nanoseconds
        guard nanos > 0 else { return 0 }
        return UInt32(clamping: (nanos + 999_999_999) / 1_000_000_000)
    }

    /// The same message with a different retain flag (retained copies are stored with retain=1;
    /// a live copy of a retained publish is forwarded per Retain As Published).
    public func withRetain(_ retain: Bool) -> Message {
        guard retain != self.retain else { return self }
        return Message(id: id, topic: topic, payload: payload, qos: qos, retain: retain, properties: properties,
                       publisherClientID: publisherClientID, expiresAt: expiresAt)
    }
}

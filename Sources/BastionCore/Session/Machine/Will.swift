import MQTTCodec
import NIOCore

/// The will of a connection (spec 3.1.2.5, 3.1.3.2): when the connection ends without a normal
/// DISCONNECT it is published at once, or after its delay unless the client reconnects first, and
/// at the latest when the session ends. It is checked against the publisher's grant like any
/// PUBLISH — when published, so a reload that revoked the topic in between still applies.
public enum Will {
    public enum Plan: Sendable {
        case none
        case publishNow(Message)
        case publishAt(Message, NIODeadline)
    }

    static func plan(
        _ will: ConnectPacket.Will?, version: ProtocolVersion, sessionExpiry: UInt32, suppressed: Bool, publisher: String,
        messageID: () -> MessageID, now: NIODeadline
    ) -> Plan {
        guard let will else { return .none }
        let delay = version == .v5 ? will.properties.willDelayInterval ?? 0 : 0
        switch WillDecision.onConnectionEnd(hasWill: true, willDelay: delay, sessionExpiry: sessionExpiry, normalDisconnect: suppressed) {
        case .discard: return .none
        case .publishNow: return .publishNow(message(will, publisher: publisher, id: messageID(), now: now))
        case .publishAfter(let seconds):
            return .publishAt(message(will, publisher: publisher, id: messageID(), now: now), now + .seconds(Int64(seconds)))
        }
    }

    /// The will as an application message from `publisher`.
    public static func message(_ will: ConnectPacket.Will, publisher: String, id: MessageID, now: NIODeadline) -> Message {
        var properties = PublishProperties()
        properties.payloadFormatIndicator = will.properties.payloadFormatIndicator
        properties.messageExpiryInterval = will.properties.messageExpiryInterval
        properties.contentType = will.properties.contentType
        properties.responseTopic = will.properties.responseTopic
        properties.correlationData = will.properties.correlationData
        properties.userProperties = will.properties.userProperties
        return Message(
            id: id, topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: properties,
            publisherClientID: publisher, expiresAt: properties.messageExpiryInterval.map { now + .seconds(Int64($0)) })
    }
}

import MQTTCodec
import NIOCore

/// Turns a delivery into the PUBLISH this client receives: topic alias, remaining expiry,
/// subscription identifiers, and the client's Maximum Packet Size (spec 3.3.2.3.4, 3.1.2.11.4).
public struct OutboundPublishEncoder: Sendable {
    public let version: ProtocolVersion
    public let maximumPacketSize: Int
    public let aliasLimit: Int
    private var aliases: [String: UInt16] = [:]

    public init(version: ProtocolVersion, client: ClientCapabilities, serverAliasLimit: Int) {
        self.version = version
        self.maximumPacketSize = client.maximumPacketSize
        self.aliasLimit = version == .v5 ? min(client.topicAliasMaximum, serverAliasLimit) : 0
    }

    /// The packet, or nil when it would exceed the client's Maximum Packet Size: the server must
    /// then discard it as if delivered (spec 3.1.2.11.4).
    public mutating func packet(
        for delivery: Delivery, packetID: UInt16, dup: Bool, now: NIODeadline
    ) -> PublishPacket? {
        let message = delivery.message
        var packet = PublishPacket(
            topic: message.topic, payload: message.payload, qos: delivery.qos, retain: delivery.retain, dup: dup,
            packetID: delivery.qos == .atMostOnce ? 0 : packetID)
        if version == .v5 {
            packet.properties = message.properties
            packet.properties.subscriptionIdentifiers = delivery.subscriptionIdentifiers
            if message.expiresAt != nil { packet.properties.messageExpiryInterval = message.remainingLifetime(at: now) }
        }
        guard packet.encodedSize(version: version) <= maximumPacketSize else { return nil }
        if aliasLimit > 0 {
            if let alias = aliases[message.topic] {
                packet.topic = ""
                packet.properties.topicAlias = alias
            } else if aliases.count < aliasLimit {
                let alias = UInt16(aliases.count + 1)
                packet.properties.topicAlias = alias
                // Only remember the alias if the packet (now 3 bytes longer) still fits.
                if packet.encodedSize(version: version) <= maximumPacketSize {
                    aliases[message.topic] = alias
                } else {
                    packet.properties.topicAlias = nil
                }
            }
        }
        return packet
    }
}

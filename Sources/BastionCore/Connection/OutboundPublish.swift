import MQTTCodec
import NIOCore

/// Turns a delivery into the PUBLISH this client receives: topic alias, remaining expiry,
/// subscription identifiers, and the client's Maximum Packet Size (spec 3.3.2.3.4, 3.1.2.11.4).
/// It writes only the header; the caller sends the shared payload buffer after it.
public struct OutboundPublishEncoder: Sendable {
    private var aliases: [String: UInt16] = [:]
    // Narrow storage: one of these lives in every connection.
    private let packetSizeLimit: UInt32
    private let aliasCount: UInt16
    public let version: ProtocolVersion

    public var maximumPacketSize: Int { Int(packetSizeLimit) }
    public var aliasLimit: Int { Int(aliasCount) }

    public init(version: ProtocolVersion, client: ClientCapabilities, serverAliasLimit: Int) {
        self.version = version
        self.packetSizeLimit = UInt32(clamping: client.maximumPacketSize)
        self.aliasCount = UInt16(clamping: version == .v5 ? min(client.topicAliasMaximum, serverAliasLimit) : 0)
    }

    /// Appends the PUBLISH header (everything before the payload) to `out`. Returns false, writing
    /// nothing, when the packet would exceed the client's Maximum Packet Size: the server must
    /// then discard it as if delivered (spec 3.1.2.11.4).
    public mutating func writeHeader(for delivery: Delivery, packetID: UInt16, dup: Bool, now: NIODeadline, into out: inout ByteBuffer) -> Bool {
        let message = delivery.message
        let qos = delivery.qos
        // Properties are built only when there is something to say; the common case writes one 0.
        var properties: PublishProperties?
        if version == .v5, !message.properties.isEmpty || !delivery.subscriptionIdentifiers.isEmpty || message.expiresAt != nil {
            var p = message.properties
            p.subscriptionIdentifiers = delivery.subscriptionIdentifiers
            if message.expiresAt != nil { p.messageExpiryInterval = message.remainingLifetime(at: now) }
            properties = p
        }
        var topicBytes = message.topic.utf8.count
        var alias: UInt16?
        var newAlias = false
        if aliasLimit > 0 {
            if let known = aliases[message.topic] {
                alias = known
                topicBytes = 0
            } else if aliases.count < aliasLimit {
                alias = UInt16(aliases.count + 1)
                newAlias = true
            }
        }
        func size(_ topicBytes: Int, _ alias: UInt16?) -> (total: Int, remaining: Int, properties: Int) {
            var propertiesSize = properties?.encodedSize ?? 0
            if alias != nil { propertiesSize += 3 }
            var remaining = 2 + topicBytes + message.payload.readableBytes + (qos == .atMostOnce ? 0 : 2)
            if version == .v5 { remaining += VariableByteInteger.size(of: propertiesSize) + propertiesSize }
            return (1 + VariableByteInteger.size(of: remaining) + remaining, remaining, propertiesSize)
        }
        var sizes = size(topicBytes, alias)
        if sizes.total > maximumPacketSize, newAlias {
            // Assigning a new alias costs 3 bytes; without it the packet may still fit.
            alias = nil
            newAlias = false
            sizes = size(topicBytes, nil)
        }
        guard sizes.total <= maximumPacketSize else { return false }
        if newAlias, let alias { aliases[message.topic] = alias }

        let flags: UInt8 = (dup ? 0x08 : 0) | (qos.rawValue << 1) | (delivery.retain ? 0x01 : 0)
        out.writeInteger(PacketType.publish.rawValue << 4 | flags)
        VariableByteInteger.write(sizes.remaining, to: &out)
        out.writeInteger(UInt16(truncatingIfNeeded: topicBytes), endianness: .big)
        if topicBytes > 0 { out.writeString(message.topic) }
        if qos != .atMostOnce { out.writeInteger(packetID, endianness: .big) }
        if version == .v5 {
            VariableByteInteger.write(sizes.properties, to: &out)
            properties?.writeProperties(to: &out)
            if let alias {
                out.writeInteger(PropertyID.topicAlias.rawValue)
                out.writeInteger(alias, endianness: .big)
            }
        }
        return true
    }

    /// Bytes `writeHeader` needs at most for `delivery` (for sizing the buffer).
    public func headerCapacity(for delivery: Delivery) -> Int {
        var capacity = 16 + delivery.message.topic.utf8.count
        if version == .v5 {
            capacity += delivery.message.properties.encodedSize + 5 * delivery.subscriptionIdentifiers.count + 16
        }
        return capacity
    }
}

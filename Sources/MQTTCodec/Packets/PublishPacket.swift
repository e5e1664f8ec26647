import NIOCore

public struct PublishPacket: Sendable, Hashable {
    /// Empty only in a 5.0 PUBLISH that names its topic by alias.
    public var topic: String
    /// A slice of the bytes the packet arrived in: forwarding shares it, never copies it.
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    public var dup: Bool
    /// 0 for QoS 0.
    public var packetID: UInt16
    public var properties: PublishProperties

    public init(
        topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false, dup: Bool = false,
        packetID: UInt16 = 0, properties: PublishProperties = .init()
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packetID = packetID
        self.properties = properties
    }

    static func decode(
        flags: UInt8, from buffer: inout ByteBuffer, version: ProtocolVersion, sender: MQTTPacketDecoder.Sender?, limits: DecoderLimits
    ) throws(MQTTDecodeError) -> PublishPacket {
        guard let qos = QoS(rawValue: (flags >> 1) & 0x03) else { throw .malformedPacket("PUBLISH with QoS 3") }
        let dup = flags & 0x08 != 0
        if qos == .atMostOnce && dup { throw .malformedPacket("DUP flag set on a QoS 0 PUBLISH") }
        let topic = try buffer.readMQTTString("topic name")
        if !(topic.isEmpty && version == .v5) {
            // 5.0 allows an empty topic when a topic alias names it; the session checks the alias.
            try TopicRules.validateName(topic, limits: limits)
        }
        var packetID: UInt16 = 0
        if qos != .atMostOnce {
            packetID = try buffer.readMQTTUInt16("packet identifier")
            guard packetID != 0 else { throw .protocolError("packet identifier 0") }
        }
        var properties = PublishProperties()
        if version == .v5 {
            properties = try PublishProperties.decode(from: &buffer)
            // [MQTT-3.3.4-6] Only a server's PUBLISH carries subscription identifiers.
            if sender == .client && !properties.subscriptionIdentifiers.isEmpty {
                throw .protocolError("subscription identifier in a client PUBLISH")
            }
            if topic.isEmpty && properties.topicAlias == nil {
                throw .protocolError("empty topic name without a topic alias")
            }
        }
        let payload = buffer.slice()
        buffer.moveReaderIndex(forwardBy: payload.readableBytes)
        return PublishPacket(topic: topic, payload: payload, qos: qos, retain: flags & 0x01 != 0, dup: dup, packetID: packetID, properties: properties)
    }

    var fixedHeaderFlags: UInt8 {
        (dup ? 0x08 : 0) | (qos.rawValue << 1) | (retain ? 0x01 : 0)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        var size = MQTTString.encodedSize(topic) + payload.readableBytes
        if qos != .atMostOnce { size += 2 }
        if version == .v5 { size += properties.sectionSize }
        return size
    }

    /// Size of the whole packet on the wire, fixed header included.
    public func encodedSize(version: ProtocolVersion) -> Int {
        let remaining = remainingLength(version: version)
        return 1 + VariableByteInteger.size(of: remaining) + remaining
    }

    /// Writes everything but the payload, so fan-out can send one shared payload buffer after a
    /// per-subscriber header.
    public func writeHeader(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(PacketType.publish.rawValue << 4 | fixedHeaderFlags)
        VariableByteInteger.write(remainingLength(version: version), to: &out)
        out.writeMQTTString(topic)
        if qos != .atMostOnce { out.writeInteger(packetID, endianness: .big) }
        if version == .v5 { properties.writeSection(to: &out) }
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeMQTTString(topic)
        if qos != .atMostOnce { out.writeInteger(packetID, endianness: .big) }
        if version == .v5 { properties.writeSection(to: &out) }
        var payload = payload
        out.writeBuffer(&payload)
    }
}

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
        flags: UInt8, from buffer: inout ByteBuffer, version: ProtocolVersion, sender: MQTTPacketDecoder.Sender?, limits: DecoderLimits,
        topics: inout TopicNameReader
    ) throws(MQTTDecodeError) -> PublishPacket {
        guard let qos = QoS(rawValue: (flags >> 1) & 0x03) else { throw .malformedPacket("PUBLISH with QoS 3") }
        let dup = flags & 0x08 != 0
        if qos == .atMostOnce && dup { throw .malformedPacket("DUP flag set on a QoS 0 PUBLISH") }
        // 5.0 allows an empty topic when a topic alias names it; the session checks the alias.
        let topic = try topics.read(from: &buffer, limits: limits, allowEmpty: version == .v5)
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

public struct PublishProperties: MQTTProperties {
    public var payloadFormatIndicator: UInt8?
    public var messageExpiryInterval: UInt32?
    public var topicAlias: UInt16?
    public var responseTopic: String?
    public var correlationData: ByteBuffer?
    public var userProperties: [UserProperty] = []
    /// Only in server-to-client PUBLISH: one per matching subscription that carries an identifier.
    public var subscriptionIdentifiers: [UInt32] = []
    public var contentType: String?

    public init() {}

    /// Reads a property section as written by `writeSection` (used by the durable store).
    public init(decodingSectionFrom buffer: inout ByteBuffer) throws(MQTTDecodeError) {
        self = try Self.decode(from: &buffer)
    }

    public var isEmpty: Bool {
        payloadFormatIndicator == nil && messageExpiryInterval == nil && topicAlias == nil && responseTopic == nil
            && correlationData == nil && userProperties.isEmpty && subscriptionIdentifiers.isEmpty && contentType == nil
    }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        // The common case: no properties at all.
        if buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0 {
            buffer.moveReaderIndex(forwardBy: 1)
            return p
        }
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .payloadFormatIndicator:
                p.payloadFormatIndicator = try PropertyReader.flag(&b, "payload format indicator") ? 1 : 0
            case .messageExpiryInterval: p.messageExpiryInterval = try PropertyReader.uint32(&b)
            case .topicAlias:
                let alias = try PropertyReader.uint16(&b)
                guard alias > 0 else { throw .topicAliasInvalid("topic alias of 0") }
                p.topicAlias = alias
            case .responseTopic:
                let topic = try PropertyReader.string(&b)
                try TopicRules.validateName(topic, limits: nil)
                p.responseTopic = topic
            case .correlationData: p.correlationData = try PropertyReader.binary(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            case .subscriptionIdentifier:
                let value = try VariableByteInteger.read(from: &b)
                guard value > 0 else { throw .protocolError("subscription identifier of 0") }
                p.subscriptionIdentifiers.append(UInt32(value))
            case .contentType: p.contentType = try PropertyReader.string(&b)
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        if isEmpty { return 0 }
        var w = PropertyWriter()
        w.countByte(payloadFormatIndicator)
        w.countUInt32(messageExpiryInterval)
        w.countUInt16(topicAlias)
        w.countString(responseTopic)
        w.countBinary(correlationData)
        w.countUser(userProperties)
        for id in subscriptionIdentifiers { w.countVarInt(id) }
        w.countString(contentType)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        if isEmpty { return }
        PropertyWriter.byte(.payloadFormatIndicator, payloadFormatIndicator, &out)
        PropertyWriter.uint32(.messageExpiryInterval, messageExpiryInterval, &out)
        PropertyWriter.uint16(.topicAlias, topicAlias, &out)
        PropertyWriter.string(.responseTopic, responseTopic, &out)
        PropertyWriter.binary(.correlationData, correlationData, &out)
        PropertyWriter.user(userProperties, &out)
        for id in subscriptionIdentifiers { PropertyWriter.varInt(.subscriptionIdentifier, id, &out) }
        PropertyWriter.string(.contentType, contentType, &out)
    }
}

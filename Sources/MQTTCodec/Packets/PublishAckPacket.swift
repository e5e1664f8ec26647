import NIOCore

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout (spec 3.4–3.7).
public struct PublishAckPacket: Sendable, Hashable {
    public var packetID: UInt16
    public var reasonCode: ReasonCode
    public var properties: AckProperties

    public init(packetID: UInt16, reasonCode: ReasonCode = .success, properties: AckProperties = .init()) {
        self.packetID = packetID
        self.reasonCode = reasonCode
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> PublishAckPacket {
        let packetID = try buffer.readMQTTUInt16("packet identifier")
        guard packetID != 0 else { throw .protocolError("packet identifier 0") }
        var packet = PublishAckPacket(packetID: packetID)
        if version == .v5 {
            // Remaining length 2 means success with no properties (spec 3.4.2.1).
            if buffer.readableBytes > 0 { packet.reasonCode = ReasonCode(rawValue: try buffer.readMQTTByte("reason code")) }
            if buffer.readableBytes > 0 { packet.properties = try AckProperties.decode(from: &buffer) }
        }
        guard buffer.readableBytes == 0 else { throw .malformedPacket("unexpected bytes after packet identifier") }
        return packet
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        guard version == .v5 else { return 2 }
        if properties.isEmpty { return reasonCode == .success ? 2 : 3 }
        return 3 + properties.sectionSize
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(packetID, endianness: .big)
        guard version == .v5 else { return }
        if properties.isEmpty {
            if reasonCode != .success { out.writeInteger(reasonCode.rawValue) }
        } else {
            out.writeInteger(reasonCode.rawValue)
            properties.writeSection(to: &out)
        }
    }
}

/// Reason string and user properties: everything PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and
/// UNSUBACK may carry.
public struct AckProperties: MQTTProperties {
    public var reasonString: String?
    public var userProperties: [UserProperty] = []

    public init(reasonString: String? = nil, userProperties: [UserProperty] = []) {
        self.reasonString = reasonString
        self.userProperties = userProperties
    }

    public var isEmpty: Bool { reasonString == nil && userProperties.isEmpty }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .reasonString: p.reasonString = try PropertyReader.string(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countString(reasonString)
        w.countUser(userProperties)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.string(.reasonString, reasonString, &out)
        PropertyWriter.user(userProperties, &out)
    }
}

import NIOCore

public struct DisconnectPacket: Sendable, Hashable {
    public var reasonCode: ReasonCode
    public var properties: DisconnectProperties

    public init(reasonCode: ReasonCode = .normalDisconnection, properties: DisconnectProperties = .init()) {
        self.reasonCode = reasonCode
        self.properties = properties
    }

    static func decode(
        from buffer: inout ByteBuffer, version: ProtocolVersion, sender: MQTTPacketDecoder.Sender?
    ) throws(MQTTDecodeError) -> DisconnectPacket {
        guard version == .v5 else {
            guard buffer.readableBytes == 0 else { throw .malformedPacket("DISCONNECT with a body") }
            return DisconnectPacket()
        }
        var packet = DisconnectPacket()
        if buffer.readableBytes > 0 { packet.reasonCode = ReasonCode(rawValue: try buffer.readMQTTByte("reason code")) }
        if buffer.readableBytes > 0 { packet.properties = try DisconnectProperties.decode(from: &buffer) }
        guard buffer.readableBytes == 0 else { throw .malformedPacket("unexpected bytes after DISCONNECT properties") }
        // [MQTT-3.14.2-2] The session expiry is the client's to change, never the server's.
        if sender == .server && packet.properties.sessionExpiryInterval != nil {
            throw .protocolError("session expiry interval in a server DISCONNECT")
        }
        return packet
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        guard version == .v5 else { return 0 }
        if properties.isEmpty { return reasonCode == .normalDisconnection ? 0 : 1 }
        return 1 + properties.sectionSize
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        guard version == .v5 else { return }
        if properties.isEmpty {
            if reasonCode != .normalDisconnection { out.writeInteger(reasonCode.rawValue) }
        } else {
            out.writeInteger(reasonCode.rawValue)
            properties.writeSection(to: &out)
        }
    }
}

public struct DisconnectProperties: MQTTProperties {
    public var sessionExpiryInterval: UInt32?
    public var reasonString: String?
    public var userProperties: [UserProperty] = []
    public var serverReference: String?

    public init(sessionExpiryInterval: UInt32? = nil, reasonString: String? = nil) {
        self.sessionExpiryInterval = sessionExpiryInterval
        self.reasonString = reasonString
    }

    public var isEmpty: Bool {
        sessionExpiryInterval == nil && reasonString == nil && userProperties.isEmpty && serverReference == nil
    }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .sessionExpiryInterval: p.sessionExpiryInterval = try PropertyReader.uint32(&b)
            case .reasonString: p.reasonString = try PropertyReader.string(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            case .serverReference: p.serverReference = try PropertyReader.string(&b)
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countUInt32(sessionExpiryInterval)
        w.countString(reasonString)
        w.countUser(userProperties)
        w.countString(serverReference)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.uint32(.sessionExpiryInterval, sessionExpiryInterval, &out)
        PropertyWriter.string(.reasonString, reasonString, &out)
        PropertyWriter.user(userProperties, &out)
        PropertyWriter.string(.serverReference, serverReference, &out)
    }
}

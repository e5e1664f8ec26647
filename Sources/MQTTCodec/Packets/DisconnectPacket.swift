import NIOCore

public struct DisconnectPacket: Sendable, Hashable {
    public var reasonCode: ReasonCode
    public var properties: DisconnectProperties

    public init(reasonCode: ReasonCode = .normalDisconnection, properties: DisconnectProperties = .init()) {
        self.reasonCode = reasonCode
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> DisconnectPacket {
        guard version == .v5 else {
            guard buffer.readableBytes == 0 else { throw .malformedPacket("DISCONNECT with a body") }
            return DisconnectPacket()
        }
        var packet = DisconnectPacket()
        if buffer.readableBytes > 0 { packet.reasonCode = ReasonCode(rawValue: try buffer.readMQTTByte("reason code")) }
        if buffer.readableBytes > 0 { packet.properties = try DisconnectProperties.decode(from: &buffer) }
        guard buffer.readableBytes == 0 else { throw .malformedPacket("unexpected bytes after DISCONNECT properties") }
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

public struct AuthPacket: Sendable, Hashable {
    public var reasonCode: ReasonCode
    public var properties: AuthProperties

    public init(reasonCode: ReasonCode = .success, properties: AuthProperties = .init()) {
        self.reasonCode = reasonCode
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> AuthPacket {
        var packet = AuthPacket()
        if buffer.readableBytes > 0 {
            let code = ReasonCode(rawValue: try buffer.readMQTTByte("reason code"))
            guard [.success, .continueAuthentication, .reAuthenticate].contains(code) else {
                throw .malformedPacket("AUTH reason code \(code)")
            }
            packet.reasonCode = code
        }
        if buffer.readableBytes > 0 { packet.properties = try AuthProperties.decode(from: &buffer) }
        guard buffer.readableBytes == 0 else { throw .malformedPacket("unexpected bytes after AUTH properties") }
        return packet
    }

    func remainingLength() -> Int {
        let props = properties.encodedSize
        if props == 0 && reasonCode == .success { return 0 }
        return 1 + properties.sectionSize
    }

    func writeBody(to out: inout ByteBuffer) {
        if properties.encodedSize == 0 && reasonCode == .success { return }
        out.writeInteger(reasonCode.rawValue)
        properties.writeSection(to: &out)
    }
}

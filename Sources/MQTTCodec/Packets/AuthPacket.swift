import NIOCore

public struct AuthPacket: Sendable, Hashable {
    public var reasonCode: ReasonCode
    public var properties: AuthProperties

    public init(reasonCode: ReasonCode = .success, properties: AuthProperties = .init()) {
        self.reasonCode = reasonCode
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> AuthPacket {
        var packet = AuthPacket()
        let shortForm = buffer.readableBytes == 0
        if buffer.readableBytes > 0 {
            let code = ReasonCode(rawValue: try buffer.readMQTTByte("reason code"))
            // [MQTT-3.15.2-1] Only the authenticate reason codes; a parsable packet breaking a rule
            // is a protocol error (spec 5.0 1.2).
            guard [.success, .continueAuthentication, .reAuthenticate].contains(code) else {
                throw .protocolError("AUTH reason code \(code)")
            }
            packet.reasonCode = code
        }
        if buffer.readableBytes > 0 { packet.properties = try AuthProperties.decode(from: &buffer) }
        guard buffer.readableBytes == 0 else { throw .malformedPacket("unexpected bytes after AUTH properties") }
        // Spec 5.0 3.15.2.2.2: "It is a Protocol Error to omit the Authentication Method". Only the
        // success short form (remaining length 0, spec 3.15.2.1) has no properties at all.
        if !shortForm && packet.properties.authenticationMethod == nil {
            throw .protocolError("AUTH without authentication method")
        }
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

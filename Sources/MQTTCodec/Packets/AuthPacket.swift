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

public struct AuthProperties: MQTTProperties {
    public var authenticationMethod: String?
    public var authenticationData: ByteBuffer?
    public var reasonString: String?
    public var userProperties: [UserProperty] = []

    public init() {}

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .authenticationMethod: p.authenticationMethod = try PropertyReader.string(&b)
            case .authenticationData: p.authenticationData = try PropertyReader.binary(&b)
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
        w.countString(authenticationMethod)
        w.countBinary(authenticationData)
        w.countString(reasonString)
        w.countUser(userProperties)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.string(.authenticationMethod, authenticationMethod, &out)
        PropertyWriter.binary(.authenticationData, authenticationData, &out)
        PropertyWriter.string(.reasonString, reasonString, &out)
        PropertyWriter.user(userProperties, &out)
    }
}

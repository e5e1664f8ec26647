import NIOCore

public struct ConnackPacket: Sendable, Hashable {
    /// Not on the wire for 3.1 clients: that byte is reserved there.
    public var sessionPresent: Bool
    /// 5.0 reason code; for 3.1/3.1.1 it is written as the nearest `ConnectReturnCode`.
    public var reasonCode: ReasonCode
    public var properties: ConnackProperties

    public init(sessionPresent: Bool = false, reasonCode: ReasonCode = .success, properties: ConnackProperties = .init()) {
        self.sessionPresent = sessionPresent
        self.reasonCode = reasonCode
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> ConnackPacket {
        var flags = try buffer.readMQTTByte("connack flags")
        // MQTT 3.1 has no flags here: the byte is "reserved, not used". Session Present came in 3.1.1.
        if version == .v3_1 { flags = 0 }
        guard flags & 0xFE == 0 else { throw .malformedPacket("CONNACK reserved flags set") }
        let code = try buffer.readMQTTByte("connect reason code")
        let reason: ReasonCode
        var properties = ConnackProperties()
        if version == .v5 {
            reason = ReasonCode(rawValue: code)
            properties = try ConnackProperties.decode(from: &buffer)
        } else {
            guard let rc = ConnectReturnCode(rawValue: code) else { throw .malformedPacket("unknown CONNACK return code \(code)") }
            reason = rc.reasonCode
        }
        guard buffer.readableBytes == 0 else { throw .malformedPacket("unexpected bytes after CONNACK") }
        return ConnackPacket(sessionPresent: flags & 1 == 1, reasonCode: reason, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        version == .v5 ? 2 + properties.sectionSize : 2
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(sessionPresent && version != .v3_1 ? 1 as UInt8 : 0)
        if version == .v5 {
            out.writeInteger(reasonCode.rawValue)
            properties.writeSection(to: &out)
        } else {
            out.writeInteger(ConnectReturnCode(reasonCode).rawValue)
        }
    }
}

extension ConnectReturnCode {
    var reasonCode: ReasonCode {
        switch self {
        case .accepted: .success
        case .unacceptableProtocolVersion: .unsupportedProtocolVersion
        case .identifierRejected: .clientIdentifierNotValid
        case .serverUnavailable: .serverUnavailable
        case .badUserNameOrPassword: .badUserNameOrPassword
        case .notAuthorized: .notAuthorized
        }
    }
}

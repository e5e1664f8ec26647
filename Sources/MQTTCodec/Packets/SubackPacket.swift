import NIOCore

public struct SubackPacket: Sendable, Hashable {
    public var packetID: UInt16
    /// Per filter: granted QoS (0x00–0x02) or a failure code (3.1.1 writes every failure as 0x80).
    public var reasonCodes: [ReasonCode]
    public var properties: AckProperties

    public init(packetID: UInt16, reasonCodes: [ReasonCode], properties: AckProperties = .init()) {
        self.packetID = packetID
        self.reasonCodes = reasonCodes
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> SubackPacket {
        let packetID = try buffer.readMQTTUInt16("packet identifier")
        guard packetID != 0 else { throw .protocolError("packet identifier 0") }
        let properties = version == .v5 ? try AckProperties.decode(from: &buffer) : AckProperties()
        var codes: [ReasonCode] = []
        while buffer.readableBytes > 0 {
            let code = try buffer.readMQTTByte("reason code")
            // [MQTT-3.9.3-2] Before 5.0 the only return codes are the granted QoS and 0x80.
            if version != .v5 && code > 0x02 && code != 0x80 {
                throw .malformedPacket("SUBACK return code 0x\(String(code, radix: 16))")
            }
            codes.append(ReasonCode(rawValue: code))
        }
        return SubackPacket(packetID: packetID, reasonCodes: codes, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        2 + (version == .v5 ? properties.sectionSize : 0) + reasonCodes.count
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(packetID, endianness: .big)
        if version == .v5 { properties.writeSection(to: &out) }
        for code in reasonCodes {
            out.writeInteger(version == .v5 || !code.isFailure ? code.rawValue : 0x80)
        }
    }
}

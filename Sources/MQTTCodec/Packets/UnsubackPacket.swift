import NIOCore

public struct UnsubackPacket: Sendable, Hashable {
    public var packetID: UInt16
    /// 5.0 only: one per filter. 3.1.1 UNSUBACK carries none.
    public var reasonCodes: [ReasonCode]
    public var properties: AckProperties

    public init(packetID: UInt16, reasonCodes: [ReasonCode] = [], properties: AckProperties = .init()) {
        self.packetID = packetID
        self.reasonCodes = reasonCodes
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> UnsubackPacket {
        let packetID = try buffer.readMQTTUInt16("packet identifier")
        guard packetID != 0 else { throw .protocolError("packet identifier 0") }
        guard version == .v5 else {
            guard buffer.readableBytes == 0 else { throw .malformedPacket("unexpected bytes in UNSUBACK") }
            return UnsubackPacket(packetID: packetID)
        }
        let properties = try AckProperties.decode(from: &buffer)
        var codes: [ReasonCode] = []
        while buffer.readableBytes > 0 { codes.append(ReasonCode(rawValue: try buffer.readMQTTByte("reason code"))) }
        return UnsubackPacket(packetID: packetID, reasonCodes: codes, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        version == .v5 ? 2 + properties.sectionSize + reasonCodes.count : 2
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(packetID, endianness: .big)
        guard version == .v5 else { return }
        properties.writeSection(to: &out)
        for code in reasonCodes { out.writeInteger(code.rawValue) }
    }
}

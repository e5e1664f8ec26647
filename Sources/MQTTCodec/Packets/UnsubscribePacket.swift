import NIOCore

public struct UnsubscribePacket: Sendable, Hashable {
    public var packetID: UInt16
    public var filters: [String]
    public var properties: UnsubscribeProperties

    public init(packetID: UInt16, filters: [String], properties: UnsubscribeProperties = .init()) {
        self.packetID = packetID
        self.filters = filters
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> UnsubscribePacket {
        let packetID = try buffer.readMQTTUInt16("packet identifier")
        guard packetID != 0 else { throw .protocolError("packet identifier 0") }
        let properties = version == .v5 ? try UnsubscribeProperties.decode(from: &buffer) : UnsubscribeProperties()
        var filters: [String] = []
        while buffer.readableBytes > 0 {
            let filter = try buffer.readMQTTString("topic filter")
            try validateFilterShape(filter)
            filters.append(filter)
        }
        guard !filters.isEmpty else { throw .protocolError("UNSUBSCRIBE without topic filters") }
        return UnsubscribePacket(packetID: packetID, filters: filters, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        var size = 2
        if version == .v5 { size += properties.sectionSize }
        for f in filters { size += MQTTString.encodedSize(f) }
        return size
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(packetID, endianness: .big)
        if version == .v5 { properties.writeSection(to: &out) }
        for f in filters { out.writeMQTTString(f) }
    }
}

public struct UnsubscribeProperties: MQTTProperties {
    public var userProperties: [UserProperty] = []

    public init(userProperties: [UserProperty] = []) { self.userProperties = userProperties }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            guard id == .userProperty else { return false }
            p.userProperties.append(try PropertyReader.userProperty(&b))
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countUser(userProperties)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.user(userProperties, &out)
    }
}

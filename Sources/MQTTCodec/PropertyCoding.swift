import NIOCore

/// Property identifiers of spec 2.2.2.2.
public enum PropertyID: UInt8, Sendable {
    case payloadFormatIndicator = 0x01
    case messageExpiryInterval = 0x02
    case contentType = 0x03
    case responseTopic = 0x08
    case correlationData = 0x09
    case subscriptionIdentifier = 0x0B
    case sessionExpiryInterval = 0x11
    case assignedClientIdentifier = 0x12
    case serverKeepAlive = 0x13
    case authenticationMethod = 0x15
    case authenticationData = 0x16
    case requestProblemInformation = 0x17
    case willDelayInterval = 0x18
    case requestResponseInformation = 0x19
    case responseInformation = 0x1A
    case serverReference = 0x1C
    case reasonString = 0x1F
    case receiveMaximum = 0x21
    case topicAliasMaximum = 0x22
    case topicAlias = 0x23
    case maximumQoS = 0x24
    case retainAvailable = 0x25
    case userProperty = 0x26
    case maximumPacketSize = 0x27
    case wildcardSubscriptionAvailable = 0x28
    case subscriptionIdentifierAvailable = 0x29
    case sharedSubscriptionAvailable = 0x2A
}

public struct UserProperty: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// Reads a property section: the variable-length size, then identifier/value pairs. The handler
/// receives each identifier with the buffer positioned on its value; it returns false for an
/// identifier the packet does not allow, which makes the packet malformed.
enum PropertyReader {
    
    static func read(
        from buffer: inout ByteBuffer,
        _ handle: (PropertyID, inout ByteBuffer) throws(MQTTDecodeError) -> Bool
    ) throws(MQTTDecodeError) {
        let length = try VariableByteInteger.read(from: &buffer)
        guard var section = buffer.readSlice(length: length) else {
            throw .malformedPacket("property length exceeds packet")
        }
        var seen: UInt64 = 0
        while section.readableBytes > 0 {
            // Identifiers are variable byte integers, but every defined one fits in one byte.
            let rawID = try VariableByteInteger.read(from: &section)
            guard rawID < 0x80, let id = PropertyID(rawValue: UInt8(rawID)) else {
                throw .malformedPacket("unknown property identifier 0x\(String(rawID, radix: 16))")
            }
            if id != .userProperty && id != .subscriptionIdentifier {
                let bit: UInt64 = 1 << UInt64(id.rawValue)
                if seen & bit != 0 { throw .protocolError("property 0x\(String(id.rawValue, radix: 16)) included more than once") }
                seen |= bit
            }
            guard try handle(id, &section) else {
                throw .malformedPacket("property 0x\(String(id.rawValue, radix: 16)) not allowed in this packet")
            }
        }
    }

    
    static func byte(_ buffer: inout ByteBuffer) throws(MQTTDecodeError) -> UInt8 {
        try buffer.readMQTTByte("property value")
    }

    /// A property whose value must be 0 or 1.
    
    static func flag(_ buffer: inout ByteBuffer, _ what: StaticString) throws(MQTTDecodeError) -> Bool {
        let value = try buffer.readMQTTByte(what)
        guard value <= 1 else { throw .protocolError("\(what) must be 0 or 1") }
        return value == 1
    }

    
    static func uint16(_ buffer: inout ByteBuffer) throws(MQTTDecodeError) -> UInt16 {
        try buffer.readMQTTUInt16("property value")
    }

    
    static func uint32(_ buffer: inout ByteBuffer) throws(MQTTDecodeError) -> UInt32 {
        try buffer.readMQTTUInt32("property value")
    }

    /// Receive Maximum, Maximum Packet Size: 0 is a protocol error (spec 3.1.2.11, 3.2.2.3).
    static func nonZeroUInt16(_ buffer: inout ByteBuffer, _ name: String) throws(MQTTDecodeError) -> UInt16 {
        let value = try uint16(&buffer)
        guard value > 0 else { throw .protocolError("\(name) of 0") }
        return value
    }

    static func nonZeroUInt32(_ buffer: inout ByteBuffer, _ name: String) throws(MQTTDecodeError) -> UInt32 {
        let value = try uint32(&buffer)
        guard value > 0 else { throw .protocolError("\(name) of 0") }
        return value
    }

    
    static func string(_ buffer: inout ByteBuffer) throws(MQTTDecodeError) -> String {
        try buffer.readMQTTString("property string")
    }

    
    static func binary(_ buffer: inout ByteBuffer) throws(MQTTDecodeError) -> ByteBuffer {
        try buffer.readMQTTBinary("property binary data")
    }

    
    static func userProperty(_ buffer: inout ByteBuffer) throws(MQTTDecodeError) -> UserProperty {
        let name = try buffer.readMQTTString("user property name")
        let value = try buffer.readMQTTString("user property value")
        return UserProperty(name: name, value: value)
    }
}

/// Writes a property section. Sizes are computed first so the length prefix is written once.
struct PropertyWriter {
    var size = 0

    mutating func countByte(_ value: UInt8?) { if value != nil { size += 2 } }
    mutating func countFlag(_ value: Bool?) { if value != nil { size += 2 } }
    mutating func countUInt16(_ value: UInt16?) { if value != nil { size += 3 } }
    mutating func countUInt32(_ value: UInt32?) { if value != nil { size += 5 } }
    mutating func countVarInt(_ value: UInt32?) {
        if let value { size += 1 + VariableByteInteger.size(of: Int(value)) }
    }
    mutating func countString(_ value: String?) { if let value { size += 1 + MQTTString.encodedSize(value) } }
    mutating func countBinary(_ value: ByteBuffer?) { if let value { size += 1 + MQTTString.encodedSize(value) } }
    mutating func countUser(_ values: [UserProperty]) {
        for p in values { size += 1 + MQTTString.encodedSize(p.name) + MQTTString.encodedSize(p.value) }
    }

    static func byte(_ id: PropertyID, _ value: UInt8?, _ out: inout ByteBuffer) {
        guard let value else { return }
        out.writeInteger(id.rawValue)
        out.writeInteger(value)
    }
    static func flag(_ id: PropertyID, _ value: Bool?, _ out: inout ByteBuffer) {
        guard let value else { return }
        out.writeInteger(id.rawValue)
        out.writeInteger(value ? 1 as UInt8 : 0)
    }
    static func uint16(_ id: PropertyID, _ value: UInt16?, _ out: inout ByteBuffer) {
        guard let value else { return }
        out.writeInteger(id.rawValue)
        out.writeInteger(value, endianness: .big)
    }
    static func uint32(_ id: PropertyID, _ value: UInt32?, _ out: inout ByteBuffer) {
        guard let value else { return }
        out.writeInteger(id.rawValue)
        out.writeInteger(value, endianness: .big)
    }
    static func varInt(_ id: PropertyID, _ value: UInt32?, _ out: inout ByteBuffer) {
        guard let value else { return }
        out.writeInteger(id.rawValue)
        VariableByteInteger.write(Int(value), to: &out)
    }
    static func string(_ id: PropertyID, _ value: String?, _ out: inout ByteBuffer) {
        guard let value else { return }
        out.writeInteger(id.rawValue)
        out.writeMQTTString(value)
    }
    static func binary(_ id: PropertyID, _ value: ByteBuffer?, _ out: inout ByteBuffer) {
        guard let value else { return }
        out.writeInteger(id.rawValue)
        out.writeMQTTBinary(value)
    }
    static func user(_ values: [UserProperty], _ out: inout ByteBuffer) {
        for p in values {
            out.writeInteger(PropertyID.userProperty.rawValue)
            out.writeMQTTString(p.name)
            out.writeMQTTString(p.value)
        }
    }
}

/// A property set that knows its own wire size; every packet's properties conform. Each set, kept
/// with its packet in `Packets/`, lists exactly the properties that packet may carry (spec 5.0
/// section 3); any other identifier makes the packet malformed.
public protocol MQTTProperties: Sendable, Hashable {
    /// Bytes of the properties themselves, without the length prefix.
    var encodedSize: Int { get }
    func writeProperties(to buffer: inout ByteBuffer)
}

extension MQTTProperties {
    /// Size on the wire including the variable byte integer length prefix.
    public var sectionSize: Int {
        let size = encodedSize
        return VariableByteInteger.size(of: size) + size
    }

    /// Writes the length prefix and the properties, as on the wire.
    public func writeSection(to buffer: inout ByteBuffer) {
        VariableByteInteger.write(encodedSize, to: &buffer)
        writeProperties(to: &buffer)
    }
}

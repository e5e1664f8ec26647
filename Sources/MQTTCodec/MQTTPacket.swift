import NIOCore

public enum MQTTPacket: Sendable, Hashable {
    case connect(ConnectPacket)
    case connack(ConnackPacket)
    case publish(PublishPacket)
    case puback(PublishAckPacket)
    case pubrec(PublishAckPacket)
    case pubrel(PublishAckPacket)
    case pubcomp(PublishAckPacket)
    case subscribe(SubscribePacket)
    case suback(SubackPacket)
    case unsubscribe(UnsubscribePacket)
    case unsuback(UnsubackPacket)
    case pingreq
    case pingresp
    case disconnect(DisconnectPacket)
    case auth(AuthPacket)

    public var type: PacketType {
        switch self {
        case .connect: .connect
        case .connack: .connack
        case .publish: .publish
        case .puback: .puback
        case .pubrec: .pubrec
        case .pubrel: .pubrel
        case .pubcomp: .pubcomp
        case .subscribe: .subscribe
        case .suback: .suback
        case .unsubscribe: .unsubscribe
        case .unsuback: .unsuback
        case .pingreq: .pingreq
        case .pingresp: .pingresp
        case .disconnect: .disconnect
        case .auth: .auth
        }
    }
}

// MARK: - Decoding

extension MQTTPacket {
    /// Checks the first byte of a packet (type, flags, direction, CONNECT first) so a stream that is
    /// not MQTT, or breaks the order, is refused before its body is waited for or buffered.
    static func checkFixedHeader(
        _ typeAndFlags: UInt8, version: ProtocolVersion?, sender: MQTTPacketDecoder.Sender?
    ) throws(MQTTDecodeError) -> PacketType {
        let flags = typeAndFlags & 0x0F
        guard let type = PacketType(rawValue: typeAndFlags >> 4) else {
            throw .malformedPacket("reserved packet type 0")
        }
        guard let version else {
            guard type == .connect else { throw .protocolError("first packet must be CONNECT, got \(type)") }
            guard flags == 0 else { throw .malformedPacket("CONNECT with fixed header flags \(flags)") }
            return type
        }
        if type != .publish {
            let expected: UInt8 = (type == .pubrel || type == .subscribe || type == .unsubscribe) ? 0x02 : 0x00
            // MQTT 3.1 sent these three with QoS 1 and set DUP on a resend; 3.1.1 fixed them at 0b0010.
            let resentIn3_1 = version == .v3_1 && expected == 0x02 && flags == 0x0A
            guard flags == expected || resentIn3_1 else { throw .malformedPacket("\(type) with fixed header flags \(flags)") }
        }
        if let sender, !type.travels(from: sender) {
            throw .protocolError(type == .connect && sender == .client ? "second CONNECT" : "\(type) sent by a \(sender)")
        }
        return type
    }

    /// Decodes the body of one packet whose fixed header has been read. `body` holds exactly the
    /// remaining length bytes.
    static func decode(
        typeAndFlags: UInt8, body: inout ByteBuffer, version: ProtocolVersion?, sender: MQTTPacketDecoder.Sender?,
        limits: DecoderLimits, topics: inout TopicNameReader
    ) throws(MQTTDecodeError) -> MQTTPacket {
        let flags = typeAndFlags & 0x0F
        let type = try checkFixedHeader(typeAndFlags, version: version, sender: sender)
        guard let version else {
            return .connect(try ConnectPacket.decode(from: &body))
        }
        switch type {
        case .connect: return .connect(try ConnectPacket.decode(from: &body))
        case .connack: return .connack(try ConnackPacket.decode(from: &body, version: version))
        case .publish:
            return .publish(try PublishPacket.decode(flags: flags, from: &body, version: version, sender: sender, limits: limits, topics: &topics))
        case .puback: return .puback(try PublishAckPacket.decode(from: &body, version: version))
        case .pubrec: return .pubrec(try PublishAckPacket.decode(from: &body, version: version))
        case .pubrel: return .pubrel(try PublishAckPacket.decode(from: &body, version: version))
        case .pubcomp: return .pubcomp(try PublishAckPacket.decode(from: &body, version: version))
        case .subscribe: return .subscribe(try SubscribePacket.decode(from: &body, version: version))
        case .suback: return .suback(try SubackPacket.decode(from: &body, version: version))
        case .unsubscribe: return .unsubscribe(try UnsubscribePacket.decode(from: &body, version: version))
        case .unsuback: return .unsuback(try UnsubackPacket.decode(from: &body, version: version))
        case .pingreq, .pingresp: return try PingPacket.decode(type, from: &body)
        case .disconnect: return .disconnect(try DisconnectPacket.decode(from: &body, version: version, sender: sender))
        case .auth:
            guard version == .v5 else { throw .malformedPacket("AUTH is reserved before MQTT 5.0") }
            return .auth(try AuthPacket.decode(from: &body))
        }
    }
}

extension PacketType {
    /// The direction column of spec 2.1.2 (3.1.1 table 2.1). CONNECT travels from a client, but
    /// only as its first packet, which the decoder reads before it knows the sender.
    func travels(from sender: MQTTPacketDecoder.Sender) -> Bool {
        switch self {
        case .publish, .puback, .pubrec, .pubrel, .pubcomp, .disconnect, .auth: true
        case .subscribe, .unsubscribe, .pingreq: sender == .client
        case .connack, .suback, .unsuback, .pingresp: sender == .server
        case .connect: false
        }
    }
}

// MARK: - Encoding

extension MQTTPacket {
    private var fixedHeaderFlags: UInt8 {
        switch self {
        case .publish(let p): p.fixedHeaderFlags
        case .pubrel, .subscribe, .unsubscribe: 0x02
        default: 0
        }
    }

    public func remainingLength(version: ProtocolVersion) -> Int {
        switch self {
        case .connect(let p): p.remainingLength()
        case .connack(let p): p.remainingLength(version: version)
        case .publish(let p): p.remainingLength(version: version)
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p): p.remainingLength(version: version)
        case .subscribe(let p): p.remainingLength(version: version)
        case .suback(let p): p.remainingLength(version: version)
        case .unsubscribe(let p): p.remainingLength(version: version)
        case .unsuback(let p): p.remainingLength(version: version)
        case .pingreq, .pingresp: 0
        case .disconnect(let p): p.remainingLength(version: version)
        case .auth(let p): p.remainingLength()
        }
    }

    /// Whole packet size on the wire.
    public func encodedSize(version: ProtocolVersion) -> Int {
        let remaining = remainingLength(version: version)
        return 1 + VariableByteInteger.size(of: remaining) + remaining
    }

    public func write(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(type.rawValue << 4 | fixedHeaderFlags)
        VariableByteInteger.write(remainingLength(version: version), to: &out)
        switch self {
        case .connect(let p): p.writeBody(to: &out)
        case .connack(let p): p.writeBody(version: version, to: &out)
        case .publish(let p): p.writeBody(version: version, to: &out)
        case .puback(let p), .pubrec(let p), .pubrel(let p), .pubcomp(let p): p.writeBody(version: version, to: &out)
        case .subscribe(let p): p.writeBody(version: version, to: &out)
        case .suback(let p): p.writeBody(version: version, to: &out)
        case .unsubscribe(let p): p.writeBody(version: version, to: &out)
        case .unsuback(let p): p.writeBody(version: version, to: &out)
        case .pingreq, .pingresp: break
        case .disconnect(let p): p.writeBody(version: version, to: &out)
        case .auth(let p): p.writeBody(to: &out)
        }
    }
}

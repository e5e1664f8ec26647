import NIOCore

/// Frames and decodes MQTT packets. It checks the announced remaining length against the limit
/// from the fixed header alone, before waiting for (or buffering) the body.
///
/// Before CONNECT the version is unknown and only CONNECT is accepted; decoding CONNECT sets it and
/// marks the sender as a client. A client sets `version` itself when it sends CONNECT, and
/// `sender: .server`.
///
/// Once the sender is known, packets that only travel the other way (spec 2.1.2) and a second
/// CONNECT [MQTT-3.1.0-2] are protocol errors, and rules that depend on direction apply (a
/// Subscription Identifier only travels server → client, [MQTT-3.3.4-6]).
public struct MQTTPacketDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = MQTTPacket

    /// Which side of the connection wrote the bytes this decoder reads; nil accepts both directions.
    public enum Sender: Sendable, Hashable {
        case client, server
    }

    // Ordered for a compact layout: one decoder lives in every connection.
    public var limits: DecoderLimits
    public var version: ProtocolVersion?
    public var sender: Sender?
    /// Remembers the last topic name: devices repeat theirs.
    private var topics = TopicNameReader()

    public init(version: ProtocolVersion? = nil, limits: DecoderLimits = .init(), sender: Sender? = nil) {
        self.version = version
        self.limits = limits
        self.sender = sender
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> MQTTPacket? {
        try decodePacket(buffer: &buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> MQTTPacket? {
        try decodePacket(buffer: &buffer)
    }

    /// The typed-throws entry point the connection handler uses.
    public mutating func decodePacket(buffer: inout ByteBuffer) throws(MQTTDecodeError) -> MQTTPacket? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        _ = try MQTTPacket.checkFixedHeader(first, version: version, sender: sender)
        let remaining: Int
        let lengthBytes: Int
        switch try VariableByteInteger.peek(buffer, at: 1) {
        case .needMoreBytes: return nil
        case .value(let value, let count):
            remaining = value
            lengthBytes = count
        }
        let total = 1 + lengthBytes + remaining
        guard total <= limits.maximumPacketSize else {
            throw .packetTooLarge(announced: total, maximum: limits.maximumPacketSize)
        }
        guard buffer.readableBytes >= total,
              var body = buffer.getSlice(at: buffer.readerIndex + 1 + lengthBytes, length: remaining)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: total)
        let packet = try MQTTPacket.decode(typeAndFlags: first, body: &body, version: version, sender: sender, limits: limits, topics: &topics)
        if version == nil, case .connect(let connect) = packet {
            version = connect.protocolVersion
            if sender == nil { sender = .client }
        }
        return packet
    }
}

/// Encodes packets for a peer speaking `version`; used by clients, tests and the load generator.
/// The broker's connection handler writes packets itself to batch them.
public struct MQTTPacketEncoder: MessageToByteEncoder {
    public typealias OutboundIn = MQTTPacket
    public var version: ProtocolVersion

    public init(version: ProtocolVersion) { self.version = version }

    public func encode(data: MQTTPacket, out: inout ByteBuffer) throws {
        data.write(version: version, to: &out)
    }
}

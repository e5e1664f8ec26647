import MQTTCodec
import NIOCore

/// The load generator's own view of the wire. Control packets (CONNECT, CONNACK, SUBSCRIBE,
/// SUBACK) go through MQTTCodec; the per-message hot path — PUBLISH out, PUBLISH and acks in — is
/// handled here without building packet values, so the generator spends as little CPU per message
/// as possible on the cores it shares with the broker.
enum BenchWire {
    /// Marks a payload written by this generator; followed by the send time.
    static let magic: UInt32 = 0x424E_4348  // "BNCH"
    /// Smallest payload that carries the magic and a timestamp.
    static let minimumPayloadSize = 12

    /// One framed packet: `packet` is a slice holding the whole packet, fixed header included.
    struct Frame {
        var typeAndFlags: UInt8
        var headerLength: Int
        var packet: ByteBuffer

        var type: UInt8 { typeAndFlags >> 4 }
        var flags: UInt8 { typeAndFlags & 0x0F }
        var body: ByteBuffer { packet.getSlice(at: packet.readerIndex + headerLength, length: packet.readableBytes - headerLength)! }
    }

    /// Takes one whole packet off the front of `buffer`, or returns nil when it is incomplete.
    static func readFrame(from buffer: inout ByteBuffer, maximumSize: Int) throws(MQTTDecodeError) -> Frame? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        switch try VariableByteInteger.peek(buffer, at: 1) {
        case .needMoreBytes:
            return nil
        case .value(let remaining, let count):
            let total = 1 + count + remaining
            guard total <= maximumSize else { throw .packetTooLarge(announced: total, maximum: maximumSize) }
            guard let packet = buffer.readSlice(length: total) else { return nil }
            return Frame(typeAndFlags: first, headerLength: 1 + count, packet: packet)
        }
    }

    struct InboundPublish: Equatable {
        var qos: UInt8
        var packetID: UInt16
        /// Send time from a payload this generator wrote; nil for foreign payloads.
        var sentAt: UInt64?
    }

    /// Reads just what the generator needs from a PUBLISH body: QoS, packet id and send time.
    static func parsePublish(flags: UInt8, body: ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> InboundPublish {
        var body = body
        let qos = (flags >> 1) & 0x03
        guard qos < 3 else { throw .malformedPacket("PUBLISH with QoS 3") }
        guard let topicLength = body.readInteger(as: UInt16.self), body.readableBytes >= Int(topicLength) else {
            throw .malformedPacket("truncated topic name")
        }
        body.moveReaderIndex(forwardBy: Int(topicLength))
        var packetID: UInt16 = 0
        if qos > 0 {
            guard let id = body.readInteger(as: UInt16.self), id != 0 else { throw .malformedPacket("missing packet identifier") }
            packetID = id
        }
        if version == .v5 {
            let propertiesLength = try VariableByteInteger.read(from: &body)
            guard body.readableBytes >= propertiesLength else { throw .malformedPacket("truncated properties") }
            body.moveReaderIndex(forwardBy: propertiesLength)
        }
        var sentAt: UInt64?
        if body.readableBytes >= minimumPayloadSize {
            // At the start of a plain payload; at the end of a Sparkplug one (inside its body).
            let end = body.readerIndex + body.readableBytes - minimumPayloadSize
            if body.getInteger(at: body.readerIndex, as: UInt32.self) == magic {
                sentAt = body.getInteger(at: body.readerIndex + 4, as: UInt64.self)
            } else if body.getInteger(at: end, as: UInt32.self) == magic {
                sentAt = body.getInteger(at: end + 4, as: UInt64.self)
            }
        }
        return InboundPublish(qos: qos, packetID: packetID, sentAt: sentAt)
    }

    /// Packet identifier and reason code (0 when absent) of a PUBACK, PUBREC, PUBREL or PUBCOMP body.
    static func parseAck(body: ByteBuffer) throws(MQTTDecodeError) -> (packetID: UInt16, reason: UInt8) {
        var body = body
        guard let id = body.readInteger(as: UInt16.self) else { throw .malformedPacket("ack without packet identifier") }
        let reason = body.readInteger(as: UInt8.self) ?? 0
        return (id, reason)
    }

    /// Writes a PUBACK, PUBREC, PUBREL or PUBCOMP with success and no properties: four bytes, the
    /// same in every protocol version (5.0 allows omitting reason code 0, spec 3.4.2.1).
    static func writeAck(_ type: PacketType, packetID: UInt16, to out: inout ByteBuffer) {
        out.writeInteger(type.rawValue << 4 | (type == .pubrel ? 0x02 : 0x00))
        out.writeInteger(UInt8(2))
        out.writeInteger(packetID)
    }

    static func writePingRequest(to out: inout ByteBuffer) {
        out.writeInteger(PacketType.pingreq.rawValue << 4)
        out.writeInteger(UInt8(0))
    }
}

/// A PUBLISH packet encoded once; each message copies it and patches the packet identifier and
/// the send time in place, so sending a message costs one memcpy and no allocation.
struct PublishTemplate: Sendable {
    let bytes: ByteBuffer
    let packetIDOffset: Int?
    let timestampOffset: Int
    /// Sparkplug NDATA: where the two-byte seq value sits.
    let seqOffset: Int?

    var size: Int { bytes.readableBytes }

    init(topic: String, qos: QoS, payloadSize: Int, version: ProtocolVersion, sparkplug: Bool = false) {
        var payload = ByteBuffer()
        var seqInPayload: Int?
        if sparkplug {
            let data = SparkplugBenchPayload.data(size: max(payloadSize, SparkplugBenchPayload.minimumSize))
            payload.writeBytes(data.bytes)
            seqInPayload = data.seqOffset
        } else {
            payload.writeInteger(BenchWire.magic)
            payload.writeInteger(UInt64(0))
            payload.writeRepeatingByte(0x2E, count: max(payloadSize, BenchWire.minimumPayloadSize) - BenchWire.minimumPayloadSize)
        }
        let payloadSize = payload.readableBytes
        // Packet identifier 1 is a placeholder: the codec (rightly) never writes 0 for QoS > 0.
        let packet = PublishPacket(topic: topic, payload: payload, qos: qos, packetID: qos == .atMostOnce ? 0 : 1)
        var out = ByteBuffer()
        out.reserveCapacity(packet.encodedSize(version: version))
        packet.writeHeader(version: version, to: &out)
        let headerLength = out.readableBytes
        out.writeBuffer(&payload)
        bytes = out
        // Header ends with [packet id][properties length 0x00 in 5.0].
        packetIDOffset = qos == .atMostOnce ? nil : headerLength - 2 - (version == .v5 ? 1 : 0)
        timestampOffset = sparkplug ? headerLength + payloadSize - 8 : headerLength + 4
        seqOffset = seqInPayload.map { headerLength + $0 }
    }

    func write(to out: inout ByteBuffer, packetID: UInt16, timestamp: UInt64, seq: UInt8 = 0) {
        let start = out.writerIndex
        out.writeImmutableBuffer(bytes)
        if let packetIDOffset { out.setInteger(packetID, at: start + packetIDOffset) }
        out.setInteger(timestamp, at: start + timestampOffset)
        if let seqOffset { SparkplugBenchPayload.writeSeq(seq, to: &out, at: start + seqOffset) }
    }
}

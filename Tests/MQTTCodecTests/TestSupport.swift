import MQTTCodec
import NIOCore
import Testing

// Helpers shared by the codec tests: building raw packets byte by byte, encoding, and decoding
// exactly one packet from a buffer.

let allVersions: [ProtocolVersion] = [.v3_1, .v3_1_1, .v5]

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

func buffer(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

/// A whole packet: fixed header byte, remaining length, body.
func rawPacket(_ typeAndFlags: UInt8, _ body: [UInt8]) -> [UInt8] {
    var out = ByteBuffer()
    out.writeInteger(typeAndFlags)
    VariableByteInteger.write(body.count, to: &out)
    out.writeBytes(body)
    return Array(out.readableBytesView)
}

/// A UTF-8 Encoded String / Binary Data field: two-byte big-endian length, then the bytes.
func field(_ bytes: [UInt8]) -> [UInt8] {
    [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
}

func field(_ string: String) -> [UInt8] { field(Array(string.utf8)) }

/// A 5.0 property section: variable byte integer length, then the properties.
func properties(_ bytes: [UInt8]) -> [UInt8] {
    var out = ByteBuffer()
    VariableByteInteger.write(bytes.count, to: &out)
    return Array(out.readableBytesView) + bytes
}

func bytes(of buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

func encode(_ packet: MQTTPacket, _ version: ProtocolVersion) -> ByteBuffer {
    var out = ByteBuffer()
    packet.write(version: version, to: &out)
    return out
}

/// Who sends each packet type, per the direction column of spec 2.1.2: CONNECT, SUBSCRIBE,
/// UNSUBSCRIBE and PINGREQ come from clients; CONNACK, SUBACK, UNSUBACK and PINGRESP from servers;
/// the rest travel both ways (decoded here as sent by a client).
func natural(sender packet: MQTTPacket) -> MQTTPacketDecoder.Sender {
    switch packet {
    case .connack, .suback, .unsuback, .pingresp: .server
    default: .client
    }
}

/// A decoder in the state it has after the handshake: version known, sender known.
func decoder(_ version: ProtocolVersion?, sender: MQTTPacketDecoder.Sender? = .client, limits: DecoderLimits = .init()) -> MQTTPacketDecoder {
    MQTTPacketDecoder(version: version, limits: limits, sender: sender)
}

/// Decodes exactly one packet that must take up the whole buffer.
func decodeOne(_ input: ByteBuffer, decoder: inout MQTTPacketDecoder) throws(MQTTDecodeError) -> MQTTPacket {
    var input = input
    guard let packet = try decoder.decodePacket(buffer: &input) else {
        throw .malformedPacket("test helper: decoder wanted more bytes")
    }
    #expect(input.readableBytes == 0, "decoder left \(input.readableBytes) bytes")
    return packet
}

func decodeOne(_ bytes: [UInt8], version: ProtocolVersion?, sender: MQTTPacketDecoder.Sender? = .client) throws(MQTTDecodeError) -> MQTTPacket {
    var d = decoder(version, sender: sender)
    return try decodeOne(buffer(bytes), decoder: &d)
}

/// The error decoding `bytes` throws, or nil when it decodes (or wants more bytes).
func decodeError(
    _ bytes: [UInt8], version: ProtocolVersion?, sender: MQTTPacketDecoder.Sender? = .client, limits: DecoderLimits = .init()
) -> MQTTDecodeError? {
    var d = decoder(version, sender: sender, limits: limits)
    var input = buffer(bytes)
    do {
        _ = try d.decodePacket(buffer: &input)
        return nil
    } catch {
        return error
    }
}

/// Which case of `MQTTDecodeError`, without its message.
enum ErrorKind: Equatable {
    case malformed, protocolError, tooLarge, unsupportedVersion, topicNameInvalid, topicAliasInvalid
}

extension MQTTDecodeError {
    var kind: ErrorKind {
        switch self {
        case .malformedPacket: .malformed
        case .protocolError: .protocolError
        case .packetTooLarge: .tooLarge
        case .unsupportedProtocolVersion: .unsupportedVersion
        case .topicNameInvalid: .topicNameInvalid
        case .topicAliasInvalid: .topicAliasInvalid
        }
    }
}

/// Asserts that decoding `bytes` fails with `kind`, and that the error maps to `reasonCode`
/// (the byte a 5.0 DISCONNECT or CONNACK carries).
func expectRejected(
    _ bytes: [UInt8], version: ProtocolVersion?, sender: MQTTPacketDecoder.Sender? = .client,
    _ kind: ErrorKind, _ reasonCode: UInt8, limits: DecoderLimits = .init(),
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let error = decodeError(bytes, version: version, sender: sender, limits: limits)
    guard let error else {
        Issue.record("decoded without error: \(bytes.map { String($0, radix: 16) })", sourceLocation: sourceLocation)
        return
    }
    #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
    #expect(error.reasonCode.rawValue == reasonCode, "\(error)", sourceLocation: sourceLocation)
}

/// Encodes, checks the announced sizes against the bytes written, decodes and compares.
func expectRoundTrip(
    _ packet: MQTTPacket, _ version: ProtocolVersion, sender: MQTTPacketDecoder.Sender? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let wire = encode(packet, version)
    #expect(wire.readableBytes == packet.encodedSize(version: version), "encodedSize", sourceLocation: sourceLocation)
    // The remaining length in the fixed header must describe the bytes that follow it.
    var header = wire
    header.moveReaderIndex(forwardBy: 1)
    if let announced = try? VariableByteInteger.read(from: &header) {
        #expect(announced == header.readableBytes, "remaining length", sourceLocation: sourceLocation)
        #expect(announced == packet.remainingLength(version: version), sourceLocation: sourceLocation)
    } else {
        Issue.record("unreadable remaining length", sourceLocation: sourceLocation)
    }
    // CONNECT is decoded by a fresh server decoder (version unknown); everything else by one that
    // has seen the handshake.
    var d: MQTTPacketDecoder
    if case .connect = packet {
        d = MQTTPacketDecoder()
    } else {
        d = decoder(version, sender: sender ?? natural(sender: packet))
    }
    do {
        let decoded = try decodeOne(wire, decoder: &d)
        #expect(decoded == packet, sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(version) \(packet.type) failed to decode: \(error)", sourceLocation: sourceLocation)
    }
}

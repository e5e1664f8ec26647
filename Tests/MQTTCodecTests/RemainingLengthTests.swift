import MQTTCodec
import NIOCore
import Testing

// Variable Byte Integer (spec 5.0 1.5.5, 3.1.1 2.2.3) at every size boundary, and how the decoder
// frames packets by it.

@Suite("Remaining length")
struct RemainingLengthTests {
    /// The boundary values of the spec's table with their encodings.
    static let boundaries: [(value: Int, encoding: [UInt8])] = [
        (0, [0x00]),
        (127, [0x7F]),
        (128, [0x80, 0x01]),
        (16_383, [0xFF, 0x7F]),
        (16_384, [0x80, 0x80, 0x01]),
        (2_097_151, [0xFF, 0xFF, 0x7F]),
        (2_097_152, [0x80, 0x80, 0x80, 0x01]),
        (268_435_455, [0xFF, 0xFF, 0xFF, 0x7F]),
    ]

    @Test func writeSizeAndPeekAtBoundaries() throws {
        for (value, encoding) in Self.boundaries {
            var out = ByteBuffer()
            let written = VariableByteInteger.write(value, to: &out)
            #expect(bytes(of: out) == encoding, "\(value)")
            #expect(written == encoding.count)
            #expect(VariableByteInteger.size(of: value) == encoding.count, "\(value)")
            #expect(try VariableByteInteger.peek(buffer(encoding), at: 0) == .value(value, byteCount: encoding.count))
            var input = buffer(encoding + [0xAA])
            #expect(try VariableByteInteger.read(from: &input) == value)
            #expect(input.readableBytes == 1, "read consumes exactly the integer")
        }
        #expect(VariableByteInteger.maximum == 268_435_455)
    }

    @Test func peekWaitsForTheRestOfTheInteger() throws {
        for (_, encoding) in Self.boundaries where encoding.count > 1 {
            for cut in 0..<encoding.count {
                #expect(try VariableByteInteger.peek(buffer(Array(encoding.prefix(cut))), at: 0) == .needMoreBytes)
            }
        }
        // `at` is relative to the reader index.
        var b = buffer([0xEE, 0x30, 0x80, 0x01])
        b.moveReaderIndex(forwardBy: 1)
        #expect(try VariableByteInteger.peek(b, at: 1) == .value(128, byteCount: 2))
    }

    @Test func nonMinimalEncodingIsAccepted() throws {
        // The spec asks senders for the minimum number of bytes but does not make longer forms
        // malformed; they decode to the same value.
        #expect(try VariableByteInteger.peek(buffer([0x80, 0x00]), at: 0) == .value(0, byteCount: 2))
    }

    @Test func fiveByteIntegerIsMalformed() {
        for input: [UInt8] in [[0xFF, 0xFF, 0xFF, 0xFF, 0x7F], [0x80, 0x80, 0x80, 0x80, 0x01], [0xFF, 0xFF, 0xFF, 0xFF]] {
            #expect(throws: MQTTDecodeError.self) { try VariableByteInteger.peek(buffer(input), at: 0) }
            var b = buffer(input)
            #expect(throws: MQTTDecodeError.self) { try VariableByteInteger.read(from: &b) }
        }
        // As a remaining length: malformed as soon as the fourth continuation byte is seen.
        expectRejected([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], version: .v5, .malformed, 0x81)
        expectRejected([0x30, 0xFF, 0xFF, 0xFF, 0xFF], version: .v5, .malformed, 0x81)
        expectRejected([0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], version: nil, sender: nil, .malformed, 0x81)
    }

    @Test func truncatedIntegerInsideAPacketIsMalformed() {
        // A property length whose continuation byte is missing from the packet.
        expectRejected(rawPacket(0x30, field("t") + [0x80]), version: .v5, .malformed, 0x81)
    }

    /// A 3.1.1 QoS 0 PUBLISH to "t" whose remaining length is exactly `remaining`.
    private func publish(remaining: Int) -> (packet: MQTTPacket, wire: ByteBuffer) {
        let payload = ByteBuffer(repeating: 0x5A, count: remaining - 3)
        let packet = MQTTPacket.publish(PublishPacket(topic: "t", payload: payload))
        return (packet, encode(packet, .v3_1_1))
    }

    @Test(arguments: [3, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152])
    func decoderFramesPacketsAtEveryLengthSize(remaining: Int) throws {
        let (packet, wire) = publish(remaining: remaining)
        #expect(wire.readableBytes == 1 + VariableByteInteger.size(of: remaining) + remaining)
        #expect(packet.remainingLength(version: .v3_1_1) == remaining)
        let limits = DecoderLimits(maximumPacketSize: Int.max)
        var d = decoder(.v3_1_1, limits: limits)
        // Everything but the last byte: nothing yet, nothing consumed.
        var partial = wire.getSlice(at: wire.readerIndex, length: wire.readableBytes - 1)!
        #expect(try d.decodePacket(buffer: &partial) == nil)
        #expect(partial.readableBytes == wire.readableBytes - 1)
        // The whole packet followed by the start of the next.
        var input = wire
        input.writeBytes([0xC0])
        #expect(try d.decodePacket(buffer: &input) == packet)
        #expect(bytes(of: input) == [0xC0])
    }

    @Test func zeroRemainingLength() throws {
        var d = decoder(.v3_1_1)
        var input = buffer([0xC0, 0x00, 0xC0])
        #expect(try d.decodePacket(buffer: &input) == .pingreq)
        #expect(try d.decodePacket(buffer: &input) == nil)
        #expect(input.readableBytes == 1)
    }

    @Test func largestRemainingLengthIsAcceptedWithALargeLimit() throws {
        // 268,435,455 body bytes plus a 5-byte fixed header is the largest packet MQTT can frame; with
        // the limit at that size the decoder waits for the body instead of refusing it.
        let limits = DecoderLimits(maximumPacketSize: Int.max)
        #expect(limits.maximumPacketSize == 268_435_460)
        var d = decoder(.v5, limits: limits)
        var input = buffer([0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, 0x74])
        #expect(try d.decodePacket(buffer: &input) == nil)
        #expect(input.readableBytes == 8, "nothing consumed while waiting")
    }

    @Test func tooLargeIsDetectedFromTheFixedHeaderAlone() {
        let limits = DecoderLimits(maximumPacketSize: 1000)
        // Total size = 1 + 2 (length bytes) + remaining. Exactly at the limit: accepted, waits for the body.
        var atLimit = buffer([0x30] + { var b = ByteBuffer(); VariableByteInteger.write(997, to: &b); return bytes(of: b) }())
        var d = decoder(.v5, limits: limits)
        #expect((try? d.decodePacket(buffer: &atLimit)) == .some(nil))
        // One byte over: refused before any of the body has arrived.
        var over = ByteBuffer()
        over.writeInteger(UInt8(0x30))
        VariableByteInteger.write(998, to: &over)
        do {
            _ = try d.decodePacket(buffer: &over)
            Issue.record("expected packetTooLarge")
        } catch {
            #expect(error == .packetTooLarge(announced: 1001, maximum: 1000))
            #expect(error.reasonCode.rawValue == 0x95)
        }
    }

    @Test func defaultLimitIs256KiB() {
        #expect(DecoderLimits().maximumPacketSize == 256 * 1024)
        // A 2 MB PUBLISH header is refused at once, also before CONNECT.
        expectRejected([0x30, 0xFF, 0xFF, 0x7F], version: .v5, .tooLarge, 0x95)
        expectRejected([0x10, 0xFF, 0xFF, 0x7F], version: nil, sender: nil, .tooLarge, 0x95)
        // 256 KiB total is allowed: 1 + 3 + 262,140.
        var d = decoder(.v5)
        var header = ByteBuffer()
        header.writeInteger(UInt8(0x30))
        VariableByteInteger.write(262_140, to: &header)
        #expect((try? d.decodePacket(buffer: &header)) == .some(nil))
        var over = ByteBuffer()
        over.writeInteger(UInt8(0x30))
        VariableByteInteger.write(262_141, to: &over)
        #expect(throws: MQTTDecodeError.packetTooLarge(announced: 262_145, maximum: 262_144)) { try d.decodePacket(buffer: &over) }
    }
}

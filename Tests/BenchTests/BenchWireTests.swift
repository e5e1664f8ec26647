@testable import BastionBench
import MQTTCodec
import NIOCore
import Testing

@Suite struct BenchWireTests {
    @Test(arguments: [ProtocolVersion.v3_1_1, .v5], [QoS.atMostOnce, .atLeastOnce, .exactlyOnce])
    func templateEncodesAPublishTheCodecAccepts(version: ProtocolVersion, qos: QoS) throws {
        let template = PublishTemplate(topic: "bench/x/fanout", qos: qos, payloadSize: 40, version: version)
        var out = ByteBuffer()
        template.write(to: &out, packetID: 513, timestamp: 0x0102_0304_0506_0708)
        template.write(to: &out, packetID: 7, timestamp: 42)
        #expect(out.readableBytes == 2 * template.size)

        var decoder = MQTTPacketDecoder(version: version)
        guard case .publish(let first) = try decoder.decodePacket(buffer: &out),
              case .publish(let second) = try decoder.decodePacket(buffer: &out) else {
            Issue.record("not two PUBLISH packets")
            return
        }
        #expect(out.readableBytes == 0)
        #expect(first.topic == "bench/x/fanout")
        #expect(first.qos == qos)
        #expect(first.packetID == (qos == .atMostOnce ? 0 : 513))
        #expect(second.packetID == (qos == .atMostOnce ? 0 : 7))
        #expect(first.payload.readableBytes == 40)
        var payload = first.payload
        #expect(payload.readInteger(as: UInt32.self) == BenchWire.magic)
        #expect(payload.readInteger(as: UInt64.self) == 0x0102_0304_0506_0708)
    }

    @Test func templateNeverWritesAPayloadTooSmallForTheTimestamp() {
        let template = PublishTemplate(topic: "t", qos: .atMostOnce, payloadSize: 1, version: .v3_1_1)
        // 1 type + 1 length + 3 topic + 12 payload.
        #expect(template.size == 17)
    }

    @Test(arguments: [ProtocolVersion.v3_1_1, .v5])
    func parsePublishReadsIdentifierAndSendTime(version: ProtocolVersion) throws {
        var payload = ByteBuffer()
        payload.writeInteger(BenchWire.magic)
        payload.writeInteger(UInt64(123_456_789))
        payload.writeString("padding")
        var properties = PublishProperties()
        properties.messageExpiryInterval = 30
        properties.userProperties = [UserProperty(name: "k", value: "v")]
        let packet = MQTTPacket.publish(PublishPacket(topic: "a/b", payload: payload, qos: .atLeastOnce, packetID: 99, properties: properties))
        var buffer = ByteBuffer()
        packet.write(version: version, to: &buffer)

        let frame = try #require(try BenchWire.readFrame(from: &buffer, maximumSize: 1 << 20))
        #expect(frame.type == PacketType.publish.rawValue)
        let publish = try BenchWire.parsePublish(flags: frame.flags, body: frame.body, version: version)
        #expect(publish == .init(qos: 1, packetID: 99, sentAt: 123_456_789))
    }

    @Test func foreignPayloadHasNoSendTime() throws {
        let packet = MQTTPacket.publish(PublishPacket(topic: "a", payload: ByteBuffer(string: "hello, this is not ours")))
        var buffer = ByteBuffer()
        packet.write(version: .v3_1_1, to: &buffer)
        let frame = try #require(try BenchWire.readFrame(from: &buffer, maximumSize: 1 << 20))
        let publish = try BenchWire.parsePublish(flags: frame.flags, body: frame.body, version: .v3_1_1)
        #expect(publish.sentAt == nil)
    }

    @Test func truncatedPublishThrows() {
        var body = ByteBuffer()
        body.writeInteger(UInt16(10))
        body.writeString("abc")
        #expect(throws: MQTTDecodeError.self) {
            try BenchWire.parsePublish(flags: 0, body: body, version: .v3_1_1)
        }
    }

    @Test func readFrameWaitsForWholePacketsAndEnforcesTheLimit() throws {
        var whole = ByteBuffer()
        BenchWire.writeAck(.puback, packetID: 5, to: &whole)
        BenchWire.writeAck(.pubrel, packetID: 6, to: &whole)
        var partial = whole.getSlice(at: 0, length: 3)!
        #expect(try BenchWire.readFrame(from: &partial, maximumSize: 100) == nil)
        #expect(partial.readableBytes == 3)

        let first = try #require(try BenchWire.readFrame(from: &whole, maximumSize: 100))
        let second = try #require(try BenchWire.readFrame(from: &whole, maximumSize: 100))
        #expect(first.type == PacketType.puback.rawValue)
        #expect(second.typeAndFlags == 0x62)
        #expect(try BenchWire.parseAck(body: second.body) == (6, 0))
        #expect(try BenchWire.readFrame(from: &whole, maximumSize: 100) == nil)

        var big = ByteBuffer(bytes: [0x30, 0xFF, 0x7F])
        #expect(throws: MQTTDecodeError.self) { try BenchWire.readFrame(from: &big, maximumSize: 1000) }
    }

    @Test(arguments: [PacketType.puback, .pubrec, .pubrel, .pubcomp], [ProtocolVersion.v3_1_1, .v5])
    func acksDecodeWithTheCodec(type: PacketType, version: ProtocolVersion) throws {
        var buffer = ByteBuffer()
        BenchWire.writeAck(type, packetID: 4242, to: &buffer)
        var decoder = MQTTPacketDecoder(version: version)
        let packet = try #require(try decoder.decodePacket(buffer: &buffer))
        #expect(packet.type == type)
        switch packet {
        case .puback(let ack), .pubrec(let ack), .pubrel(let ack), .pubcomp(let ack):
            #expect(ack.packetID == 4242)
            #expect(ack.reasonCode == .success)
        default:
            Issue.record("unexpected \(packet)")
        }
    }

    @Test func pingRequestDecodes() throws {
        var buffer = ByteBuffer()
        BenchWire.writePingRequest(to: &buffer)
        var decoder = MQTTPacketDecoder(version: .v3_1_1)
        #expect(try decoder.decodePacket(buffer: &buffer) == .pingreq)
    }
}

extension BenchWire.Frame: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.typeAndFlags == rhs.typeAndFlags && lhs.headerLength == rhs.headerLength && lhs.packet == rhs.packet
    }
}

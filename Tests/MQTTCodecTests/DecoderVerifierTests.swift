import MQTTCodec
import NIOCore
import NIOTestUtils
import Testing

// The decoder under NIO's ByteToMessageDecoderVerifier (drip-fed byte by byte, many packets in one
// buffer, one packet per buffer) and as a stateful stream that learns its version from CONNECT.

/// Each CONNECT opens a connection of its own, so every decode starts from a fresh server decoder.
private struct FreshConnectionDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = MQTTPacket

    mutating func decode(buffer: inout ByteBuffer) throws -> MQTTPacket? {
        var decoder = MQTTPacketDecoder()
        return try decoder.decode(buffer: &buffer)
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> MQTTPacket? {
        try decode(buffer: &buffer)
    }
}

private func pairs(_ packets: [[MQTTPacket]], _ version: ProtocolVersion) -> [(ByteBuffer, [MQTTPacket])] {
    packets.map { group in
        var input = ByteBuffer()
        for packet in group { packet.write(version: version, to: &input) }
        return (input, group)
    }
}

private func clientPackets(_ version: ProtocolVersion) -> [[MQTTPacket]] {
    var props = PublishProperties()
    if version == .v5 {
        props.contentType = "text/plain"
        props.userProperties = [UserProperty(name: "a", value: "b")]
    }
    return [
        [.publish(PublishPacket(topic: "a/b", payload: buffer("hello")))],
        [.publish(PublishPacket(topic: "a/b", payload: buffer("x"), qos: .atLeastOnce, retain: true, packetID: 1, properties: props))],
        // Remaining length of 2 and 3 bytes.
        [.publish(PublishPacket(topic: "big", payload: ByteBuffer(repeating: 1, count: 200), qos: .exactlyOnce, packetID: 2))],
        [.publish(PublishPacket(topic: "bigger", payload: ByteBuffer(repeating: 2, count: 16_400)))],
        [.publish(PublishPacket(topic: "empty", payload: ByteBuffer()))],
        [.puback(PublishAckPacket(packetID: 1)), .pubrec(PublishAckPacket(packetID: 2))],
        [.pubrel(PublishAckPacket(packetID: 2))],
        [.pubcomp(PublishAckPacket(packetID: 2))],
        [.subscribe(SubscribePacket(packetID: 3, subscriptions: [.init(filter: "a/#", options: .init(qos: .atLeastOnce))]))],
        [.unsubscribe(UnsubscribePacket(packetID: 4, filters: ["a/#", "b"]))],
        [.pingreq],
        [.pingreq, .pingreq, .disconnect(DisconnectPacket())],
    ]
}

@Suite("Decoder verifier")
struct DecoderVerifierTests {
    @Test(arguments: allVersions)
    func clientToServerPackets(version: ProtocolVersion) throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: pairs(clientPackets(version), version),
            decoderFactory: { MQTTPacketDecoder(version: version, sender: .client) })
    }

    @Test func clientToServerPacketsV5WithReasonsAndAuth() throws {
        var auth = AuthProperties()
        auth.authenticationMethod = "SCRAM-SHA-1"
        auth.authenticationData = buffer([1, 2, 3])
        let packets: [[MQTTPacket]] = [
            [.puback(PublishAckPacket(packetID: 5, reasonCode: .noMatchingSubscribers))],
            [.pubrec(PublishAckPacket(packetID: 5, reasonCode: .unspecifiedError, properties: .init(reasonString: "no")))],
            [.auth(AuthPacket(reasonCode: .continueAuthentication, properties: auth))],
            [.auth(AuthPacket())],
            [.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage, properties: .init(sessionExpiryInterval: 5)))],
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: pairs(packets, .v5),
            decoderFactory: { MQTTPacketDecoder(version: .v5, sender: .client) })
    }

    @Test(arguments: allVersions)
    func serverToClientPackets(version: ProtocolVersion) throws {
        var publishProps = PublishProperties()
        var connackProps = ConnackProperties()
        if version == .v5 {
            publishProps.subscriptionIdentifiers = [1, 300]
            connackProps.receiveMaximum = 32
            connackProps.topicAliasMaximum = 10
        }
        let packets: [[MQTTPacket]] = [
            [.connack(ConnackPacket(reasonCode: .success, properties: connackProps))],
            [.publish(PublishPacket(topic: "t", payload: buffer("v"), qos: .atLeastOnce, packetID: 9, properties: publishProps))],
            [.suback(SubackPacket(packetID: 3, reasonCodes: [.grantedQoS1, .grantedQoS0]))],
            [.unsuback(UnsubackPacket(packetID: 4, reasonCodes: version == .v5 ? [.success] : []))],
            [.pingresp],
            [.puback(PublishAckPacket(packetID: 1)), .pubcomp(PublishAckPacket(packetID: 2))],
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: pairs(packets, version),
            decoderFactory: { MQTTPacketDecoder(version: version, sender: .server) })
    }

    @Test func connectPackets() throws {
        var will = ConnectPacket.Will(topic: "w", payload: buffer("bye"), qos: .atLeastOnce, retain: true)
        will.properties.willDelayInterval = 5
        var props = ConnectProperties()
        props.sessionExpiryInterval = 60
        let packets: [(MQTTPacket, ProtocolVersion)] = [
            (.connect(ConnectPacket(protocolVersion: .v3_1, clientID: "old")), .v3_1),
            (.connect(ConnectPacket(protocolVersion: .v3_1_1, clientID: "c", username: "u", password: buffer("p"))), .v3_1_1),
            (.connect(ConnectPacket(protocolVersion: .v5, clientID: "c5", will: will, properties: props)), .v5),
        ]
        let ioPairs = packets.map { packet, version in (encode(packet, version), [packet]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: ioPairs, decoderFactory: { FreshConnectionDecoder() })
    }

    @Test(arguments: allVersions)
    func oneConnectionDripFed(version: ProtocolVersion) throws {
        // CONNECT sets the version and the sender; the rest of the stream is decoded accordingly.
        let connect = MQTTPacket.connect(ConnectPacket(protocolVersion: version, clientID: "c"))
        let expected = [connect] + clientPackets(version).flatMap { $0 }
        var stream = ByteBuffer()
        for packet in expected { packet.write(version: version, to: &stream) }

        let processor = NIOSingleStepByteToMessageProcessor(MQTTPacketDecoder())
        var decoded: [MQTTPacket] = []
        for byte in stream.readableBytesView {
            try processor.process(buffer: buffer([byte])) { decoded.append($0) }
        }
        try processor.finishProcessing(seenEOF: true) { decoded.append($0) }
        #expect(decoded == expected)
        #expect(processor.unprocessedBytes == 0)
    }

    @Test func errorStopsTheStream() throws {
        // After the first invalid packet nothing more is produced from the same bytes.
        let processor = NIOSingleStepByteToMessageProcessor(MQTTPacketDecoder(version: .v3_1_1, sender: .client))
        var decoded: [MQTTPacket] = []
        let input = buffer([0xC0, 0x00] + rawPacket(0x30, field("a/+")) + [0xC0, 0x00])
        do {
            try processor.process(buffer: input) { decoded.append($0) }
            Issue.record("expected an error")
        } catch let error as MQTTDecodeError {
            #expect(error.reasonCode == .topicNameInvalid)
        }
        #expect(decoded == [.pingreq])
    }

    @Test func encoderWritesWhatTheDecoderReads() throws {
        // MQTTPacketEncoder is the MessageToByteEncoder clients use.
        let encoder = MQTTPacketEncoder(version: .v5)
        var out = ByteBuffer()
        let packet = MQTTPacket.subscribe(SubscribePacket(packetID: 1, subscriptions: [.init(filter: "x", options: .init(qos: .exactlyOnce))]))
        try encoder.encode(data: packet, out: &out)
        #expect(out == encode(packet, .v5))
    }
}

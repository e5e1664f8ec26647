import MQTTCodec
import NIOCore
import Testing

// Packets written out by hand from the spec's field tables, checked in both directions, so the
// encoder and the decoder cannot agree on the same mistake.

private let M: UInt8 = 0x4D, Q: UInt8 = 0x51, T: UInt8 = 0x54

@Suite("Wire vectors")
struct WireVectorTests {
    private func expectWire(
        _ packet: MQTTPacket, _ version: ProtocolVersion, _ wire: [UInt8], sender: MQTTPacketDecoder.Sender? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(bytes(of: encode(packet, version)) == wire, "encoding", sourceLocation: sourceLocation)
        var d: MQTTPacketDecoder
        if case .connect = packet { d = MQTTPacketDecoder() } else { d = decoder(version, sender: sender ?? natural(sender: packet)) }
        do {
            #expect(try decodeOne(buffer(wire), decoder: &d) == packet, "decoding", sourceLocation: sourceLocation)
        } catch {
            Issue.record("decoding failed: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func connectV3_1_1WithEverything() {
        // Spec 3.1.1 figure 3.6's flags: user name, password, will QoS 1, will flag, clean session = 0xCE.
        let wire: [UInt8] = [
            0x10, 25,
            0x00, 0x04, M, Q, T, T, 0x04, 0xCE, 0x00, 0x0A,
            0x00, 0x01, 0x63,                 // client id "c"
            0x00, 0x01, 0x77,                 // will topic "w"
            0x00, 0x01, 0x6D,                 // will payload "m"
            0x00, 0x01, 0x75,                 // user name "u"
            0x00, 0x01, 0x70,                 // password "p"
        ]
        let packet = ConnectPacket(
            protocolVersion: .v3_1_1, keepAlive: 10, clientID: "c",
            will: .init(topic: "w", payload: buffer("m"), qos: .atLeastOnce), username: "u", password: buffer("p"))
        expectWire(.connect(packet), .v3_1_1, wire)
    }

    @Test func connectV3_1() {
        // MQTT 3.1 announces itself as "MQIsdp" level 3.
        let wire: [UInt8] = [0x10, 15, 0x00, 0x06, M, Q, 0x49, 0x73, 0x64, 0x70, 0x03, 0x02, 0x00, 0x3C, 0x00, 0x01, 0x63]
        expectWire(.connect(ConnectPacket(protocolVersion: .v3_1, clientID: "c")), .v3_1, wire)
    }

    @Test func connectV5WithSessionExpiry() {
        var props = ConnectProperties()
        props.sessionExpiryInterval = 10
        let wire: [UInt8] = [
            0x10, 19,
            0x00, 0x04, M, Q, T, T, 0x05, 0x02, 0x00, 0x3C,
            0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,  // properties: session expiry interval 10
            0x00, 0x01, 0x63,
        ]
        expectWire(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: props)), .v5, wire)
    }

    @Test func connack() {
        expectWire(.connack(ConnackPacket(sessionPresent: true)), .v3_1_1, [0x20, 0x02, 0x01, 0x00])
        expectWire(.connack(ConnackPacket(reasonCode: .notAuthorized)), .v3_1_1, [0x20, 0x02, 0x00, 0x05])
        // 5.0 reasons without a 3.1.1 twin fall back to the closest return code.
        #expect(bytes(of: encode(.connack(ConnackPacket(reasonCode: .banned)), .v3_1_1)) == [0x20, 0x02, 0x00, 0x05])
        #expect(bytes(of: encode(.connack(ConnackPacket(reasonCode: .serverBusy)), .v3_1_1)) == [0x20, 0x02, 0x00, 0x03])
        expectWire(.connack(ConnackPacket(sessionPresent: true, reasonCode: .success)), .v5, [0x20, 0x03, 0x01, 0x00, 0x00])
        expectWire(.connack(ConnackPacket(reasonCode: .banned)), .v5, [0x20, 0x03, 0x00, 0x8A, 0x00])
    }

    @Test func connackV3_1HasNoSessionPresentFlag() {
        // In MQTT 3.1 the first CONNACK byte is reserved ("not used"); Session Present arrived in 3.1.1.
        #expect(bytes(of: encode(.connack(ConnackPacket(sessionPresent: true)), .v3_1)) == [0x20, 0x02, 0x00, 0x00])
        expectWire(.connack(ConnackPacket(reasonCode: .clientIdentifierNotValid)), .v3_1, [0x20, 0x02, 0x00, 0x02])
    }

    @Test func publish() {
        let wire: [UInt8] = [0x32, 0x09, 0x00, 0x03, 0x61, 0x2F, 0x62, 0x00, 0x0A, 0x68, 0x69]
        expectWire(.publish(PublishPacket(topic: "a/b", payload: buffer("hi"), qos: .atLeastOnce, packetID: 10)), .v3_1_1, wire)
        // QoS 0 has no packet identifier; retain is bit 0, DUP bit 3, QoS bits 1–2.
        expectWire(.publish(PublishPacket(topic: "a", payload: ByteBuffer(), retain: true)), .v3_1_1, [0x31, 0x03, 0x00, 0x01, 0x61])
        expectWire(.publish(PublishPacket(topic: "a", payload: ByteBuffer(), qos: .exactlyOnce, dup: true, packetID: 1)), .v3_1_1,
                   [0x3C, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01])
        // 5.0 adds the property length, here 0.
        expectWire(.publish(PublishPacket(topic: "a", payload: buffer("z"))), .v5, [0x30, 0x05, 0x00, 0x01, 0x61, 0x00, 0x7A])
        var props = PublishProperties()
        props.topicAlias = 5
        expectWire(.publish(PublishPacket(topic: "", payload: buffer("z"), properties: props)), .v5,
                   [0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05, 0x7A])
    }

    @Test func publishAcks() {
        expectWire(.puback(PublishAckPacket(packetID: 1)), .v3_1_1, [0x40, 0x02, 0x00, 0x01])
        expectWire(.pubrec(PublishAckPacket(packetID: 2)), .v3_1_1, [0x50, 0x02, 0x00, 0x02])
        expectWire(.pubrel(PublishAckPacket(packetID: 3)), .v3_1_1, [0x62, 0x02, 0x00, 0x03])
        expectWire(.pubcomp(PublishAckPacket(packetID: 4)), .v3_1_1, [0x70, 0x02, 0x00, 0x04])
        // 5.0: success with no properties may drop both reason code and property length (spec 3.4.2.1).
        expectWire(.puback(PublishAckPacket(packetID: 1)), .v5, [0x40, 0x02, 0x00, 0x01])
        expectWire(.puback(PublishAckPacket(packetID: 1, reasonCode: .noMatchingSubscribers)), .v5, [0x40, 0x03, 0x00, 0x01, 0x10])
        expectWire(.pubrel(PublishAckPacket(packetID: 1, reasonCode: .packetIdentifierNotFound)), .v5, [0x62, 0x03, 0x00, 0x01, 0x92])
        expectWire(.puback(PublishAckPacket(packetID: 1, properties: .init(reasonString: "r"))), .v5,
                   [0x40, 0x08, 0x00, 0x01, 0x00, 0x04, 0x1F, 0x00, 0x01, 0x72])
    }

    @Test func publishAckLongFormsDecode() throws {
        // A sender may also spell success out, with or without an empty property section.
        for wire: [UInt8] in [[0x40, 0x03, 0x00, 0x01, 0x00], [0x40, 0x04, 0x00, 0x01, 0x00, 0x00]] {
            #expect(try decodeOne(wire, version: .v5) == .puback(PublishAckPacket(packetID: 1)))
        }
    }

    @Test func subscribeAndSuback() {
        expectWire(.subscribe(SubscribePacket(packetID: 1, subscriptions: [.init(filter: "a/b", options: .init(qos: .atLeastOnce))])),
                   .v3_1_1, [0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 0x61, 0x2F, 0x62, 0x01])
        // Options byte: retain handling 2 (bits 4–5), retain as published (bit 3), no local (bit 2), QoS 1.
        let options = SubscribePacket.Options(qos: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend)
        expectWire(.subscribe(SubscribePacket(packetID: 1, subscriptions: [.init(filter: "a", options: options)],
                                              properties: .init(subscriptionIdentifier: 5))),
                   .v5, [0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x05, 0x00, 0x01, 0x61, 0x2D])
        expectWire(.suback(SubackPacket(packetID: 1, reasonCodes: [.grantedQoS1, .unspecifiedError])), .v3_1_1,
                   [0x90, 0x04, 0x00, 0x01, 0x01, 0x80])
        // 3.1.1 has one failure code: every 5.0 failure is written as 0x80.
        #expect(bytes(of: encode(.suback(SubackPacket(packetID: 1, reasonCodes: [.notAuthorized])), .v3_1_1)) == [0x90, 0x03, 0x00, 0x01, 0x80])
        expectWire(.suback(SubackPacket(packetID: 1, reasonCodes: [.notAuthorized])), .v5, [0x90, 0x04, 0x00, 0x01, 0x00, 0x87])
    }

    @Test func unsubscribeAndUnsuback() {
        expectWire(.unsubscribe(UnsubscribePacket(packetID: 2, filters: ["a"])), .v3_1_1, [0xA2, 0x05, 0x00, 0x02, 0x00, 0x01, 0x61])
        expectWire(.unsubscribe(UnsubscribePacket(packetID: 2, filters: ["a"])), .v5, [0xA2, 0x06, 0x00, 0x02, 0x00, 0x00, 0x01, 0x61])
        expectWire(.unsuback(UnsubackPacket(packetID: 2)), .v3_1_1, [0xB0, 0x02, 0x00, 0x02])
        expectWire(.unsuback(UnsubackPacket(packetID: 2, reasonCodes: [.success, .noSubscriptionExisted])), .v5,
                   [0xB0, 0x05, 0x00, 0x02, 0x00, 0x00, 0x11])
    }

    @Test(arguments: allVersions)
    func emptyPackets(version: ProtocolVersion) {
        expectWire(.pingreq, version, [0xC0, 0x00])
        expectWire(.pingresp, version, [0xD0, 0x00])
        expectWire(.disconnect(DisconnectPacket()), version, [0xE0, 0x00])
    }

    @Test func disconnectAndAuthV5() {
        expectWire(.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)), .v5, [0xE0, 0x01, 0x04])
        expectWire(.disconnect(DisconnectPacket(reasonCode: .serverShuttingDown)), .v5, [0xE0, 0x01, 0x8B], sender: .server)
        expectWire(.disconnect(DisconnectPacket(properties: .init(sessionExpiryInterval: 1))), .v5,
                   [0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01])
        expectWire(.auth(AuthPacket()), .v5, [0xF0, 0x00])
        var props = AuthProperties()
        props.authenticationMethod = "m"
        expectWire(.auth(AuthPacket(reasonCode: .continueAuthentication, properties: props)), .v5,
                   [0xF0, 0x06, 0x18, 0x04, 0x15, 0x00, 0x01, 0x6D])
    }

    @Test func disconnectV5ShortForms() throws {
        // Remaining length 0 means normal disconnection; 1 means a reason code and no properties.
        #expect(try decodeOne([0xE0, 0x00], version: .v5) == .disconnect(DisconnectPacket(reasonCode: .normalDisconnection)))
        #expect(try decodeOne([0xE0, 0x01, 0x04], version: .v5) == .disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)))
        #expect(try decodeOne([0xE0, 0x02, 0x04, 0x00], version: .v5) == .disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)))
    }
}

@Suite("Oversized fields")
struct OversizedFieldTests {
    // Strings and binary data carry a two-byte length (spec 1.5.4, 1.5.6). Anything decoded fits,
    // but a value the server builds itself (a reason string quoting a long client id, say) might
    // not; it must still produce a well-formed packet, cut at a code point boundary.

    private func roundTrip(_ packet: MQTTPacket) throws -> MQTTPacket {
        let wire = encode(packet, .v5)
        #expect(wire.readableBytes == packet.encodedSize(version: .v5))
        var d = decoder(.v5, limits: DecoderLimits(maximumPacketSize: Int.max))
        return try decodeOne(wire, decoder: &d)
    }

    @Test func longStringIsCutToFitItsLengthPrefix() throws {
        // "é" is two bytes: 40,000 of them put byte 65,535 in the middle of one, so the cut moves back.
        for (long, expectedBytes) in [(String(repeating: "é", count: 40_000), 65_534), ("a" + String(repeating: "é", count: 40_000), 65_535)] {
            let packet = MQTTPacket.puback(PublishAckPacket(packetID: 1, reasonCode: .notAuthorized, properties: .init(reasonString: long)))
            guard case .puback(let decoded) = try roundTrip(packet) else { Issue.record("not a PUBACK"); continue }
            let reason = try #require(decoded.properties.reasonString)
            #expect(reason.utf8.count == expectedBytes)
            #expect(long.hasPrefix(reason))
        }
    }

    @Test func longBinaryIsCutToFitItsLengthPrefix() throws {
        var props = PublishProperties()
        props.correlationData = ByteBuffer(repeating: 7, count: 70_000)
        let packet = MQTTPacket.publish(PublishPacket(topic: "t", payload: buffer("p"), properties: props))
        guard case .publish(let decoded) = try roundTrip(packet) else { Issue.record("not a PUBLISH"); return }
        #expect(decoded.properties.correlationData?.readableBytes == 65_535)
        #expect(decoded.payload == buffer("p"))
    }

    @Test func longWillPayloadAndPasswordAreCut() throws {
        let will = ConnectPacket.Will(topic: "w", payload: ByteBuffer(repeating: 1, count: 70_000))
        let packet = MQTTPacket.connect(ConnectPacket(protocolVersion: .v3_1_1, clientID: "c", will: will,
                                                      username: "u", password: ByteBuffer(repeating: 2, count: 66_000)))
        let wire = encode(packet, .v3_1_1)
        #expect(wire.readableBytes == packet.encodedSize(version: .v3_1_1))
        var d = MQTTPacketDecoder(limits: DecoderLimits(maximumPacketSize: Int.max))
        guard case .connect(let decoded) = try decodeOne(wire, decoder: &d) else { Issue.record("not a CONNECT"); return }
        #expect(decoded.will?.payload.readableBytes == 65_535)
        #expect(decoded.password?.readableBytes == 65_535)
    }
}

import MQTTCodec
import NIOCore
import Testing

// Every rule that makes a packet invalid, with the error case and the 5.0 reason code it maps to:
// 0x81 malformed packet, 0x82 protocol error, 0x84 unsupported protocol version, 0x90 topic name
// invalid, 0x94 topic alias invalid, 0x95 packet too large.

private let malformed: UInt8 = 0x81
private let protocolError: UInt8 = 0x82

/// A CONNECT body with the given header fields; `rest` follows the keep alive (5.0: properties first).
private func connect(name: String = "MQTT", level: UInt8 = 4, flags: UInt8 = 0x02, _ rest: [UInt8]) -> [UInt8] {
    rawPacket(0x10, field(name) + [level, flags, 0x00, 0x3C] + rest)
}

/// A 5.0 QoS 0 PUBLISH to "t" with the given raw property bytes.
private func publishV5(props: [UInt8], topic: [UInt8] = field("t"), flags: UInt8 = 0x30) -> [UInt8] {
    rawPacket(flags, topic + properties(props) + [0x7A])
}

/// A 3.1.1 QoS 0 PUBLISH whose topic is the given raw bytes.
private func publishV3(topicBytes: [UInt8]) -> [UInt8] {
    rawPacket(0x30, field(topicBytes) + [0x7A])
}

/// Byte sequences that are not well-formed UTF-8 (spec 1.5.4 / Unicode 3.9), or contain U+0000.
let illFormedUTF8: [(String, [UInt8])] = [
    ("U+0000", [0x61, 0x00, 0x62]),
    ("overlong '/'", [0x61, 0xC0, 0xAF]),
    ("overlong NUL", [0xC0, 0x80]),
    ("overlong 3-byte", [0xE0, 0x80, 0xAF]),
    ("overlong 4-byte", [0xF0, 0x80, 0x80, 0xAF]),
    ("surrogate U+D800", [0xED, 0xA0, 0x80]),
    ("surrogate U+DFFF", [0xED, 0xBF, 0xBF]),
    ("truncated 2-byte", [0x61, 0xC3]),
    ("truncated 3-byte", [0xE2, 0x82]),
    ("truncated 4-byte", [0xF0, 0x9D, 0x84]),
    ("lone continuation", [0x80]),
    ("invalid byte 0xFF", [0xFF]),
    ("above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
]

@Suite("Malformed and invalid packets")
struct MalformedPacketTests {
    // MARK: Fixed header

    @Test func reservedPacketTypeZero() {
        expectRejected([0x00, 0x00], version: .v3_1_1, .malformed, malformed)
        expectRejected([0x00, 0x00], version: .v5, .malformed, malformed)
        expectRejected([0x00, 0x00], version: nil, sender: nil, .malformed, malformed)
    }

    @Test(arguments: allVersions)
    func wrongFixedHeaderFlags(version: ProtocolVersion) {
        // PUBREL, SUBSCRIBE and UNSUBSCRIBE must carry 0b0010, every other type but PUBLISH 0b0000
        // (spec 2.1.3); anything else is malformed, whatever the body.
        for type: UInt8 in 1...15 where type != 3 {
            let expected: UInt8 = [6, 8, 10].contains(type) ? 0x02 : 0x00
            // MQTT 3.1 resends PUBREL, SUBSCRIBE and UNSUBSCRIBE with DUP set (bit 3).
            let resent: UInt8? = version == .v3_1 && expected == 0x02 ? 0x0A : nil
            for flags: UInt8 in 0...15 where flags != expected && flags != resent {
                let packet = rawPacket(type << 4 | flags, [0x00, 0x01])
                expectRejected(packet, version: version, sender: nil, .malformed, malformed)
            }
        }
        // CONNECT as the first packet too.
        expectRejected(rawPacket(0x11, []), version: nil, sender: nil, .malformed, malformed)
    }

    @Test func dupOnResentPackets() throws {
        // In 3.1 these packets carried DUP/QoS/RETAIN like PUBLISH, QoS fixed at 1, and a resend sets
        // DUP; 3.1.1 fixed the flags at 0b0010.
        let subscribe = rawPacket(0x8A, [0x00, 0x01] + field("a") + [0x01])
        let unsubscribe = rawPacket(0xAA, [0x00, 0x01] + field("a"))
        let pubrel = rawPacket(0x6A, [0x00, 0x01])
        #expect(try decodeOne(subscribe, version: .v3_1) == .subscribe(SubscribePacket(packetID: 1, subscriptions: [
            .init(filter: "a", options: .init(qos: .atLeastOnce))])))
        #expect(try decodeOne(unsubscribe, version: .v3_1) == .unsubscribe(UnsubscribePacket(packetID: 1, filters: ["a"])))
        #expect(try decodeOne(pubrel, version: .v3_1) == .pubrel(PublishAckPacket(packetID: 1)))
        for packet in [subscribe, unsubscribe, pubrel] {
            expectRejected(packet, version: .v3_1_1, .malformed, malformed)
            expectRejected(packet, version: .v5, .malformed, malformed)
        }
    }

    @Test(arguments: allVersions)
    func publishQoS3(version: ProtocolVersion) {
        expectRejected(rawPacket(0x36, field("t") + [0x00, 0x01]), version: version, .malformed, malformed)
        expectRejected(rawPacket(0x3E, field("t") + [0x00, 0x01]), version: version, .malformed, malformed)
    }

    @Test(arguments: allVersions)
    func dupOnQoS0(version: ProtocolVersion) {
        // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
        expectRejected(rawPacket(0x38, field("t") + (version == .v5 ? [0x00] : [])), version: version, .malformed, malformed)
    }

    // MARK: Packet identifiers

    @Test(arguments: allVersions)
    func packetIdentifierZero(version: ProtocolVersion) {
        // [MQTT-2.2.1-3] PUBLISH (QoS > 0), SUBSCRIBE and UNSUBSCRIBE carry a non-zero identifier;
        // the acknowledgements echo one, so 0 never names a flow. A parsable packet breaking the rule
        // is a protocol error (spec 5.0 1.2).
        let props: [UInt8] = version == .v5 ? [0x00] : []
        expectRejected(rawPacket(0x32, field("t") + [0x00, 0x00] + props), version: version, .protocolError, protocolError)
        expectRejected(rawPacket(0x34, field("t") + [0x00, 0x00] + props), version: version, .protocolError, protocolError)
        for typeAndFlags: UInt8 in [0x40, 0x50, 0x62, 0x70] {
            expectRejected(rawPacket(typeAndFlags, [0x00, 0x00]), version: version, .protocolError, protocolError)
        }
        expectRejected(rawPacket(0x82, [0x00, 0x00] + props + field("a") + [0x00]), version: version, .protocolError, protocolError)
        expectRejected(rawPacket(0xA2, [0x00, 0x00] + props + field("a")), version: version, .protocolError, protocolError)
        expectRejected(rawPacket(0x90, [0x00, 0x00] + props + [0x00]), version: version, sender: .server, .protocolError, protocolError)
        expectRejected(rawPacket(0xB0, [0x00, 0x00] + props), version: version, sender: .server, .protocolError, protocolError)
    }

    @Test func truncatedPacketIdentifier() {
        expectRejected(rawPacket(0x40, [0x01]), version: .v3_1_1, .malformed, malformed)
        expectRejected(rawPacket(0x32, field("t") + [0x01]), version: .v3_1_1, .malformed, malformed)
    }

    // MARK: Topic names and strings

    @Test(arguments: allVersions)
    func wildcardInTopicName(version: ProtocolVersion) {
        let props: [UInt8] = version == .v5 ? [0x00] : []
        for topic in ["a/+", "#", "a/#", "+", "a+b", "sport/tennis#"] {
            expectRejected(rawPacket(0x30, field(topic) + props), version: version, .topicNameInvalid, 0x90)
        }
    }

    @Test func illFormedUTF8InTopicName() {
        for (what, bad) in illFormedUTF8 {
            let error = decodeError(publishV3(topicBytes: bad), version: .v3_1_1)
            #expect(error?.kind == .malformed, "\(what): \(String(describing: error))")
            #expect(error?.reasonCode.rawValue == malformed, "\(what)")
            let v5 = decodeError(publishV5(props: [], topic: field(bad)), version: .v5)
            #expect(v5?.kind == .malformed, "\(what): \(String(describing: v5))")
        }
    }

    @Test func illFormedUTF8InOtherStrings() {
        for (what, bad) in illFormedUTF8 {
            // Client identifier, will topic, user name.
            #expect(decodeError(connect([0x00, UInt8(bad.count)] + bad), version: nil, sender: nil)?.kind == .malformed, "client id \(what)")
            #expect(decodeError(connect(flags: 0x06, field("c") + field(bad) + field("m")), version: nil, sender: nil)?.kind == .malformed,
                    "will topic \(what)")
            #expect(decodeError(connect(flags: 0x82, field("c") + field(bad)), version: nil, sender: nil)?.kind == .malformed, "user \(what)")
            // Topic filters.
            #expect(decodeError(rawPacket(0x82, [0x00, 0x01] + field(bad) + [0x00]), version: .v3_1_1)?.kind == .malformed, "filter \(what)")
            #expect(decodeError(rawPacket(0xA2, [0x00, 0x01] + field(bad)), version: .v3_1_1)?.kind == .malformed, "unsub \(what)")
            // 5.0 string properties: user property name and value, content type, reason string.
            #expect(decodeError(publishV5(props: [0x26] + field(bad) + field("v")), version: .v5)?.kind == .malformed, "user prop \(what)")
            #expect(decodeError(publishV5(props: [0x26] + field("k") + field(bad)), version: .v5)?.kind == .malformed, "user value \(what)")
            #expect(decodeError(publishV5(props: [0x03] + field(bad)), version: .v5)?.kind == .malformed, "content type \(what)")
            #expect(decodeError(rawPacket(0x40, [0x00, 0x01, 0x00] + properties([0x1F] + field(bad))), version: .v5)?.kind == .malformed,
                    "reason string \(what)")
        }
    }

    @Test func wellFormedUTF8IsAccepted() throws {
        // Non-characters and control characters other than U+0000 are allowed (spec 1.5.4 says
        // SHOULD NOT; the receiver need not reject them).
        for good: [UInt8] in [[0xEF, 0xBF, 0xBF], [0x01], [0x7F], [0xF4, 0x8F, 0xBF, 0xBF], [0xEF, 0xBB, 0xBF]] {
            let packet = try decodeOne(publishV3(topicBytes: good), version: .v3_1_1)
            guard case .publish(let p) = packet else { Issue.record("not a PUBLISH"); continue }
            #expect(Array(p.topic.utf8) == good)
        }
    }

    @Test(arguments: [ProtocolVersion.v3_1, .v3_1_1])
    func emptyTopicBeforeV5(version: ProtocolVersion) {
        // [MQTT-4.7.3-1] Topic names are at least one character long; 5.0 relaxes it only for aliases.
        expectRejected(rawPacket(0x30, field("") + [0x7A]), version: version, .protocolError, protocolError)
    }

    @Test func emptyTopicWithoutAliasV5() {
        // Spec 5.0 3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there is no Topic Alias."
        expectRejected(publishV5(props: [], topic: field("")), version: .v5, .protocolError, protocolError)
        expectRejected(publishV5(props: [0x02, 0x00, 0x00, 0x00, 0x05], topic: field("")), version: .v5, .protocolError, protocolError)
    }

    @Test func declaredLengthsLongerThanThePacket() {
        // Topic length beyond the packet.
        expectRejected(rawPacket(0x30, [0x00, 0x05, 0x61]), version: .v3_1_1, .malformed, malformed)
        expectRejected(rawPacket(0x30, [0x00]), version: .v3_1_1, .malformed, malformed)
        // Client identifier, will payload, password beyond the packet.
        expectRejected(connect([0x00, 0x09, 0x63]), version: nil, sender: nil, .malformed, malformed)
        expectRejected(connect(flags: 0x06, field("c") + field("w") + [0x00, 0x09, 0x6D]), version: nil, sender: nil, .malformed, malformed)
        expectRejected(connect(flags: 0xC2, field("c") + field("u") + [0x00, 0x09]), version: nil, sender: nil, .malformed, malformed)
        // Protocol name beyond the packet.
        expectRejected(rawPacket(0x10, [0x00, 0x09, M_, Q_]), version: nil, sender: nil, .malformed, malformed)
        // 5.0 property section beyond the packet, and properties beyond their section.
        expectRejected(rawPacket(0x30, field("t") + [0x05, 0x01]), version: .v5, .malformed, malformed)
        expectRejected(publishV5(props: [0x03, 0x00, 0x09, 0x61]), version: .v5, .malformed, malformed)
        expectRejected(publishV5(props: [0x09, 0x00, 0x09, 0x61]), version: .v5, .malformed, malformed)
        expectRejected(publishV5(props: [0x02, 0x00, 0x00]), version: .v5, .malformed, malformed)
        expectRejected(publishV5(props: [0x23, 0x00]), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0x82, [0x00, 0x01] + properties([0x0B, 0x80])), version: .v5, .malformed, malformed)
    }

    @Test func trailingBytes() {
        expectRejected(connect(field("c") + [0x00]), version: nil, sender: nil, .malformed, malformed)
        expectRejected(connect(level: 5, properties([]) + field("c") + [0x00]), version: nil, sender: nil, .malformed, malformed)
        expectRejected(rawPacket(0x40, [0x00, 0x01, 0x00]), version: .v3_1_1, .malformed, malformed)
        expectRejected(rawPacket(0x40, [0x00, 0x01, 0x00, 0x00, 0x00]), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0x20, [0x00, 0x00, 0x00]), version: .v3_1_1, sender: .server, .malformed, malformed)
        expectRejected(rawPacket(0x20, [0x00, 0x00, 0x00, 0x00]), version: .v5, sender: .server, .malformed, malformed)
        expectRejected(rawPacket(0xB0, [0x00, 0x01, 0x00]), version: .v3_1_1, sender: .server, .malformed, malformed)
        expectRejected(rawPacket(0xE0, [0x00, 0x00, 0x00]), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0xF0, [0x00, 0x00, 0x00]), version: .v5, .malformed, malformed)
    }

    // MARK: CONNECT

    @Test func connectReservedFlag() {
        // [MQTT-3.1.2-3] The reserved flag must be 0.
        expectRejected(connect(flags: 0x03, field("c")), version: nil, sender: nil, .malformed, malformed)
        expectRejected(connect(level: 5, flags: 0x03, properties([]) + field("c")), version: nil, sender: nil, .malformed, malformed)
    }

    @Test func willFlagsWithoutWill() {
        // [MQTT-3.1.2-11], [MQTT-3.1.2-13]: will QoS and will retain are 0 when there is no will.
        expectRejected(connect(flags: 0x0A, field("c")), version: nil, sender: nil, .malformed, malformed)
        expectRejected(connect(flags: 0x12, field("c")), version: nil, sender: nil, .malformed, malformed)
        expectRejected(connect(flags: 0x22, field("c")), version: nil, sender: nil, .malformed, malformed)
        expectRejected(connect(level: 5, flags: 0x22, properties([]) + field("c")), version: nil, sender: nil, .malformed, malformed)
    }

    @Test func willQoS3() {
        expectRejected(connect(flags: 0x1E, field("c") + field("w") + field("m")), version: nil, sender: nil, .malformed, malformed)
    }

    @Test func willTopicMustBeATopicName() {
        for topic in ["", "a/#", "+"] {
            #expect(decodeError(connect(flags: 0x06, field("c") + field(topic) + field("m")), version: nil, sender: nil) != nil, "\(topic)")
        }
    }

    @Test func passwordWithoutUserNameBeforeV5() {
        // [MQTT-3.1.2-22] (3.1.1); 3.1 had the same rule.
        expectRejected(connect(flags: 0x42, field("c") + field("p")), version: nil, sender: nil, .malformed, malformed)
        expectRejected(rawPacket(0x10, field("MQIsdp") + [3, 0x42, 0, 60] + field("c") + field("p")), version: nil, sender: nil,
                       .malformed, malformed)
    }

    @Test func unsupportedProtocolNameOrLevel() {
        for (name, level) in [("MQTT", UInt8(3)), ("MQTT", 6), ("MQTT", 0), ("MQIsdp", 4), ("MQTX", 4), ("mqtt", 4), ("", 4)] {
            let error = decodeError(connect(name: name, level: level, field("c")), version: nil, sender: nil)
            #expect(error == .unsupportedProtocolVersion(name: name, level: level), "\(name) \(level)")
            #expect(error?.reasonCode.rawValue == 0x84)
        }
    }

    @Test func connectPropertyRules() {
        func v5(_ props: [UInt8]) -> [UInt8] { connect(level: 5, properties(props) + field("c")) }
        // Receive Maximum 0 and Maximum Packet Size 0 are protocol errors (spec 3.1.2.11.3, .5).
        expectRejected(v5([0x21, 0x00, 0x00]), version: nil, sender: nil, .protocolError, protocolError)
        expectRejected(v5([0x27, 0x00, 0x00, 0x00, 0x00]), version: nil, sender: nil, .protocolError, protocolError)
        // Request Response / Problem Information other than 0 or 1.
        expectRejected(v5([0x19, 0x02]), version: nil, sender: nil, .protocolError, protocolError)
        expectRejected(v5([0x17, 0x02]), version: nil, sender: nil, .protocolError, protocolError)
        // Authentication Data without Authentication Method.
        expectRejected(v5([0x16, 0x00, 0x01, 0x00]), version: nil, sender: nil, .protocolError, protocolError)
        // Duplicates.
        expectRejected(v5([0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]), version: nil, sender: nil, .protocolError, protocolError)
        expectRejected(v5([0x21, 0, 1, 0x21, 0, 1]), version: nil, sender: nil, .protocolError, protocolError)
        // Properties CONNECT may not carry.
        for id: UInt8 in [0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x12, 0x13, 0x18, 0x1A, 0x1C, 0x1F, 0x23, 0x24, 0x25, 0x28, 0x29, 0x2A] {
            expectRejected(v5([id, 0x00, 0x00, 0x00, 0x00]), version: nil, sender: nil, .malformed, malformed)
        }
        // Will properties: only the will's own set; a wildcard response topic is not a topic name.
        let willPropsNotAllowed: [UInt8] = [0x11, 0x00, 0x00, 0x00, 0x01]
        expectRejected(connect(level: 5, flags: 0x06, properties([]) + field("c") + properties(willPropsNotAllowed) + field("w") + field("m")),
                       version: nil, sender: nil, .malformed, malformed)
        expectRejected(connect(level: 5, flags: 0x06, properties([]) + field("c") + properties([0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 1]) + field("w") + field("m")),
                       version: nil, sender: nil, .protocolError, protocolError)
        #expect(decodeError(connect(level: 5, flags: 0x06, properties([]) + field("c") + properties([0x08] + field("a/#")) + field("w") + field("m")),
                            version: nil, sender: nil) != nil)
    }

    // MARK: Properties

    @Test func unknownPropertyIdentifier() {
        for id: [UInt8] in [[0x00], [0x04], [0x7F], [0x2B], [0x80, 0x01]] {
            expectRejected(publishV5(props: id + [0x00, 0x00]), version: .v5, .malformed, malformed)
        }
    }

    @Test func propertyNotAllowedInPacket() {
        // Session Expiry Interval in PUBLISH, Content Type in PUBACK, Reason String in SUBSCRIBE,
        // Topic Alias in UNSUBSCRIBE and DISCONNECT, Will Delay in AUTH, Subscription Identifier in SUBACK.
        expectRejected(publishV5(props: [0x11, 0, 0, 0, 1]), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0x40, [0x00, 0x01, 0x00] + properties([0x03] + field("x"))), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0x82, [0x00, 0x01] + properties([0x1F] + field("x")) + field("a") + [0x00]), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0xA2, [0x00, 0x01] + properties([0x23, 0x00, 0x01]) + field("a")), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0xE0, [0x00] + properties([0x23, 0x00, 0x01])), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0xF0, [0x18] + properties([0x18, 0, 0, 0, 1])), version: .v5, .malformed, malformed)
        expectRejected(rawPacket(0x90, [0x00, 0x01] + properties([0x0B, 0x01]) + [0x00]), version: .v5, sender: .server, .malformed, malformed)
        expectRejected(rawPacket(0x20, [0x00, 0x00] + properties([0x17, 0x01])), version: .v5, sender: .server, .malformed, malformed)
    }

    @Test func duplicatedProperty() {
        // Spec 5.0 2.2.2.2: including a property more than once is a protocol error, except User
        // Property and (in PUBLISH) Subscription Identifier.
        expectRejected(publishV5(props: [0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1]), version: .v5, .protocolError, protocolError)
        expectRejected(publishV5(props: [0x01, 0x00, 0x01, 0x01]), version: .v5, .protocolError, protocolError)
        expectRejected(publishV5(props: [0x03] + field("a") + [0x03] + field("a")), version: .v5, .protocolError, protocolError)
        expectRejected(rawPacket(0x40, [0x00, 0x01, 0x00] + properties([0x1F] + field("a") + [0x1F] + field("b"))), version: .v5,
                       .protocolError, protocolError)
        expectRejected(rawPacket(0x82, [0x00, 0x01] + properties([0x0B, 0x01, 0x0B, 0x02]) + field("a") + [0x00]), version: .v5,
                       .protocolError, protocolError)
        expectRejected(rawPacket(0xE0, [0x00] + properties([0x11, 0, 0, 0, 0, 0x11, 0, 0, 0, 0])), version: .v5, .protocolError, protocolError)
        expectRejected(rawPacket(0xF0, [0x18] + properties([0x15] + field("m") + [0x15] + field("m"))), version: .v5, .protocolError, protocolError)
        // Repeated user properties are fine, in order.
        let packet = try? decodeOne(publishV5(props: [0x26] + field("k") + field("1") + [0x26] + field("k") + field("2")), version: .v5)
        guard case .publish(let p)? = packet else { Issue.record("expected PUBLISH"); return }
        #expect(p.properties.userProperties == [UserProperty(name: "k", value: "1"), UserProperty(name: "k", value: "2")])
    }

    @Test func topicAliasZero() {
        // [MQTT-3.3.2-8]; Bastion answers an alias of 0 like one above the maximum: DISCONNECT 0x94.
        expectRejected(publishV5(props: [0x23, 0x00, 0x00]), version: .v5, .topicAliasInvalid, 0x94)
        expectRejected(publishV5(props: [0x23, 0x00, 0x00], topic: field("")), version: .v5, .topicAliasInvalid, 0x94)
    }

    @Test func subscriptionIdentifierZero() {
        expectRejected(rawPacket(0x82, [0x00, 0x01] + properties([0x0B, 0x00]) + field("a") + [0x00]), version: .v5,
                       .protocolError, protocolError)
        expectRejected(publishV5(props: [0x0B, 0x00]), version: .v5, sender: .server, .protocolError, protocolError)
    }

    @Test func subscriptionIdentifierInClientPublish() {
        // [MQTT-3.3.4-6] A PUBLISH sent from a Client to a Server MUST NOT contain a Subscription Identifier.
        expectRejected(publishV5(props: [0x0B, 0x01]), version: .v5, .protocolError, protocolError)
        #expect(decodeError(publishV5(props: [0x0B, 0x01]), version: .v5, sender: .server) == nil)
    }

    @Test func flagPropertiesOutOfRange() {
        expectRejected(publishV5(props: [0x01, 0x02]), version: .v5, .protocolError, protocolError)
        expectRejected(rawPacket(0x20, [0x00, 0x00] + properties([0x24, 0x02])), version: .v5, sender: .server, .protocolError, protocolError)
        expectRejected(rawPacket(0x20, [0x00, 0x00] + properties([0x25, 0x02])), version: .v5, sender: .server, .protocolError, protocolError)
    }

    @Test func connackPropertyRules() {
        // Receive Maximum 0 and Maximum Packet Size 0 are protocol errors in CONNACK as in CONNECT (spec 3.2.2.3.3, .6).
        expectRejected(rawPacket(0x20, [0x00, 0x00] + properties([0x21, 0x00, 0x00])), version: .v5, sender: .server,
                       .protocolError, protocolError)
        expectRejected(rawPacket(0x20, [0x00, 0x00] + properties([0x27, 0, 0, 0, 0])), version: .v5, sender: .server,
                       .protocolError, protocolError)
        // Reserved CONNACK flags.
        expectRejected(rawPacket(0x20, [0x02, 0x00]), version: .v3_1_1, sender: .server, .malformed, malformed)
        expectRejected(rawPacket(0x20, [0x02, 0x00, 0x00]), version: .v5, sender: .server, .malformed, malformed)
        // Unknown 3.1.1 return code.
        expectRejected(rawPacket(0x20, [0x00, 0x06]), version: .v3_1_1, sender: .server, .malformed, malformed)
    }

    // MARK: SUBSCRIBE / UNSUBSCRIBE

    @Test(arguments: [ProtocolVersion.v3_1, .v3_1_1])
    func subscribeOptionsBeforeV5(version: ProtocolVersion) {
        // [MQTT-3.8.3-4] Reserved bits must be 0 and QoS 0–2, else malformed.
        for options: UInt8 in [0x03, 0x04, 0x08, 0x10, 0x80, 0xFF] {
            expectRejected(rawPacket(0x82, [0x00, 0x01] + field("a") + [options]), version: version, .malformed, malformed)
        }
    }

    @Test func subscribeOptionsV5() {
        func sub(_ filter: String, _ options: UInt8) -> [UInt8] { rawPacket(0x82, [0x00, 0x01, 0x00] + field(filter) + [options]) }
        // [MQTT-3.8.3-5] Reserved bits 6–7: malformed.
        expectRejected(sub("a", 0x40), version: .v5, .malformed, malformed)
        expectRejected(sub("a", 0x80), version: .v5, .malformed, malformed)
        // Spec 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3" and "to send a
        // Retain Handling value of 3".
        expectRejected(sub("a", 0x03), version: .v5, .protocolError, protocolError)
        expectRejected(sub("a", 0x30), version: .v5, .protocolError, protocolError)
        // [MQTT-3.8.3-4] No Local on a shared subscription.
        expectRejected(sub("$share/g/a", 0x04), version: .v5, .protocolError, protocolError)
        #expect(decodeError(sub("$share/g/a", 0x2A), version: .v5) == nil)
        // Missing options byte.
        expectRejected(rawPacket(0x82, [0x00, 0x01, 0x00] + field("a")), version: .v5, .malformed, malformed)
    }

    @Test(arguments: allVersions)
    func subscribeAndUnsubscribeWithoutFilters(version: ProtocolVersion) {
        let props: [UInt8] = version == .v5 ? [0x00] : []
        expectRejected(rawPacket(0x82, [0x00, 0x01] + props), version: version, .protocolError, protocolError)
        expectRejected(rawPacket(0xA2, [0x00, 0x01] + props), version: version, .protocolError, protocolError)
    }

    static let badFilters = [
        "", "a/b#", "a/#/b", "a+", "+a", "a/+b", "#/a", "##", "++", "a/#/", "#+",
        "$share/", "$share//a", "$share/g", "$share/g/", "$share/g+/a", "$share/g#/a", "$share/+/a", "$share/#/a",
        "$share/g/a/#/b", "$share/g/a+",
    ]

    @Test(arguments: allVersions)
    func invalidTopicFilters(version: ProtocolVersion) {
        // Misplaced wildcards and bad share names make the packet malformed (spec 4.7.1, 4.8.2).
        let props: [UInt8] = version == .v5 ? [0x00] : []
        for filter in Self.badFilters {
            expectRejected(rawPacket(0x82, [0x00, 0x01] + props + field(filter) + [0x00]), version: version, .malformed, malformed)
            expectRejected(rawPacket(0xA2, [0x00, 0x01] + props + field(filter)), version: version, .malformed, malformed)
            // A bad filter after a good one still spoils the packet.
            expectRejected(rawPacket(0x82, [0x00, 0x01] + props + field("ok") + [0x00] + field(filter) + [0x00]), version: version,
                           .malformed, malformed)
        }
    }

    @Test func topicFilterLimitsAreNotDecodeErrors() throws {
        // Length and depth limits are answered per filter in SUBACK, not by dropping the connection.
        let deep = Array(repeating: "a", count: 500).joined(separator: "/")
        #expect(throws: Never.self) { try decodeOne(rawPacket(0x82, [0x00, 0x01] + field(deep) + [0x00]), version: .v3_1_1) }
    }

    // MARK: Packet order and direction

    @Test func firstPacketMustBeConnect() {
        for packet in [rawPacket(0x30, field("t")), rawPacket(0xC0, []), rawPacket(0xE0, []), rawPacket(0x82, [0, 1] + field("a") + [0]),
                       rawPacket(0x20, [0, 0]), rawPacket(0xF0, [])] {
            expectRejected(packet, version: nil, sender: nil, .protocolError, protocolError)
        }
    }

    @Test func secondConnectIsAProtocolError() throws {
        // [MQTT-3.1.0-2] The server must treat a second CONNECT as a protocol error.
        let connect = bytes(of: encode(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c")), .v5))
        var d = MQTTPacketDecoder()
        var input = buffer(connect + connect)
        #expect(try d.decodePacket(buffer: &input) != nil)
        #expect(d.version == .v5)
        #expect(d.sender == .client, "a decoder that read a CONNECT reads a client")
        #expect(throws: MQTTDecodeError.self) { try d.decodePacket(buffer: &input) }
        expectRejected(connect, version: .v5, sender: .client, .protocolError, protocolError)
    }

    @Test(arguments: allVersions)
    func packetsFlowingTheWrongWay(version: ProtocolVersion) {
        let props: [UInt8] = version == .v5 ? [0x00] : []
        // Server-to-client types from a client.
        expectRejected(rawPacket(0x20, [0x00, 0x00] + props), version: version, sender: .client, .protocolError, protocolError)
        expectRejected(rawPacket(0x90, [0x00, 0x01] + props + [0x00]), version: version, sender: .client, .protocolError, protocolError)
        expectRejected(rawPacket(0xB0, [0x00, 0x01] + props), version: version, sender: .client, .protocolError, protocolError)
        expectRejected(rawPacket(0xD0, []), version: version, sender: .client, .protocolError, protocolError)
        // Client-to-server types from a server.
        expectRejected(bytes(of: encode(.connect(ConnectPacket(protocolVersion: version, clientID: "c")), version)), version: version,
                       sender: .server, .protocolError, protocolError)
        expectRejected(rawPacket(0x82, [0x00, 0x01] + props + field("a") + [0x00]), version: version, sender: .server, .protocolError, protocolError)
        expectRejected(rawPacket(0xA2, [0x00, 0x01] + props + field("a")), version: version, sender: .server, .protocolError, protocolError)
        expectRejected(rawPacket(0xC0, []), version: version, sender: .server, .protocolError, protocolError)
        // A decoder told nothing about the sender accepts both directions.
        #expect(decodeError(rawPacket(0xD0, []), version: version, sender: nil) == nil)
        #expect(decodeError(rawPacket(0xC0, []), version: version, sender: nil) == nil)
    }

    @Test func serverDisconnectMustNotCarrySessionExpiry() {
        // [MQTT-3.14.2-2] The Session Expiry Interval MUST NOT be sent on a DISCONNECT by the Server.
        let packet = rawPacket(0xE0, [0x00] + properties([0x11, 0, 0, 0, 5]))
        expectRejected(packet, version: .v5, sender: .server, .protocolError, protocolError)
        #expect(decodeError(packet, version: .v5, sender: .client) == nil)
    }

    @Test(arguments: [ProtocolVersion.v3_1, .v3_1_1])
    func authBeforeV5(version: ProtocolVersion) {
        // Packet type 15 is reserved before 5.0.
        expectRejected([0xF0, 0x00], version: version, .malformed, malformed)
        expectRejected([0xF0, 0x00], version: version, sender: .server, .malformed, malformed)
    }

    @Test func authRules() {
        // [MQTT-3.15.2-1] Only the authenticate reason codes 0x00, 0x18, 0x19.
        expectRejected(rawPacket(0xF0, [0x01, 0x00]), version: .v5, .protocolError, protocolError)
        expectRejected(rawPacket(0xF0, [0x87]), version: .v5, .protocolError, protocolError)
        // Spec 3.15.2.2.2: "It is a Protocol Error to omit the Authentication Method".
        expectRejected(rawPacket(0xF0, [0x18, 0x00]), version: .v5, .protocolError, protocolError)
        expectRejected(rawPacket(0xF0, [0x19]), version: .v5, .protocolError, protocolError)
        expectRejected(rawPacket(0xF0, [0x00] + properties([0x1F] + field("r"))), version: .v5, .protocolError, protocolError)
        #expect(decodeError(rawPacket(0xF0, []), version: .v5) == nil, "the success short form")
    }

    @Test(arguments: [ProtocolVersion.v3_1, .v3_1_1])
    func emptyPacketsWithABody(version: ProtocolVersion) {
        // PINGREQ, PINGRESP and (before 5.0) DISCONNECT have no variable header or payload.
        expectRejected(rawPacket(0xC0, [0x00]), version: version, .malformed, malformed)
        expectRejected(rawPacket(0xD0, [0x00]), version: version, sender: .server, .malformed, malformed)
        expectRejected(rawPacket(0xE0, [0x00]), version: version, .malformed, malformed)
    }

    @Test func pingWithABodyV5() {
        expectRejected(rawPacket(0xC0, [0x00]), version: .v5, .malformed, malformed)
    }

    @Test func subackReturnCodesV3_1_1() {
        // [MQTT-3.9.3-2] 0x00, 0x01, 0x02 and 0x80 are the only SUBACK return codes before 5.0.
        for code: UInt8 in [0x03, 0x87, 0x8F, 0xFF] {
            expectRejected(rawPacket(0x90, [0x00, 0x01, code]), version: .v3_1_1, sender: .server, .malformed, malformed)
        }
        #expect(decodeError(rawPacket(0x90, [0x00, 0x01, 0x00, 0x01, 0x02, 0x80]), version: .v3_1_1, sender: .server) == nil)
    }
}

private let M_: UInt8 = 0x4D, Q_: UInt8 = 0x51

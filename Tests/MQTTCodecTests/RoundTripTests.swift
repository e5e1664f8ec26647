import MQTTCodec
import NIOCore
import Testing

// Encode → decode → equal for every packet type in every protocol version that has it, and every
// 5.0 property in every packet that may carry it (spec 5.0 section 3, property tables).

private let user = [UserProperty(name: "k", value: "v"), UserProperty(name: "k", value: "v2"), UserProperty(name: "ü", value: "")]

private func fullConnectProperties() -> ConnectProperties {
    var p = ConnectProperties()
    p.sessionExpiryInterval = 0xFFFF_FFFF
    p.receiveMaximum = 20
    p.maximumPacketSize = 1024
    p.topicAliasMaximum = 10
    p.requestResponseInformation = true
    p.requestProblemInformation = false
    p.userProperties = user
    p.authenticationMethod = "SCRAM-SHA-256"
    p.authenticationData = buffer([0, 1, 2, 0xFF])
    return p
}

private func fullWillProperties() -> WillProperties {
    var p = WillProperties()
    p.willDelayInterval = 30
    p.payloadFormatIndicator = 1
    p.messageExpiryInterval = 3600
    p.contentType = "text/plain"
    p.responseTopic = "reply/here"
    p.correlationData = buffer([9, 8, 7])
    p.userProperties = user
    return p
}

private func fullConnackProperties() -> ConnackProperties {
    var p = ConnackProperties()
    p.sessionExpiryInterval = 120
    p.receiveMaximum = 32
    p.maximumQoS = .atLeastOnce
    p.retainAvailable = false
    p.maximumPacketSize = 262_144
    p.assignedClientIdentifier = "bastion-0123456789abcdef"
    p.topicAliasMaximum = 10
    p.reasonString = "welcome"
    p.userProperties = user
    p.wildcardSubscriptionAvailable = true
    p.subscriptionIdentifiersAvailable = true
    p.sharedSubscriptionAvailable = false
    p.serverKeepAlive = 120
    p.responseInformation = "resp/"
    p.serverReference = "other.example:1883"
    p.authenticationMethod = "SCRAM-SHA-256"
    p.authenticationData = buffer([1, 2, 3])
    return p
}

/// Every PUBLISH property a client may send (all but Subscription Identifier).
private func fullPublishProperties() -> PublishProperties {
    var p = PublishProperties()
    p.payloadFormatIndicator = 1
    p.messageExpiryInterval = 60
    p.topicAlias = 3
    p.responseTopic = "answers/1"
    p.correlationData = buffer([0xDE, 0xAD])
    p.userProperties = user
    p.contentType = "application/json"
    return p
}

private func fullDisconnectProperties() -> DisconnectProperties {
    var p = DisconnectProperties(sessionExpiryInterval: 0, reasonString: "bye")
    p.userProperties = user
    return p
}

private func fullAuthProperties() -> AuthProperties {
    var p = AuthProperties()
    p.authenticationMethod = "SCRAM-SHA-256"
    p.authenticationData = buffer([0x01])
    p.reasonString = "step 2"
    p.userProperties = user
    return p
}

@Suite("Round trip")
struct RoundTripTests {
    // MARK: CONNECT

    @Test(arguments: allVersions)
    func connectMinimal(version: ProtocolVersion) {
        expectRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "client-1")), version)
        expectRoundTrip(.connect(ConnectPacket(protocolVersion: version, cleanStart: false, keepAlive: 0, clientID: "c")), version)
        expectRoundTrip(.connect(ConnectPacket(protocolVersion: version, keepAlive: 0xFFFF, clientID: "")), version)
    }

    @Test(arguments: allVersions)
    func connectWithWillUserAndPassword(version: ProtocolVersion) {
        for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            for retain in [false, true] {
                let will = ConnectPacket.Will(topic: "clients/c/status", payload: buffer("offline"), qos: qos, retain: retain)
                expectRoundTrip(.connect(ConnectPacket(
                    protocolVersion: version, clientID: "c", will: will, username: "alice", password: buffer([0, 0xFF, 3]))), version)
            }
        }
        // Empty will payload and empty password are legal.
        let will = ConnectPacket.Will(topic: "t", payload: ByteBuffer())
        expectRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c", will: will, username: "", password: ByteBuffer())), version)
        expectRoundTrip(.connect(ConnectPacket(protocolVersion: version, clientID: "c", username: "only-user")), version)
    }

    @Test func connectV5PasswordWithoutUsername() {
        // 5.0 dropped the 3.1.1 rule that a password needs a user name (spec 5.0 3.1.2.9).
        expectRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", password: buffer("token"))), .v5)
    }

    @Test func connectV5EveryProperty() {
        var will = ConnectPacket.Will(topic: "w", payload: buffer("gone"), qos: .exactlyOnce, retain: true)
        will.properties = fullWillProperties()
        expectRoundTrip(.connect(ConnectPacket(
            protocolVersion: .v5, clientID: "c", will: will, username: "u", password: buffer("p"),
            properties: fullConnectProperties())), .v5)
    }

    @Test func connectV5EachPropertyAlone() {
        let full = fullConnectProperties()
        let setters: [(inout ConnectProperties) -> Void] = [
            { $0.sessionExpiryInterval = full.sessionExpiryInterval },
            { $0.receiveMaximum = full.receiveMaximum },
            { $0.maximumPacketSize = full.maximumPacketSize },
            { $0.topicAliasMaximum = full.topicAliasMaximum },
            { $0.requestResponseInformation = full.requestResponseInformation },
            { $0.requestProblemInformation = full.requestProblemInformation },
            { $0.userProperties = full.userProperties },
            { $0.authenticationMethod = full.authenticationMethod },
            { $0.authenticationMethod = "m"; $0.authenticationData = full.authenticationData },
        ]
        for set in setters {
            var p = ConnectProperties()
            set(&p)
            expectRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", properties: p)), .v5)
        }
        let fullWill = fullWillProperties()
        let willSetters: [(inout WillProperties) -> Void] = [
            { $0.willDelayInterval = fullWill.willDelayInterval },
            { $0.payloadFormatIndicator = 0 },
            { $0.payloadFormatIndicator = 1 },
            { $0.messageExpiryInterval = fullWill.messageExpiryInterval },
            { $0.contentType = fullWill.contentType },
            { $0.responseTopic = fullWill.responseTopic },
            { $0.correlationData = fullWill.correlationData },
            { $0.userProperties = fullWill.userProperties },
        ]
        for set in willSetters {
            var will = ConnectPacket.Will(topic: "w", payload: buffer("x"))
            set(&will.properties)
            expectRoundTrip(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c", will: will)), .v5)
        }
    }

    // MARK: CONNACK

    @Test(arguments: [ProtocolVersion.v3_1_1, .v5])
    func connackSessionPresent(version: ProtocolVersion) {
        expectRoundTrip(.connack(ConnackPacket(sessionPresent: true)), version)
        expectRoundTrip(.connack(ConnackPacket(sessionPresent: false)), version)
    }

    @Test(arguments: allVersions)
    func connackReturnCodes(version: ProtocolVersion) {
        // The six 3.1/3.1.1 return codes, expressed as the 5.0 reasons they map to.
        let codes: [ReasonCode] = [.success, .unsupportedProtocolVersion, .clientIdentifierNotValid,
                                   .serverUnavailable, .badUserNameOrPassword, .notAuthorized]
        for code in codes {
            expectRoundTrip(.connack(ConnackPacket(reasonCode: code)), version)
        }
    }

    @Test func connackV5EveryProperty() {
        expectRoundTrip(.connack(ConnackPacket(sessionPresent: true, properties: fullConnackProperties())), .v5)
        for code in [ReasonCode.banned, .serverBusy, .packetTooLarge, .useAnotherServer] {
            expectRoundTrip(.connack(ConnackPacket(reasonCode: code)), .v5)
        }
    }

    @Test func connackV5EachPropertyAlone() {
        let full = fullConnackProperties()
        let setters: [(inout ConnackProperties) -> Void] = [
            { $0.sessionExpiryInterval = full.sessionExpiryInterval },
            { $0.receiveMaximum = full.receiveMaximum },
            { $0.maximumQoS = .atMostOnce },
            { $0.maximumQoS = .atLeastOnce },
            { $0.retainAvailable = true },
            { $0.maximumPacketSize = full.maximumPacketSize },
            { $0.assignedClientIdentifier = full.assignedClientIdentifier },
            { $0.topicAliasMaximum = full.topicAliasMaximum },
            { $0.reasonString = full.reasonString },
            { $0.userProperties = full.userProperties },
            { $0.wildcardSubscriptionAvailable = false },
            { $0.subscriptionIdentifiersAvailable = false },
            { $0.sharedSubscriptionAvailable = true },
            { $0.serverKeepAlive = full.serverKeepAlive },
            { $0.responseInformation = full.responseInformation },
            { $0.serverReference = full.serverReference },
            { $0.authenticationMethod = full.authenticationMethod },
            { $0.authenticationData = full.authenticationData },
        ]
        for set in setters {
            var p = ConnackProperties()
            set(&p)
            expectRoundTrip(.connack(ConnackPacket(properties: p)), .v5)
        }
    }

    // MARK: PUBLISH

    @Test(arguments: allVersions)
    func publishFlagsAndPayloads(version: ProtocolVersion) {
        for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            for retain in [false, true] {
                for dup in qos == .atMostOnce ? [false] : [false, true] {
                    for payload in [ByteBuffer(), buffer("hello"), buffer([0, 0xFF, 0x80])] {
                        let id: UInt16 = qos == .atMostOnce ? 0 : 0xFFFF
                        expectRoundTrip(.publish(PublishPacket(
                            topic: "a/b/c", payload: payload, qos: qos, retain: retain, dup: dup, packetID: id)), version)
                    }
                }
            }
        }
        // Topic levels may be empty, and non-ASCII is fine.
        expectRoundTrip(.publish(PublishPacket(topic: "/", payload: buffer("x"))), version)
        expectRoundTrip(.publish(PublishPacket(topic: "häuser//€/𝄞", payload: buffer("x"), qos: .atLeastOnce, packetID: 1)), version)
    }

    @Test func publishV5EveryProperty() {
        expectRoundTrip(.publish(PublishPacket(
            topic: "a/b", payload: buffer("x"), qos: .exactlyOnce, packetID: 7, properties: fullPublishProperties())), .v5)
    }

    @Test func publishV5EachPropertyAlone() {
        let full = fullPublishProperties()
        let setters: [(inout PublishProperties) -> Void] = [
            { $0.payloadFormatIndicator = 0 },
            { $0.payloadFormatIndicator = 1 },
            { $0.messageExpiryInterval = full.messageExpiryInterval },
            { $0.topicAlias = full.topicAlias },
            { $0.responseTopic = full.responseTopic },
            { $0.correlationData = full.correlationData },
            { $0.userProperties = full.userProperties },
            { $0.contentType = full.contentType },
        ]
        for set in setters {
            var p = PublishProperties()
            set(&p)
            expectRoundTrip(.publish(PublishPacket(topic: "t", payload: buffer("x"), properties: p)), .v5)
        }
    }

    @Test func publishV5TopicAliasWithEmptyTopic() {
        var p = PublishProperties()
        p.topicAlias = 1
        expectRoundTrip(.publish(PublishPacket(topic: "", payload: buffer("x"), qos: .atLeastOnce, packetID: 2, properties: p)), .v5)
    }

    @Test func publishV5FromServerWithSubscriptionIdentifiers() {
        // Only a server → client PUBLISH may carry them, once per matching subscription (spec 3.3.4).
        var p = fullPublishProperties()
        p.subscriptionIdentifiers = [1, 127, 128, 16_384, 268_435_455]
        expectRoundTrip(.publish(PublishPacket(topic: "a", payload: buffer("x"), properties: p)), .v5, sender: .server)
    }

    // MARK: PUBACK, PUBREC, PUBREL, PUBCOMP

    private static func acks(_ p: PublishAckPacket) -> [MQTTPacket] {
        [.puback(p), .pubrec(p), .pubrel(p), .pubcomp(p)]
    }

    @Test(arguments: allVersions)
    func publishAcks(version: ProtocolVersion) {
        for id: UInt16 in [1, 0x1234, 0xFFFF] {
            for packet in Self.acks(PublishAckPacket(packetID: id)) {
                expectRoundTrip(packet, version)
            }
        }
    }

    @Test func publishAcksV5ReasonCodesAndProperties() {
        let reasons: [ReasonCode] = [.success, .noMatchingSubscribers, .unspecifiedError, .packetIdentifierNotFound, .quotaExceeded]
        for reason in reasons {
            for props in [AckProperties(), AckProperties(reasonString: "why"), AckProperties(userProperties: user),
                          AckProperties(reasonString: "why", userProperties: user)] {
                for packet in Self.acks(PublishAckPacket(packetID: 9, reasonCode: reason, properties: props)) {
                    expectRoundTrip(packet, .v5)
                    expectRoundTrip(packet, .v5, sender: .server)
                }
            }
        }
    }

    // MARK: SUBSCRIBE / SUBACK

    @Test(arguments: allVersions)
    func subscribe(version: ProtocolVersion) {
        let subs = [
            SubscribePacket.Subscription(filter: "a/+/c", options: .init(qos: .atMostOnce)),
            SubscribePacket.Subscription(filter: "#", options: .init(qos: .atLeastOnce)),
            SubscribePacket.Subscription(filter: "$SYS/broker/#", options: .init(qos: .exactlyOnce)),
            SubscribePacket.Subscription(filter: "$share/group/x/y", options: .init(qos: .atLeastOnce)),
        ]
        expectRoundTrip(.subscribe(SubscribePacket(packetID: 1, subscriptions: subs)), version)
        expectRoundTrip(.subscribe(SubscribePacket(packetID: 0xFFFF, subscriptions: [subs[0]])), version)
    }

    @Test func subscribeV5OptionsAndProperties() {
        var subs: [SubscribePacket.Subscription] = []
        for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            for noLocal in [false, true] {
                for rap in [false, true] {
                    for handling in [SubscribePacket.RetainHandling.sendOnSubscribe, .sendIfNew, .doNotSend] {
                        subs.append(.init(filter: "f/\(subs.count)", options: .init(
                            qos: qos, noLocal: noLocal, retainAsPublished: rap, retainHandling: handling)))
                    }
                }
            }
        }
        // No Local is only forbidden on shared subscriptions; the other options are allowed there.
        subs.append(.init(filter: "$share/g/f", options: .init(qos: .exactlyOnce, retainAsPublished: true, retainHandling: .doNotSend)))
        for props in [SubscribeProperties(), SubscribeProperties(subscriptionIdentifier: 1),
                      SubscribeProperties(subscriptionIdentifier: 268_435_455, userProperties: user),
                      SubscribeProperties(userProperties: user)] {
            expectRoundTrip(.subscribe(SubscribePacket(packetID: 3, subscriptions: subs, properties: props)), .v5)
        }
    }

    @Test(arguments: [ProtocolVersion.v3_1_1, .v5])
    func suback(version: ProtocolVersion) {
        let codes: [ReasonCode] = [.grantedQoS0, .grantedQoS1, .grantedQoS2, .unspecifiedError]
        expectRoundTrip(.suback(SubackPacket(packetID: 5, reasonCodes: codes)), version)
    }

    @Test func subackV3_1() {
        // MQTT 3.1 SUBACK carries granted QoS values only.
        expectRoundTrip(.suback(SubackPacket(packetID: 5, reasonCodes: [.grantedQoS0, .grantedQoS1, .grantedQoS2])), .v3_1)
    }

    @Test func subackV5ReasonCodesAndProperties() {
        let codes: [ReasonCode] = [.grantedQoS0, .grantedQoS2, .notAuthorized, .topicFilterInvalid, .quotaExceeded,
                                   .sharedSubscriptionsNotSupported, .subscriptionIdentifiersNotSupported,
                                   .wildcardSubscriptionsNotSupported]
        for props in [AckProperties(), AckProperties(reasonString: "r"), AckProperties(reasonString: "r", userProperties: user)] {
            expectRoundTrip(.suback(SubackPacket(packetID: 5, reasonCodes: codes, properties: props)), .v5)
        }
    }

    // MARK: UNSUBSCRIBE / UNSUBACK

    @Test(arguments: allVersions)
    func unsubscribe(version: ProtocolVersion) {
        expectRoundTrip(.unsubscribe(UnsubscribePacket(packetID: 2, filters: ["a/b", "+/#", "$share/g/t"])), version)
        expectRoundTrip(.unsubscribe(UnsubscribePacket(packetID: 2, filters: ["x"])), version)
    }

    @Test func unsubscribeV5UserProperties() {
        expectRoundTrip(.unsubscribe(UnsubscribePacket(packetID: 2, filters: ["a"], properties: .init(userProperties: user))), .v5)
    }

    @Test(arguments: allVersions)
    func unsuback(version: ProtocolVersion) {
        expectRoundTrip(.unsuback(UnsubackPacket(packetID: 2)), version)
    }

    @Test func unsubackV5ReasonCodesAndProperties() {
        let codes: [ReasonCode] = [.success, .noSubscriptionExisted, .notAuthorized, .topicFilterInvalid]
        for props in [AckProperties(), AckProperties(reasonString: "r"), AckProperties(userProperties: user)] {
            expectRoundTrip(.unsuback(UnsubackPacket(packetID: 2, reasonCodes: codes, properties: props)), .v5)
        }
    }

    // MARK: PINGREQ, PINGRESP, DISCONNECT, AUTH

    @Test(arguments: allVersions)
    func pingAndDisconnect(version: ProtocolVersion) {
        expectRoundTrip(.pingreq, version)
        expectRoundTrip(.pingresp, version)
        expectRoundTrip(.disconnect(DisconnectPacket()), version)
    }

    @Test func disconnectV5() {
        expectRoundTrip(.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)), .v5)
        expectRoundTrip(.disconnect(DisconnectPacket(reasonCode: .normalDisconnection, properties: .init(sessionExpiryInterval: 0))), .v5)
        expectRoundTrip(.disconnect(DisconnectPacket(reasonCode: .unspecifiedError, properties: fullDisconnectProperties())), .v5)
        // Each property on its own.
        expectRoundTrip(.disconnect(DisconnectPacket(properties: .init(sessionExpiryInterval: 7))), .v5)
        expectRoundTrip(.disconnect(DisconnectPacket(properties: .init(reasonString: "r"))), .v5)
        var userOnly = DisconnectProperties()
        userOnly.userProperties = user
        expectRoundTrip(.disconnect(DisconnectPacket(properties: userOnly)), .v5)
        // Server → client: may name another server, must not carry a session expiry (spec 3.14.2.2.2).
        var moved = DisconnectProperties(reasonString: "moved")
        moved.serverReference = "other:1883"
        moved.userProperties = user
        expectRoundTrip(.disconnect(DisconnectPacket(reasonCode: .serverMoved, properties: moved)), .v5, sender: .server)
        expectRoundTrip(.disconnect(DisconnectPacket(reasonCode: .serverShuttingDown)), .v5, sender: .server)
    }

    @Test func authV5() {
        expectRoundTrip(.auth(AuthPacket()), .v5)
        expectRoundTrip(.auth(AuthPacket(reasonCode: .continueAuthentication, properties: fullAuthProperties())), .v5)
        expectRoundTrip(.auth(AuthPacket(reasonCode: .reAuthenticate, properties: fullAuthProperties())), .v5)
        expectRoundTrip(.auth(AuthPacket(reasonCode: .success, properties: fullAuthProperties())), .v5, sender: .server)
        var methodOnly = AuthProperties()
        methodOnly.authenticationMethod = "PLAIN"
        expectRoundTrip(.auth(AuthPacket(reasonCode: .continueAuthentication, properties: methodOnly)), .v5, sender: .server)
    }
}

@testable import BastionServer
import BastionCore
import MQTTCodec
import NIOCore
import Testing
import BastionTesting

@Suite struct ConnectionHandlerTests {
    @Test func connackAdvertisesLimits() throws {
        var limits = BrokerLimits()
        limits.maximumInflight = 7
        limits.maximumPacketSize = 4096
        limits.maximumTopicAlias = 3
        let broker = EmbeddedBroker(limits: limits)
        let c = try broker.client()
        let ack = try c.connect("c1")
        #expect(ack?.reasonCode == .success)
        #expect(ack?.properties.receiveMaximum == 7)
        #expect(ack?.properties.maximumPacketSize == 4096)
        #expect(ack?.properties.topicAliasMaximum == 3)
    }

    @Test func publishReachesSubscriberOnTheSameLoop() throws {
        let broker = EmbeddedBroker()
        let sub = try broker.client()
        try sub.connect("sub")
        try sub.send(.subscribe(SubscribePacket(packetID: 1, subscriptions: [.init(filter: "a/+", options: .init(qos: .atLeastOnce))])))
        #expect(try sub.receive() == .suback(SubackPacket(packetID: 1, reasonCodes: [.grantedQoS1])))
        let pub = try broker.client()
        try pub.connect("pub", version: .v3_1_1)
        try pub.send(.publish(PublishPacket(topic: "a/b", payload: ByteBuffer(string: "hi"), qos: .atLeastOnce, packetID: 9)))
        #expect(try pub.receive() == .puback(PublishAckPacket(packetID: 9)))
        guard case .publish(let got) = try sub.receive() else { Issue.record("no message"); return }
        #expect(got.topic == "a/b")
        #expect(String(buffer: got.payload) == "hi")
        #expect(got.qos == .atLeastOnce)
    }

    @Test func secondConnectIsAProtocolError() throws {
        let broker = EmbeddedBroker()
        let c = try broker.client()
        try c.connect("c")
        try c.send(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c")))
        guard case .disconnect(let d) = try c.receive() else { Issue.record("no DISCONNECT"); return }
        #expect(d.reasonCode == .protocolError)
        #expect(!c.isActive)
    }

    @Test func unsupportedAuthenticationMethodGets0x8C() throws {
        let broker = EmbeddedBroker()
        let c = try broker.client()
        var p = ConnectProperties()
        p.authenticationMethod = "SCRAM-SHA-1"
        #expect(try c.connect("c", properties: p)?.reasonCode == .badAuthenticationMethod)
    }
}

/// A two-step challenge/response method for the hook tests.
struct ChallengeAuthenticator: EnhancedAuthenticator {
    func supports(method: String) -> Bool { method == "TEST-CHALLENGE" }
    func begin(method: String, clientID: String, username: String?, connection: ConnectionInfo) -> any AuthenticationExchange {
        Exchange(clientID: clientID)
    }

    final class Exchange: AuthenticationExchange {
        let clientID: String
        var challenged = false
        init(clientID: String) { self.clientID = clientID }

        func step(clientData: ByteBuffer?, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationStep> {
            eventLoop.makeSucceededFuture(answer(clientData))
        }

        private func answer(_ clientData: ByteBuffer?) -> AuthenticationStep {
            if !challenged {
                challenged = true
                return .continue(ByteBuffer(string: "challenge"))
            }
            guard clientData.map({ String(buffer: $0) }) == "response" else { return .failure(.notAuthorized) }
            return .success(ClientIdentity(clientID: clientID, username: "challenged"), ByteBuffer(string: "welcome"))
        }
    }
}

@Suite struct EnhancedAuthenticationTests {
    private func auth(_ code: ReasonCode, _ data: String?) -> MQTTPacket {
        var p = AuthProperties()
        p.authenticationMethod = "TEST-CHALLENGE"
        p.authenticationData = data.map { ByteBuffer(string: $0) }
        return .auth(AuthPacket(reasonCode: code, properties: p))
    }

    @Test func connectExchangeThenReauthentication() throws {
        let broker = EmbeddedBroker(enhancedAuthenticator: ChallengeAuthenticator())
        let c = try broker.client()
        var p = ConnectProperties()
        p.authenticationMethod = "TEST-CHALLENGE"
        try c.send(.connect(ConnectPacket(protocolVersion: .v5, clientID: "dev", properties: p)))
        #expect(try c.receive() == auth(.continueAuthentication, "challenge"))
        try c.send(auth(.continueAuthentication, "response"))
        guard case .connack(let ack) = try c.receive() else { Issue.record("no CONNACK"); return }
        #expect(ack.reasonCode == .success)
        #expect(ack.properties.authenticationMethod == "TEST-CHALLENGE")
        #expect(ack.properties.authenticationData == ByteBuffer(string: "welcome"))

        try c.send(auth(.reAuthenticate, nil))
        #expect(try c.receive() == auth(.continueAuthentication, "challenge"))
        try c.send(auth(.continueAuthentication, "response"))
        #expect(try c.receive() == auth(.success, "welcome"))
        #expect(c.isActive)
    }

    @Test func wrongResponseIsRefused() throws {
        let broker = EmbeddedBroker(enhancedAuthenticator: ChallengeAuthenticator())
        let c = try broker.client()
        var p = ConnectProperties()
        p.authenticationMethod = "TEST-CHALLENGE"
        try c.send(.connect(ConnectPacket(protocolVersion: .v5, clientID: "dev", properties: p)))
        _ = try c.receive()
        try c.send(auth(.continueAuthentication, "wrong"))
        guard case .connack(let ack) = try c.receive() else { Issue.record("no CONNACK"); return }
        #expect(ack.reasonCode == .notAuthorized)
        #expect(!c.isActive)
    }

    @Test func authWithoutMethodIsAProtocolError() throws {
        let broker = EmbeddedBroker(enhancedAuthenticator: ChallengeAuthenticator())
        let c = try broker.client()
        try c.connect("plain")
        try c.send(auth(.reAuthenticate, nil))
        guard case .disconnect(let d) = try c.receive() else { Issue.record("no DISCONNECT"); return }
        #expect(d.reasonCode == .protocolError)
    }
}

@Suite struct RoutingCacheTests {
    private func subscribe(_ c: EmbeddedClient, _ filter: String, id: UInt16) throws {
        try c.send(.subscribe(SubscribePacket(packetID: id, subscriptions: [.init(filter: filter, options: .init(qos: .atMostOnce))])))
        _ = try c.receive()
    }

    private func publish(_ c: EmbeddedClient, _ topic: String) throws {
        try c.send(.publish(PublishPacket(topic: topic, payload: ByteBuffer(string: "x"))))
    }

    /// The per-topic match cache must follow every subscription change.
    @Test func cachedMatchesFollowSubscribeAndUnsubscribe() throws {
        let broker = EmbeddedBroker()
        let a = try broker.client()
        try a.connect("a")
        let b = try broker.client()
        try b.connect("b")
        let pub = try broker.client()
        try pub.connect("pub")
        try subscribe(a, "t/#", id: 1)
        try publish(pub, "t/1")
        #expect(try a.receiveAll().count == 1)
        try subscribe(b, "t/+", id: 2)
        try publish(pub, "t/1")
        #expect(try a.receiveAll().count == 1)
        #expect(try b.receiveAll().count == 1, "a subscription added after the topic was cached")
        try a.send(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["t/#"])))
        _ = try a.receiveAll()
        try publish(pub, "t/1")
        #expect(try a.receiveAll().isEmpty, "an unsubscribed client still received from the cache")
        #expect(try b.receiveAll().count == 1)
    }
}

import BastionCore
import MQTTCodec
import NIOCore
import Testing

@Suite struct WillDecisionTests {
    @Test func decisions() {
        #expect(WillDecision.onConnectionEnd(hasWill: false, willDelay: 0, sessionExpiry: 0, normalDisconnect: false) == .discard)
        #expect(WillDecision.onConnectionEnd(hasWill: true, willDelay: 0, sessionExpiry: 100, normalDisconnect: true) == .discard)
        #expect(WillDecision.onConnectionEnd(hasWill: true, willDelay: 0, sessionExpiry: 100, normalDisconnect: false) == .publishNow)
        // The session ends with the connection: the will goes at once whatever the delay.
        #expect(WillDecision.onConnectionEnd(hasWill: true, willDelay: 30, sessionExpiry: 0, normalDisconnect: false) == .publishNow)
        #expect(WillDecision.onConnectionEnd(hasWill: true, willDelay: 30, sessionExpiry: 100, normalDisconnect: false) == .publishAfter(seconds: 30))
        #expect(WillDecision.onConnectionEnd(hasWill: true, willDelay: 300, sessionExpiry: 100, normalDisconnect: false) == .publishAfter(seconds: 100))
    }
}

@Suite struct KeepAliveTests {
    @Test func oneAndAHalfTimesTheInterval() {
        let t0 = NIODeadline.now()
        let k = KeepAlive(seconds: 10)
        #expect(!k.hasExpired(lastActivity: t0, now: t0 + .seconds(15)))
        #expect(k.hasExpired(lastActivity: t0, now: t0 + .milliseconds(15_001)))
        #expect(!KeepAlive(seconds: 0).hasExpired(lastActivity: t0, now: t0 + .hours(10)))
        #expect(KeepAlive(seconds: 0).checkInterval == nil)
    }
}

@Suite struct DeliveryTests {
    @Test func liveDeliveryDowngradesQoSAndHonoursRetainAsPublished() {
        let m = message("t", qos: .exactlyOnce, retain: true)
        let plain = Delivery(message: m, subscription: subscription("t", qos: .atLeastOnce))
        #expect(plain.qos == .atLeastOnce)
        #expect(!plain.retain, "without Retain As Published a live message goes out with retain 0")
        let rap = Delivery(message: m, subscription: subscription("t", qos: .atMostOnce, rap: true))
        #expect(rap.qos == .atMostOnce)
        #expect(rap.retain)
    }

    @Test func overlappingSubscriptionsMergeToMaximumQoSAndAllIdentifiers() {
        let m = message("a/b", qos: .exactlyOnce)
        var d = Delivery(message: m, subscription: subscription("a/+", qos: .atMostOnce, id: 1))
        d.merge(subscription("a/#", qos: .atLeastOnce, id: 2))
        d.merge(subscription("#", qos: .atMostOnce))
        #expect(d.qos == .atLeastOnce)
        #expect(d.subscriptionIdentifiers == [1, 2])
    }

    @Test func sharedDeliveriesRememberTheirFilter() {
        let d = Delivery(message: message("t"), subscription: subscription("$share/g/t"))
        #expect(d.sharedFilter == "$share/g/t")
        #expect(Delivery(message: message("t"), subscription: subscription("t")).sharedFilter == nil)
    }
}

@Suite struct SubscribeDecisionTests {
    private func packet(_ filters: [String], id: UInt32? = nil) -> SubscribePacket {
        SubscribePacket(packetID: 1, subscriptions: filters.map { .init(filter: $0, options: .init(qos: .atLeastOnce)) },
                        properties: SubscribeProperties(subscriptionIdentifier: id))
    }

    @Test func filtersAreBoundedByLengthAndBytesPerSession() {
        var limits = BrokerLimits()
        limits.maximumFilterLength = 10
        limits.maximumSubscriptionBytesPerClient = 12
        let existing = ["old/1": subscription("old/1")]  // 5 bytes held
        let outcomes = SubscribeDecision.evaluate(
            packet(["far/too/long/x", "abcd", "old/1", "efgh"], id: 1), existing: existing, limits: limits) { _ in true }
        // 14 bytes: too long; 5 + 4 = 9 fits; a re-subscription costs nothing; 9 + 4 = 13 > 12.
        #expect(outcomes.map(\.reasonCode) == [.topicFilterInvalid, .grantedQoS1, .grantedQoS1, .quotaExceeded])
    }

    @Test func grantsRefusalsAndNewness() {
        var limits = BrokerLimits()
        limits.maximumTopicLevels = 3
        limits.maximumSubscriptionsPerClient = 2
        let existing = ["old": subscription("old")]
        let outcomes = SubscribeDecision.evaluate(packet(["old", "a/b/c/d", "secret/x", "new1", "new2"], id: 9), existing: existing, limits: limits) {
            !$0.hasPrefix("secret")
        }
        #expect(outcomes.map(\.reasonCode) == [.grantedQoS1, .topicFilterInvalid, .notAuthorized, .grantedQoS1, .quotaExceeded])
        if case .granted(let s, let isNew) = outcomes[0] {
            #expect(!isNew)
            #expect(s.identifier == 9)
        } else { Issue.record("existing filter not granted") }
        if case .granted(_, let isNew) = outcomes[3] { #expect(isNew) }
    }

    @Test func retainHandling() {
        #expect(SubscribeDecision.sendsRetained(subscription("t", handling: .sendOnSubscribe), isNew: false))
        #expect(SubscribeDecision.sendsRetained(subscription("t", handling: .sendIfNew), isNew: true))
        #expect(!SubscribeDecision.sendsRetained(subscription("t", handling: .sendIfNew), isNew: false))
        #expect(!SubscribeDecision.sendsRetained(subscription("t", handling: .doNotSend), isNew: true))
        #expect(!SubscribeDecision.sendsRetained(subscription("$share/g/t"), isNew: true), "no retained messages on shared subscriptions")
    }
}

@Suite struct OutboundPublishEncoderTests {
    let now = NIODeadline.now()

    private func capabilities(maxPacket: Int = .max, aliases: Int = 0) -> ClientCapabilities {
        var c = ClientCapabilities()
        c.maximumPacketSize = maxPacket
        c.topicAliasMaximum = aliases
        return c
    }

    /// Encodes header + payload as the connection writes them and decodes the packet back.
    private func packet(_ encoder: inout OutboundPublishEncoder, _ delivery: Delivery, packetID: UInt16 = 0, dup: Bool = false) -> PublishPacket? {
        var bytes = ByteBuffer()
        guard encoder.writeHeader(for: delivery, packetID: packetID, dup: dup, now: now, into: &bytes) else { return nil }
        var payload = delivery.message.payload
        bytes.writeBuffer(&payload)
        var decoder = MQTTPacketDecoder(version: encoder.version, limits: DecoderLimits(maximumPacketSize: 1 << 20), sender: .server)
        guard case .publish(let p) = try? decoder.decodePacket(buffer: &bytes), bytes.readableBytes == 0 else {
            Issue.record("encoded bytes do not decode to one PUBLISH")
            return nil
        }
        return p
    }

    @Test func assignsAndReusesTopicAliases() {
        var encoder = OutboundPublishEncoder(version: .v5, client: capabilities(aliases: 1), serverAliasLimit: 10)
        let d = Delivery(message: message("plant/line1/temp", qos: .atMostOnce), qos: .atMostOnce, retain: false)
        let first = packet(&encoder, d)
        #expect(first?.topic == "plant/line1/temp")
        #expect(first?.properties.topicAlias == 1)
        let second = packet(&encoder, d)
        #expect(second?.topic == "")
        #expect(second?.properties.topicAlias == 1)
        let other = packet(&encoder, Delivery(message: message("other", qos: .atMostOnce), qos: .atMostOnce, retain: false))
        #expect(other?.topic == "other")
        #expect(other?.properties.topicAlias == nil, "the client allows one alias only")
    }

    @Test func noAliasesFor311() {
        var encoder = OutboundPublishEncoder(version: .v3_1_1, client: capabilities(aliases: 5), serverAliasLimit: 10)
        let p = packet(&encoder, Delivery(message: message("t", qos: .atMostOnce), qos: .atMostOnce, retain: true))
        #expect(p?.properties.topicAlias == nil)
        #expect(p?.retain == true)
    }

    @Test func packetsOverTheClientMaximumAreDiscarded() {
        var encoder = OutboundPublishEncoder(version: .v5, client: capabilities(maxPacket: 20), serverAliasLimit: 10)
        let small = Delivery(message: message("t", "1234", qos: .atMostOnce), qos: .atMostOnce, retain: false)
        let big = Delivery(message: message("t", String(repeating: "x", count: 100), qos: .atMostOnce), qos: .atMostOnce, retain: false)
        #expect(packet(&encoder, small) != nil)
        var bytes = ByteBuffer()
        #expect(!encoder.writeHeader(for: big, packetID: 0, dup: false, now: now, into: &bytes))
        #expect(bytes.readableBytes == 0, "nothing is written for a discarded message")
    }

    @Test func aliasIsDroppedWhenItWouldNotFit() {
        // 2 + 1 + 1 + 1 + 6 = 11 bytes without an alias; the alias would add 3.
        var encoder = OutboundPublishEncoder(version: .v5, client: capabilities(maxPacket: 12, aliases: 5), serverAliasLimit: 10)
        let d = Delivery(message: message("t", "123456", qos: .atMostOnce), qos: .atMostOnce, retain: false)
        let p = packet(&encoder, d)
        #expect(p?.topic == "t")
        #expect(p?.properties.topicAlias == nil)
    }

    @Test func expiryIsDecrementedAndIdentifiersAttached() {
        var encoder = OutboundPublishEncoder(version: .v5, client: capabilities(), serverAliasLimit: 0)
        let m = message("t", expiresAt: now + .milliseconds(7_500))
        let p = packet(&encoder, Delivery(message: m, qos: .atLeastOnce, retain: false, subscriptionIdentifiers: [3, 4]), packetID: 12, dup: true)
        #expect(p?.properties.messageExpiryInterval == 8)
        #expect(p?.properties.subscriptionIdentifiers == [3, 4])
        #expect(p?.packetID == 12)
        #expect(p?.dup == true)
        #expect(p?.qos == .atLeastOnce)
    }
}

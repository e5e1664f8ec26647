import BastionCore
import MQTTCodec
import NIOCore
import Testing

@Suite struct InboundPublishTests {
    private func publish(_ topic: String, qos: QoS = .atMostOnce, id: UInt16 = 0, alias: UInt16? = nil) -> PublishPacket {
        var p = PublishPacket(topic: topic, payload: ByteBuffer(string: "x"), qos: qos, packetID: id)
        p.properties.topicAlias = alias
        return p
    }

    @Test func topicAliasIsSetThenResolved() {
        var state = InboundPublishState(receiveMaximum: 10, topicAliasMaximum: 5)
        var qos2: Set<UInt16> = []
        #expect(state.received(publish("a/b", alias: 3), version: .v5, inboundQoS2: &qos2) == .route(topic: "a/b"))
        #expect(state.received(publish("", alias: 3), version: .v5, inboundQoS2: &qos2) == .route(topic: "a/b"))
        // Re-pointing an alias is allowed.
        #expect(state.received(publish("c", alias: 3), version: .v5, inboundQoS2: &qos2) == .route(topic: "c"))
        #expect(state.received(publish("", alias: 3), version: .v5, inboundQoS2: &qos2) == .route(topic: "c"))
    }

    @Test func invalidAliasesDisconnectWith0x94() {
        var state = InboundPublishState(receiveMaximum: 10, topicAliasMaximum: 5)
        var qos2: Set<UInt16> = []
        guard case .disconnect(.topicAliasInvalid, _) = state.received(publish("a", alias: 6), version: .v5, inboundQoS2: &qos2) else {
            Issue.record("alias above maximum accepted"); return
        }
        guard case .disconnect(.topicAliasInvalid, _) = state.received(publish("", alias: 2), version: .v5, inboundQoS2: &qos2) else {
            Issue.record("unknown alias accepted"); return
        }
        var noAliases = InboundPublishState(receiveMaximum: 10, topicAliasMaximum: 0)
        guard case .disconnect(.topicAliasInvalid, _) = noAliases.received(publish("a", alias: 1), version: .v5, inboundQoS2: &qos2) else {
            Issue.record("alias accepted with maximum 0"); return
        }
    }

    @Test func emptyTopicWithoutAliasIsAProtocolError() {
        var state = InboundPublishState(receiveMaximum: 10, topicAliasMaximum: 5)
        var qos2: Set<UInt16> = []
        guard case .disconnect(.protocolError, _) = state.received(publish(""), version: .v5, inboundQoS2: &qos2) else {
            Issue.record("empty topic accepted"); return
        }
    }

    @Test func receiveMaximumCountsUnacknowledgedQoS1And2() {
        var state = InboundPublishState(receiveMaximum: 2, topicAliasMaximum: 0)
        var qos2: Set<UInt16> = []
        #expect(state.received(publish("t", qos: .atLeastOnce, id: 1), version: .v5, inboundQoS2: &qos2) == .route(topic: "t"))
        #expect(state.received(publish("t", qos: .exactlyOnce, id: 2), version: .v5, inboundQoS2: &qos2) == .route(topic: "t"))
        // QoS 0 never counts.
        #expect(state.received(publish("t"), version: .v5, inboundQoS2: &qos2) == .route(topic: "t"))
        guard case .disconnect(.receiveMaximumExceeded, _) = state.received(publish("t", qos: .atLeastOnce, id: 3), version: .v5, inboundQoS2: &qos2) else {
            Issue.record("third unacknowledged message accepted"); return
        }
        state.acknowledgedQoS1()
        #expect(state.received(publish("t", qos: .atLeastOnce, id: 3), version: .v5, inboundQoS2: &qos2) == .route(topic: "t"))
    }

    @Test func repeatedQoS2PublishIsNotForwardedTwice() {
        var state = InboundPublishState(receiveMaximum: 10, topicAliasMaximum: 0)
        var qos2: Set<UInt16> = []
        #expect(state.received(publish("t", qos: .exactlyOnce, id: 7), version: .v3_1_1, inboundQoS2: &qos2) == .route(topic: "t"))
        #expect(state.received(publish("t", qos: .exactlyOnce, id: 7), version: .v3_1_1, inboundQoS2: &qos2) == .duplicateQoS2)
        #expect(InboundPublishState.released(7, inboundQoS2: &qos2))
        #expect(!InboundPublishState.released(7, inboundQoS2: &qos2))
        // After PUBREL the id starts a new message.
        #expect(state.received(publish("t", qos: .exactlyOnce, id: 7), version: .v3_1_1, inboundQoS2: &qos2) == .route(topic: "t"))
    }
}

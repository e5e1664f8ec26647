@testable import BastionCore
import MQTTCodec
import NIOCore
import Testing

/// The session machine without sockets: each test feeds events and checks the actions.
@Suite struct SessionMachineTests {
    let registry = SessionRegistry()

    func connected(version: ProtocolVersion = .v5, limits: BrokerLimits = BrokerLimits(), durable: Bool = false, expiry: UInt32 = 0) -> SessionMachine {
        var machine = SessionMachine(configuration: .init(limits: limits, durable: durable))
        var connect = ConnectPacket(protocolVersion: version, clientID: "dev")
        connect.cleanStart = true
        if version == .v5 { connect.properties.sessionExpiryInterval = expiry }
        guard case .authenticate = machine.connectReceived(connect, supportsAuthenticationMethod: { _ in false }, makeClientID: { "x" }) else {
            fatalError("not accepted")
        }
        machine.attached(SessionState(clientID: "dev", expiryInterval: expiry), sessionPresent: false)
        _ = machine.connected()
        return machine
    }

    func publish(_ topic: String, qos: QoS, id: UInt16 = 1) -> PublishPacket {
        PublishPacket(topic: topic, payload: ByteBuffer(string: "p"), qos: qos, packetID: id)
    }

    @Test func theFirstPacketMustBeConnectAndPacketsBeforeConnackWait() {
        var machine = SessionMachine(configuration: .init(limits: BrokerLimits()))
        guard case .violation(.protocolError, _, beforeConnect: true) = machine.received(.pingreq) else { Issue.record("not refused"); return }
        var fresh = SessionMachine(configuration: .init(limits: BrokerLimits()))
        guard case .handle = fresh.received(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c"))) else { Issue.record("CONNECT refused"); return }
        _ = fresh.connectReceived(ConnectPacket(protocolVersion: .v5, clientID: "c"), supportsAuthenticationMethod: { _ in false }, makeClientID: { "x" })
        guard case .deferred = fresh.received(.pingreq) else { Issue.record("not deferred"); return }
        fresh.attached(SessionState(clientID: "c", expiryInterval: 0), sessionPresent: false)
        let done = fresh.connected()
        #expect(done?.pendingPackets.count == 1)
        #expect(done?.connack.reasonCode == .success)
        guard case .violation(.protocolError, _, _) = fresh.received(.connect(ConnectPacket(protocolVersion: .v5, clientID: "c"))) else {
            Issue.record("second CONNECT accepted"); return
        }
    }

    @Test func aDeniedPublishIsAcknowledgedWith0x87In5AndSuccessIn311() {
        var v5 = connected()
        guard case .denied(_, let ack?, disconnect: false) = v5.publishReceived(publish("secret", qos: .atLeastOnce), mayPublish: { _ in false }, messageID: 1, now: .now()),
              case .puback(let p) = ack else { Issue.record("no denial"); return }
        #expect(p.reasonCode == .notAuthorized)
        var v3 = connected(version: .v3_1_1)
        guard case .denied(_, let ack3?, _) = v3.publishReceived(publish("secret", qos: .atLeastOnce), mayPublish: { _ in false }, messageID: 1, now: .now()),
              case .puback(let p3) = ack3 else { Issue.record("no denial"); return }
        #expect(p3.reasonCode == .success, "3.1.1 has no failure code for PUBACK")
    }

    @Test func aRepeatedQoS2PublishIsAcknowledgedNotRoutedTwice() {
        var machine = connected()
        guard case .route = machine.publishReceived(publish("t", qos: .exactlyOnce, id: 7), mayPublish: { _ in true }, messageID: 1, now: .now()) else {
            Issue.record("not routed"); return
        }
        guard case .acknowledge(.pubrec) = machine.publishReceived(publish("t", qos: .exactlyOnce, id: 7), mayPublish: { _ in true }, messageID: 2, now: .now()) else {
            Issue.record("routed twice"); return
        }
        #expect(machine.pubrelReceived(PublishAckPacket(packetID: 7))?.known == true)
        #expect(machine.pubrelReceived(PublishAckPacket(packetID: 7))?.known == false)
    }

    @Test func theRoutingOutcomeChoosesTheAcknowledgementReason() {
        var machine = connected()
        let p = publish("t", qos: .atLeastOnce)
        for (outcome, code) in [(RouteOutcome(matched: 0, reached: 0), ReasonCode.noMatchingSubscribers),
                                (RouteOutcome(matched: 2, reached: 0, queueFull: 2), .quotaExceeded),
                                (RouteOutcome(matched: 2, reached: 1, queueFull: 1), .success)] {
            guard case .puback(let ack)? = machine.acknowledgement(for: p, reason: outcome.reasonCode, reasonString: nil) else {
                Issue.record("no PUBACK"); return
            }
            #expect(ack.reasonCode == code)
        }
    }

    @Test func receiveMaximumIsEnforcedUntilAcknowledgementsLeave() {
        var limits = BrokerLimits()
        limits.maximumInflight = 2
        var machine = connected(limits: limits)
        for id in 1...2 {
            guard case .route = machine.publishReceived(publish("t", qos: .atLeastOnce, id: UInt16(id)), mayPublish: { _ in true }, messageID: 1, now: .now()) else {
                Issue.record("refused early"); return
            }
        }
        guard case .violation(.receiveMaximumExceeded, _) = machine.publishReceived(publish("t", qos: .atLeastOnce, id: 3), mayPublish: { _ in true }, messageID: 1, now: .now()) else {
            Issue.record("Receive Maximum not enforced"); return
        }
    }

    @Test func acknowledgementsLeaveInArrivalOrderOnceStored() {
        var queue = AcknowledgementQueue()
        let ack = { (id: UInt16) in MQTTPacket.puback(PublishAckPacket(packetID: id)) }
        guard case .waitsForCommit(let first) = queue.enqueue(ack(1), waitsForStore: true),
              case .waitsForCommit(let second) = queue.enqueue(ack(2), waitsForStore: true) else { Issue.record("not queued"); return }
        #expect(queue.enqueue(ack(3), waitsForStore: false) == .behind, "QoS 1 with nothing to store waits behind stored ones")
        // The second commit completes first: nothing leaves before the first.
        #expect(queue.committed(second, failed: false, version: .v5).isEmpty)
        let released = queue.committed(first, failed: false, version: .v5)
        let ids = released.compactMap { release -> UInt16? in
            if case .send(.puback(let p)) = release { return p.packetID }
            return nil
        }
        #expect(ids == [1, 2, 3])
        #expect(queue.enqueue(ack(4), waitsForStore: false) == .sendNow)
    }

    @Test func aFailedCommitIs0x97For5AndWithheldFor311() {
        var queue = AcknowledgementQueue()
        guard case .waitsForCommit(let s) = queue.enqueue(.puback(PublishAckPacket(packetID: 1)), waitsForStore: true) else { return }
        guard case .sendFailed = queue.committed(s, failed: true, version: .v5).first else { Issue.record("not failed"); return }
        var old = AcknowledgementQueue()
        guard case .waitsForCommit(let t) = old.enqueue(.puback(PublishAckPacket(packetID: 1)), waitsForStore: true) else { return }
        guard case .withhold = old.committed(t, failed: true, version: .v3_1_1).first else { Issue.record("sent to 3.1.1"); return }
        var machine = connected()
        guard case .puback(let p) = machine.failedAcknowledgement(.puback(PublishAckPacket(packetID: 1))) else { return }
        #expect(p.reasonCode == .quotaExceeded)
    }

    @Test func gatedSendsLeaveInOrderOnceStored() {
        var queue = AcknowledgementQueue()
        let a = queue.gate(.pubrel(1))
        let b = queue.gate(.pubrel(2))
        #expect(queue.gatedCommitted(b).isEmpty)
        let released = queue.gatedCommitted(a).compactMap { release -> UInt16? in
            if case .pubrel(let id) = release { return id }
            return nil
        }
        #expect(released == [1, 2])
    }

    @Test func deliveriesFillTheWindowThenQueueAndAcknowledgementsMoveThemOn() {
        var limits = BrokerLimits()
        limits.maximumInflight = 1
        var machine = connected(limits: limits)
        let delivery = Delivery(message: message("t"), qos: .atLeastOnce, retain: false)
        guard case .transmit(let first) = machine.deliver(delivery, now: .now()) else { Issue.record("not sent"); return }
        guard case .queued = machine.deliver(delivery, now: .now()) else { Issue.record("not queued"); return }
        #expect(machine.pubackReceived(first.packetID) != nil)
        #expect(machine.drainQueue(now: .now()).ready.count == 1)
    }

    @Test func aPersistentSessionsReleaseIsStoredBeforePubrel() {
        var machine = connected(durable: true, expiry: 60)
        let delivery = Delivery(message: message("t", qos: .exactlyOnce), qos: .exactlyOnce, retain: false)
        guard case .transmit(let outgoing) = machine.deliver(delivery, now: .now()) else { return }
        guard case .release(_, let stored?)? = machine.pubrecReceived(PublishAckPacket(packetID: outgoing.packetID), persistent: true) else {
            Issue.record("release not gated"); return
        }
        #expect(stored == delivery.message.id)
        #expect(machine.pubcompReceived(outgoing.packetID) != nil)
    }

    @Test func disconnectSetsExpiryAndWillRulesAndTheEndHandsBackSharedDeliveries() {
        var machine = connected(expiry: 10)
        #expect(machine.disconnectReceived(DisconnectPacket(reasonCode: .normalDisconnection)) != .violation(.protocolError, ""))
        #expect(machine.willSuppressed && machine.cleanDisconnect)
        var zero = connected(expiry: 0)
        var raise = DisconnectPacket(reasonCode: .normalDisconnection)
        raise.properties.sessionExpiryInterval = 100
        guard case .violation(.protocolError, _) = zero.disconnectReceived(raise) else { Issue.record("0 → 100 allowed"); return }

        var shared = connected()
        let d = Delivery(message: message("t"), subscription: subscription("$share/g/t", qos: .atLeastOnce))
        _ = shared.deliver(d, now: .now())
        shared.close()
        let ending = shared.connectionEnded(willMessageID: { 1 }, now: .now())
        #expect(ending?.shared.count == 1)
        #expect(shared.state == nil)
    }

    @Test func aWillIsPublishedAtOnceDelayedOrNotAtAll() {
        var will = ConnectPacket.Will(topic: "w", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce, retain: false)
        guard case .publishNow(let m) = Will.plan(will, version: .v5, sessionExpiry: 0, suppressed: false, publisher: "c", messageID: { 9 }, now: .now()) else {
            Issue.record("not at once"); return
        }
        #expect(m.topic == "w" && m.id == 9)
        will.properties.willDelayInterval = 30
        guard case .publishAt = Will.plan(will, version: .v5, sessionExpiry: 60, suppressed: false, publisher: "c", messageID: { 9 }, now: .now()) else {
            Issue.record("not delayed"); return
        }
        guard case .none = Will.plan(will, version: .v5, sessionExpiry: 60, suppressed: true, publisher: "c", messageID: { 9 }, now: .now()) else {
            Issue.record("sent after a normal DISCONNECT"); return
        }
    }

    @Test func takeoverGivesUpAfterRepeatedAttempts() {
        #expect(Takeover.next(after: 0) == .displace(attempt: 1))
        #expect(Takeover.next(after: Takeover.maximumAttempts) == .giveUp)
    }
}

import BastionCore
import MQTTCodec
import NIOCore
import Testing

@Suite struct OutboundFlowTests {
    let now = NIODeadline.now()

    private func delivery(_ n: Int, qos: QoS = .atLeastOnce, shared: String? = nil) -> Delivery {
        Delivery(message: message("t/\(n)", "payload", qos: qos), qos: qos, retain: false, sharedFilter: shared)
    }

    private func sentID(_ result: OutboundFlow.SubmitResult) -> UInt16? {
        if case .send(let o) = result { return o.packetID }
        return nil
    }

    @Test func windowLimitsInflightAndQueuesTheRest() {
        var flow = OutboundFlow()
        let limits = BrokerLimits()
        #expect(sentID(flow.submit(delivery(1), window: 2, limits: limits, now: now)) == 1)
        #expect(sentID(flow.submit(delivery(2), window: 2, limits: limits, now: now)) == 2)
        guard case .queued = flow.submit(delivery(3), window: 2, limits: limits, now: now) else { Issue.record("not queued"); return }
        #expect(flow.inflight.count == 2)
        #expect(flow.queue.count == 1)
        let r1 = flow.acknowledged(1)
        #expect(r1)
        var expired: [Delivery] = []
        let next = flow.drain(window: 2, now: now, expired: &expired)
        #expect(next.map(\.packetID) == [3])
        #expect(next.first?.delivery.message.topic == "t/3")
        #expect(flow.queue.isEmpty)
    }

    @Test func packetIDsSkipThoseInUseAndWrap() {
        var flow = OutboundFlow()
        let limits = BrokerLimits()
        // Keep id 1 in flight while cycling through the whole id space.
        #expect(sentID(flow.submit(delivery(0), window: 10, limits: limits, now: now)) == 1)
        var last: UInt16 = 1
        for n in 1..<65535 {
            guard let id = sentID(flow.submit(delivery(n), window: 10, limits: limits, now: now)) else { Issue.record("no id"); return }
            #expect(id != 0 && id != 1)
            last = id
            let r2 = flow.acknowledged(id)
            #expect(r2)
        }
        #expect(last == 65535)
        // After 65535 the next free id is 2, since 1 is still in flight.
        #expect(sentID(flow.submit(delivery(9), window: 10, limits: limits, now: now)) == 2)
    }

    @Test func qos2Phases() {
        var flow = OutboundFlow()
        let id = sentID(flow.submit(delivery(1, qos: .exactlyOnce), window: 5, limits: BrokerLimits(), now: now))!
        let r3 = flow.completed(id)
        #expect(!r3, "PUBCOMP before PUBREC is not accepted")
        let r4 = flow.received(id)
        #expect(r4)
        let r5 = flow.acknowledged(id)
        #expect(!r5, "a PUBACK does not finish a QoS 2 flow in the PUBREL phase")
        #expect(flow.redelivery().first?.entry.phase == .awaitingCompletion)
        let r6 = flow.completed(id)
        #expect(r6)
        #expect(flow.isIdle)
    }

    @Test func unknownAcknowledgementsAreRejected() {
        var flow = OutboundFlow()
        let r7 = flow.acknowledged(7)
        #expect(!r7)
        let r8 = flow.received(7)
        #expect(!r8)
        let r9 = flow.completed(7)
        #expect(!r9)
        let id = sentID(flow.submit(delivery(1, qos: .atLeastOnce), window: 5, limits: BrokerLimits(), now: now))!
        let r10 = flow.received(id)
        #expect(!r10, "PUBREC for a QoS 1 message is not a valid flow")
    }

    @Test func redeliveryKeepsOriginalOrder() {
        var flow = OutboundFlow()
        for n in 1...5 { _ = flow.submit(delivery(n), window: 10, limits: BrokerLimits(), now: now) }
        let r11 = flow.acknowledged(3)
        #expect(r11)
        #expect(flow.redelivery().map { $0.entry.delivery.message.topic } == ["t/1", "t/2", "t/4", "t/5"])
    }

    @Test func dropNewestKeepsQueuedMessages() {
        var flow = OutboundFlow()
        var limits = BrokerLimits()
        limits.maximumQueuedMessages = 2
        let r12 = flow.enqueue(delivery(1), limits: limits).queued
        #expect(r12)
        let r13 = flow.enqueue(delivery(2), limits: limits).queued
        #expect(r13)
        let r14 = flow.enqueue(delivery(3), limits: limits).queued
        #expect(!r14)
        #expect(flow.queue.map { $0.message.topic } == ["t/1", "t/2"])
    }

    @Test func dropOldestMakesRoom() {
        var flow = OutboundFlow()
        var limits = BrokerLimits()
        limits.maximumQueuedMessages = 2
        limits.queueDropPolicy = .dropOldest
        for n in 1...3 {
            let result = flow.enqueue(delivery(n), limits: limits)
            #expect(result.queued)
            #expect(result.evicted.map(\.message.topic) == (n == 3 ? ["t/1"] : []))
            #expect(result.startedDropping == (n == 3))
        }
        #expect(flow.queue.map { $0.message.topic } == ["t/2", "t/3"])
    }

    @Test func aDropEpisodeStartsOnceAndEndsWhenTheQueueDrains() {
        var flow = OutboundFlow()
        var limits = BrokerLimits()
        limits.maximumQueuedMessages = 1
        #expect(!flow.enqueue(delivery(1), limits: limits).dropped)
        let first = flow.enqueue(delivery(2), limits: limits)
        #expect(first.dropped && first.startedDropping)
        let second = flow.enqueue(delivery(3), limits: limits)
        #expect(second.dropped && !second.startedDropping, "one alert per episode")
        var expired: [Delivery] = []
        #expect(flow.drain(window: 5, now: now, expired: &expired).count == 1)
        #expect(!flow.isDropping)
        _ = flow.enqueue(delivery(4), limits: limits)
        #expect(flow.enqueue(delivery(5), limits: limits).startedDropping)
    }

    @Test func queuedBytesCap() {
        var flow = OutboundFlow()
        var limits = BrokerLimits()
        limits.maximumQueuedBytes = 20  // each delivery is 3 + 7 = 10 bytes
        let r15 = flow.enqueue(delivery(1), limits: limits).queued
        #expect(r15)
        let r16 = flow.enqueue(delivery(2), limits: limits).queued
        #expect(r16)
        let r17 = flow.enqueue(delivery(3), limits: limits).queued
        #expect(!r17)
        #expect(flow.queuedBytes == 20)
    }

    @Test func expiredMessagesAreNotSent() {
        var flow = OutboundFlow()
        let stale = Delivery(message: message("t", qos: .atLeastOnce, expiresAt: now - .seconds(1)), qos: .atLeastOnce, retain: false)
        guard case .dropped(.expired, _) = flow.submit(stale, window: 5, limits: BrokerLimits(), now: now) else {
            Issue.record("expired message was not dropped"); return
        }
        let r18 = flow.enqueue(stale, limits: BrokerLimits()).queued
        #expect(r18)
        var expired: [Delivery] = []
        #expect(flow.drain(window: 5, now: now, expired: &expired).isEmpty)
        #expect(expired.count == 1)
    }

    @Test func sharedDeliveriesCanBeHandedOn() {
        var flow = OutboundFlow()
        _ = flow.submit(delivery(1, shared: "$share/g/t/#"), window: 1, limits: BrokerLimits(), now: now)
        _ = flow.submit(delivery(2), window: 1, limits: BrokerLimits(), now: now)
        _ = flow.submit(delivery(3, shared: "$share/g/t/#"), window: 1, limits: BrokerLimits(), now: now)
        let taken = flow.takeSharedDeliveries()
        #expect(taken.map { $0.message.topic } == ["t/1", "t/3"])
        #expect(flow.inflight.isEmpty)
        #expect(flow.queue.map { $0.message.topic } == ["t/2"])
    }
}

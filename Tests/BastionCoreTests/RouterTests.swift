@testable import BastionCore
import MQTTCodec
import NIOCore
import Testing

/// Records what the router hands over, without any IO.
final class RecordingSink: RouteSink {
    var handedOff: [(ConnectionRef, Delivery)] = []
    var drops: [DropReason: Int] = [:]
    var dropping: [String] = []
    var queued = 0

    func handOff(_ delivery: Delivery, to connection: any ConnectionRef) { handedOff.append((connection, delivery)) }
    func stored(_ message: Message) -> StoredMessage { StoreMapping.stored(message, now: .now(), wallNow: 0) }
    func dropped(_ reason: DropReason, count: Int) { drops[reason, default: 0] += count }
    func startedDropping(_ session: SessionHandle) { dropping.append(session.clientID) }
    func queuedOffline() { queued += 1 }
}

@Suite struct RouterTests {
    let registry = SessionRegistry()

    func online(_ id: String, expiry: UInt32 = 0) -> (SessionHandle, FakeConnection) {
        let connection = FakeConnection()
        guard case .attached(let handle, _, _, _) = registry.connect(
            clientID: id, owner: "user:\(id)", cleanStart: true, expiryInterval: expiry, connection: connection) else {
            fatalError("not attached")
        }
        return (handle, connection)
    }

    func offline(_ id: String, expiry: UInt32 = 3600) -> SessionHandle {
        registry.restore(SessionState(clientID: id, expiryInterval: expiry), owner: "user:\(id)", disconnectedAt: .now())
    }

    @Test func overlappingSubscriptionsOfOneSessionGiveOneCopyAtTheHighestQoSWithEveryIdentifier() {
        let router = MessageRouter(limits: BrokerLimits(), durable: false)
        let (a, _) = online("a")
        router.apply([.add(a, subscription("plant/#", qos: .atMostOnce, id: 1)), .add(a, subscription("plant/+/temp", qos: .atLeastOnce, id: 2))])
        let sink = RecordingSink()
        var ops: [StoreOperation] = []
        let outcome = router.route(message("plant/l1/temp", qos: .exactlyOnce), from: nil, operations: &ops, sink: sink)
        #expect(outcome == RouteOutcome(matched: 1, reached: 1))
        #expect(sink.handedOff.count == 1)
        #expect(sink.handedOff[0].1.qos == .atLeastOnce)
        #expect(sink.handedOff[0].1.subscriptionIdentifiers.sorted() == [1, 2])
        #expect(ops.isEmpty, "nothing is stored without a durable store")
    }

    @Test func noLocalSkipsThePublishersOwnSubscription() {
        let router = MessageRouter(limits: BrokerLimits(), durable: false)
        let (a, _) = online("a")
        let (b, _) = online("b")
        router.apply([.add(a, subscription("t", noLocal: true)), .add(b, subscription("t"))])
        let sink = RecordingSink()
        var ops: [StoreOperation] = []
        #expect(router.route(message("t"), from: a, operations: &ops, sink: sink).reached == 1)
        #expect(sink.handedOff.map { $0.1.message.topic } == ["t"])
        #expect(sink.handedOff.first.map { $0.0 === b.connection } == true)
    }

    @Test func oneMemberPerSharedGroupConnectedMembersFirstRoundRobin() {
        let router = MessageRouter(limits: BrokerLimits(), durable: false)
        let (a, _) = online("a")
        let (b, _) = online("b")
        let c = offline("c")
        router.apply([.add(a, subscription("$share/g/t")), .add(b, subscription("$share/g/t")), .add(c, subscription("$share/g/t"))])
        let sink = RecordingSink()
        var ops: [StoreOperation] = []
        for _ in 0..<4 { router.route(message("t"), from: nil, operations: &ops, sink: sink) }
        let receivers = sink.handedOff.map { $0.0 === a.connection ? "a" : "b" }
        #expect(receivers.filter { $0 == "a" }.count == 2 && receivers.filter { $0 == "b" }.count == 2)
        #expect(sink.queued == 0, "the offline member is skipped while others are connected")
    }

    @Test func persistentSessionsGetTheBodyOnceAndAnEnqueueEach() {
        let router = MessageRouter(limits: BrokerLimits(), durable: true)
        let (a, _) = online("a", expiry: 60)
        let b = offline("b")
        router.apply([.add(a, subscription("t")), .add(b, subscription("t"))])
        let sink = RecordingSink()
        var ops: [StoreOperation] = []
        let m = message("t")
        #expect(router.route(m, from: nil, operations: &ops, sink: sink).reached == 2)
        guard ops.count == 3, case .putMessage(let body, isNew: true) = ops[0] else { Issue.record("\(ops)"); return }
        #expect(body.id == m.id)
        #expect(ops.dropFirst().allSatisfy { if case .enqueue = $0 { true } else { false } })
        #expect(sink.queued == 1)
    }

    @Test func aMessageNoMatchedSessionCanKeepIsQuotaExceeded() {
        var limits = BrokerLimits()
        limits.maximumQueuedMessages = 1
        let router = MessageRouter(limits: limits, durable: false)
        let b = offline("b")
        router.apply([.add(b, subscription("t"))])
        let sink = RecordingSink()
        var ops: [StoreOperation] = []
        #expect(router.route(message("t"), from: nil, operations: &ops, sink: sink).reasonCode == .success)
        let full = router.route(message("t"), from: nil, operations: &ops, sink: sink)
        #expect(full == RouteOutcome(matched: 1, reached: 0, queueFull: 1))
        #expect(full.reasonCode == .quotaExceeded)
        #expect(sink.drops[.queueFull] == 1)
        #expect(sink.dropping == ["b"])
        #expect(router.route(message("nobody"), from: nil, operations: &ops, sink: sink).reasonCode == .noMatchingSubscribers)
    }

    @Test func aDepartedSharedMembersDeliveryGoesToAnotherMemberAndLeavesItsStore() {
        let router = MessageRouter(limits: BrokerLimits(), durable: true)
        let (a, _) = online("a")
        let departed = offline("d")
        router.apply([.add(a, subscription("$share/g/t", qos: .atLeastOnce)), .add(departed, subscription("$share/g/t", qos: .atLeastOnce))])
        let sink = RecordingSink()
        var ops: [StoreOperation] = []
        let delivery = Delivery(message: message("t"), subscription: subscription("$share/g/t", qos: .atLeastOnce))
        let target = router.handOn(delivery, from: departed, operations: &ops, sink: sink)
        #expect(target === a)
        #expect(sink.handedOff.count == 1)
        #expect(ops.contains { if case .dequeue(clientID: "d", _) = $0 { true } else { false } })
    }

    @Test func theMatchCacheIsBoundedByTopicBytes() {
        let router = MessageRouter(limits: BrokerLimits(), durable: false)
        let (a, _) = online("a")
        router.apply([.add(a, subscription("#"))])
        let sink = RecordingSink()
        var ops: [StoreOperation] = []
        let long = String(repeating: "x", count: 60_000)
        for i in 0..<500 { router.route(message("\(long)/\(i)", qos: .atMostOnce), from: nil, operations: &ops, sink: sink) }
        #expect(sink.handedOff.count == 500)
    }
}

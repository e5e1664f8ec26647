import BastionCore
import BastionStore
import Foundation
import MQTTCodec
import NIOCore
import Synchronization
import Testing
import BastionTesting

/// The `DurableStore` contract, run against both implementations. For SQLite every `reload` closes
/// the store and opens the file again, so these are round trips through the disk.
@Suite("DurableStore behaviour")
struct StoreBehaviourTests {
    let now = Date().timeIntervalSince1970

    @Test("a saved session round-trips with its subscriptions", arguments: StoreKind.allCases)
    func sessionRoundTrip(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        let online = Sample.session("online", expiry: 60, subscriptions: Sample.subscriptions)
        let offline = Sample.session("offline", expiry: .max, disconnectedAt: now - 5, subscriptions: [])
        try await h.commit([.saveSession(online), .saveSession(offline)])

        let state = try h.reload(now: now)
        #expect(state.sessions.map(\.record) == [offline, online])
        #expect(state.sessions.allSatisfy { $0.deliveries.isEmpty && $0.inboundQoS2.isEmpty && $0.pendingWill == nil })
    }

    @Test("saving a session again replaces its record", arguments: StoreKind.allCases)
    func sessionReplace(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("c", subscriptions: Sample.subscriptions))])
        try await h.commit([.putMessage(Sample.message(1)), .enqueue(clientID: "c", delivery: Sample.delivery(1))])
        let replaced = Sample.session("c", expiry: 10, disconnectedAt: now, subscriptions: [Sample.subscriptions[0]])
        try await h.commit([.saveSession(replaced)])

        let state = try h.reload(now: now)
        #expect(state.sessions.map(\.record) == [replaced])
        // The queue belongs to the session, not to the record.
        #expect(state.sessions.first?.deliveries.map(\.messageID) == [1])
    }

    @Test("messages and deliveries round-trip, in queue order per session", arguments: StoreKind.allCases)
    func deliveriesRoundTrip(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a")), .saveSession(Sample.session("b"))])
        let messages = (1...6).map { Sample.message(MessageID($0), topic: "t/\($0)", payload: "body \($0)", richProperties: $0 % 2 == 0) }
        // Interleaved and not in id order: the queue order is the enqueue order.
        for id in [4, 1, 6, 2, 5, 3] {
            let m = messages[id - 1]
            try await h.commit([.putMessage(m), .enqueue(clientID: id % 2 == 0 ? "a" : "b", delivery: Sample.delivery(m.id))])
        }
        let special = StoredDelivery(
            messageID: 1, qos: .exactlyOnce, retain: true, subscriptionIdentifiers: [1, 268_435_455],
            sharedFilter: "$share/g/t/#", packetID: 9, released: true)
        try await h.commit([.enqueue(clientID: "a", delivery: special)])

        let state = try h.reload(now: now)
        let a = try #require(state.sessions.first { $0.record.clientID == "a" })
        let b = try #require(state.sessions.first { $0.record.clientID == "b" })
        #expect(a.deliveries.map(\.messageID) == [4, 6, 2, 1])
        #expect(a.deliveries.last == special)
        #expect(b.deliveries.map(\.messageID) == [1, 5, 3])
        #expect(b.deliveries.first == Sample.delivery(1))
        #expect(state.messages.count == 6)
        for m in messages { #expect(state.messages[m.id] == m) }
    }

    @Test("submission order is kept when many submissions are in flight at once", arguments: StoreKind.allCases)
    func orderUnderLoad(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("c"))])
        let log = CompletionLog()
        let count = 500
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let remaining = AtomicCounter(count)
            for i in 1...count {
                h.store.submit([.putMessage(Sample.message(MessageID(i))), .enqueue(clientID: "c", delivery: Sample.delivery(MessageID(i)))]) {
                    log.record(i, $0)
                    if remaining.decrement() == 0 { done.resume() }
                }
            }
        }
        #expect(log.count == count)
        #expect(log.failures.isEmpty)
        let state = try h.reload(now: now)
        #expect(state.sessions.first?.deliveries.map(\.messageID) == (1...count).map(MessageID.init))
    }

    @Test("QoS flow progress (packet id, released, dequeue) round-trips", arguments: StoreKind.allCases)
    func flowProgress(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("c"))])
        for id: MessageID in 1...4 {
            try await h.commit([
                .putMessage(Sample.message(id, qos: .exactlyOnce)),
                .enqueue(clientID: "c", delivery: Sample.delivery(id, qos: .exactlyOnce)),
            ])
        }
        try await h.commit([.assignPacketID(clientID: "c", messageID: 1, packetID: 11)])
        try await h.commit([.assignPacketID(clientID: "c", messageID: 2, packetID: 12), .markReleased(clientID: "c", messageID: 2)])
        try await h.commit([.assignPacketID(clientID: "c", messageID: 3, packetID: 13), .dequeue(clientID: "c", messageID: 3)])

        let state = try h.reload(now: now)
        let queue = try #require(state.sessions.first?.deliveries)
        #expect(queue.map(\.messageID) == [1, 2, 4])
        #expect(queue.map(\.packetID) == [11, 12, nil])
        #expect(queue.map(\.released) == [false, true, false])
        #expect(state.messages.keys.sorted() == [1, 2, 4])
    }

    @Test("operations on unknown sessions or messages are harmless", arguments: StoreKind.allCases)
    func unknownTargets(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([
            .dequeue(clientID: "nobody", messageID: 1), .assignPacketID(clientID: "nobody", messageID: 1, packetID: 1),
            .markReleased(clientID: "nobody", messageID: 1), .deleteSession(clientID: "nobody"),
            .clearRetained(topic: "none"), .inboundQoS2(clientID: "nobody", packetID: 1, pending: false),
            .setPendingWill(clientID: "nobody", will: nil, publishAt: nil),
        ])
        let state = try h.reload(now: now)
        #expect(state.sessions.isEmpty && state.retained.isEmpty && state.messages.isEmpty)
    }

    @Test("two deliveries of one message to one client are tracked separately", arguments: StoreKind.allCases)
    func duplicateDeliveries(kind: StoreKind) async throws {
        // A client with a shared and a non-shared subscription matching the same message.
        let h = try StoreHarness(kind)
        try await h.commit([
            .saveSession(Sample.session("c")), .putMessage(Sample.message(1)),
            .enqueue(clientID: "c", delivery: Sample.delivery(1)),
            .enqueue(clientID: "c", delivery: StoredDelivery(messageID: 1, qos: .atLeastOnce, retain: false, sharedFilter: "$share/g/#")),
        ])
        try await h.commit([.assignPacketID(clientID: "c", messageID: 1, packetID: 1)])
        try await h.commit([.assignPacketID(clientID: "c", messageID: 1, packetID: 2)])
        var queue = try #require(try h.reload(now: now).sessions.first?.deliveries)
        #expect(queue.map(\.packetID) == [1, 2])
        #expect(queue.map(\.sharedFilter) == [nil, "$share/g/#"])

        try await h.commit([.dequeue(clientID: "c", messageID: 1)])
        let state = try h.reload(now: now)
        queue = try #require(state.sessions.first?.deliveries)
        #expect(queue.map(\.packetID) == [2])
        #expect(state.messages[1] != nil)
    }

    @Test("inbound QoS 2 packet ids round-trip", arguments: StoreKind.allCases)
    func inboundQoS2(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("c"))])
        try await h.commit([
            .inboundQoS2(clientID: "c", packetID: 7, pending: true), .inboundQoS2(clientID: "c", packetID: 3, pending: true),
            .inboundQoS2(clientID: "c", packetID: 65535, pending: true), .inboundQoS2(clientID: "c", packetID: 3, pending: true),
        ])
        try await h.commit([.inboundQoS2(clientID: "c", packetID: 7, pending: false)])
        #expect(try h.reload(now: now).sessions.first?.inboundQoS2 == [3, 65535])
    }

    @Test("retained messages: set, replace, clear", arguments: StoreKind.allCases)
    func retained(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        let first = Sample.message(1, topic: "a/b", retain: true, richProperties: true)
        let replacement = Sample.message(2, topic: "a/b", payload: "new", retain: true)
        let other = Sample.message(3, topic: "a/c", retain: true)
        try await h.commit([.setRetained(first), .setRetained(other)])
        #expect(try h.reload(now: now).retained == [first, other])

        try await h.commit([.setRetained(replacement)])
        #expect(try h.reload(now: now).retained == [replacement, other])
        #expect(try h.storedMessageCount() == 2)

        try await h.commit([.clearRetained(topic: "a/c")])
        let state = try h.reload(now: now)
        #expect(state.retained == [replacement])
        // Retained bodies are not part of `messages` (bodies referenced by deliveries).
        #expect(state.messages.isEmpty)
        #expect(try h.storedMessageCount() == 1)
    }

    @Test("a pending will round-trips and is cleared", arguments: StoreKind.allCases)
    func pendingWill(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        let will = Sample.message(42, topic: "clients/c/status", payload: "gone", qos: .exactlyOnce, retain: true, richProperties: true)
        try await h.commit([
            .saveSession(Sample.session("c", disconnectedAt: now)),
            .setPendingWill(clientID: "c", will: will, publishAt: now + 30),
        ])
        var session = try #require(try h.reload(now: now).sessions.first)
        #expect(session.pendingWill == will)
        #expect(session.willPublishAt == now + 30)

        try await h.commit([.setPendingWill(clientID: "c", will: nil, publishAt: nil)])
        session = try #require(try h.reload(now: now).sessions.first)
        #expect(session.pendingWill == nil)
        #expect(session.willPublishAt == nil)
    }

    @Test("deleting a session removes its queue, inbound state, will and unreferenced bodies", arguments: StoreKind.allCases)
    func deleteSession(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([
            .saveSession(Sample.session("gone")), .saveSession(Sample.session("stays")),
            .putMessage(Sample.message(1)), .putMessage(Sample.message(2)),
            .enqueue(clientID: "gone", delivery: Sample.delivery(1)), .enqueue(clientID: "gone", delivery: Sample.delivery(2)),
            .enqueue(clientID: "stays", delivery: Sample.delivery(2)),
            .inboundQoS2(clientID: "gone", packetID: 5, pending: true),
            .setPendingWill(clientID: "gone", will: Sample.message(3), publishAt: now + 5),
        ])
        try await h.commit([.deleteSession(clientID: "gone")])
        // Collected at once, not at the next start.
        #expect(try h.storedMessageCount() == 1)

        let state = try h.reload(now: now)
        #expect(state.sessions.map(\.record.clientID) == ["stays"])
        #expect(state.messages.keys.sorted() == [2])

        // A new session under the same client id starts empty.
        try await h.commit([.saveSession(Sample.session("gone"))])
        let fresh = try #require(try h.reload(now: now).sessions.first { $0.record.clientID == "gone" })
        #expect(fresh.deliveries.isEmpty && fresh.inboundQoS2.isEmpty && fresh.pendingWill == nil)
    }

    @Test("a body is deleted when its last delivery goes, unless it is retained", arguments: StoreKind.allCases)
    func bodyCollection(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        let shared = Sample.message(1, retain: true)
        try await h.commit([
            .saveSession(Sample.session("a")), .saveSession(Sample.session("b")),
            .putMessage(shared), .enqueue(clientID: "a", delivery: Sample.delivery(1)), .enqueue(clientID: "b", delivery: Sample.delivery(1)),
            .setRetained(shared),
            .putMessage(Sample.message(2)), .enqueue(clientID: "a", delivery: Sample.delivery(2)),
        ])
        #expect(try h.storedMessageCount() == 2)
        try await h.commit([.dequeue(clientID: "a", messageID: 1)])
        #expect(try h.storedMessageCount() == 2)
        try await h.commit([.dequeue(clientID: "b", messageID: 1)])
        #expect(try h.storedMessageCount() == 2, "still retained")
        try await h.commit([.clearRetained(topic: shared.topic)])
        #expect(try h.storedMessageCount() == 1)
        try await h.commit([.dequeue(clientID: "a", messageID: 2)])
        #expect(try h.storedMessageCount() == 0)

        // One body, stored once, whatever the number of sessions it goes to.
        try await h.commit([.putMessage(Sample.message(3))] + ["a", "b"].map { .enqueue(clientID: $0, delivery: Sample.delivery(3)) })
        try await h.commit([.putMessage(Sample.message(3, payload: "ignored: bodies are immutable"))])
        #expect(try h.storedMessageCount() == 1)
        #expect(try h.reload(now: now).messages[3] == Sample.message(3))
    }

    @Test("a body put in one submission and enqueued in a later one is kept", arguments: StoreKind.allCases)
    func putThenEnqueueLater(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("c")), .putMessage(Sample.message(1))])
        try await h.commit([
            .putMessage(Sample.message(2)), .enqueue(clientID: "c", delivery: Sample.delivery(2)), .dequeue(clientID: "c", messageID: 2),
        ])
        try await h.commit([.enqueue(clientID: "c", delivery: Sample.delivery(1))])
        let state = try h.reload(now: now)
        #expect(state.sessions.first?.deliveries.map(\.messageID) == [1])
        #expect(state.messages[1] == Sample.message(1))
    }

    @Test("startup collects bodies that were put but never referenced", arguments: StoreKind.allCases)
    func orphanBodiesCollectedAtLoad(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.putMessage(Sample.message(1)), .putMessage(Sample.message(2))])
        _ = try h.reload(now: now)
        #expect(try h.storedMessageCount() == 0)
    }

    @Test("load purges expired sessions and keeps the others", arguments: StoreKind.allCases)
    func sessionExpiry(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        let records = [
            Sample.session("expired", expiry: 10, disconnectedAt: now - 11),
            Sample.session("alive", expiry: 10, disconnectedAt: now - 9),
            Sample.session("never", expiry: .max, disconnectedAt: now - 100_000_000),
            // Stored while connected (the broker stopped without recording the disconnect).
            Sample.session("was-connected", expiry: 10, disconnectedAt: nil),
            Sample.session("was-connected-expiry-0", expiry: 0, disconnectedAt: nil),
        ]
        try await h.commit(records.map { .saveSession($0) })
        try await h.commit([
            .putMessage(Sample.message(1)), .enqueue(clientID: "expired", delivery: Sample.delivery(1)),
            .inboundQoS2(clientID: "expired", packetID: 1, pending: true),
            .setPendingWill(clientID: "expired", will: Sample.message(2), publishAt: now - 1),
        ])

        let state = try h.reload(now: now)
        #expect(state.sessions.map(\.record.clientID) == ["alive", "never", "was-connected"])
        #expect(state.messages.isEmpty)
        #expect(try h.storedMessageCount() == 0)
        // The expired session's will is due now (its session ended), once.
        #expect(state.endedSessionWills == [Sample.message(2)])
        // The purge is persistent: a later load with an earlier clock does not resurrect it.
        let again = try h.reload(now: now - 1000)
        #expect(again.sessions.count == 3)
        #expect(again.endedSessionWills.isEmpty)
    }

    @Test("load drops expired messages not yet sent, keeps those in flight", arguments: StoreKind.allCases)
    func messageExpiry(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        let expired = Sample.message(1, expiresAt: now - 1)
        let expiredInFlight = Sample.message(2, expiresAt: now - 1)
        let fresh = Sample.message(3, expiresAt: now + 60)
        let expiresNow = Sample.message(4, expiresAt: now)
        let noExpiry = Sample.message(5)
        try await h.commit([.saveSession(Sample.session("c"))])
        for m in [expired, expiredInFlight, fresh, expiresNow, noExpiry] {
            try await h.commit([.putMessage(m), .enqueue(clientID: "c", delivery: Sample.delivery(m.id))])
        }
        try await h.commit([.assignPacketID(clientID: "c", messageID: 2, packetID: 1)])
        try await h.commit([
            .setRetained(Sample.message(6, topic: "r/expired", expiresAt: now - 1)),
            .setRetained(Sample.message(7, topic: "r/fresh", expiresAt: now + 1)),
        ])

        let state = try h.reload(now: now)
        #expect(state.sessions.first?.deliveries.map(\.messageID) == [2, 3, 5])
        #expect(state.messages.keys.sorted() == [2, 3, 5])
        #expect(state.retained.map(\.id) == [7])
        #expect(try h.storedMessageCount() == 4)
    }

    @Test("nextMessageID is above every id ever stored, even deleted ones", arguments: StoreKind.allCases)
    func nextMessageID(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        #expect(try h.reload(now: now).nextMessageID >= 1)
        try await h.commit([
            .saveSession(Sample.session("c")), .putMessage(Sample.message(1_000)), .enqueue(clientID: "c", delivery: Sample.delivery(1_000)),
        ])
        try await h.commit([.dequeue(clientID: "c", messageID: 1_000)])
        #expect(try h.reload(now: now).nextMessageID == 1_001)
        try await h.commit([.setPendingWill(clientID: "c", will: Sample.message(2_000), publishAt: nil)])
        #expect(try h.reload(now: now).nextMessageID == 2_001)
    }

    @Test("after close, submissions fail with an I/O error", arguments: StoreKind.allCases)
    func submitAfterClose(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        h.store.close()
        h.store.close()
        let result = await h.submit([.saveSession(Sample.session("c"))])
        guard case .failure(.io) = result else {
            Issue.record("expected .io, got \(result)")
            return
        }
    }
}

/// Counts down from many threads.
final class AtomicCounter: Sendable {
    private let value: Atomic<Int>
    init(_ start: Int) { value = .init(start) }
    /// The value after decrementing.
    func decrement() -> Int { value.subtract(1, ordering: .acquiringAndReleasing).newValue }
}

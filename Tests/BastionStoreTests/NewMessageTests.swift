import BastionCore
import BastionStore
import Foundation
import Testing
import BastionTesting

/// Messages stored for the first time (`putMessage(isNew: true)`, as the router submits them):
/// SQLite settles their deliveries within one commit and writes a message owed to one session as
/// one inline row. The result must be the same as with every operation applied one by one, which
/// `InMemoryStore` does: every test runs against both.
@Suite("DurableStore with new messages")
struct NewMessageTests {
    let now = Date().timeIntervalSince1970

    private func new(_ id: MessageID, expiresAt: WallClock? = nil, richProperties: Bool = false) -> StoreOperation {
        .putMessage(Sample.message(id, payload: "body \(id)", expiresAt: expiresAt, richProperties: richProperties), isNew: true)
    }

    @Test("a delivery enqueued and acknowledged in one commit leaves nothing behind", arguments: StoreKind.allCases)
    func settledInOneCommit(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("c"))])
        try await h.commit([
            new(1), .enqueue(clientID: "c", delivery: Sample.delivery(1)),
            .assignPacketID(clientID: "c", messageID: 1, packetID: 7), .dequeue(clientID: "c", messageID: 1),
        ])
        if let sqlite = h.sqlite {
            #expect(sqlite.statistics.settledDeliveries == 1)
            #expect(try sqlite.storedMessageCount() == 0)
        }
        let state = try h.reload(now: now)
        #expect(state.sessions.first?.deliveries == [])
        #expect(state.messages.isEmpty)
    }

    @Test("a new message owed to one session keeps its body, packet id, release and queue position", arguments: StoreKind.allCases)
    func inlineRoundTrip(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a"))])
        try await h.commit([new(1, richProperties: true), .enqueue(clientID: "a", delivery: Sample.delivery(1, qos: .exactlyOnce))])
        try await h.commit([.putMessage(Sample.message(2)), .enqueue(clientID: "a", delivery: Sample.delivery(2))])
        try await h.commit([new(3), .enqueue(clientID: "a", delivery: Sample.delivery(3))])
        try await h.commit([.assignPacketID(clientID: "a", messageID: 1, packetID: 5)])
        try await h.commit([.markReleased(clientID: "a", messageID: 1)])
        try await h.commit([.assignPacketID(clientID: "a", messageID: 3, packetID: 6)])
        if let sqlite = h.sqlite {
            // Only message 2 (stored the old way) has a body row; 1 and 3 are inline.
            #expect(try sqlite.storedMessageCount() == 1)
        }

        let state = try h.reload(now: now)
        let a = try #require(state.sessions.first)
        #expect(a.deliveries.map(\.messageID) == [1, 2, 3])
        #expect(a.deliveries.map(\.packetID) == [5, nil, 6])
        #expect(a.deliveries.map(\.released) == [true, false, false])
        #expect(a.deliveries.first?.qos == .exactlyOnce)
        #expect(state.messages[1] == Sample.message(1, payload: "body 1", richProperties: true))
        #expect(state.messages[3] == Sample.message(3, payload: "body 3"))
        #expect(state.nextMessageID > 3)
    }

    @Test("an inline delivery acknowledged in a later commit is gone, before and after a restart", arguments: StoreKind.allCases)
    func inlineDequeued(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a"))])
        try await h.commit([new(1), .enqueue(clientID: "a", delivery: Sample.delivery(1))])
        try await h.commit([new(2), .enqueue(clientID: "a", delivery: Sample.delivery(2))])
        try await h.commit([.dequeue(clientID: "a", messageID: 1)])
        #expect(try h.reload(now: now).sessions.first?.deliveries.map(\.messageID) == [2])
        // After the restart the row lives in the deliveries table; the same operation finds it.
        try await h.commit([.dequeue(clientID: "a", messageID: 2)])
        let state = try h.reload(now: now)
        #expect(state.sessions.first?.deliveries == [])
        #expect(state.messages.isEmpty)
    }

    @Test("deleting a session takes its inline deliveries", arguments: StoreKind.allCases)
    func deleteSession(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a")), .saveSession(Sample.session("b"))])
        try await h.commit([new(1), .enqueue(clientID: "a", delivery: Sample.delivery(1))])
        try await h.commit([new(2), .enqueue(clientID: "b", delivery: Sample.delivery(2))])
        try await h.commit([.deleteSession(clientID: "a")])
        let state = try h.reload(now: now)
        #expect(state.sessions.map(\.record.clientID) == ["b"])
        #expect(state.sessions.first?.deliveries.map(\.messageID) == [2])
        #expect(Set(state.messages.keys) == [2])
    }

    @Test("a fan-out: the session that acknowledged in the same commit owes nothing, the other keeps it", arguments: StoreKind.allCases)
    func fanOut(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a")), .saveSession(Sample.session("b")), .saveSession(Sample.session("c"))])
        try await h.commit([
            new(1), .enqueue(clientID: "a", delivery: Sample.delivery(1)), .enqueue(clientID: "b", delivery: Sample.delivery(1)),
            .enqueue(clientID: "c", delivery: Sample.delivery(1)), .dequeue(clientID: "a", messageID: 1),
        ])
        try await h.commit([.dequeue(clientID: "b", messageID: 1)])
        let state = try h.reload(now: now)
        let owed = state.sessions.map { ($0.record.clientID, $0.deliveries.map(\.messageID)) }
        #expect(owed.map(\.0) == ["a", "b", "c"])
        #expect(owed.map(\.1) == [[], [], [1]])
        #expect(state.messages[1]?.payload == Sample.payload("body 1"))
    }

    @Test("two deliveries of one new message to one session: the packet id goes to the first unsent", arguments: StoreKind.allCases)
    func twoDeliveriesOneSession(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a"))])
        let shared = StoredDelivery(messageID: 1, qos: .atLeastOnce, retain: false, sharedFilter: "$share/g/t")
        try await h.commit([
            new(1), .enqueue(clientID: "a", delivery: shared), .enqueue(clientID: "a", delivery: Sample.delivery(1)),
            .assignPacketID(clientID: "a", messageID: 1, packetID: 3),
        ])
        try await h.commit([.assignPacketID(clientID: "a", messageID: 1, packetID: 4)])
        let state = try h.reload(now: now)
        let deliveries = try #require(state.sessions.first?.deliveries)
        #expect(deliveries.map(\.sharedFilter) == ["$share/g/t", nil])
        #expect(deliveries.map(\.packetID) == [3, 4])
    }

    @Test("an inline message that expired while the broker was down is dropped if not yet sent", arguments: StoreKind.allCases)
    func expiry(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a"))])
        try await h.commit([new(1, expiresAt: now - 1), .enqueue(clientID: "a", delivery: Sample.delivery(1))])
        try await h.commit([new(2, expiresAt: now - 1), .enqueue(clientID: "a", delivery: Sample.delivery(2))])
        try await h.commit([.assignPacketID(clientID: "a", messageID: 2, packetID: 9)])
        try await h.commit([new(3, expiresAt: now + 3600), .enqueue(clientID: "a", delivery: Sample.delivery(3))])
        let state = try h.reload(now: now)
        // Expired and unsent goes; expired but in flight (it has a packet id) is finished.
        #expect(state.sessions.first?.deliveries.map(\.messageID) == [2, 3])
    }

    @Test("packet ids and releases of inline rows across commits, and a packet id made moot by its acknowledgement", arguments: StoreKind.allCases)
    func inlineUpdatesAcrossCommits(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a"))])
        try await h.commit([
            new(1), .enqueue(clientID: "a", delivery: Sample.delivery(1, qos: .exactlyOnce)),
            new(2), .enqueue(clientID: "a", delivery: Sample.delivery(2)),
            new(3), .enqueue(clientID: "a", delivery: Sample.delivery(3)),
        ])
        // 1: sent, then released in a later commit; 2: sent and acknowledged in one commit;
        // 3: sent twice (the second id replaces the first: the row was already sent).
        try await h.commit([
            .assignPacketID(clientID: "a", messageID: 1, packetID: 11), .assignPacketID(clientID: "a", messageID: 2, packetID: 12),
            .dequeue(clientID: "a", messageID: 2), .assignPacketID(clientID: "a", messageID: 3, packetID: 13),
        ])
        try await h.commit([.markReleased(clientID: "a", messageID: 1), .assignPacketID(clientID: "a", messageID: 3, packetID: 23)])
        // A second delivery of message 3 to the same session, stored the usual way: the next
        // packet id goes to it (the first unsent), the next release to the sent one.
        try await h.commit([.putMessage(Sample.message(3, payload: "body 3")), .enqueue(clientID: "a", delivery: Sample.delivery(3))])
        try await h.commit([.assignPacketID(clientID: "a", messageID: 3, packetID: 33), .markReleased(clientID: "a", messageID: 3)])
        let state = try h.reload(now: now)
        let a = try #require(state.sessions.first)
        #expect(a.deliveries.map(\.messageID) == [1, 3, 3])
        #expect(a.deliveries.map(\.packetID) == [11, 23, 33])
        #expect(a.deliveries.map(\.released) == [true, true, false])
        // The first delivery in queue order is the one an acknowledgement finishes.
        try await h.commit([.dequeue(clientID: "a", messageID: 3)])
        let after = try h.reload(now: now)
        #expect(after.sessions.first?.deliveries.map(\.packetID) == [11, 33])
    }

    @Test("inline rows written before the startup load are found again after it moved them", arguments: StoreKind.allCases)
    func operationsAfterLoad(kind: StoreKind) async throws {
        let h = try StoreHarness(kind)
        try await h.commit([.saveSession(Sample.session("a"))])
        try await h.commit([new(1), .enqueue(clientID: "a", delivery: Sample.delivery(1))])
        try await h.commit([new(2), .enqueue(clientID: "a", delivery: Sample.delivery(2))])
        // Load on the open store (as at startup), then keep writing to the same instance.
        _ = try h.store.load(now: now)
        try await h.commit([
            .assignPacketID(clientID: "a", messageID: 1, packetID: 4), .dequeue(clientID: "a", messageID: 2),
            new(3), .enqueue(clientID: "a", delivery: Sample.delivery(3)),
        ])
        try await h.commit([.assignPacketID(clientID: "a", messageID: 3, packetID: 5)])
        let state = try h.reload(now: now)
        let a = try #require(state.sessions.first)
        #expect(a.deliveries.map(\.messageID) == [1, 3])
        #expect(a.deliveries.map(\.packetID) == [4, 5])
        #expect(Set(state.messages.keys) == [1, 3])
    }
}

@testable import BastionNATS
import Foundation
import NIOCore
import Testing

@Suite("Key-value against nats-server")
struct KeyValueIntegrationTests {
    @Test func putGetCreateUpdateDelete() async throws {
        try await withJetStream { js, _ in
            let kv = try await KeyValueBucket.create(bucket: "config", history: 5, js: js)
            #expect(try await kv.get("missing") == nil)

            let r1 = try await kv.put("node.a", "one")
            let entry = try #require(try await kv.get("node.a"))
            #expect(String(buffer: entry.value) == "one")
            #expect(entry.revision == r1)
            #expect(entry.operation == .put)

            await #expect(throws: KVError.keyExists("node.a")) { try await kv.create("node.a", "again") }
            let r2 = try await kv.update("node.a", "two", expectedRevision: r1)
            #expect(r2 > r1)
            // Compare-and-set lost: the caller can switch on the distinct error.
            do {
                try await kv.update("node.a", "stale", expectedRevision: r1)
                Issue.record("update with a stale revision succeeded")
            } catch KVError.wrongLastRevision(let key) {
                #expect(key == "node.a")
            }
            #expect(try await kv.get("node.a").map { String(buffer: $0.value) } == "two")
            #expect(try await kv.get("node.a", revision: r1).map { String(buffer: $0.value) } == "one")

            await #expect(throws: KVError.wrongLastRevision(key: "node.a")) { try await kv.delete("node.a", expectedRevision: r1) }
            let deletedAt = try await kv.delete("node.a", expectedRevision: r2)
            #expect(try await kv.get("node.a") == nil)
            #expect(try await kv.get("node.a", includeDeleted: true)?.operation == .delete)
            #expect(try await kv.get("node.a", includeDeleted: true)?.revision == deletedAt)

            // A deleted key can be created again.
            let r3 = try await kv.create("node.a", "three")
            #expect(try await kv.get("node.a")?.revision == r3)
            let created = try await kv.create("fresh", "v")
            #expect(created > r3)

            try await kv.purge("node.a")
            #expect(try await kv.get("node.a") == nil)
            #expect(try await kv.get("node.a", includeDeleted: true)?.operation == .purge)
            #expect(try await kv.keys().sorted() == ["fresh"])

            await #expect(throws: KVError.invalidKey("bad key")) { try await kv.put("bad key", "x") }
            await #expect(throws: KVError.invalidKey("a.>")) { try await kv.get("a.>") }

            let reopened = try await KeyValueBucket.open(bucket: "config", js: js)
            #expect(try await reopened.get("fresh").map { String(buffer: $0.value) } == "v")
            await #expect(throws: KVError.bucketNotFound("nope")) { try await KeyValueBucket.open(bucket: "nope", js: js) }
        }
    }

    @Test func watchDeliversCurrentValuesThenChanges() async throws {
        try await withJetStream { js, _ in
            let kv = try await KeyValueBucket.create(bucket: "watched", history: 3, js: js)
            try await kv.put("sessions.a", "a1")
            try await kv.put("sessions.a", "a2")
            try await kv.put("sessions.b", "b1")
            try await kv.put("other", "o")
            let watcher = try await kv.watch("sessions.>")
            #expect(!watcher.initiallyEmpty)
            // The latest value of each matching key, the last one with delta 0.
            let initial = [try await watcher.next(timeout: .seconds(10)), try await watcher.next(timeout: .seconds(10))]
            #expect(initial.map { $0?.key } == ["sessions.a", "sessions.b"])
            #expect(initial.map { $0.map { String(buffer: $0.value) } } == ["a2", "b1"])
            #expect(initial.last??.delta == 0)

            try await kv.put("sessions.c", "c1")
            try await kv.put("other", "ignored")
            try await kv.delete("sessions.a")
            try await kv.purge("sessions.b")
            var changes: [(String, KVEntry.Operation)] = []
            while changes.count < 3 {
                let entry = try #require(try await watcher.next(timeout: .seconds(10)))
                changes.append((entry.key, entry.operation))
            }
            #expect(changes.map(\.0) == ["sessions.c", "sessions.a", "sessions.b"])
            #expect(changes.map(\.1) == [.put, .delete, .purge])
            await watcher.stop()

            let history = try await kv.watch("sessions.a", includeHistory: true)
            var values: [String] = []
            while values.count < 3 {
                let entry = try #require(try await history.next(timeout: .seconds(10)))
                values.append(entry.operation == .put ? String(buffer: entry.value) : entry.operation.rawValue)
            }
            #expect(values == ["a1", "a2", "DEL"])
            await history.stop()

            let empty = try await kv.watch("nothing.>")
            #expect(empty.initiallyEmpty)
            await empty.stop()
        }
    }
}

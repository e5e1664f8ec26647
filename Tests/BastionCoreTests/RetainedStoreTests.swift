import BastionCore
import MQTTCodec
import NIOCore
import Testing

@Suite struct RetainedStoreTests {
    private func topics(_ store: RetainedStore, _ filter: String) -> [String] {
        store.matching(filter).map(\.topic).sorted()
    }

    @Test func storeReplaceAndClear() {
        let store = RetainedStore()
        #expect(store.apply(message("a/b", "1", retain: true)) == .stored)
        #expect(store.apply(message("a/b", "2", retain: true)) == .stored)
        #expect(store.count == 1)
        #expect(store.matching("a/b").first.map { String(buffer: $0.payload) } == "2")
        #expect(store.apply(message("a/b", "", retain: true)) == .cleared)
        #expect(store.count == 0)
        #expect(store.bytes == 0)
        #expect(store.matching("a/b").isEmpty)
    }

    @Test func wildcardQueries() {
        let store = RetainedStore()
        for t in ["a", "a/b", "a/b/c", "a/x/c", "b/b", "$SYS/uptime"] { store.apply(message(t, "v", retain: true)) }
        #expect(topics(store, "#") == ["a", "a/b", "a/b/c", "a/x/c", "b/b"])
        #expect(topics(store, "a/#") == ["a", "a/b", "a/b/c", "a/x/c"])
        #expect(topics(store, "a/+/c") == ["a/b/c", "a/x/c"])
        #expect(topics(store, "+/b") == ["a/b", "b/b"])
        #expect(topics(store, "+") == ["a"])
        #expect(topics(store, "$SYS/#") == ["$SYS/uptime"])
        #expect(topics(store, "+/uptime") == [])
    }

    @Test func limitsRefuseNewTopicsButAllowReplacement() {
        let entry = RetainedStore.entryOverhead
        // Each entry costs topic (1) + payload + overhead.
        let store = RetainedStore(maximumMessages: 2, maximumBytes: 2 * (entry + 1) + 10)
        #expect(store.apply(message("a", "12345", retain: true)) == .stored)
        #expect(store.apply(message("b", "12345", retain: true)) == .stored)
        #expect(store.apply(message("c", "1", retain: true)) == .refused)
        #expect(store.apply(message("a", "123456", retain: true)) == .refused)
        #expect(store.apply(message("a", "1234", retain: true)) == .stored)
        #expect(store.count == 2)
        #expect(store.bytes == 2 * (entry + 1) + 9)
    }

    @Test func eachIdentityKeepsToItsShare() {
        let store = RetainedStore(maximumMessages: 10, maximumBytes: .max, maximumMessagesPerOwner: 2, maximumBytesPerOwner: .max)
        #expect(store.apply(message("a/1", "x", retain: true), owner: "user:mallory") == .stored)
        #expect(store.apply(message("a/2", "x", retain: true), owner: "user:mallory") == .stored)
        #expect(store.apply(message("a/3", "x", retain: true), owner: "user:mallory") == .refused)
        // Replacing its own message is not a new one; someone else is unaffected.
        #expect(store.apply(message("a/2", "y", retain: true), owner: "user:mallory") == .stored)
        #expect(store.apply(message("b/1", "x", retain: true), owner: "user:alice") == .stored)
        // Taking over another identity's topic moves the message to the new owner's share.
        #expect(store.apply(message("a/1", "z", retain: true), owner: "user:alice") == .stored)
        #expect(store.apply(message("a/3", "x", retain: true), owner: "user:mallory") == .stored)
        // Clearing frees the share; the server's own messages count only in the totals.
        #expect(store.apply(message("a/2", "", retain: true), owner: "user:mallory") == .cleared)
        #expect(store.apply(message("a/4", "x", retain: true), owner: "user:mallory") == .stored)
        #expect(store.apply(message("$SYS/x", "1", retain: true)) == .stored)
        #expect(store.count == 5)
    }

    @Test func longTopicsCountAgainstTheByteBudget() {
        // One-byte payloads on 50 KB topics: the topics are what fills memory.
        let store = RetainedStore(maximumMessages: 1000, maximumBytes: 200_000)
        let long = { (i: Int) in String(repeating: "t", count: 50_000) + "/\(i)" }
        #expect(store.apply(message(long(1), "x", retain: true)) == .stored)
        #expect(store.apply(message(long(2), "x", retain: true)) == .stored)
        #expect(store.apply(message(long(3), "x", retain: true)) == .stored)
        #expect(store.apply(message(long(4), "x", retain: true)) == .refused)
        #expect(store.bytes <= 200_000)
    }

    @Test func expiredMessagesArePurged() {
        let store = RetainedStore()
        let now = NIODeadline.now()
        store.apply(message("old", "v", retain: true, expiresAt: now - .seconds(1)))
        store.apply(message("new", "v", retain: true, expiresAt: now + .seconds(60)))
        #expect(store.purgeExpired(now: now) == 1)
        #expect(topics(store, "#") == ["new"])
    }
}

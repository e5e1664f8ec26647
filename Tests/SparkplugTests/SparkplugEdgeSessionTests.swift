@testable import Sparkplug
import Testing

@Suite struct SparkplugEdgeSessionTests {
    @Test func seqFollowsByOneAndWrapsAt256() {
        let session = SparkplugEdgeSession(seq: 254)
        #expect(session.advance(to: 255) == .inOrder)
        #expect(session.advance(to: 0) == .inOrder)
        #expect(session.advance(to: 5) == .gap(expected: 1))
        // Resynchronised on what was received: one gap is reported once.
        #expect(session.advance(to: 6) == .inOrder)
    }

    @Test func sessionWithoutAKnownSeqAcceptsAnyInRange() {
        let session = SparkplugEdgeSession(seq: nil)
        #expect(session.advance(to: 300) == .gap(expected: 0))
        #expect(session.advance(to: 17) == .inOrder)
        #expect(session.advance(to: 18) == .inOrder)
    }

    @Test func anEndedSessionSendsTheCallerToTheInventory() throws {
        var inventory = SparkplugInventory()
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 1))
        let first = try #require(inventory.session(group: "G", edge: "E"))
        #expect(first.isLive)
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 1, metricCount: 1, seq: 0, at: 2))
        #expect(!first.isLive)
        #expect(first.advance(to: 1) == .ended)
        let second = try #require(inventory.session(group: "G", edge: "E"))
        _ = inventory.observe(.connectionLost(group: "G", edge: "E", at: 3))
        #expect(!second.isLive)
        #expect(inventory.session(group: "G", edge: "E") == nil)
    }
}

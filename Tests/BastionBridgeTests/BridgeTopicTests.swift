import MQTTCodec
import NIOCore
import Testing

@testable import BastionBridge

@Suite("Bridge topic mapping")
struct BridgeTopicTests {
    @Test func remotePrefixIsPrependedAndStrippedOnTheWayBack() throws {
        let topic = try BridgeTopic(local: "spBv1.0/#", remote: nil, remotePrefix: "site1/", qos: .atLeastOnce, direction: .both)
        #expect(topic.remote == "site1/spBv1.0/#")
        #expect(topic.remoteTopic(forLocal: "spBv1.0/g1/NDATA/e1") == "site1/spBv1.0/g1/NDATA/e1")
        #expect(topic.remoteTopic(forLocal: "other/x") == nil)
        #expect(topic.localTopic(forRemote: "site1/spBv1.0/g1/NDATA/e1") == "spBv1.0/g1/NDATA/e1")
        #expect(topic.localTopic(forRemote: "site2/spBv1.0/g1") == nil)
    }

    @Test func wildcardsMapLevelByLevel() throws {
        let topic = try BridgeTopic(local: "plant/+/temp", remote: "site1/temps/+", remotePrefix: nil, qos: .atMostOnce, direction: .out)
        #expect(topic.remoteTopic(forLocal: "plant/line1/temp") == "site1/temps/line1")
        #expect(topic.remoteTopic(forLocal: "plant/line1/pressure") == nil)
        #expect(topic.remoteTopic(forLocal: "plant/a/b/temp") == nil)
        #expect(topic.localTopic(forRemote: "site1/temps/line7") == "plant/line7/temp")
    }

    @Test func multiLevelWildcardCarriesTheRestIncludingNone() throws {
        let topic = try BridgeTopic(local: "a/+/#", remote: "x/+/y/#", remotePrefix: nil, qos: .atMostOnce, direction: .out)
        #expect(topic.remoteTopic(forLocal: "a/b/c/d") == "x/b/y/c/d")
        // `#` matches its parent level too (spec 4.7.1.2).
        #expect(topic.remoteTopic(forLocal: "a/b") == "x/b/y")
    }

    @Test func withoutRemoteOrPrefixTheSameFilterIsUsed() throws {
        let topic = try BridgeTopic(local: "plant/#", remote: nil, remotePrefix: nil, qos: .atMostOnce, direction: .out)
        #expect(topic.remote == "plant/#")
        #expect(topic.remoteTopic(forLocal: "plant/x") == "plant/x")
    }

    @Test func filtersWithDifferentWildcardsAreRefused() {
        #expect(throws: BridgeTopic.Invalid.wildcardsDiffer(local: "a/+/b", remote: "x/#")) {
            try BridgeTopic(local: "a/+/b", remote: "x/#", remotePrefix: nil, qos: .atMostOnce, direction: .out)
        }
        #expect(throws: BridgeTopic.Invalid.prefixWithWildcard("site/+/")) {
            try BridgeTopic(local: "a/#", remote: nil, remotePrefix: "site/+/", qos: .atMostOnce, direction: .out)
        }
        #expect(throws: BridgeTopic.Invalid.sharedSubscription("$share/g/a")) {
            try BridgeTopic(local: "$share/g/a", remote: nil, remotePrefix: nil, qos: .atMostOnce, direction: .out)
        }
        #expect(throws: (any Error).self) {
            try BridgeTopic(local: "a/#/b", remote: nil, remotePrefix: nil, qos: .atMostOnce, direction: .out)
        }
    }

    @Test func aMappingThatWouldYieldAnEmptyTopicDoesNotMatch() throws {
        let topic = try BridgeTopic(local: "a/#", remote: "#", remotePrefix: nil, qos: .atMostOnce, direction: .out)
        #expect(topic.remoteTopic(forLocal: "a/b") == "b")
        #expect(topic.remoteTopic(forLocal: "a") == nil)
    }
}

@Suite("Bridge forward queue")
struct ForwardQueueTests {
    private func publish(_ n: Int) -> PublishPacket {
        PublishPacket(topic: "t/\(n)", payload: ByteBuffer(string: "\(n)"), qos: .atLeastOnce)
    }

    @Test func sendsInOrderWithinTheWindowAndReleasesLocalIDsOnAcknowledgement() throws {
        var queue = ForwardQueue()
        for n in 1...3 { queue.append(localPacketID: UInt16(10 + n), publish: publish(n), size: 4) }
        #expect(queue.bytes == 12)
        let firstSent = queue.send()
        let first = try #require(firstSent)
        let secondSent = queue.send()
        let second = try #require(secondSent)
        #expect(first.topic == "t/1" && second.topic == "t/2")
        #expect(queue.peek(window: 2) == nil)
        #expect(queue.peek(window: 3)?.localPacketID == 13)
        let r1 = queue.acknowledged(second.packetID)
        #expect(r1 == 12)
        let r2 = queue.acknowledged(second.packetID)
        #expect(r2 == nil)
        let r3 = queue.acknowledged(first.packetID)
        #expect(r3 == 11)
        #expect(queue.count == 1 && queue.bytes == 4)
    }

    @Test func aCutPutsUnacknowledgedMessagesBackInFrontInTheirOrder() throws {
        var queue = ForwardQueue()
        for n in 1...4 { queue.append(localPacketID: UInt16(n), publish: publish(n), size: 1) }
        let aSent = queue.send()
        let a = try #require(aSent)
        let r4 = queue.send()
        #expect(r4 != nil)
        let r5 = queue.send()
        #expect(r5 != nil)
        let r6 = queue.acknowledged(a.packetID)
        #expect(r6 == 1)
        queue.linkLost()
        #expect(queue.inflight == 0)
        var order: [String] = []
        while let next = queue.send() { order.append(next.topic) }
        #expect(order == ["t/2", "t/3", "t/4"])
    }

    @Test func discardingTheFrontReturnsItsLocalID() {
        var queue = ForwardQueue()
        queue.append(localPacketID: 7, publish: publish(1), size: 9)
        let r7 = queue.discardFront()
        #expect(r7 == 7)
        #expect(queue.isEmpty && queue.bytes == 0)
    }
}

@Suite("Bridge reconnect back-off and byte rate")
struct BridgePacingTests {
    @Test func backoffGrowsToItsCeilingWithJitterAndResets() {
        var backoff = ReconnectBackoff(initialMilliseconds: 500, maximumMilliseconds: 30_000)
        let r8 = backoff.next(unit: 0)
        #expect(r8 == 250)
        let r9 = backoff.next(unit: 0.999)
        #expect(r9 < 1000)
        let r10 = backoff.next(unit: 0.5)
        #expect(r10 == 1500)
        for _ in 0..<20 { _ = backoff.next(unit: 0.999) }
        let late = backoff.next(unit: 0.999)
        #expect(late <= 30_000 && late >= 15_000)
        backoff.reset()
        let r11 = backoff.next(unit: 0)
        #expect(r11 == 250)
    }

    @Test func rateLimiterAllowsASecondsBudgetThenRefillsOverTime() {
        var limiter = ByteRateLimiter(bytesPerSecond: 1000, nowNanoseconds: 0)
        let r12 = limiter.take(600, nowNanoseconds: 0)
        #expect(r12)
        let r13 = limiter.take(600, nowNanoseconds: 0)
        #expect(!r13)
        let r14 = limiter.wait(for: 600, nowNanoseconds: 0)
        #expect(r14 > 100_000_000)
        let r15 = limiter.take(600, nowNanoseconds: 300_000_000)
        #expect(r15)
        // A message larger than a second's budget passes once the bucket is full.
        let r16 = limiter.take(5000, nowNanoseconds: 5_000_000_000)
        #expect(r16)
        let r17 = limiter.take(1, nowNanoseconds: 5_000_000_000)
        #expect(!r17)
    }
}

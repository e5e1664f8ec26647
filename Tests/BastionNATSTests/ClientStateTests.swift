@testable import BastionNATS
import NIOCore
import Testing

@Suite("Reconnect, keep-alive and pending limits")
struct ClientStateTests {
    @Test func backoffFirstRoundImmediateThenGrowsToCap() {
        let backoff = ReconnectBackoff(base: .milliseconds(100), maximum: .seconds(2))
        // Three servers: attempts 0-2 are the first round.
        for attempt in 0..<3 { #expect(backoff.delay(attempt: attempt, poolSize: 3, random: 0.9) == .zero) }
        #expect(backoff.delay(attempt: 3, poolSize: 3, random: 1) == .milliseconds(100))
        #expect(backoff.delay(attempt: 6, poolSize: 3, random: 1) == .milliseconds(200))
        #expect(backoff.delay(attempt: 9, poolSize: 3, random: 0) == .milliseconds(200))
        #expect(backoff.delay(attempt: 300, poolSize: 3, random: 1) == .seconds(2))
        // Jitter stays within 50-100 %.
        #expect(backoff.delay(attempt: 300, poolSize: 3, random: 0) == .seconds(1))
    }

    @Test func serverPoolRotatesAndLearns() throws {
        var pool = ServerPool([try NATSServerURL("nats://127.0.0.1:4222"), try NATSServerURL("127.0.0.1:4222")])
        #expect(pool.count == 1)
        let added = pool.learn(["127.0.0.1:4223", "127.0.0.1:4222", "[::1]:4224"], requiresTLS: true)
        #expect(added)
        #expect(pool.count == 3)
        #expect(pool.servers[1].requiresTLS)
        #expect(pool.servers[2].host == "::1")
        let addedAgain = pool.learn(["127.0.0.1:4223"], requiresTLS: false)
        #expect(!addedAgain)
        let order = (0..<4).map { _ in pool.nextServer().port }
        #expect(order == [4222, 4223, 4224, 4222])
    }

    @Test func urls() throws {
        #expect(try NATSServerURL("tls://nats.example:7422") == NATSServerURL(host: "nats.example", port: 7422, requiresTLS: true))
        #expect(try NATSServerURL("nats://h") == NATSServerURL(host: "h", port: 4222))
        for bad in ["http://h:1", "nats://user:pass@h:1", "nats://h:0", "nats://h:x", "nats://"] {
            #expect(throws: NATSError.invalidURL(bad)) { try NATSServerURL(bad) }
        }
    }

    @Test func pingTrackerDeclaresStale() {
        var pings = PingTracker(maxOutstanding: 2)
        #expect(pings.intervalElapsed() == .sendPing)
        pings.pongReceived()
        #expect(pings.intervalElapsed() == .sendPing)
        #expect(pings.intervalElapsed() == .sendPing)
        #expect(pings.intervalElapsed() == .closeStale)
    }

    @Test func pendingQueueDropsBeyondLimitsAndCounts() async throws {
        let queue = PendingQueue<Int>(limits: .init(messages: 2, bytes: 100))
        #expect(queue.push(1, size: 10) == .queued)
        #expect(queue.push(2, size: 10) == .queued)
        #expect(queue.push(3, size: 10) == .dropped(firstInEpisode: true))
        #expect(queue.push(4, size: 10) == .dropped(firstInEpisode: false))
        #expect(try await queue.next() == 1)
        #expect(try await queue.next() == 2)
        // Drained: the next drop starts a new episode; the byte limit counts too.
        #expect(queue.push(5, size: 95) == .queued)
        #expect(queue.push(6, size: 10) == .dropped(firstInEpisode: true))
        #expect(queue.droppedCount == 3)
        queue.finish()
        #expect(queue.push(7, size: 1) == .finished)
        #expect(try await queue.next() == 5)
        #expect(try await queue.next() == nil)
    }

    @Test func pendingQueueTimeoutLosesNothing() async throws {
        let queue = PendingQueue<Int>(limits: .init(messages: 10, bytes: 100))
        #expect(try await queue.next(timeout: .milliseconds(20)) == nil)
        #expect(queue.push(1, size: 1) == .queued)
        #expect(try await queue.next(timeout: .seconds(5)) == 1)
        async let waiting = queue.next(timeout: .seconds(30))
        try await Task.sleep(for: .milliseconds(20))
        _ = queue.push(2, size: 1)
        #expect(try await waiting == 2)
    }

    @Test func outboundQueueBatchesAndBounds() throws {
        let queue = OutboundQueue(maxPendingBytes: 64, reconnectBufferSize: 40)
        // Disconnected: kept for the reconnect, no drain scheduled, bounded.
        #expect(try queue.publish(subject: "a", reply: nil, headers: nil, payload: ByteBuffer(string: "12345")) == false)
        #expect(throws: NATSError.reconnectBufferFull(pendingBytes: 16)) {
            _ = try queue.publish(subject: "a", reply: nil, headers: nil, payload: ByteBuffer(repeating: 1, count: 30))
        }
        queue.setMode(.connected(writable: true))
        // The first publish schedules one drain; later ones ride along until it ran.
        #expect(try queue.publish(subject: "b", reply: nil, headers: nil, payload: ByteBuffer(string: "x")) == true)
        #expect(try queue.publish(subject: "c", reply: nil, headers: nil, payload: ByteBuffer(string: "y")) == false)
        #expect(String(buffer: queue.take()!) == "PUB a 5\r\n12345\r\nPUB b 1\r\nx\r\nPUB c 1\r\ny\r\n")
        #expect(queue.take() == nil)
        queue.setMaxPayload(8)
        #expect(throws: NATSError.payloadTooLarge(size: 9, limit: 8)) {
            _ = try queue.publish(subject: "a", reply: nil, headers: nil, payload: ByteBuffer(repeating: 1, count: 9))
        }
        queue.setMode(.connected(writable: false))
        queue.setMaxPayload(1000)
        #expect(try queue.publish(subject: "d", reply: nil, headers: nil, payload: ByteBuffer(repeating: 1, count: 50)) == false)
        #expect(throws: NATSError.self) {
            _ = try queue.publish(subject: "d", reply: nil, headers: nil, payload: ByteBuffer(repeating: 1, count: 50))
        }
        queue.setMode(.closed)
        #expect(throws: NATSError.connectionClosed) {
            _ = try queue.publish(subject: "d", reply: nil, headers: nil, payload: ByteBuffer())
        }
    }
}

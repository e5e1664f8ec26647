@testable import BastionNATS
import Foundation
import NIOCore
import Testing

func withJetStream<T>(_ body: (JetStreamContext, TestServer) async throws -> T) async throws -> T {
    try await withServer { server in
        try await withConnection(server.configuration()) { nats in
            try await body(JetStreamContext(connection: nats, timeout: .seconds(10)), server)
        }
    }
}

@Suite("JetStream against nats-server")
struct JetStreamIntegrationTests {
    @Test func streamLifecycleAndPublishAck() async throws {
        try await withJetStream { js, _ in
            var config = StreamConfig(name: "ORDERS", subjects: ["orders.>"])
            config.maxMessages = 1000
            config.maxAge = .seconds(3600)
            config.duplicateWindow = .seconds(60)
            config.allowDirect = true
            let created = try await js.createStream(config)
            #expect(created.config.name == "ORDERS")
            #expect(created.config.maxMessages == 1000)
            #expect(created.state.messages == 0)

            let ack = try await js.publish("orders.eu", payload: "first")
            #expect(ack == PubAck.make(stream: "ORDERS", sequence: 1))
            await #expect(throws: JetStreamError.noStreamForSubject("nothing.here")) {
                _ = try await js.publish("nothing.here", payload: "x")
            }

            config.maxMessages = 2000
            #expect(try await js.updateStream(config).config.maxMessages == 2000)
            #expect(try await js.streamInfo("ORDERS").state.messages == 1)
            try await js.deleteStream("ORDERS")
            await #expect {
                _ = try await js.streamInfo("ORDERS")
            } throws: { ($0 as? JetStreamAPIError)?.errorCode == JetStreamAPIError.streamNotFound }
        }
    }

    @Test func duplicatesDetectedByMessageID() async throws {
        try await withJetStream { js, _ in
            _ = try await js.createStream(StreamConfig(name: "DEDUP", subjects: ["dedup"]))
            var headers = NATSHeaders()
            headers[NATSHeaders.messageID] = "msg-1"
            let first = try await js.publish("dedup", headers: headers, payload: "a")
            let again = try await js.publish("dedup", headers: headers, payload: "a")
            #expect(!first.duplicate)
            #expect(again.duplicate)
            #expect(again.sequence == first.sequence)
            #expect(try await js.streamInfo("DEDUP").state.messages == 1)
        }
    }

    @Test func expectedLastSubjectSequence() async throws {
        try await withJetStream { js, _ in
            _ = try await js.createStream(StreamConfig(name: "CAS", subjects: ["cas.>"]))
            let one = try await js.publish("cas.k", payload: "1")
            var headers = NATSHeaders()
            headers[NATSHeaders.expectedLastSubjectSequence] = String(one.sequence)
            _ = try await js.publish("cas.k", headers: headers, payload: "2")
            await #expect {
                _ = try await js.publish("cas.k", headers: headers, payload: "3")
            } throws: { ($0 as? JetStreamAPIError)?.errorCode == JetStreamAPIError.wrongLastSequence }
        }
    }

    @Test func pullFetchAckNakTerm() async throws {
        try await withJetStream { js, _ in
            _ = try await js.createStream(StreamConfig(name: "WORK", subjects: ["work.*"]))
            for i in 1...5 { _ = try await js.publish("work.item", payload: "job \(i)") }
            var consumer = ConsumerConfig(durableName: "workers")
            consumer.ackWait = .seconds(30)
            consumer.maxAckPending = 100
            consumer.filterSubject = "work.item"
            let info = try await js.createConsumer(stream: "WORK", config: consumer)
            #expect(info.name == "workers")
            #expect(info.numPending == 5)

            let batch = try await js.fetch(stream: "WORK", consumer: "workers", batch: 3, expires: .seconds(5))
            #expect(batch.map { String(buffer: $0.payload) } == ["job 1", "job 2", "job 3"])
            #expect(batch.map(\.metadata.streamSequence) == [1, 2, 3])
            #expect(batch.map(\.metadata.consumerSequence) == [1, 2, 3])
            #expect(batch.first?.metadata.stream == "WORK")
            #expect(batch.first?.metadata.consumer == "workers")
            #expect(batch.first?.metadata.delivered == 1)
            #expect(batch.last?.metadata.pending == 2)
            try await batch[0].ackSync(timeout: .seconds(5))
            try batch[1].term()
            try batch[2].nak()

            // The rest, then the nak'd one again; the fetch ends early when the consumer runs dry.
            let rest = try await js.fetch(stream: "WORK", consumer: "workers", batch: 10, expires: .seconds(2))
            let bodies = rest.map { String(buffer: $0.payload) }
            #expect(bodies.sorted() == ["job 3", "job 4", "job 5"])
            let redelivered = try #require(rest.first { String(buffer: $0.payload) == "job 3" })
            #expect(redelivered.metadata.delivered == 2)
            for message in rest { try message.ack() }
            try await js.connection.flush()
            let empty = try await js.fetch(stream: "WORK", consumer: "workers", batch: 1, expires: .seconds(1))
            #expect(empty.isEmpty)

            let ephemeral = try await js.createConsumer(stream: "WORK", config: ConsumerConfig())
            #expect(!ephemeral.name.isEmpty)
            try await js.deleteConsumer(stream: "WORK", name: "workers")
        }
    }

    @Test(arguments: [false, true])
    func getMessages(direct: Bool) async throws {
        try await withJetStream { js, _ in
            var config = StreamConfig(name: "GET", subjects: ["get.>"])
            config.allowDirect = true
            _ = try await js.createStream(config)
            var headers = NATSHeaders()
            headers["Kind"] = "reading"
            _ = try await js.publish("get.a", headers: headers, payload: "a1")
            _ = try await js.publish("get.b", payload: "b1")
            _ = try await js.publish("get.a", payload: "a2")
            let first = try #require(try await js.getMessage(stream: "GET", sequence: 1, direct: direct))
            #expect(first.subject == "get.a")
            #expect(first.sequence == 1)
            #expect(first.headers?["Kind"] == "reading")
            #expect(String(buffer: first.payload) == "a1")
            let last = try #require(try await js.getLastMessage(stream: "GET", subject: "get.a", direct: direct))
            #expect(last.sequence == 3)
            #expect(String(buffer: last.payload) == "a2")
            #expect(try await js.getLastMessage(stream: "GET", subject: "get.none", direct: direct) == nil)
            #expect(try await js.getMessage(stream: "GET", sequence: 99, direct: direct) == nil)
        }
    }

    @Test func orderedConsumerDeliversInOrder() async throws {
        try await withJetStream { js, _ in
            _ = try await js.createStream(StreamConfig(name: "EVENTS", subjects: ["events.>"]))
            for i in 1...20 { _ = try await js.publish("events.x", payload: "\(i)") }
            let consumer = try await js.orderedConsumer(stream: "EVENTS", idleHeartbeat: .seconds(1))
            #expect(consumer.initialPending == 20)
            var seen: [UInt64] = []
            while seen.count < 25 {
                if seen.count == 20 { for i in 21...25 { _ = try await js.publish("events.y", payload: "\(i)") } }
                let message = try #require(try await consumer.next(timeout: .seconds(10)))
                seen.append(message.metadata.streamSequence)
            }
            #expect(seen == Array(1...25))
            await consumer.stop()
        }
    }
}

extension JetStreamIntegrationTests {
    @Test func orderedConsumerRecoversWhenItsConsumerVanishes() async throws {
        try await withJetStream { js, _ in
            _ = try await js.createStream(StreamConfig(name: "RECOVER", subjects: ["recover"]))
            for i in 1...5 { _ = try await js.publish("recover", payload: "\(i)") }
            let consumer = try await js.orderedConsumer(stream: "RECOVER", idleHeartbeat: .seconds(1))
            var seen: [UInt64] = []
            for _ in 1...5 { seen.append(try #require(try await consumer.next(timeout: .seconds(10))).metadata.streamSequence) }
            // The server loses the consumer: heartbeats stop, and the client recreates it after the
            // last sequence it delivered.
            let state = consumer.state
            let name = try #require(try await state.eventLoop.submit { state.value.currentConsumerName }.get())
            try await js.deleteConsumer(stream: "RECOVER", name: name)
            for i in 6...8 { _ = try await js.publish("recover", payload: "\(i)") }
            for _ in 6...8 { seen.append(try #require(try await consumer.next(timeout: .seconds(30))).metadata.streamSequence) }
            #expect(seen == Array(1...8))
            await consumer.stop()
        }
    }
}

extension PubAck {
    static func make(stream: String, sequence: UInt64) -> PubAck {
        try! JSONDecoder().decode(PubAck.self, from: Data(#"{"stream":"\#(stream)","seq":\#(sequence)}"#.utf8))
    }
}

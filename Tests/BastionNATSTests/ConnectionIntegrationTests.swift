@testable import BastionNATS
import Foundation
import NIOCore
import Synchronization
import Testing

/// Waits for the first event matching `predicate`, at most `timeout`.
func waitForEvent(_ events: AsyncStream<NATSEvent>, timeout: Duration = .seconds(30),
                  _ predicate: @escaping @Sendable (NATSEvent) -> Bool) async throws -> NATSEvent {
    try await withThrowingTaskGroup(of: NATSEvent?.self) { group in
        group.addTask {
            for await event in events where predicate(event) { return event }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        guard let first else { throw ScriptError(description: "event did not arrive within \(timeout)") }
        return first
    }
}

/// A value behind a mutex that escaping closures can capture.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

@Suite("Connection against nats-server")
struct ConnectionIntegrationTests {
    @Test func pubSubRoundTripWithHeaders() async throws {
        try await withServer { server in
            try await withConnection(server.configuration()) { nats in
                let sub = try await nats.subscribe("plant.*.temp")
                var headers = NATSHeaders()
                headers["Unit"] = "celsius"
                headers.append("Trace", "a")
                headers.append("Trace", "b")
                try nats.publish("plant.line1.temp", reply: "plant.replies", headers: headers, payload: "21.5")
                try nats.publish("plant.line2.temp", payload: "19")
                let first = try #require(try await sub.next(timeout: .seconds(10)))
                #expect(first.subject == "plant.line1.temp")
                #expect(first.replyTo == "plant.replies")
                #expect(first.headers?["unit"] == "celsius")
                #expect(first.headers?.values("Trace") == ["a", "b"])
                #expect(String(buffer: first.payload) == "21.5")
                let second = try #require(try await sub.next(timeout: .seconds(10)))
                #expect(second.headers == nil)
                #expect(String(buffer: second.payload) == "19")
            }
        }
    }

    @Test func queueGroupsShareMessages() async throws {
        try await withServer { server in
            try await withConnection(server.configuration()) { nats in
                let counts = Locked([0, 0, 0])
                let a = try await nats.subscribe("jobs", queue: "workers") { _ in counts.withLock { $0[0] += 1 } }
                _ = try await nats.subscribe("jobs", queue: "workers") { _ in counts.withLock { $0[1] += 1 } }
                _ = try await nats.subscribe("jobs") { _ in counts.withLock { $0[2] += 1 } }
                for i in 0..<100 { try nats.publish("jobs", payload: "\(i)") }
                try await nats.flush()
                try await eventually(timeout: .seconds(10)) {
                    let c = counts.withLock { $0 }
                    guard c[0] + c[1] == 100, c[2] == 100 else { throw ScriptError(description: "counts \(c)") }
                }
                a.unsubscribe()
            }
        }
    }

    @Test func callbacksRunOnTheConnectionsEventLoop() async throws {
        try await withServer { server in
            try await withConnection(server.configuration()) { nats in
                let onLoop = Locked<Bool?>(nil)
                let loop = nats.eventLoop
                _ = try await nats.subscribe("cb") { _ in onLoop.withLock { $0 = loop.inEventLoop } }
                try nats.publish("cb", payload: "x")
                try await nats.flush()
                try await eventually(timeout: .seconds(10)) {
                    guard let value = onLoop.withLock({ $0 }) else { throw ScriptError(description: "not delivered") }
                    #expect(value)
                }
            }
        }
    }

    @Test func requestReplyAndNoResponders() async throws {
        try await withServer { server in
            try await withConnection(server.configuration()) { nats in
                _ = try await nats.subscribe("echo") { message in
                    guard let reply = message.replyTo else { return }
                    try? nats.publish(reply, headers: message.headers, payload: "echo: " + String(buffer: message.payload))
                }
                try await nats.flush()
                async let r1 = nats.request("echo", payload: "one", timeout: .seconds(10))
                async let r2 = nats.request("echo", payload: "two", timeout: .seconds(10))
                let (a, b) = try await (r1, r2)
                #expect(String(buffer: a.payload) == "echo: one")
                #expect(String(buffer: b.payload) == "echo: two")
                await #expect(throws: NATSError.noResponders(subject: "nobody.home")) {
                    _ = try await nats.request("nobody.home", payload: "?", timeout: .seconds(10))
                }
            }
        }
    }

    @Test func unsubscribeAfterMax() async throws {
        try await withServer { server in
            try await withConnection(server.configuration()) { nats in
                let sub = try await nats.subscribe("limited")
                sub.unsubscribe(after: 3)
                for i in 0..<10 { try nats.publish("limited", payload: "\(i)") }
                var received: [String] = []
                for try await message in sub { received.append(String(buffer: message.payload)) }
                #expect(received == ["0", "1", "2"])
            }
        }
    }

    @Test func wrongPasswordFails() async throws {
        _ = try await withServer { server in
            await #expect {
                _ = try await NATSConnection.connect(server.configuration(authentication: .userPassword(user: "bastion", password: "wrong")))
            } throws: { error in
                guard case NATSError.authenticationFailed = error else { return false }
                return true
            }
        }
    }

    @Test func serverWithoutAuthenticationIsRefusedUnlessAllowed() async throws {
        try await withServer(["--no-auth"]) { server in
            let url = "nats://127.0.0.1:\(server.port)"
            await #expect(throws: NATSError.serverDoesNotRequireAuthentication(url: url)) {
                _ = try await NATSConnection.connect(server.configuration(authentication: NATSAuthentication.none))
            }
            var open = server.configuration(authentication: NATSAuthentication.none)
            open.requireAuthentication = false
            try await withConnection(open) { nats in try await nats.flush() }
        }
    }

    @Test func tokenAuthentication() async throws {
        try await withServer(["--token", "s3cret-token"]) { server in
            try await withConnection(server.configuration(authentication: .token("s3cret-token"))) { nats in try await nats.flush() }
            await #expect(throws: NATSError.self) {
                _ = try await NATSConnection.connect(server.configuration(authentication: .token("other")))
            }
        }
    }

    @Test func nkeyAuthenticationSignsTheNonce() async throws {
        let seed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
        let publicKey = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"
        try await withServer(["--nkey", publicKey]) { server in
            let file = NSTemporaryDirectory() + "seed-\(UUID().uuidString)"
            try seed.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            try await withConnection(server.configuration(authentication: .nkeySeedFile(file))) { nats in
                let sub = try await nats.subscribe("nk")
                try nats.publish("nk", payload: "signed")
                #expect(try await sub.next(timeout: .seconds(10)).map { String(buffer: $0.payload) } == "signed")
            }
            // Another user's key is refused.
            await #expect(throws: NATSError.self) {
                _ = try await NATSConnection.connect(server.configuration(authentication: .nkeySeed("SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y")))
            }
        }
    }

    @Test func publishRejectsWhatTheServerWouldRefuse() async throws {
        try await withServer { server in
            try await withConnection(server.configuration()) { nats in
                let max = try #require(await nats.serverInfo).maxPayload
                #expect(throws: NATSError.payloadTooLarge(size: max + 1, limit: max)) {
                    try nats.publish("big", payload: ByteBuffer(repeating: 0, count: max + 1))
                }
                #expect(throws: NATSError.invalidSubject("a b\r\nPUB x 1")) { try nats.publish("a b\r\nPUB x 1", payload: "x") }
                // Still usable.
                try await nats.flush()
            }
        }
    }

    @Test func slowConsumerDropsAndReports() async throws {
        try await withServer { server in
            try await withConnection(server.configuration()) { nats in
                let events = nats.events()
                let sub = try await nats.subscribe("flood", limits: .init(messages: 10, bytes: 1 << 20))
                for i in 0..<100 { try nats.publish("flood", payload: "\(i)") }
                try await nats.flush()
                let event = try await waitForEvent(events) { if case .slowConsumer = $0 { true } else { false } }
                #expect(event == .slowConsumer(sid: sub.sid))
                #expect(sub.droppedMessages == 90)
                #expect(sub.pendingMessages == 10)
                // The first ten are kept, in order.
                let first = try #require(try await sub.next(timeout: .seconds(5)))
                #expect(String(buffer: first.payload) == "0")
            }
        }
    }

    @Test func reconnectsAfterRestartAndRestoresSubscriptions() async throws {
        try await withServer { server in
            var config = server.configuration()
            config.pingInterval = .seconds(1)
            try await withConnection(config) { nats in
                let events = nats.events()
                let sub = try await nats.subscribe("after.restart")
                try await nats.flush()
                try await server.kill()
                _ = try await waitForEvent(events) { if case .disconnected = $0 { true } else { false } }
                // Published while disconnected: kept and sent after the reconnect.
                try nats.publish("after.restart", payload: "buffered")
                try await server.restart()
                let event = try await waitForEvent(events) { if case .reconnected = $0 { true } else { false } }
                #expect(event == .reconnected(try NATSServerURL(server.url)))
                try nats.publish("after.restart", payload: "live")
                let got = [try await sub.next(timeout: .seconds(10)), try await sub.next(timeout: .seconds(10))]
                #expect(got.map { $0.map { String(buffer: $0.payload) } } == ["buffered", "live"])
            }
        }
    }

    @Test func reconnectBufferIsBounded() async throws {
        try await withServer { server in
            var config = server.configuration()
            config.reconnectBufferSize = 1000
            try await withConnection(config) { nats in
                let events = nats.events()
                try await nats.flush()
                try await server.kill()
                _ = try await waitForEvent(events) { if case .disconnected = $0 { true } else { false } }
                try nats.publish("x", payload: ByteBuffer(repeating: 1, count: 600))
                #expect(throws: NATSError.self) { try nats.publish("x", payload: ByteBuffer(repeating: 1, count: 600)) }
            }
        }
    }

    @Test func closeWithDrainDeliversWhatWasSent() async throws {
        try await withServer { server in
            let nats = try await NATSConnection.connect(server.configuration())
            let sub = try await nats.subscribe("drain")
            for i in 0..<50 { try nats.publish("drain", payload: "\(i)") }
            try await nats.close(drain: true)
            var count = 0
            do {
                for try await _ in sub { count += 1 }
            } catch NATSError.connectionClosed {}
            #expect(count == 50)
            #expect(throws: NATSError.connectionClosed) { try nats.publish("drain", payload: "late") }
        }
    }
}

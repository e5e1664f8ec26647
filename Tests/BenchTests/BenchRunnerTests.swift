@testable import BastionBench
import MQTTCodec
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Runs the generator end to end against a minimal in-process broker on 127.0.0.1.
@Suite(.timeLimit(.minutes(1))) struct BenchRunnerTests {
    @Test(arguments: [QoS.atMostOnce, .atLeastOnce, .exactlyOnce])
    func fanoutDeliversEveryMessageToEverySubscriber(qos: QoS) async throws {
        try await withTinyBroker { port in
            var config = BenchConfiguration(scenario: .fanout)
            config.port = port
            config.qos = qos
            config.publishers = 1
            config.subscribers = 3
            config.rate = 400
            config.durationSeconds = 0.3
            config.warmupSeconds = 0.1
            config.drainSeconds = 20
            config.runID = "t\(qos.rawValue)"
            let report = try await BenchRunner(config: config).run()
            #expect(report.errors.isEmpty)
            #expect(report.connections.connected == 4)
            #expect(report.messages.sent > 0)
            #expect(report.messages.expected == report.messages.sent * 3)
            #expect(report.messages.missing == 0)
            #expect(report.messages.received == report.messages.sent * 3)
            #expect(report.messages.unacknowledged == 0)
            if qos != .atMostOnce { #expect(report.messages.acknowledged == report.messages.sent) }
            #expect(report.latencyMicros.count > 0)
            #expect(report.connections.setupMillis.count == 4)
        }
    }

    @Test func mqtt5FaninCountsAtTheSubscriber() async throws {
        try await withTinyBroker { port in
            var config = BenchConfiguration(scenario: .fanin)
            config.port = port
            config.version = .v5
            config.qos = .atLeastOnce
            config.publishers = 4
            config.subscribers = 1
            config.rate = 400
            config.durationSeconds = 0.3
            config.warmupSeconds = 0.1
            config.drainSeconds = 20
            let report = try await BenchRunner(config: config).run()
            #expect(report.errors.isEmpty)
            #expect(report.messages.received == report.messages.sent)
            #expect(report.messages.receivedInWindow <= report.messages.received)
        }
    }

    @Test func refusedConnectionsAreCountedAsErrors() async throws {
        try await withTinyBroker { port in
            var config = BenchConfiguration(scenario: .conn)
            config.port = port
            config.connections = 3
            config.username = "deny"
            config.durationSeconds = 0.1
            let report = try await BenchRunner(config: config).run()
            #expect(report.connections.connected == 0)
            #expect(report.connections.failed == 3)
            #expect(report.errors.keys.contains { $0.contains("CONNACK refused") })
        }
    }

    @Test func connectionFailureIsAnErrorNotACrash() async throws {
        // Find a port nobody listens on: bind, note it, close.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 1
        try await channel.close()
        try await group.shutdownGracefully()

        var config = BenchConfiguration(scenario: .conn)
        config.port = port
        config.connections = 2
        config.durationSeconds = 0.1
        let report = try await BenchRunner(config: config).run()
        #expect(report.connections.failed == 2)
        #expect(report.errorCount == 2)
    }
}

// MARK: - A broker just big enough to drive the generator

private func withTinyBroker(_ body: (Int) async throws -> Void) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let registry = TinyRegistry()
    let server = try await ServerBootstrap(group: group)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(MQTTPacketDecoder()))
                try channel.pipeline.syncOperations.addHandler(TinyBrokerHandler(registry: registry))
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    do {
        try await body(server.localAddress?.port ?? 0)
    } catch {
        try? await server.close()
        try? await group.shutdownGracefully()
        throw error
    }
    try await server.close()
    try await group.shutdownGracefully()
}

private final class TinyRegistry: Sendable {
    private let subscribers = Mutex<[(channel: any Channel, filter: String, qos: QoS, version: ProtocolVersion)]>([])
    private let nextID = Atomic<UInt16>(0)

    func add(_ channel: any Channel, filter: String, qos: QoS, version: ProtocolVersion) {
        subscribers.withLock { $0.append((channel, filter, qos, version)) }
    }

    func remove(_ channel: any Channel) {
        subscribers.withLock { $0.removeAll { $0.channel === channel } }
    }

    func route(_ publish: PublishPacket) {
        let targets = subscribers.withLock { $0.filter { matches(filter: $0.filter, topic: publish.topic) } }
        for target in targets {
            var out = publish
            out.qos = min(publish.qos, target.qos)
            out.dup = false
            out.retain = false
            out.properties = PublishProperties()
            if out.qos != .atMostOnce {
                var id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
                if id == 0 { id = nextID.wrappingAdd(1, ordering: .relaxed).newValue }
                out.packetID = id
            } else {
                out.packetID = 0
            }
            var buffer = target.channel.allocator.buffer(capacity: out.encodedSize(version: target.version))
            MQTTPacket.publish(out).write(version: target.version, to: &buffer)
            target.channel.writeAndFlush(buffer, promise: nil)
        }
    }

    private func matches(filter: String, topic: String) -> Bool {
        let f = filter.split(separator: "/", omittingEmptySubsequences: false)
        let t = topic.split(separator: "/", omittingEmptySubsequences: false)
        for (i, level) in f.enumerated() {
            if level == "#" { return true }
            guard i < t.count else { return false }
            if level != "+" && level != t[i] { return false }
        }
        return f.count == t.count
    }
}

private final class TinyBrokerHandler: ChannelInboundHandler {
    typealias InboundIn = MQTTPacket
    typealias OutboundOut = ByteBuffer
    let registry: TinyRegistry
    var version = ProtocolVersion.v3_1_1

    init(registry: TinyRegistry) { self.registry = registry }

    private func send(_ packet: MQTTPacket, context: ChannelHandlerContext) {
        var out = context.channel.allocator.buffer(capacity: packet.encodedSize(version: version))
        packet.write(version: version, to: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .connect(let connect):
            version = connect.protocolVersion
            let refused = connect.username == "deny"
            send(.connack(ConnackPacket(reasonCode: refused ? .notAuthorized : .success)), context: context)
            if refused { context.close(promise: nil) }
        case .subscribe(let subscribe):
            for s in subscribe.subscriptions {
                registry.add(context.channel, filter: s.filter, qos: s.options.qos, version: version)
            }
            send(.suback(SubackPacket(packetID: subscribe.packetID, reasonCodes: subscribe.subscriptions.map { ReasonCode(rawValue: $0.options.qos.rawValue) })), context: context)
        case .publish(let publish):
            registry.route(publish)
            switch publish.qos {
            case .atLeastOnce: send(.puback(PublishAckPacket(packetID: publish.packetID)), context: context)
            case .exactlyOnce: send(.pubrec(PublishAckPacket(packetID: publish.packetID)), context: context)
            case .atMostOnce: break
            }
        case .pubrel(let ack): send(.pubcomp(PublishAckPacket(packetID: ack.packetID)), context: context)
        case .pubrec(let ack): send(.pubrel(PublishAckPacket(packetID: ack.packetID)), context: context)
        case .pingreq: send(.pingresp, context: context)
        case .disconnect: context.close(promise: nil)
        default: break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.remove(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

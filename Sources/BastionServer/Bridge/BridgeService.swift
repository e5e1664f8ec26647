import BastionBridge
import BastionCore
import BastionSecurity
import Glibc
import Logging
import NIOCore
import NIOPosix

/// Runs the configured bridges. Each bridge's local side is an ordinary persistent session of
/// this broker, reached over an in-process socket pair and served by the same connection handler
/// as any client: the session stores QoS 1 messages before their publisher is acknowledged,
/// redelivers them in order after a restart, and keeps them within the bridge's queue limits.
final class BridgeService: Sendable {
    let links: [BridgeLink]
    private let peers: [InternalPeer]
    private let broker: Broker

    init(settings: [BridgeSettings], broker: Broker, logger: Logger) throws(ConfigError) {
        self.broker = broker
        var links: [BridgeLink] = []
        var peers: [InternalPeer] = []
        for (i, bridge) in settings.enumerated() {
            var limits = broker.limits
            // Bounded by bytes, not count; when full the oldest go first (store_and_forward).
            limits.maximumQueuedMessages = Int.max
            limits.maximumQueuedBytes = bridge.storeMaximumBytes
            limits.queueDropPolicy = .dropOldest
            let peer = InternalPeer(
                bridgeName: bridge.name, owner: SessionOwner.bridge(bridge.name),
                identity: ClientIdentity(clientID: bridge.localClientID, username: nil), authorizer: BridgeAuthorizer(bridge),
                limits: limits, ages: BridgeQueueAges(maximumAgeSeconds: bridge.storeMaximumAge))
            let linkLoop = broker.group.next()
            let sessionLoop = broker.group.next()
            let protection = broker.protection
            let name = bridge.name
            do {
                links.append(try BridgeLink(
                    settings: bridge, loop: linkLoop, logger: logger,
                    openLocal: { try Self.openLocalSession(broker: broker, peer: peer, loop: sessionLoop) },
                    events: { event in Self.report(event, bridge: name, protection: protection) }))
            } catch {
                throw ConfigError(key: "bridges[\(i)].tls", "cannot load the bridge's TLS material: \(error)",
                                  fix: "check the ca, cert and key files (PEM)")
            }
            peers.append(peer)
        }
        self.links = links
        self.peers = peers
    }

    /// Starts every bridge and waits (at most `timeout`) until their local sessions are
    /// subscribed, so that what clients publish once the listeners are open is kept for the remote.
    func start(timeout: Duration = .seconds(10)) async {
        let started = links.map { $0.start() }
        guard !started.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for future in started { try? await future.get() }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    func stop() async {
        for link in links { try? await link.stop().get() }
    }

    /// A connected socket pair: the broker serves one end like a client connection, the bridge
    /// gets the other.
    private static func openLocalSession(broker: Broker, peer: InternalPeer, loop: any EventLoop) throws -> CInt {
        var descriptors: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &descriptors) == 0 else {
            throw IOError(errnoCode: errno, reason: "socketpair")
        }
        let info = ConnectionInfo(listener: "bridge:\(peer.bridgeName)", remoteAddress: "internal", allowAnonymous: false)
        ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        MQTTConnectionHandler(broker: broker, eventLoop: channel.eventLoop, info: info, internalPeer: peer))
                }
            }
            .withConnectedSocket(descriptors[0])
            .whenFailure { _ in close(descriptors[0]) }
        return descriptors[1]
    }

    private static func report(_ event: BridgeEvent, bridge: String, protection: AbuseProtection?) {
        let record: AuditEvent.BridgeLink
        switch event {
        case .connected(let remote): record = .init(kind: .connected, bridge: bridge, remote: remote)
        case .disconnected(let remote, let reason): record = .init(kind: .disconnected, bridge: bridge, remote: remote, reason: reason)
        case .refused(let remote, let reason): record = .init(kind: .refused, bridge: bridge, remote: remote, reason: reason)
        case .unreachable(let reason, _): record = .init(kind: .unreachable, bridge: bridge, reason: reason)
        case .subscriptionRefused: return
        }
        protection?.bridgeEvent(record)
    }

    // MARK: Status

    struct Snapshot: Sendable {
        var name: String
        var connected: Bool
        var remote: String?
        var queuedMessages: Int
        var queuedBytes: Int
        var forwarded: Int
        var received: Int
        var dropped: [String: Int]
        /// Seconds the oldest message waiting for the remote has waited (0 when none waits).
        var oldestQueuedAge: Int
    }

    /// Every bridge's state: the link's counters and its session's queue (read on the session's loop).
    func snapshots(on loop: any EventLoop) -> EventLoopFuture<[Snapshot]> {
        let futures = zip(links, peers).map { link, peer in
            queue(of: link.settings.localClientID, ages: peer.ages, on: loop).map { queued in
                let status = link.status
                var dropped = Dictionary(uniqueKeysWithValues: BridgeStatus.DropReason.allCases.map { ($0.rawValue, status.dropped($0)) })
                dropped["queue_full"] = peer.dropped.load(ordering: .relaxed)
                dropped["expired"] = peer.expired.load(ordering: .relaxed)
                return Snapshot(
                    name: link.settings.name, connected: status.isConnected,
                    remote: status.remoteIndex >= 0 ? link.settings.remotes[status.remoteIndex].description : nil,
                    queuedMessages: queued.messages + status.pending, queuedBytes: queued.bytes, forwarded: status.forwarded,
                    received: status.received, dropped: dropped, oldestQueuedAge: queued.oldestAge)
            }
        }
        return EventLoopFuture.whenAllSucceed(futures, on: loop)
    }

    /// Messages the session holds for the bridge beyond what the bridge itself holds, and how
    /// long the oldest has waited.
    private func queue(of clientID: String, ages: BridgeQueueAges, on loop: any EventLoop)
        -> EventLoopFuture<(messages: Int, bytes: Int, oldestAge: Int)>
    {
        func measure(_ outbound: OutboundFlow?) -> (messages: Int, bytes: Int, oldestAge: Int) {
            guard let outbound else { return (0, 0, 0) }
            let oldest = outbound.inflight.values.first?.delivery ?? outbound.queue.first
            let age = oldest.flatMap { ages.age(of: $0.message.id, at: .now()) }.map { Int($0.nanoseconds / 1_000_000_000) } ?? 0
            return (outbound.queue.count, outbound.queuedBytes, age)
        }
        guard let handle = broker.registry.handle(for: clientID) else { return loop.makeSucceededFuture((0, 0, 0)) }
        if let connection = handle.connection as? MQTTConnectionHandler {
            return connection.eventLoop.submit { measure(connection.machine.state?.outbound) }.hop(to: loop)
        }
        let offline = handle.withOfflineState { offline in
            var measured = measure(offline.state.outbound)
            measured.messages += offline.state.outbound.inflight.count
            return measured
        }
        return loop.makeSucceededFuture(offline ?? (0, 0, 0))
    }
}

import BastionCore
import BastionSecurity
import Logging
import MQTTCodec
import NIOCore
import Synchronization

/// The broker's shared state and the narrow APIs connections use to reach it: the session table,
/// the retained store, the per-loop routing workers, and the security hooks.
final class Broker: Sendable {
    let limits: BrokerLimits
    let registry = SessionRegistry()
    let retained: RetainedStore
    let stats = BrokerStats()
    let logger: Logger
    let group: any EventLoopGroup
    let startedAt = NIODeadline.now()
    /// Durable state (nil: in memory only). QoS 1/2 messages for persistent sessions are
    /// acknowledged only once committed here.
    let store: (any DurableStore)?
    /// Connection limits, bans, brute-force and flapping detection, audit and metrics.
    let protection: AbuseProtection?
    /// `auth.disconnect_on_denied_publish`: a denied PUBLISH ends the connection.
    let disconnectOnDeniedPublish: Bool
    /// Sparkplug inventory, counters and alerts (the aware-server rules are in `SparkplugAwareness`).
    let sparkplug: SparkplugService
    /// MQTT 5.0 enhanced authentication methods; none by default.
    let enhancedAuthenticator: (any EnhancedAuthenticator)?
    private let workers: [ObjectIdentifier: NIOLoopBoundBox<LoopWorker?>]
    private let loopIndices: [ObjectIdentifier: Int]
    /// Per-loop message counters, summed by `snapshot()`.
    let traffic: [TrafficCounters]
    /// Message ids start above every id in the durable store; each loop takes every n-th id.
    let messageIDBase = Atomic<UInt64>(1)
    private let security: Mutex<Security>
    private let generation = Atomic<Int>(0)

    struct Security {
        var authenticator: any Authenticator
        var authorization: any AuthorizationPolicy
        var sessionSharing: SessionSharing = .none
        /// Bumped on every policy swap; connections rebuild their authorizer when it changes.
        var generation: Int
    }

    /// A connection must complete CONNECT (and authentication) within this of being accepted.
    let connectTimeout: TimeAmount
    /// Per listener: the largest CONNECT accepted there (nil: `limits.maximumConnectPacketSize`).
    let listenerConnectPacketSizes: [Int?]

    init(
        group: any EventLoopGroup, limits: BrokerLimits, logger: Logger,
        authenticator: any Authenticator = AnonymousAuthenticator(), authorization: any AuthorizationPolicy = AllowAllPolicy(),
        enhancedAuthenticator: (any EnhancedAuthenticator)? = nil, disconnectOnDeniedPublish: Bool = false,
        store: (any DurableStore)? = nil, protection: AbuseProtection? = nil, connectTimeout: TimeAmount = .seconds(10),
        sessionSharing: SessionSharing = .none, listenerConnectPacketSizes: [Int?] = []
    ) {
        self.connectTimeout = connectTimeout
        self.listenerConnectPacketSizes = listenerConnectPacketSizes
        self.store = store
        self.protection = protection
        self.sparkplug = SparkplugService(protection: protection, logger: logger)
        self.disconnectOnDeniedPublish = disconnectOnDeniedPublish
        self.enhancedAuthenticator = enhancedAuthenticator
        self.group = group
        self.limits = limits
        self.logger = logger
        self.retained = RetainedStore(
            maximumMessages: limits.maximumRetainedMessages, maximumBytes: limits.maximumRetainedBytes,
            maximumMessagesPerOwner: limits.retainedMessagesPerIdentity, maximumBytesPerOwner: limits.retainedBytesPerIdentity)
        var workers: [ObjectIdentifier: NIOLoopBoundBox<LoopWorker?>] = [:]
        var indices: [ObjectIdentifier: Int] = [:]
        for (i, loop) in group.makeIterator().enumerated() {
            workers[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeEmptyBox(valueType: LoopWorker.self, eventLoop: loop)
            indices[ObjectIdentifier(loop)] = i
        }
        self.workers = workers
        self.loopIndices = indices
        self.traffic = indices.map { _ in TrafficCounters() }
        self.security = Mutex(Security(authenticator: authenticator, authorization: authorization, sessionSharing: sessionSharing, generation: 0))
    }

    /// What every connection's session machine runs with.
    var sessionConfiguration: SessionMachine.Configuration {
        SessionMachine.Configuration(limits: limits, disconnectOnDeniedPublish: disconnectOnDeniedPublish, durable: store != nil)
    }

    /// Decoder limits before CONNECT on a listener (see `BrokerLimits.connectDecoderLimits`).
    func connectDecoderLimits(listenerIndex: Int) -> DecoderLimits {
        var limits = self.limits.connectDecoderLimits
        if listenerIndex < listenerConnectPacketSizes.count, let size = listenerConnectPacketSizes[listenerIndex] {
            limits.maximumPacketSize = min(self.limits.maximumPacketSize, size)
        }
        return limits
    }

    /// Whether `identity` may use the session owned by `owner` (`auth.shared_sessions`).
    func mayShareSessions(_ identity: String, _ owner: String) -> Bool {
        security.withLock { $0.sessionSharing }.mayShare(identity, owner)
    }

    var authenticator: any Authenticator { security.withLock { $0.authenticator } }

    func authorization() -> (policy: any AuthorizationPolicy, generation: Int) {
        security.withLock { ($0.authorization, $0.generation) }
    }

    /// Read on every authorization decision, so an atomic rather than the lock.
    var securityGeneration: Int { generation.load(ordering: .acquiring) }

    /// Installs a new authenticator and policy (SIGHUP reload).
    func updateSecurity(authenticator: any Authenticator, authorization: any AuthorizationPolicy, sessionSharing: SessionSharing = .none) {
        security.withLock {
            $0.authenticator = authenticator
            $0.authorization = authorization
            $0.sessionSharing = sessionSharing
            $0.generation += 1
            generation.store($0.generation, ordering: .releasing)
        }
        for loop in group.makeIterator() {
            loop.execute { self.worker(on: loop).securityChanged() }
        }
    }

    /// The routing worker of `loop`; must be called on that loop.
    func worker(on loop: any EventLoop) -> LoopWorker {
        let box = workers[ObjectIdentifier(loop)]!
        if let worker = box.value { return worker }
        let index = loopIndices[ObjectIdentifier(loop)]!
        let worker = LoopWorker(eventLoop: loop, broker: self, index: index, stride: loopIndices.count, traffic: traffic[index])
        box.value = worker
        return worker
    }

    /// Applies subscription changes to every loop's index; the future completes (on `loop`) when
    /// all replicas have them, so a SUBACK sent then is true for publishers on every loop.
    func broadcast(_ changes: [SubscriptionChange], from loop: any EventLoop) -> EventLoopFuture<Void> {
        if changes.isEmpty { return loop.makeSucceededVoidFuture() }
        var pending: [EventLoopFuture<Void>] = []
        for other in group.makeIterator() {
            if other === loop {
                worker(on: loop).apply(changes)
            } else {
                pending.append(other.submit { self.worker(on: other).apply(changes) })
            }
        }
        return EventLoopFuture.andAllSucceed(pending, on: loop)
    }

    /// Tracks store health from every commit: the first failure and the recovery are logged once.
    func storeCompleted(_ result: Result<Void, StoreError>) {
        switch result {
        case .success:
            if stats.storeFailing.exchange(false, ordering: .relaxed) {
                logger.notice("durable store recovered; QoS 1/2 messages are acknowledged again")
            }
        case .failure(let error):
            if !stats.storeFailing.exchange(true, ordering: .relaxed) {
                logger.critical("durable store failing; QoS 1/2 messages are not acknowledged until it recovers: \(error)")
            }
        }
    }

    /// A session ended: its subscriptions leave the index and a will still waiting is sent now.
    func end(_ ended: SessionRegistry.EndedSession, on loop: any EventLoop) {
        // Clean sessions never touch the disk; only a stored (persistent) session is deleted.
        if ended.handle.isPersistent { worker(on: loop).persist([.deleteSession(clientID: ended.handle.clientID)]) }
        let changes = ended.subscriptions.map { SubscriptionChange.remove(ended.handle, filter: $0.filter) }
        stats.subscriptions.subtract(changes.count, ordering: .relaxed)
        _ = broadcast(changes, from: loop)
        if let will = ended.pendingWill, willIsAllowed(will, owner: ended.handle.owner) {
            publish(will.message, on: loop, owner: ended.handle.owner)
        }
    }

    /// A delayed will is checked against the policy in force when it fires (a reload may have
    /// revoked its topic since the client left), as its publisher.
    func willIsAllowed(_ will: PendingWill, owner: String?) -> Bool {
        let publisher = will.publisher ?? ClientIdentity(
            clientID: will.message.publisherClientID, username: owner.flatMap(SessionOwner.username(of:)))
        let allowed = !SparkplugAwareness.isServerNamespace(will.message.topic)
            && authorization().policy.authorizer(for: publisher).mayPublish(will.message.topic)
        if !allowed {
            logger.info("delayed will denied by the policy in force", metadata: [
                "client_id": "\(will.message.publisherClientID)", "topic": "\(will.message.topic)",
            ])
        }
        return allowed
    }

    /// Publishes a message the server originates (wills, $SYS) as if a client had sent it.
    func publish(_ message: Message, on loop: any EventLoop, owner: String? = nil) {
        // A will on an NDEATH topic: stamped now, when it is delivered (Sparkplug Aware server).
        let message = SparkplugAwareness.stampingDeath(message)
        if let topic = SparkplugAwareness.classify(message.topic) {
            SparkplugAwareness.observe(topic, message.payload, in: sparkplug, byWill: true, clientID: message.publisherClientID, peer: nil)
        }
        let run = {
            let worker = self.worker(on: loop)
            if message.retain {
                if self.retained.apply(message, owner: owner) == .stored {
                    worker.persist(RetainedMessages.storeOperation(for: message, stored: StoreMapping.stored))
                }
            }
            worker.route(message, from: nil)
            worker.flush()
        }
        if loop.inEventLoop { run() } else { loop.execute(run) }
    }

    /// Periodic housekeeping: expire offline sessions, send delayed wills.
    func reap(on loop: any EventLoop) {
        let now = NIODeadline.now()
        let (ended, wills) = registry.collectDue(now: now)
        for session in ended {
            logger.debug("session expired", metadata: ["client_id": "\(session.handle.clientID)"])
            stats.sessionsExpired.add(1, ordering: .relaxed)
            end(session, on: loop)
        }
        for will in wills {
            worker(on: loop).persist([.setPendingWill(clientID: will.message.publisherClientID, will: nil, publishAt: nil)])
            let owner = registry.handle(for: will.message.publisherClientID)?.owner
            if willIsAllowed(will, owner: owner) {
                publish(will.message, on: loop, owner: owner)
            }
        }
        _ = retained.purgeExpired(now: now)
    }

    /// Runs `body` with every connection handler on every loop (shutdown, reload).
    func forEachConnection(_ body: @escaping @Sendable (MQTTConnectionHandler) -> Void) -> EventLoopFuture<Void> {
        let futures = group.makeIterator().map { loop in
            loop.submit {
                for handler in self.worker(on: loop).connections.values { body(handler) }
            }
        }
        return EventLoopFuture.andAllSucceed(futures, on: group.next())
    }
}

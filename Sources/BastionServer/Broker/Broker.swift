import BastionCore
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
    /// MQTT 5.0 enhanced authentication methods; none by default.
    let enhancedAuthenticator: (any EnhancedAuthenticator)?
    private let workers: [ObjectIdentifier: NIOLoopBoundBox<LoopWorker?>]
    private let security: Mutex<Security>

    struct Security {
        var authenticator: any Authenticator
        var authorization: any AuthorizationPolicy
        /// Bumped on every policy swap; connections rebuild their authorizer when it changes.
        var generation: Int
    }

    init(
        group: any EventLoopGroup, limits: BrokerLimits, logger: Logger,
        authenticator: any Authenticator = AnonymousAuthenticator(), authorization: any AuthorizationPolicy = AllowAllPolicy(),
        enhancedAuthenticator: (any EnhancedAuthenticator)? = nil
    ) {
        self.enhancedAuthenticator = enhancedAuthenticator
        self.group = group
        self.limits = limits
        self.logger = logger
        self.retained = RetainedStore(maximumMessages: limits.maximumRetainedMessages, maximumBytes: limits.maximumRetainedBytes)
        var workers: [ObjectIdentifier: NIOLoopBoundBox<LoopWorker?>] = [:]
        for loop in group.makeIterator() {
            workers[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeEmptyBox(valueType: LoopWorker.self, eventLoop: loop)
        }
        self.workers = workers
        self.security = Mutex(Security(authenticator: authenticator, authorization: authorization, generation: 0))
    }

    var authenticator: any Authenticator { security.withLock { $0.authenticator } }

    func authorization() -> (policy: any AuthorizationPolicy, generation: Int) {
        security.withLock { ($0.authorization, $0.generation) }
    }

    var securityGeneration: Int { security.withLock { $0.generation } }

    /// Installs a new authenticator and policy (SIGHUP reload).
    func updateSecurity(authenticator: any Authenticator, authorization: any AuthorizationPolicy) {
        security.withLock {
            $0.authenticator = authenticator
            $0.authorization = authorization
            $0.generation += 1
        }
        for loop in group.makeIterator() {
            loop.execute { self.worker(on: loop).securityChanged() }
        }
    }

    /// The routing worker of `loop`; must be called on that loop.
    func worker(on loop: any EventLoop) -> LoopWorker {
        let box = workers[ObjectIdentifier(loop)]!
        if let worker = box.value { return worker }
        let worker = LoopWorker(eventLoop: loop, broker: self)
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

    /// A session ended: its subscriptions leave the index and a will still waiting is sent now.
    func end(_ ended: SessionRegistry.EndedSession, on loop: any EventLoop) {
        let changes = ended.subscriptions.map { SubscriptionChange.remove(ended.handle, filter: $0.filter) }
        _ = broadcast(changes, from: loop)
        if let will = ended.pendingWill {
            publish(will.message, on: loop)
        }
    }

    /// Publishes a message the server originates (wills, $SYS) as if a client had sent it.
    func publish(_ message: Message, on loop: any EventLoop) {
        let run = {
            let worker = self.worker(on: loop)
            if message.retain { self.retained.apply(message) }
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
            end(session, on: loop)
        }
        for will in wills { publish(will.message, on: loop) }
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

import DequeModule
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Everything a connection knows, confined to its event loop: the current channel and handshake,
/// subscriptions (re-sent after a reconnect), PING accounting, pending requests and listeners.
/// Only `OutboundQueue` is shared with other threads.
final class ConnectionCore {
    let eventLoop: any EventLoop
    let configuration: NATSConfiguration
    let logger: Logger
    let outbound: OutboundQueue

    private var pool: ServerPool
    private let backoff: ReconnectBackoff
    private var tlsContext: NIOSSLContext?
    private let nkey: NKeyPair?

    enum State {
        case idle
        case connecting(ConnectionAttempt)
        case connected(ConnectionAttempt)
        case waitingToReconnect(Scheduled<Void>)
        case closed
    }
    private(set) var state = State.idle
    private var closing = false
    /// Why the connection ended when the caller did not close it (reconnect attempts exhausted);
    /// iterations of subscriptions end with it.
    private var abandonedWith: NATSError?
    private var closePromises: [EventLoopPromise<Void>] = []
    private var everConnected = false
    private var reconnectAttempt = 0
    private(set) var serverInfo: NATSServerInfo?

    var subscriptions: [UInt64: SubscriptionRecord] = [:]
    private var nextSid: UInt64 = 1

    private var pings: PingTracker
    /// One entry per PING in flight, in order; nil for keep-alive PINGs.
    private var pongWaiters: Deque<EventLoopPromise<Void>?> = []
    private var pingTask: RepeatedTask?

    let requests: RequestMux
    private var listeners: [Int: AsyncStream<NATSEvent>.Continuation] = [:]
    private var nextListener = 0
    private let onEvent: (@Sendable (NATSEvent) -> Void)?

    init(configuration: NATSConfiguration, eventLoop: any EventLoop, logger: Logger, outbound: OutboundQueue,
         onEvent: (@Sendable (NATSEvent) -> Void)?) throws {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.outbound = outbound
        self.onEvent = onEvent
        pool = ServerPool(configuration.servers)
        backoff = ReconnectBackoff(base: configuration.reconnectWait, maximum: configuration.reconnectWaitMax)
        pings = PingTracker(maxOutstanding: configuration.maxPingsOutstanding)
        tlsContext = try configuration.tls.map { try $0.makeContext() }
        switch configuration.authentication {
        case .nkeySeed(let seed): nkey = try NKeyPair(seed: seed)
        case .nkeySeedFile(let path): nkey = try NKeyPair(seedFile: path)
        default: nkey = nil
        }
        requests = RequestMux()
    }

    // MARK: Lifecycle

    /// Tries each configured server once; fails with the last error when none accepted us.
    func connectInitially() -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        guard pool.count > 0 else {
            promise.fail(NATSError.noServersAvailable(lastError: "no servers configured"))
            return promise.futureResult
        }
        tryInitial(remaining: pool.count, lastError: nil, promise: promise)
        return promise.futureResult
    }

    private func tryInitial(remaining: Int, lastError: (any Error)?, promise: EventLoopPromise<Void>) {
        guard remaining > 0, !closing else {
            state = .closed
            outbound.setMode(.closed)
            if let error = lastError as? NATSError { promise.fail(error) }
            else { promise.fail(NATSError.noServersAvailable(lastError: lastError.map { "\($0)" } ?? "closed")) }
            return
        }
        attempt(pool.nextServer()).assumeIsolated().whenComplete { result in
            switch result {
            case .success: promise.succeed(())
            case .failure(let error):
                // A refusal on security grounds is final: another server of the same cluster would
                // refuse for the same reason, and the caller needs to see why.
                if let nats = error as? NATSError, nats.isSecurityRefusal {
                    self.tryInitial(remaining: 0, lastError: error, promise: promise)
                } else {
                    self.tryInitial(remaining: remaining - 1, lastError: error, promise: promise)
                }
            }
        }
    }

    private func attempt(_ server: NATSServerURL) -> EventLoopFuture<Void> {
        let attempt = ConnectionAttempt(server: server, promise: eventLoop.makePromise())
        state = .connecting(attempt)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let boundAttempt = NIOLoopBound(attempt, eventLoop: eventLoop)
        let limits = configuration.parserLimits
        attempt.timeout = eventLoop.scheduleTask(in: configuration.connectTimeout.timeAmount) {
            let attempt = boundAttempt.value
            guard attempt.phase != .connected else { return }
            bound.value.failAttempt(attempt, NATSError.timeout)
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout.timeAmount)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .channelInitializer { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ByteToMessageHandler(NATSFrameDecoder(limits: limits)))
                    try sync.addHandler(NATSChannelHandler(core: bound.value, attempt: boundAttempt.value))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(host: server.host, port: server.port)
            .whenComplete { result in
                let attempt = boundAttempt.value
                switch result {
                case .success(let channel): attempt.channel = channel
                case .failure(let error): bound.value.failAttempt(attempt, error)
                }
            }
        return attempt.promise.futureResult
    }

    private func failAttempt(_ attempt: ConnectionAttempt, _ error: any Error) {
        if attempt.failure == nil { attempt.failure = error }
        attempt.timeout?.cancel()
        if let channel = attempt.channel {
            // channelClosed finishes the attempt once the channel is gone.
            channel.close(promise: nil)
        } else if case .connecting(let current) = state, current === attempt {
            attempt.promise.fail(error)
        }
    }

    // MARK: Inbound

    func received(_ op: ServerOp, on attempt: ConnectionAttempt) {
        switch state {
        case .connecting(let current) where current === attempt:
            handshake(op, attempt)
        case .connected(let current) where current === attempt:
            connected(op, attempt)
        default:
            break
        }
    }

    private func handshake(_ op: ServerOp, _ attempt: ConnectionAttempt) {
        switch (attempt.phase, op) {
        case (.awaitingInfo, .info(let info)):
            do {
                try sendConnect(info: info, attempt: attempt)
                attempt.phase = .awaitingPong
            } catch {
                failAttempt(attempt, error)
            }
        case (.awaitingPong, .pong):
            becomeConnected(attempt)
        case (_, .ping):
            writeNow(attempt) { NATSProtocolEncoder.writePong(to: &$0) }
        case (_, .error(let text)):
            failAttempt(attempt, NATSError.fromServer(text))
        case (.awaitingPong, .info(let info)):
            serverInfo = info
        case (_, .ok):
            break
        default:
            failAttempt(attempt, NATSError.protocolError(.unknownOperation))
        }
    }

    private func sendConnect(info: NATSServerInfo, attempt: ConnectionAttempt) throws {
        serverInfo = info
        let server = attempt.server
        if configuration.requireAuthentication, !info.authRequired {
            throw NATSError.serverDoesNotRequireAuthentication(url: server.description)
        }
        let wantTLS = server.requiresTLS || configuration.tls != nil
        if wantTLS, !info.tlsRequired, !info.tlsAvailable {
            throw NATSError.tlsRequiredByClient(url: server.description)
        }
        let useTLS = wantTLS || info.tlsRequired
        guard let channel = attempt.channel else { throw NATSError.disconnected }
        if useTLS {
            if tlsContext == nil { tlsContext = try NATSTLSConfiguration().makeContext() }
            // SNI takes names only; an IP address is verified against the certificate's IP SANs.
            let isIP = (try? SocketAddress(ipAddress: server.host, port: 0)) != nil
            let tls = try NIOSSLClientHandler(context: tlsContext!, serverHostname: isIP ? nil : server.host)
            try channel.pipeline.syncOperations.addHandler(tls, position: .first)
        }
        var options = NATSConnectOptions(tlsRequired: useTLS, name: configuration.name)
        options.headers = true
        options.noResponders = true
        switch configuration.authentication {
        case .none: break
        case .userPassword(let user, let password):
            options.user = user
            options.pass = password
        case .token(let token):
            options.authToken = token
        case .nkeySeed, .nkeySeedFile:
            guard let nkey, let nonce = info.nonce else {
                throw NATSError.authenticationFailed("the server sent no nonce to sign")
            }
            options.nkey = nkey.publicKey
            options.sig = nkey.sign(nonce: nonce)
        }
        outbound.setMaxPayload(info.maxPayload)
        var buffer = channel.allocator.buffer(capacity: 512)
        NATSProtocolEncoder.writeConnect(options, to: &buffer)
        NATSProtocolEncoder.writePing(to: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func becomeConnected(_ attempt: ConnectionAttempt) {
        attempt.timeout?.cancel()
        attempt.phase = .connected
        state = .connected(attempt)
        pings = PingTracker(maxOutstanding: configuration.maxPingsOutstanding)
        pongWaiters.removeAll()
        if configuration.discoverServers, let info = serverInfo {
            _ = pool.learn(info.connectURLs, requiresTLS: attempt.server.requiresTLS)
        }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        pingTask = eventLoop.scheduleRepeatedTask(initialDelay: configuration.pingInterval.timeAmount,
                                                  delay: configuration.pingInterval.timeAmount) { _ in
            bound.value.pingIntervalElapsed()
        }
        // Subscriptions first, then what was published while disconnected: messages published
        // after a reconnect reach subscribers that existed before it.
        var buffer = attempt.channel!.allocator.buffer(capacity: 64 * max(subscriptions.count, 1))
        for record in subscriptions.values.sorted(by: { $0.sid < $1.sid }) {
            try? NATSProtocolEncoder.writeSubscribe(subject: record.subject, queue: record.queue, sid: record.sid, to: &buffer)
            if let max = record.maxMessages {
                NATSProtocolEncoder.writeUnsubscribe(sid: record.sid, max: max - record.delivered, to: &buffer)
            }
        }
        if buffer.readableBytes > 0 { attempt.channel!.write(buffer, promise: nil) }
        outbound.setMode(.connected(writable: attempt.channel!.isWritable))
        drainOutbound()
        attempt.channel!.flush()
        let reconnect = everConnected
        everConnected = true
        reconnectAttempt = 0
        logger.info("connected to NATS", metadata: ["server": "\(attempt.server)", "reconnect": "\(reconnect)"])
        emit(reconnect ? .reconnected(attempt.server) : .connected(attempt.server))
        attempt.promise.succeed(())
    }

    private func connected(_ op: ServerOp, _ attempt: ConnectionAttempt) {
        switch op {
        case .message(let message):
            deliver(message)
        case .ping:
            writeNow(attempt) { NATSProtocolEncoder.writePong(to: &$0) }
        case .pong:
            pings.pongReceived()
            if let waiter = pongWaiters.popFirst() { waiter?.succeed(()) }
        case .info(let info):
            serverInfo = info
            outbound.setMaxPayload(info.maxPayload)
            if configuration.discoverServers {
                _ = pool.learn(info.connectURLs, requiresTLS: attempt.server.requiresTLS)
            }
            if info.lameDuckMode { emit(.lameDuck(attempt.server)) }
        case .ok:
            break
        case .error(let text):
            logger.warning("NATS server error", metadata: ["error": "\(text)"])
            emit(.serverError(text))
            // Permission violations leave the connection open; every other -ERR precedes a close.
            if !text.lowercased().contains("permissions violation") {
                attempt.failure = NATSError.fromServer(text)
            }
        }
    }

    func writabilityChanged(_ writable: Bool, on attempt: ConnectionAttempt) {
        guard case .connected(let current) = state, current === attempt else { return }
        outbound.setMode(.connected(writable: writable))
        if writable { drainOutbound() }
    }

    func channelClosed(_ attempt: ConnectionAttempt) {
        switch state {
        case .connecting(let current) where current === attempt:
            attempt.timeout?.cancel()
            attempt.promise.fail(attempt.failure ?? NATSError.disconnected)
        case .connected(let current) where current === attempt:
            connectionLost(attempt)
        default:
            break
        }
    }

    private func connectionLost(_ attempt: ConnectionAttempt) {
        pingTask?.cancel()
        pingTask = nil
        outbound.setMode(closing ? .closed : .disconnected)
        let waiters = pongWaiters
        pongWaiters.removeAll()
        for waiter in waiters { waiter?.fail(NATSError.disconnected) }
        let reason = attempt.failure.map { "\($0)" } ?? "connection closed by the server"
        if closing {
            finishClose()
            return
        }
        logger.warning("NATS connection lost", metadata: ["server": "\(attempt.server)", "reason": "\(reason)"])
        emit(.disconnected(reason))
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard !closing else {
            finishClose()
            return
        }
        if let max = configuration.maxReconnectAttempts, reconnectAttempt >= max {
            logger.error("NATS reconnect attempts exhausted")
            closing = true
            abandonedWith = .noServersAvailable(lastError: "reconnect attempts exhausted")
            finishClose()
            return
        }
        let delay = backoff.delay(attempt: reconnectAttempt, poolSize: pool.count, random: Double.random(in: 0..<1))
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let task = eventLoop.scheduleTask(in: delay.timeAmount) {
            let core = bound.value
            guard !core.closing else { return core.finishClose() }
            core.attempt(core.pool.nextServer()).whenComplete { result in
                let core = bound.value
                if case .failure(let error) = result {
                    core.logger.debug("NATS reconnect attempt failed", metadata: ["error": "\(error)"])
                    core.reconnectAttempt += 1
                    core.scheduleReconnect()
                }
            }
        }
        state = .waitingToReconnect(task)
    }

    private func pingIntervalElapsed() {
        guard case .connected(let attempt) = state else { return }
        switch pings.intervalElapsed() {
        case .sendPing:
            pongWaiters.append(nil)
            writeNow(attempt) { NATSProtocolEncoder.writePing(to: &$0) }
        case .closeStale:
            attempt.failure = NATSError.staleConnection
            attempt.channel?.close(promise: nil)
        }
    }

    // MARK: Outbound

    /// Writes what publishers queued; scheduled by the first publish after a drain.
    func drainOutbound() {
        guard case .connected(let attempt) = state, let channel = attempt.channel, channel.isWritable else {
            // The bytes stay queued; a writability change or the reconnect drains them.
            outbound.drainSkipped()
            return
        }
        if let buffer = outbound.take() {
            writes += 1
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    /// Writes of queued publishes handed to the channel (each one flush), for measurements.
    private(set) var writes = 0

    /// Writes a control op after everything published before it.
    private func writeNow(_ attempt: ConnectionAttempt, _ body: (inout ByteBuffer) -> Void) {
        guard let channel = attempt.channel else { return }
        if attempt.phase == .connected, let pending = outbound.take() { channel.write(pending, promise: nil) }
        var buffer = channel.allocator.buffer(capacity: 32)
        body(&buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }

    func writeControl(_ body: (inout ByteBuffer) -> Void) {
        guard case .connected(let attempt) = state else { return }
        writeNow(attempt, body)
    }

    var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    func flush() -> EventLoopFuture<Void> {
        guard case .connected(let attempt) = state else {
            return eventLoop.makeFailedFuture(closing || isClosed ? NATSError.connectionClosed : NATSError.disconnected)
        }
        let promise = eventLoop.makePromise(of: Void.self)
        pongWaiters.append(promise)
        writeNow(attempt) { NATSProtocolEncoder.writePing(to: &$0) }
        return promise.futureResult
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    // MARK: Subscriptions

    func addSubscription(subject: String, queue: String?, delivery: SubscriptionRecord.Delivery) throws(NATSError) -> SubscriptionRecord {
        guard !closing, !isClosed else { throw .connectionClosed }
        try Subjects.validate(subject, as: .subscribe)
        if let queue { try Subjects.validateQueue(queue) }
        let sid = nextSid
        nextSid += 1
        let record = SubscriptionRecord(sid: sid, subject: subject, queue: queue, delivery: delivery)
        subscriptions[sid] = record
        writeControl { try? NATSProtocolEncoder.writeSubscribe(subject: subject, queue: queue, sid: sid, to: &$0) }
        return record
    }

    func removeSubscription(_ sid: UInt64, after max: Int? = nil) {
        guard let record = subscriptions[sid] else { return }
        if let max, max > record.delivered {
            record.maxMessages = max
            writeControl { NATSProtocolEncoder.writeUnsubscribe(sid: sid, max: max, to: &$0) }
            return
        }
        subscriptions[sid] = nil
        writeControl { NATSProtocolEncoder.writeUnsubscribe(sid: sid, to: &$0) }
        record.finish(nil)
    }

    private func deliver(_ message: NATSMessage) {
        if message.sid == requests.sid {
            requests.responseReceived(message)
            return
        }
        guard let record = subscriptions[message.sid] else { return }
        record.delivered += 1
        if record.deliver(message) { emit(.slowConsumer(sid: record.sid)) }
        if let max = record.maxMessages, record.delivered >= max {
            subscriptions[record.sid] = nil
            record.finish(nil)
        }
    }

    // MARK: Requests

    /// Subscribes the shared inbox `_INBOX.<random>.*` the first time a request is made.
    func ensureRequestInbox() {
        guard requests.sid == nil else { return }
        let sid = nextSid
        nextSid += 1
        requests.sid = sid
        let record = SubscriptionRecord(sid: sid, subject: requests.prefix + "*", queue: nil, delivery: .loop({ _ in }))
        subscriptions[sid] = record
        writeControl { try? NATSProtocolEncoder.writeSubscribe(subject: record.subject, queue: nil, sid: sid, to: &$0) }
    }

    // MARK: Events

    func addListener(_ continuation: AsyncStream<NATSEvent>.Continuation) {
        let id = nextListener
        nextListener += 1
        listeners[id] = continuation
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let loop = eventLoop
        continuation.onTermination = { _ in
            loop.execute { bound.value.listeners[id] = nil }
        }
    }

    func emit(_ event: NATSEvent) {
        onEvent?(event)
        for listener in listeners.values { listener.yield(event) }
    }

    // MARK: Close

    func close(drain: Bool) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        if isClosed {
            promise.succeed(())
            return promise.futureResult
        }
        closePromises.append(promise)
        guard !closing else { return promise.futureResult }
        closing = true
        switch state {
        case .connected(let attempt):
            let channel = attempt.channel!
            let finish: () -> Void = {
                // What was published before close goes out before the socket closes.
                let buffer = self.outbound.take() ?? channel.allocator.buffer(capacity: 0)
                self.outbound.setMode(.closed)
                channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
            }
            if drain {
                for sid in subscriptions.keys.sorted() where sid != requests.sid {
                    writeControl { NATSProtocolEncoder.writeUnsubscribe(sid: sid, to: &$0) }
                }
                // The PONG proves the server has sent everything for the removed subscriptions.
                flush().assumeIsolated().whenComplete { _ in finish() }
            } else {
                finish()
            }
        case .waitingToReconnect(let task):
            task.cancel()
            finishClose()
        case .connecting(let attempt):
            failAttempt(attempt, NATSError.connectionClosed)
            if attempt.channel == nil { finishClose() }
        case .idle:
            finishClose()
        case .closed:
            break
        }
        return promise.futureResult
    }

    private func finishClose() {
        guard !isClosed else { return }
        state = .closed
        pingTask?.cancel()
        outbound.setMode(.closed)
        for record in subscriptions.values { record.finish(abandonedWith) }
        subscriptions.removeAll()
        requests.failAll(NATSError.connectionClosed)
        emit(.closed)
        for listener in listeners.values { listener.finish() }
        listeners.removeAll()
        for promise in closePromises { promise.succeed(()) }
        closePromises.removeAll()
    }
}

extension NATSError {
    static func fromServer(_ text: String) -> NATSError {
        let lower = text.lowercased()
        if lower.contains("authorization") || lower.contains("authentication") || lower.contains("user") && lower.contains("revoked") {
            return .authenticationFailed(text)
        }
        return .serverError(text)
    }

    var isSecurityRefusal: Bool {
        switch self {
        case .serverDoesNotRequireAuthentication, .authenticationFailed, .tlsRequiredByClient, .nkeySeedInvalid: true
        default: false
        }
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

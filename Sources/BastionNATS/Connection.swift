import Logging
import NIOCore
import NIOPosix

/// A client connection to a NATS server or cluster. All of its state lives on one event loop; the
/// methods may be called from any thread or task.
///
/// - `publish` never blocks and never suspends: it encodes into the outbound buffer, which the
///   event loop writes once per tick. It throws `outboundBufferFull` when more than
///   `maxPendingBytes` wait (the socket cannot keep up), and `reconnectBufferFull` when
///   disconnected with `reconnectBufferSize` bytes already kept for the reconnect.
/// - After losing the connection it reconnects (see `NATSConfiguration`), re-subscribes, then
///   sends what was published meanwhile.
public final class NATSConnection: Sendable {
    public let eventLoop: any EventLoop
    let core: NIOLoopBound<ConnectionCore>
    let outbound: OutboundQueue
    public let configuration: NATSConfiguration

    private init(eventLoop: any EventLoop, core: NIOLoopBound<ConnectionCore>, outbound: OutboundQueue, configuration: NATSConfiguration) {
        self.eventLoop = eventLoop
        self.core = core
        self.outbound = outbound
        self.configuration = configuration
    }

    /// Connects to the first server of `configuration.servers` that accepts the client, trying each
    /// once. An authentication or security refusal fails at once with its reason.
    public static func connect(_ configuration: NATSConfiguration,
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               logger: Logger = Logger(label: "bastion.nats"),
                               onEvent: (@Sendable (NATSEvent) -> Void)? = nil) async throws -> NATSConnection {
        let eventLoop = group.next()
        let outbound = OutboundQueue(maxPendingBytes: configuration.maxPendingBytes,
                                     reconnectBufferSize: configuration.reconnectBufferSize)
        let core = try await eventLoop.flatSubmit { () -> EventLoopFuture<NIOLoopBound<ConnectionCore>> in
            do {
                let core = try ConnectionCore(configuration: configuration, eventLoop: eventLoop, logger: logger,
                                              outbound: outbound, onEvent: onEvent)
                let bound = NIOLoopBound(core, eventLoop: eventLoop)
                return core.connectInitially().map { bound }
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
        }.get()
        return NATSConnection(eventLoop: eventLoop, core: core, outbound: outbound, configuration: configuration)
    }

    /// Runs `body` on the event loop: at once when already there, else as a task.
    func onLoop(_ body: @escaping @Sendable (ConnectionCore) -> Void) {
        if eventLoop.inEventLoop {
            body(core.value)
        } else {
            let core = self.core
            eventLoop.execute { body(core.value) }
        }
    }

    func submit<T: Sendable>(_ body: @escaping @Sendable (ConnectionCore) throws -> T) async throws -> T {
        let core = self.core
        return try await eventLoop.submit { try body(core.value) }.get()
    }

    func flatSubmit<T: Sendable>(_ body: @escaping @Sendable (ConnectionCore) -> EventLoopFuture<T>) async throws -> T {
        let core = self.core
        return try await eventLoop.flatSubmit { body(core.value) }.get()
    }

    // MARK: Publish

    /// Queues a message; see the type's documentation for back-pressure.
    public func publish(_ subject: String, reply: String? = nil, headers: NATSHeaders? = nil, payload: ByteBuffer) throws(NATSError) {
        if try outbound.publish(subject: subject, reply: reply, headers: headers, payload: payload) {
            let core = self.core
            eventLoop.execute { core.value.drainOutbound() }
        }
    }

    public func publish(_ subject: String, reply: String? = nil, headers: NATSHeaders? = nil, payload: String) throws(NATSError) {
        try publish(subject, reply: reply, headers: headers, payload: ByteBuffer(string: payload))
    }

    /// Bytes published and not yet handed to the socket.
    public var pendingBytes: Int { outbound.pendingBytes }

    /// Returns when the server has processed everything sent before (a PING/PONG round trip).
    public func flush() async throws {
        try await flatSubmit { $0.flush() }
    }

    // MARK: Subscribe

    public struct PendingLimits: Sendable {
        public var messages: Int
        public var bytes: Int
        public init(messages: Int, bytes: Int) {
            self.messages = messages
            self.bytes = bytes
        }
    }

    /// Subscribes; messages beyond `limits` (default from the configuration) are dropped and
    /// counted while the consumer is behind, with a `slowConsumer` event.
    public func subscribe(_ subject: String, queue: String? = nil, limits: PendingLimits? = nil) async throws -> NATSSubscription {
        let limits = limits ?? PendingLimits(messages: configuration.subscriptionPendingMessages,
                                             bytes: configuration.subscriptionPendingBytes)
        let pending = PendingQueue<NATSMessage>(limits: .init(messages: limits.messages, bytes: limits.bytes))
        let sid = try await submit { core in
            try core.addSubscription(subject: subject, queue: queue, delivery: .queue(pending)).sid
        }
        return NATSSubscription(sid: sid, subject: subject, queueGroup: queue, connection: self, queue: pending)
    }

    /// Subscribes with a callback that runs on the connection's event loop, in order, with no task
    /// hop and no queue: it must not block. Iterating the returned subscription ends at once.
    public func subscribe(_ subject: String, queue: String? = nil,
                          onMessage: @escaping @Sendable (NATSMessage) -> Void) async throws -> NATSSubscription {
        let sid = try await submit { core in
            try core.addSubscription(subject: subject, queue: queue, delivery: .callback(onMessage)).sid
        }
        return NATSSubscription(sid: sid, subject: subject, queueGroup: queue, connection: self, queue: nil)
    }

    public func unsubscribe(_ subscription: NATSSubscription, after max: Int? = nil) {
        subscription.unsubscribe(after: max)
    }

    // MARK: Request

    /// Sends a request and waits for the first response on the shared inbox.
    /// Throws `noResponders` when nobody subscribes to `subject`, `timeout` when no answer came.
    public func request(_ subject: String, payload: ByteBuffer, headers: NATSHeaders? = nil,
                        timeout: Duration? = nil) async throws -> NATSMessage {
        let timeout = timeout ?? configuration.requestTimeout
        let bound = self.core
        let outbound = self.outbound
        return try await eventLoop.flatSubmit { () -> EventLoopFuture<NATSMessage> in
            let core = bound.value
            core.ensureRequestInbox()
            let promise = core.eventLoop.makePromise(of: NATSMessage.self)
            let (reply, token) = core.requests.register(subject: subject, promise: promise)
            do {
                if try outbound.publish(subject: subject, reply: reply, headers: headers, payload: payload) {
                    core.eventLoop.execute { bound.value.drainOutbound() }
                }
            } catch {
                core.requests.fail(token, error)
                return promise.futureResult
            }
            let scheduled = core.eventLoop.scheduleTask(in: timeout.timeAmount) {
                bound.value.requests.fail(token, NATSError.timeout)
            }
            core.requests.setTimeout(token, scheduled)
            return promise.futureResult
        }.get()
    }

    public func request(_ subject: String, payload: String, headers: NATSHeaders? = nil,
                        timeout: Duration? = nil) async throws -> NATSMessage {
        try await request(subject, payload: ByteBuffer(string: payload), headers: headers, timeout: timeout)
    }

    /// A new unique inbox subject, for replies that are not requests (pull fetches, push consumers).
    public func newInbox() -> String { Inbox.new() }

    // MARK: State

    /// Events from now on (connected, disconnected, reconnected, slow consumer, server errors, lame
    /// duck, closed). Each call returns a new stream; the newest 256 events are kept.
    public func events() -> AsyncStream<NATSEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: NATSEvent.self, bufferingPolicy: .bufferingNewest(256))
        onLoop { $0.addListener(continuation) }
        return stream
    }

    public var serverInfo: NATSServerInfo? {
        get async { try? await submit { $0.serverInfo } }
    }

    public var isConnected: Bool {
        get async { (try? await submit { $0.isConnected }) ?? false }
    }

    /// Closes the connection. With `drain`, subscriptions are removed first and the messages the
    /// server had already sent for them are still delivered; publishes queued before the call are
    /// written either way. Iterations of subscriptions end.
    public func close(drain: Bool = false) async throws {
        try await flatSubmit { $0.close(drain: drain) }
    }
}

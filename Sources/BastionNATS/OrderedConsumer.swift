import Logging
import NIOCore

/// An ordered push consumer: an ephemeral, unacknowledged, flow-controlled consumer delivering to
/// a private inbox, which the client recreates from the last stream sequence it saw whenever it
/// detects a gap (consumer sequence jumped, heartbeat reports a later one), misses heartbeats, or
/// has to drop a message because the reader fell behind. Readers therefore see every message of the
/// filter once, in stream order.
public final class OrderedConsumer: AsyncSequence, Sendable {
    public typealias Element = JetStreamMessage

    let queue: PendingQueue<JetStreamMessage>
    let state: NIOLoopBound<OrderedConsumerState>
    /// Messages pending for the consumer when it was first created: 0 means the reader is caught
    /// up from the start.
    public let initialPending: UInt64

    init(queue: PendingQueue<JetStreamMessage>, state: NIOLoopBound<OrderedConsumerState>, initialPending: UInt64) {
        self.queue = queue
        self.state = state
        self.initialPending = initialPending
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: PendingQueue<JetStreamMessage>
        public mutating func next() async throws -> JetStreamMessage? { try await queue.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: queue) }

    public func next(timeout: Duration) async throws -> JetStreamMessage? {
        try await queue.next(timeout: timeout)
    }

    /// Deletes the consumer and ends iteration.
    public func stop() async {
        let state = self.state
        guard let stopped = try? await state.eventLoop.submit({ () -> (String?, JetStreamContext, String) in
            let s = state.value
            return (s.stop(), s.js, s.stream)
        }).get(), let name = stopped.0 else { return }
        try? await stopped.1.deleteConsumer(stream: stopped.2, name: name)
    }
}

extension JetStreamContext {
    /// Starts an ordered consumer on `stream`. `deliverPolicy` applies to the first creation; later
    /// recreations continue after the last delivered stream sequence.
    public func orderedConsumer(stream: String, filterSubject: String? = nil, deliverPolicy: ConsumerConfig.DeliverPolicy = .all,
                                headersOnly: Bool = false, idleHeartbeat: Duration = .seconds(5),
                                pendingLimit: Int = 65_536) async throws -> OrderedConsumer {
        try Self.validateName(stream)
        var config = ConsumerConfig()
        config.deliverPolicy = deliverPolicy
        config.ackPolicy = .none
        config.maxDeliver = 1
        config.filterSubject = filterSubject
        config.flowControl = true
        config.idleHeartbeat = idleHeartbeat
        config.headersOnly = headersOnly
        config.memoryStorage = true
        config.replicas = 1
        config.inactiveThreshold = .seconds(300)
        let template = config
        let queue = PendingQueue<JetStreamMessage>(limits: .init(messages: pendingLimit, bytes: 256 * 1024 * 1024))
        let js = self
        let state = try await connection.submit { core in
            NIOLoopBound(OrderedConsumerState(js: js, stream: stream, template: template, queue: queue, core: core), eventLoop: core.eventLoop)
        }
        let info = try await OrderedConsumerState.create(state)
        try await connection.submit { _ in state.value.startHeartbeatWatch(state) }
        return OrderedConsumer(queue: queue, state: state, initialPending: info.numPending)
    }
}

/// The ordered consumer's bookkeeping, on the connection's event loop.
final class OrderedConsumerState {
    let js: JetStreamContext
    let stream: String
    let template: ConsumerConfig
    let queue: PendingQueue<JetStreamMessage>
    unowned let core: ConnectionCore

    private var sid: UInt64?
    private var consumerName: String?
    private var expectedConsumerSequence: UInt64 = 1
    private var lastStreamSequence: UInt64 = 0
    private var lastActivity = NIODeadline.now()
    private var resetting = false
    private var stopped = false
    private var heartbeatWatch: RepeatedTask?

    init(js: JetStreamContext, stream: String, template: ConsumerConfig, queue: PendingQueue<JetStreamMessage>, core: ConnectionCore) {
        self.js = js
        self.stream = stream
        self.template = template
        self.queue = queue
        self.core = core
    }

    /// Subscribes a new inbox and creates a consumer delivering to it (from the loop, then async).
    /// Messages on the new inbox are accepted from the start: the consumer may deliver before its
    /// creation is confirmed.
    static func create(_ state: NIOLoopBound<OrderedConsumerState>) async throws -> ConsumerInfo {
        let (js, stream, config) = try await state.eventLoop.submit { () -> (JetStreamContext, String, ConsumerConfig) in
            let s = state.value
            if let sid = s.sid { s.core.removeSubscription(sid) }
            let inbox = Inbox.new()
            let record = try s.core.addSubscription(subject: inbox, queue: nil, delivery: .loop { message in
                state.value.received(message, sid: message.sid, bound: state)
            })
            s.sid = record.sid
            s.expectedConsumerSequence = 1
            s.lastActivity = .now()
            var config = s.template
            config.deliverSubject = inbox
            if s.lastStreamSequence > 0 { config.deliverPolicy = .byStartSequence(s.lastStreamSequence + 1) }
            return (s.js, s.stream, config)
        }.get()
        let info = try await js.createConsumer(stream: stream, config: config)
        try await state.eventLoop.submit {
            state.value.consumerName = info.name
            state.value.resetting = false
        }.get()
        return info
    }

    func startHeartbeatWatch(_ bound: NIOLoopBound<OrderedConsumerState>) {
        let interval = template.idleHeartbeat ?? .seconds(5)
        heartbeatWatch = core.eventLoop.scheduleRepeatedTask(initialDelay: interval.timeAmount, delay: interval.timeAmount) { _ in
            let s = bound.value
            guard !s.stopped, !s.resetting else { return }
            if NIODeadline.now() - s.lastActivity > (interval * 3).timeAmount { s.reset(bound, reason: "missed heartbeats") }
        }
    }

    private func received(_ message: NATSMessage, sid: UInt64, bound: NIOLoopBound<OrderedConsumerState>) {
        guard !stopped, sid == self.sid else { return }
        lastActivity = .now()
        if let status = message.status {
            guard status.code == NATSStatus.controlMessage else { return }
            if status.text.lowercased().contains("flow") {
                // Flow control: answering lets the server send more.
                if let reply = message.replyTo { publishEmpty(reply) }
                return
            }
            if let stalled = message.headers?[NATSHeaders.consumerStalled] { publishEmpty(stalled) }
            if let last = message.headers?[NATSHeaders.lastConsumer].flatMap(UInt64.init), last != expectedConsumerSequence - 1 {
                reset(bound, reason: "heartbeat reports consumer sequence \(last)")
            }
            return
        }
        guard let jsMessage = JetStreamMessage(message, connection: js.connection) else { return }
        guard jsMessage.metadata.consumerSequence == expectedConsumerSequence else {
            reset(bound, reason: "gap: expected \(expectedConsumerSequence), got \(jsMessage.metadata.consumerSequence)")
            return
        }
        switch queue.push(jsMessage, size: message.footprint) {
        case .queued:
            expectedConsumerSequence += 1
            lastStreamSequence = jsMessage.metadata.streamSequence
        case .dropped:
            // Start again after the last message the reader got, once it had time to catch up;
            // nothing more from this delivery may reach the reader.
            resetting = true
            detach()
            let loop = core.eventLoop
            loop.scheduleTask(in: .seconds(1)) { bound.value.reset(bound, reason: "reader fell behind", force: true) }
        case .finished:
            break
        }
    }

    private func publishEmpty(_ subject: String) {
        if (try? core.outbound.publish(subject: subject, reply: nil, headers: nil, payload: ByteBuffer())) == true {
            core.drainOutbound()
        }
    }

    private func reset(_ bound: NIOLoopBound<OrderedConsumerState>, reason: String, force: Bool = false) {
        guard !stopped, force || !resetting else { return }
        resetting = true
        // Messages still on their way from the old consumer would arrive out of order.
        detach()
        core.logger.debug("recreating ordered consumer", metadata: ["stream": "\(stream)", "reason": "\(reason)"])
        let old = consumerName
        let js = self.js
        let stream = self.stream
        Task {
            if let old { try? await js.deleteConsumer(stream: stream, name: old) }
            var delay = Duration.milliseconds(250)
            while true {
                let stopped = (try? await bound.eventLoop.submit { bound.value.stopped }.get()) ?? true
                if stopped { return }
                do {
                    _ = try await OrderedConsumerState.create(bound)
                    return
                } catch {
                    // The stream's leader may be moving, or we are reconnecting: try again.
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(5))
                }
            }
        }
    }

    var currentConsumerName: String? { consumerName }

    private func detach() {
        if let sid { core.removeSubscription(sid) }
        sid = nil
    }

    /// Ends delivery; returns the consumer's name for deletion.
    func stop() -> String? {
        stopped = true
        heartbeatWatch?.cancel()
        if let sid { core.removeSubscription(sid) }
        sid = nil
        queue.finish()
        return consumerName
    }
}

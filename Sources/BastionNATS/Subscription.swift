import NIOCore

/// A subscription as the connection tracks it (event loop only).
final class SubscriptionRecord {
    enum Delivery {
        /// Buffered for an AsyncSequence consumer, bounded.
        case queue(PendingQueue<NATSMessage>)
        /// Called on the event loop, for callers that must not pay a task hop per message.
        case callback(@Sendable (NATSMessage) -> Void)
        /// The client's own consumers (pull fetches, ordered consumers), on the event loop.
        case loop((NATSMessage) -> Void)
    }

    let sid: UInt64
    let subject: String
    let queue: String?
    let delivery: Delivery
    var maxMessages: Int?
    var delivered = 0

    init(sid: UInt64, subject: String, queue: String?, delivery: Delivery) {
        self.sid = sid
        self.subject = subject
        self.queue = queue
        self.delivery = delivery
    }

    /// Returns true when this message starts a slow-consumer episode.
    func deliver(_ message: NATSMessage) -> Bool {
        switch delivery {
        case .queue(let queue):
            if case .dropped(firstInEpisode: true) = queue.push(message, size: message.footprint) { return true }
            return false
        case .callback(let callback):
            callback(message)
            return false
        case .loop(let handler):
            handler(message)
            return false
        }
    }

    func finish(_ error: (any Error)?) {
        if case .queue(let queue) = delivery { queue.finish(throwing: error) }
    }
}

/// A subscription: an AsyncSequence of its messages, unless it was made with a callback (then
/// iterating it ends at once). Iteration ends after `unsubscribe()` or when the connection closes
/// (then with `NATSError.connectionClosed`). One task should iterate it.
public final class NATSSubscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage

    public let sid: UInt64
    public let subject: String
    public let queueGroup: String?
    let connection: NATSConnection
    let queue: PendingQueue<NATSMessage>?

    init(sid: UInt64, subject: String, queueGroup: String?, connection: NATSConnection, queue: PendingQueue<NATSMessage>?) {
        self.sid = sid
        self.subject = subject
        self.queueGroup = queueGroup
        self.connection = connection
        self.queue = queue
    }

    /// Messages dropped because the consumer fell behind the pending limits.
    public var droppedMessages: Int { queue?.droppedCount ?? 0 }
    /// Messages received and not yet consumed.
    public var pendingMessages: Int { queue?.pendingCount ?? 0 }

    /// Stops delivery now, or after `max` messages in all (`UNSUB sid max`).
    public func unsubscribe(after max: Int? = nil) {
        connection.onLoop { core in core.removeSubscription(self.sid, after: max) }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: PendingQueue<NATSMessage>?

        public mutating func next() async throws -> NATSMessage? {
            guard let queue else { return nil }
            return try await queue.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: queue) }

    /// The next message, or nil when none arrived within `timeout` or the subscription ended.
    public func next(timeout: Duration) async throws -> NATSMessage? {
        guard let queue else { return nil }
        return try await queue.next(timeout: timeout)
    }
}

import MQTTCodec
import NIOCore

/// Where a connected session's deliveries go: a client's network connection, or an in-process
/// link (a bridge) that takes deliveries like a connection. Deliveries are handed over on the
/// target's own event loop (`deliver` is called there only).
public protocol ConnectionRef: AnyObject, Sendable {
    var eventLoop: any EventLoop { get }
    /// The position of `eventLoop` in the broker's group (the router's outbox slot).
    var loopIndex: Int { get }
    /// A message for the session this connection serves. Called on `eventLoop` only.
    func deliver(_ delivery: Delivery)
}

/// What the router hands work to: the per-loop worker implements it with outboxes, counters and
/// the store's clock. Every call is on the routing loop.
public protocol RouteSink: AnyObject {
    /// A delivery for a session that is online on `connection` (this loop or another).
    func handOff(_ delivery: Delivery, to connection: any ConnectionRef)
    /// The stored form of a message (the sink knows the clocks).
    func stored(_ message: Message) -> StoredMessage
    func dropped(_ reason: DropReason, count: Int)
    /// A session's queue started dropping (worth an alert once per episode).
    func startedDropping(_ session: SessionHandle)
    func queuedOffline()
}

/// Where a PUBLISH went: 5.0 publishers learn 0x10 "no matching subscribers" when nothing
/// matched, and 0x97 "quota exceeded" when sessions matched but none could keep it.
public struct RouteOutcome: Sendable, Equatable {
    public var matched = 0
    public var reached = 0
    /// Matched sessions whose queue was full.
    public var queueFull = 0

    public init(matched: Int = 0, reached: Int = 0, queueFull: Int = 0) {
        self.matched = matched
        self.reached = reached
        self.queueFull = queueFull
    }

    /// The reason code a 5.0 publisher's acknowledgement carries for this outcome.
    public var reasonCode: ReasonCode {
        if reached == 0 && queueFull > 0 { return .quotaExceeded }
        return reached == 0 ? .noMatchingSubscribers : .success
    }
}

/// A change to the subscription index, applied to every loop's replica in order.
public enum SubscriptionChange: Sendable {
    case add(SessionHandle, Subscription)
    case remove(SessionHandle, filter: String)
}

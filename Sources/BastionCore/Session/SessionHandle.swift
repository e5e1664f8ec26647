import MQTTCodec
import NIOCore
import Synchronization

/// A will waiting for its delay (spec 3.1.3.2) while the session is offline.
public struct PendingWill: Sendable {
    public var message: Message
    public var publishAt: NIODeadline
    /// Who published it, to check its topic against the policy in force when it fires (nil for a
    /// will restored from the store: the session's owner is used).
    public var publisher: ClientIdentity?

    public init(message: Message, publishAt: NIODeadline, publisher: ClientIdentity? = nil) {
        self.message = message
        self.publishAt = publishAt
        self.publisher = publisher
    }
}

/// The stable identity of a session for the routing index: subscriptions point at the handle, and
/// the handle knows whether the session is online (and on which connection) or offline (and holds
/// its state). One lock per handle; held only to read or switch the location or to queue a message.
public final class SessionHandle: Sendable, Hashable, CustomStringConvertible {
    public enum Location: Sendable {
        case online(any ConnectionRef)
        // Boxed: an online session (the common case) does not carry the offline state's size.
        indirect case offline(OfflineSession)
        /// Ended: subscriptions referencing it are being removed; deliveries are discarded.
        case ended
    }

    public struct OfflineSession: Sendable {
        public var state: SessionState
        public var disconnectedAt: NIODeadline
        public var expiresAt: NIODeadline?
        public var pendingWill: PendingWill?
    }

    public enum OfferResult: Sendable {
        case online(any ConnectionRef)
        /// Queued offline; `evicted` older deliveries were dropped for it (`drop_oldest`).
        case queued(evicted: [Delivery], startedDropping: Bool)
        case dropped(DropReason, startedDropping: Bool)
        case gone
    }

    public let clientID: String
    let location: Mutex<Location>
    /// Whether the session outlives its connection (expiry > 0): its QoS 1/2 messages are stored.
    private let persistentFlag: Atomic<Bool>
    /// The identity that created the session (see `SessionOwner`); empty for a session restored
    /// from a store that did not record owners, until an identity claims it.
    private let ownerName: Mutex<String>

    init(clientID: String, location: Location, persistent: Bool, owner: String) {
        self.clientID = clientID
        self.location = Mutex(location)
        self.persistentFlag = Atomic(persistent)
        self.ownerName = Mutex(owner)
    }

    /// The identity that owns the session.
    public var owner: String { ownerName.withLock { $0 } }

    /// Claims an unowned session (restored without an owner) for `owner`.
    func claim(_ owner: String) { ownerName.withLock { if $0.isEmpty { $0 = owner } } }

    public var isPersistent: Bool {
        get { persistentFlag.load(ordering: .relaxed) }
    }

    /// Set by the owning connection when CONNECT or DISCONNECT fixes the session expiry.
    public func setPersistent(_ value: Bool) { persistentFlag.store(value, ordering: .relaxed) }

    public var description: String { "session(\(clientID))" }

    public static func == (lhs: SessionHandle, rhs: SessionHandle) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }

    /// The connection currently serving the session, if any.
    public var connection: (any ConnectionRef)? {
        location.withLock { loc in
            if case .online(let ref) = loc { return ref }
            return nil
        }
    }

    public var isEnded: Bool {
        location.withLock { loc in
            if case .ended = loc { return true }
            return false
        }
    }

    /// Hands a delivery to the session: returns the connection to forward it to, or queues it in
    /// the offline state (QoS 1/2 only; QoS 0 to an offline session is dropped).
    public func offer(_ delivery: Delivery, limits: BrokerLimits) -> OfferResult {
        location.withLock { loc in
            switch loc {
            case .online(let ref):
                return .online(ref)
            case .offline(var offline):
                guard delivery.qos != .atMostOnce else { return .dropped(.offline, startedDropping: false) }
                loc = .ended  // avoid a copy of the state while it is mutated
                let result = offline.state.outbound.enqueue(delivery, limits: limits)
                loc = .offline(offline)
                return result.queued
                    ? .queued(evicted: result.evicted, startedDropping: result.startedDropping)
                    : .dropped(.queueFull, startedDropping: result.startedDropping)
            case .ended:
                return .gone
            }
        }
    }

    /// Runs `body` on the offline state, if the session is offline.
    public func withOfflineState<R>(_ body: (inout OfflineSession) -> R) -> R? {
        location.withLock { loc in
            guard case .offline(var offline) = loc else { return nil }
            loc = .ended
            defer { loc = .offline(offline) }
            return body(&offline)
        }
    }

    /// Snapshot for persistence and inspection.
    public var snapshot: Location { location.withLock { $0 } }
}

/// The identity a session belongs to, as a name stored with the session: `user:NAME` for a user
/// name (from the password file, a backend, or a certificate identity used as the user name),
/// `anonymous@LISTENER` for anonymous clients of one listener. A CONNECT by another identity
/// cannot resume, take over or wipe the session.
public enum SessionOwner {
    public static func user(_ name: String) -> String { "user:" + name }
    public static func anonymous(listener: String) -> String { "anonymous@" + listener }
    /// A bridge's local session: no login produces this name.
    public static func bridge(_ name: String) -> String { "bridge:" + name }

    /// The user name in an owner name, if it is one.
    public static func username(of owner: String) -> String? {
        owner.hasPrefix("user:") ? String(owner.dropFirst(5)) : nil
    }
}

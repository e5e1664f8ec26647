import MQTTCodec
import NIOCore
import Synchronization

/// The session table: client id → session handle. One owner; CONNECT and connection close are the
/// only callers, so a mutex is uncontended on the publish path.
public final class SessionRegistry: Sendable {
    public enum ConnectOutcome: Sendable {
        /// The connection now owns `state`. `ended` is a previous session that a clean start
        /// discarded: its subscriptions must leave the index and its pending will is due now.
        case attached(SessionHandle, SessionState, sessionPresent: Bool, ended: EndedSession?)
        /// Another connection holds the session: it must be closed (0x8E) and detach first.
        case mustTakeOver(any ConnectionRef)
        /// The session belongs to another identity: refuse the CONNECT (5.0 0x87, 3.1.1 0x05).
        /// Nothing was touched — no resume, no takeover, no will, no wipe.
        case ownedByOther(owner: String)
    }

    public struct EndedSession: Sendable {
        public var handle: SessionHandle
        public var subscriptions: [Subscription]
        public var pendingWill: PendingWill?
    }

    public enum DetachOutcome: Sendable {
        /// The session stays, offline, until `expiresAt` (nil: never).
        case offline(expiresAt: NIODeadline?)
        /// The session ended with its connection (expiry 0): remove its subscriptions.
        case ended(EndedSession)
        /// Another connection already took the session over; nothing to do.
        case notOwner
    }

    private let sessions = Mutex<[String: SessionHandle]>([:])

    public init() {}

    public var count: Int { sessions.withLock { $0.count } }

    public func handle(for clientID: String) -> SessionHandle? {
        sessions.withLock { $0[clientID] }
    }

    /// One line per session, for the admin API: who owns it and whether it is connected.
    public struct Summary: Sendable, Hashable, Codable {
        public var clientID: String
        public var owner: String
        public var connected: Bool
        public var persistent: Bool
    }

    /// At most `limit` sessions, ordered by client id (the table can be large).
    public func summaries(limit: Int = 10_000) -> [Summary] {
        let handles = sessions.withLock { Array($0.values) }
        return handles.sorted { $0.clientID < $1.clientID }.prefix(limit).map {
            Summary(clientID: $0.clientID, owner: $0.owner, connected: $0.connection != nil, persistent: $0.isPersistent)
        }
    }

    /// Attaches `connection` to the session of `clientID` (spec 3.1.2.4 Clean Start) for
    /// `owner` (a `SessionOwner` name). A session owned by another identity is left alone unless
    /// `mayShare(existingOwner)` says the two identities share sessions.
    public func connect(
        clientID: String, owner: String, mayShare: (String) -> Bool = { _ in false }, cleanStart: Bool, expiryInterval: UInt32,
        connection: any ConnectionRef
    ) -> ConnectOutcome {
        sessions.withLock { table in
            var ended: EndedSession?
            if let existing = table[clientID], !existing.isEnded {
                let current = existing.owner
                if current.isEmpty {
                    existing.claim(owner)
                } else if current != owner, !mayShare(current) {
                    return .ownedByOther(owner: current)
                }
            }
            if let existing = table[clientID] {
                // Read and switch the location under one lock: a delivery queued by another loop in
                // between must land in the state this connection takes over.
                enum Step { case takeOver(any ConnectionRef), resume(SessionState), end(SessionHandle.OfflineSession), fresh }
                let step: Step = existing.location.withLock { loc in
                    switch loc {
                    case .online(let other):
                        return .takeOver(other)
                    case .offline(let offline):
                        if cleanStart {
                            loc = .ended
                            return .end(offline)
                        }
                        loc = .online(connection)
                        return .resume(offline.state)
                    case .ended:
                        return .fresh
                    }
                }
                switch step {
                case .takeOver(let other):
                    return .mustTakeOver(other)
                case .resume(var state):
                    state.expiryInterval = expiryInterval
                    existing.setPersistent(expiryInterval > 0)
                    // Reconnecting in time cancels a delayed will (spec 3.1.3.2).
                    return .attached(existing, state, sessionPresent: true, ended: nil)
                case .end(let offline):
                    ended = EndedSession(
                        handle: existing, subscriptions: Array(offline.state.subscriptions.values), pendingWill: offline.pendingWill)
                case .fresh:
                    break
                }
            }
            let handle = SessionHandle(clientID: clientID, location: .online(connection), persistent: expiryInterval > 0, owner: owner)
            table[clientID] = handle
            return .attached(handle, SessionState(clientID: clientID, expiryInterval: expiryInterval), sessionPresent: false, ended: ended)
        }
    }

    /// The connection serving `handle` is gone. The state is kept offline or the session ends.
    public func detach(
        _ handle: SessionHandle, connection: any ConnectionRef, state: SessionState, pendingWill: PendingWill?, now: NIODeadline
    ) -> DetachOutcome {
        sessions.withLock { table in
            handle.location.withLock { loc -> DetachOutcome in
                guard case .online(let ref) = loc, ref === connection else { return .notOwner }
                if state.expiryInterval == 0 {
                    loc = .ended
                    if table[handle.clientID] === handle { table[handle.clientID] = nil }
                    return .ended(EndedSession(handle: handle, subscriptions: Array(state.subscriptions.values), pendingWill: pendingWill))
                }
                let expiresAt = state.expiryDeadline(from: now)
                loc = .offline(SessionHandle.OfflineSession(state: state, disconnectedAt: now, expiresAt: expiresAt, pendingWill: pendingWill))
                return .offline(expiresAt: expiresAt)
            }
        }
    }

    /// Offline sessions past their expiry, and wills whose delay has passed. Expired sessions leave
    /// the table; their wills are due at once (spec 3.1.2.5: the will is sent when the session ends).
    public func collectDue(now: NIODeadline) -> (ended: [EndedSession], wills: [PendingWill]) {
        sessions.withLock { table in
            var ended: [EndedSession] = []
            var wills: [PendingWill] = []
            for (clientID, handle) in table {
                let expired: EndedSession? = handle.location.withLock { loc in
                    guard case .offline(var offline) = loc else { return nil }
                    if let expiresAt = offline.expiresAt, expiresAt <= now {
                        loc = .ended
                        return EndedSession(handle: handle, subscriptions: Array(offline.state.subscriptions.values), pendingWill: offline.pendingWill)
                    }
                    if let will = offline.pendingWill, will.publishAt <= now {
                        wills.append(will)
                        offline.pendingWill = nil
                        loc = .offline(offline)
                    }
                    return nil
                }
                if let expired {
                    table[clientID] = nil
                    ended.append(expired)
                }
            }
            return (ended, wills)
        }
    }

    /// Restores a session loaded from the durable store at startup.
    public func restore(_ state: SessionState, owner: String, disconnectedAt: NIODeadline) -> SessionHandle {
        let offline = SessionHandle.OfflineSession(
            state: state, disconnectedAt: disconnectedAt, expiresAt: state.expiryDeadline(from: disconnectedAt), pendingWill: nil)
        let handle = SessionHandle(clientID: state.clientID, location: .offline(offline), persistent: true, owner: owner)
        sessions.withLock { $0[state.clientID] = handle }
        return handle
    }
}

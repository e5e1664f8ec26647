import BastionCore
import Synchronization

/// A `DurableStore` that keeps everything in memory: the same semantics as the SQLite store
/// (ordering, per-submit atomicity, body garbage collection, expiry purge in `load`) with no disk,
/// for tests and for brokers run without persistence.
///
/// Each `submit` is one commit and its completion runs on the submitting thread before `submit`
/// returns. `failCommits(with:)` makes commits fail as a full or broken disk would, so broker tests
/// can exercise the "do not acknowledge" path.
public final class InMemoryStore: DurableStore {
    fileprivate struct QueuedWill {
        var message: StoredMessage
        var publishAt: WallClock?
    }

    fileprivate struct State {
        var sessions: [String: StoredSessionRecord] = [:]
        /// Queue order per client; kept even for clients without a record, as the SQLite store does
        /// (they are dropped by `load`).
        var deliveries: [String: [StoredDelivery]] = [:]
        var inboundQoS2: [String: Set<UInt16>] = [:]
        var wills: [String: QueuedWill] = [:]
        var messages: [MessageID: StoredMessage] = [:]
        /// Number of deliveries referring to each body.
        var references: [MessageID: Int] = [:]
        var retained: [String: MessageID] = [:]
        var retainedReferences: [MessageID: Int] = [:]
        var highestMessageID: MessageID = 0
        var commits = 0
        var injectedFailure: StoreError?
        var closed = false
    }

    private let state = Mutex(State())

    public init() {}

    /// Number of successful commits so far (one per successful `submit`).
    public var commitCount: Int { state.withLock { $0.commits } }

    /// Message bodies currently held.
    public var storedMessageCount: Int { state.withLock { $0.messages.count } }

    /// False while commits are made to fail.
    public var isHealthy: Bool { state.withLock { $0.injectedFailure == nil } }

    /// Makes every following commit fail with `error` (nothing is applied) until called with nil.
    public func failCommits(with error: StoreError?) {
        state.withLock { $0.injectedFailure = error }
    }

    public func submit(_ operations: [StoreOperation], completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        let result: Result<Void, StoreError> = state.withLock { s in
            if s.closed { return .failure(.io("store is closed")) }
            if let failure = s.injectedFailure { return .failure(failure) }
            for operation in operations { s.apply(operation) }
            s.commits += 1
            return .success(())
        }
        completion(result)
    }

    public func load(now: WallClock) throws(StoreError) -> StoredBrokerState {
        try state.withLock { (s: inout State) throws(StoreError) -> StoredBrokerState in
            if s.closed { throw .io("store is closed") }
            let wills = s.purge(now: now)
            var state = s.snapshot()
            state.endedSessionWills = wills
            return state
        }
    }

    public func close() {
        state.withLock { $0.closed = true }
    }
}

extension InMemoryStore.State {
    fileprivate mutating func apply(_ operation: StoreOperation) {
        switch operation {
        case .saveSession(let record):
            sessions[record.clientID] = record
        case .deleteSession(let clientID):
            sessions[clientID] = nil
            inboundQoS2[clientID] = nil
            wills[clientID] = nil
            for delivery in deliveries.removeValue(forKey: clientID) ?? [] {
                release(delivery.messageID)
            }
        case .putMessage(let message, _):
            put(message)
        case .enqueue(let clientID, let delivery):
            deliveries[clientID, default: []].append(delivery)
            references[delivery.messageID, default: 0] += 1
        case .assignPacketID(let clientID, let messageID, let packetID):
            // With two deliveries of one message (shared and non-shared subscription), the first
            // one not yet sent gets the id.
            guard let queue = deliveries[clientID] else { return }
            let index = queue.firstIndex { $0.messageID == messageID && $0.packetID == nil }
                ?? queue.firstIndex { $0.messageID == messageID }
            if let index { deliveries[clientID]?[index].packetID = packetID }
        case .markReleased(let clientID, let messageID):
            guard let queue = deliveries[clientID] else { return }
            let index = queue.firstIndex { $0.messageID == messageID && $0.packetID != nil && !$0.released }
                ?? queue.firstIndex { $0.messageID == messageID }
            if let index { deliveries[clientID]?[index].released = true }
        case .dequeue(let clientID, let messageID):
            guard let index = deliveries[clientID]?.firstIndex(where: { $0.messageID == messageID }) else { return }
            deliveries[clientID]?.remove(at: index)
            if deliveries[clientID]?.isEmpty == true { deliveries[clientID] = nil }
            release(messageID)
        case .inboundQoS2(let clientID, let packetID, let pending):
            if pending {
                inboundQoS2[clientID, default: []].insert(packetID)
            } else {
                inboundQoS2[clientID]?.remove(packetID)
                if inboundQoS2[clientID]?.isEmpty == true { inboundQoS2[clientID] = nil }
            }
        case .setRetained(let message):
            put(message)
            let previous = retained.updateValue(message.id, forKey: message.topic)
            retainedReferences[message.id, default: 0] += 1
            if let previous { unretain(previous) }
        case .clearRetained(let topic):
            if let previous = retained.removeValue(forKey: topic) { unretain(previous) }
        case .setPendingWill(let clientID, let will, let publishAt):
            if let will {
                highestMessageID = max(highestMessageID, will.id)
                wills[clientID] = InMemoryStore.QueuedWill(message: will, publishAt: publishAt)
            } else {
                wills[clientID] = nil
            }
        }
    }

    private mutating func put(_ message: StoredMessage) {
        highestMessageID = max(highestMessageID, message.id)
        if messages[message.id] == nil { messages[message.id] = message }
    }

    private mutating func release(_ id: MessageID) {
        let remaining = (references[id] ?? 1) - 1
        references[id] = remaining > 0 ? remaining : nil
        collect(id)
    }

    private mutating func unretain(_ id: MessageID) {
        let remaining = (retainedReferences[id] ?? 1) - 1
        retainedReferences[id] = remaining > 0 ? remaining : nil
        collect(id)
    }

    /// Deletes a body nothing refers to any more.
    private mutating func collect(_ id: MessageID) {
        if references[id] == nil && retainedReferences[id] == nil { messages[id] = nil }
    }

    /// The startup purge: expired sessions, deliveries of expired messages that were never sent,
    /// expired retained messages, leftovers of deleted sessions and bodies nothing refers to.
    /// Returns the wills of the expired sessions that are still to be published.
    fileprivate mutating func purge(now: WallClock) -> [StoredMessage] {
        var endedWills: [StoredMessage] = []
        for (clientID, record) in sessions where record.hasExpired(at: now) {
            if let will = wills[clientID]?.message, !will.hasExpired(at: now) { endedWills.append(will) }
            apply(.deleteSession(clientID: clientID))
        }
        for clientID in deliveries.keys where sessions[clientID] == nil {
            for delivery in deliveries.removeValue(forKey: clientID) ?? [] { release(delivery.messageID) }
        }
        inboundQoS2 = inboundQoS2.filter { sessions[$0.key] != nil }
        wills = wills.filter { sessions[$0.key] != nil }
        for (clientID, queue) in deliveries {
            // A message that has started its delivery is finished even when it expires (the
            // expiry only stops deliveries that have not begun).
            let kept = queue.filter { delivery in
                guard delivery.packetID == nil, let message = messages[delivery.messageID] else { return true }
                return !message.hasExpired(at: now)
            }
            guard kept.count != queue.count else { continue }
            deliveries[clientID] = kept.isEmpty ? nil : kept
            var keptCount: [MessageID: Int] = [:]
            for delivery in kept { keptCount[delivery.messageID, default: 0] += 1 }
            for delivery in queue {
                if keptCount[delivery.messageID, default: 0] > 0 {
                    keptCount[delivery.messageID, default: 0] -= 1
                } else {
                    release(delivery.messageID)
                }
            }
        }
        for (topic, id) in retained where messages[id]?.hasExpired(at: now) ?? true {
            retained[topic] = nil
            unretain(id)
        }
        messages = messages.filter { references[$0.key] != nil || retainedReferences[$0.key] != nil }
        return endedWills.sorted { $0.publisherClientID < $1.publisherClientID }
    }

    fileprivate func snapshot() -> StoredBrokerState {
        var referenced: [MessageID: StoredMessage] = [:]
        var loaded: [StoredSession] = []
        for clientID in sessions.keys.sorted() {
            guard let record = sessions[clientID] else { continue }
            let queue = (deliveries[clientID] ?? []).filter { messages[$0.messageID] != nil }
            for delivery in queue { referenced[delivery.messageID] = messages[delivery.messageID] }
            let will = wills[clientID]
            loaded.append(StoredSession(
                record: record, deliveries: queue, inboundQoS2: (inboundQoS2[clientID] ?? []).sorted(),
                pendingWill: will?.message, willPublishAt: will?.publishAt))
        }
        let retainedMessages = retained.keys.sorted().compactMap { retained[$0].flatMap { messages[$0] } }
        let highest = max(highestMessageID, messages.keys.max() ?? 0)
        return StoredBrokerState(
            sessions: loaded, messages: referenced, retained: retainedMessages,
            nextMessageID: highest == .max ? highest : highest + 1)
    }
}

// MARK: - Expiry rules shared by every store

extension StoredSessionRecord {
    /// Session Expiry Interval 0xFFFFFFFF never expires. A session stored as connected (the broker
    /// stopped without recording the disconnect) starts its expiry now, so it survives unless its
    /// interval is 0 (such a session ends with its connection).
    public func hasExpired(at now: WallClock) -> Bool {
        if expiryInterval == .max { return false }
        guard let disconnectedAt else { return expiryInterval == 0 }
        return disconnectedAt + Double(expiryInterval) < now
    }
}

extension StoredMessage {
    /// Same rule as `Message.isExpired(at:)`: expired from its deadline on.
    public func hasExpired(at now: WallClock) -> Bool {
        guard let expiresAt else { return false }
        return expiresAt <= now
    }
}

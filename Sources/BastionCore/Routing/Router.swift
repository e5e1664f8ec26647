import MQTTCodec

/// Who receives a PUBLISH, decided on one event loop without locks: the loop's replica of the
/// subscription index, a per-topic cache of match results, the merge of one session's
/// overlapping subscriptions (spec 3.3.4), No Local, the pick of one member per shared group, and
/// the hand-over of each delivery to its session (online: to its connection through the sink;
/// offline: queued under the session's lock) with the store operations that make it durable.
public final class MessageRouter {
    public let trie = SubscriptionTrie()
    public let limits: BrokerLimits
    /// Deliveries to persistent sessions are stored (a durable store is configured).
    public let durable: Bool

    /// Scratch space for one PUBLISH's matches, reused to avoid an allocation per message.
    private var matches: [Match] = []
    /// For large fan-outs: session → index of its non-shared match in `matches`.
    private var matchIndex: [ObjectIdentifier: Int] = [:]
    /// Topic → matching entries (nil: involves shared groups, walk the trie each time). Capped
    /// by entries and by the bytes of the topics it holds.
    private var matchCache: [String: [SubscriptionTrie.Entry]?] = [:]
    private var matchCacheBytes = 0
    private var matchCacheVersion: UInt64 = 0
    private var queueFullWhileRouting = 0

    struct Match {
        var session: SessionHandle
        var delivery: Delivery
    }

    public static let matchCacheLimit = 16_384
    /// Topic bytes the match cache may hold (long topics must not pin memory).
    public static let matchCacheByteLimit = 4 * 1024 * 1024
    /// Below this many matches a linear scan finds a session's earlier match faster than hashing.
    static let linearScanLimit = 16

    public init(limits: BrokerLimits, durable: Bool) {
        self.limits = limits
        self.durable = durable
    }

    public func apply(_ changes: [SubscriptionChange]) {
        for change in changes {
            switch change {
            case .add(let session, let subscription): trie.insert(session, subscription)
            case .remove(let session, let filter): trie.remove(session, filter: filter)
            }
        }
    }

    /// Routes `message` from `publisher` (nil for the broker's own messages) and appends the
    /// store operations that make it durable for every persistent session it reached (the
    /// publisher is acknowledged once they are committed).
    @discardableResult
    public func route(_ message: Message, from publisher: SessionHandle?, operations: inout [StoreOperation], sink: some RouteSink) -> RouteOutcome {
        let firstOperation = operations.count
        matches.removeAll(keepingCapacity: true)
        forEachMatchingEntry(message.topic) { entry in
            let subscription = entry.subscription
            if subscription.options.noLocal && entry.subscriber === publisher { return }
            if subscription.isShared {
                matches.append(Match(session: entry.subscriber, delivery: Delivery(message: message, subscription: subscription)))
                return
            }
            // Overlapping subscriptions of one session: one copy at the highest QoS (spec 3.3.4).
            if let i = indexOfPlainMatch(for: entry.subscriber) {
                matches[i].delivery.merge(subscription)
            } else {
                if !matchIndex.isEmpty || matches.count >= Self.linearScanLimit {
                    if matchIndex.isEmpty { indexMatches() }
                    matchIndex[ObjectIdentifier(entry.subscriber)] = matches.count
                }
                matches.append(Match(session: entry.subscriber, delivery: Delivery(message: message, subscription: subscription)))
            }
        }
        matchIndex.removeAll(keepingCapacity: true)
        var outcome = RouteOutcome(matched: matches.count)
        queueFullWhileRouting = 0
        for match in matches where deliver(match.delivery, to: match.session, operations: &operations, sink: sink) {
            outcome.reached += 1
        }
        outcome.queueFull = queueFullWhileRouting
        matches.removeAll(keepingCapacity: true)
        if operations.count > firstOperation {
            operations.insert(.putMessage(sink.stored(message), isNew: true), at: firstOperation)
        }
        return outcome
    }

    /// Hands one delivery to a session wherever it is; appends its store operations when the
    /// session is persistent. Returns false if it was dropped.
    @discardableResult
    public func deliver(_ delivery: Delivery, to session: SessionHandle, operations: inout [StoreOperation], sink: some RouteSink) -> Bool {
        let result = session.offer(delivery, limits: limits)
        let stored = delivery.qos != .atMostOnce && durable && session.isPersistent
        switch result {
        case .online(let connection):
            if stored { operations.append(.enqueue(clientID: session.clientID, delivery: StoreMapping.storedDelivery(delivery))) }
            sink.handOff(delivery, to: connection)
            return true
        case .queued(let evicted, let startedDropping):
            if stored {
                for old in evicted { operations.append(.dequeue(clientID: session.clientID, messageID: old.message.id)) }
                operations.append(.enqueue(clientID: session.clientID, delivery: StoreMapping.storedDelivery(delivery)))
            }
            sink.queuedOffline()
            if !evicted.isEmpty { sink.dropped(.queueFull, count: evicted.count) }
            if startedDropping { sink.startedDropping(session) }
            return true
        case .dropped(let reason, let startedDropping):
            sink.dropped(reason, count: 1)
            if reason == .queueFull { queueFullWhileRouting += 1 }
            if startedDropping { sink.startedDropping(session) }
            return false
        case .gone:
            return false
        }
    }

    /// Gives a departed member's shared-subscription delivery to another member (spec 4.8.2), or
    /// back to the departed session when it was the only member. Returns the session that took it.
    @discardableResult
    public func handOn(_ delivery: Delivery, from departed: SessionHandle, operations: inout [StoreOperation], sink: some RouteSink) -> SessionHandle {
        let successor = SharedSubscriptions.successor(for: delivery, departed: departed, in: trie)
        let (target, redelivery) = successor ?? (departed, delivery)
        var moved: [StoreOperation] = []
        deliver(redelivery, to: target, operations: &moved, sink: sink)
        // The message body may no longer be stored for anyone: store it with its new delivery.
        if !moved.isEmpty { operations.append(.putMessage(sink.stored(delivery.message))) }
        operations += moved
        if successor != nil, durable, departed.isPersistent, delivery.qos != .atMostOnce {
            operations.append(.dequeue(clientID: departed.clientID, messageID: delivery.message.id))
        }
        return target
    }

    /// Every subscription matching `topic`. Devices publish on the same topics over and over, so
    /// results without shared groups (whose member choice changes per message) are cached per
    /// topic until the index changes; a hit costs one hash of the topic instead of a trie walk.
    private func forEachMatchingEntry(_ topic: String, _ body: (SubscriptionTrie.Entry) -> Void) {
        if matchCacheVersion != trie.version {
            matchCache.removeAll(keepingCapacity: true)
            matchCacheBytes = 0
            matchCacheVersion = trie.version
        }
        if let cached = matchCache[topic] {
            if let entries = cached {
                for entry in entries { body(entry) }
                return
            }
            trie.forEachMatch(topic, pickShared: SharedSubscriptions.pickOnlineMember, body)
            return
        }
        var entries: [SubscriptionTrie.Entry] = []
        var shared = false
        trie.forEachMatch(topic, pickShared: SharedSubscriptions.pickOnlineMember) { entry in
            if entry.subscription.isShared { shared = true }
            entries.append(entry)
            body(entry)
        }
        let size = topic.utf8.count + 64 + entries.count * MemoryLayout<SubscriptionTrie.Entry>.stride
        if matchCache.count >= Self.matchCacheLimit || matchCacheBytes + size > Self.matchCacheByteLimit {
            matchCache.removeAll(keepingCapacity: true)
            matchCacheBytes = 0
        }
        guard size <= Self.matchCacheByteLimit / 16 else { return }
        matchCache[topic] = shared ? .some(nil) : .some(entries)
        matchCacheBytes += size
    }

    private func indexOfPlainMatch(for session: SessionHandle) -> Int? {
        if !matchIndex.isEmpty { return matchIndex[ObjectIdentifier(session)] }
        return matches.firstIndex { $0.session === session && $0.delivery.sharedFilter == nil }
    }

    private func indexMatches() {
        for (i, match) in matches.enumerated() where match.delivery.sharedFilter == nil {
            matchIndex[ObjectIdentifier(match.session)] = i
        }
    }
}

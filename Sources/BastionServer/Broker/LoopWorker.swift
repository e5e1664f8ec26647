import BastionCore
import MQTTCodec
import NIOCore

/// Per-event-loop routing state. Each loop owns a replica of the subscription index, fed with the
/// same changes in the same order, so matching a PUBLISH takes no lock. Deliveries to connections
/// on other loops are collected per target loop and handed over with one `execute` per burst.
final class LoopWorker {
    let eventLoop: any EventLoop
    let trie = SubscriptionTrie()
    unowned let broker: Broker
    /// Store operations of the current burst (see `PendingStoreWrites`).
    var storeWrites = PendingStoreWrites()
    /// Completions of this loop's store submissions, waiting to run on it.
    let committed = CommittedSubmissions()

    /// Deliveries for connections on other loops, sent at the end of the burst.
    /// Deliveries for connections on this loop, handed over at the end of the burst.
    private var localItems: [(MQTTConnectionHandler, Delivery)] = []
    /// Indexed by the target loop's index; empty outboxes are skipped.
    private var outboxes: [Outbox]
    private var outboxesInUse = 0
    /// Connections on this loop that were written to and need a flush at the end of the burst.
    private var dirty: [MQTTConnectionHandler] = []
    /// Scratch space for one PUBLISH's matches, reused to avoid an allocation per message.
    private var matches: [Match] = []
    /// For large fan-outs: session → index of its non-shared match in `matches`.
    private var matchIndex: [ObjectIdentifier: Int] = [:]
    /// Topic → matching entries (nil: involves shared groups, walk the trie each time).
    private var matchCache: [String: [SubscriptionTrie.Entry]?] = [:]
    private var matchCacheVersion: UInt64 = 0
    /// Every connection handler on this loop, for shutdown and policy reloads.
    var connections: [ObjectIdentifier: MQTTConnectionHandler] = [:]

    struct Outbox {
        var eventLoop: (any EventLoop)?
        var items: [(MQTTConnectionHandler, Delivery)] = []
    }

    struct Match {
        var session: SessionHandle
        var delivery: Delivery
    }

    /// This loop's position in the group (also the slot in other loops' outboxes).
    let index: Int
    private let stride: UInt64
    private var issued: UInt64 = 0

    /// This loop's message counters.
    let traffic: TrafficCounters

    init(eventLoop: any EventLoop, broker: Broker, index: Int, stride: Int, traffic: TrafficCounters) {
        self.traffic = traffic
        self.outboxes = Array(repeating: Outbox(), count: stride)
        self.eventLoop = eventLoop
        self.broker = broker
        self.index = index
        self.stride = UInt64(stride)
    }

    /// A message id no other loop (and no earlier run) uses.
    func nextMessageID() -> MessageID {
        issued += 1
        return broker.messageIDBase.load(ordering: .relaxed) + issued * stride + UInt64(index)
    }

    func register(_ handler: MQTTConnectionHandler) { connections[ObjectIdentifier(handler)] = handler }
    func unregister(_ handler: MQTTConnectionHandler) { connections[ObjectIdentifier(handler)] = nil }

    /// Connection deadlines (CONNECT timeout, keep alive) for every connection on this loop.
    func sweepConnections() {
        let now = NIODeadline.now()
        for handler in Array(connections.values) { handler.checkDeadlines(now: now) }
        flush()
    }

    /// The access policy changed: connections drop cached decisions and re-check subscriptions.
    func securityChanged() {
        for handler in connections.values { handler.securityChanged() }
        flush()
    }

    func apply(_ changes: [SubscriptionChange]) {
        for change in changes {
            switch change {
            case .add(let session, let subscription): trie.insert(session, subscription)
            case .remove(let session, let filter): trie.remove(session, filter: filter)
            }
        }
    }

    /// Where a PUBLISH went: 5.0 publishers learn 0x10 "no matching subscribers" when nothing
    /// matched, and 0x97 "quota exceeded" when sessions matched but none could keep it.
    struct RouteOutcome {
        var matched = 0
        var reached = 0
        /// Matched sessions whose queue was full.
        var queueFull = 0
    }
    /// Queue-full drops while routing the current message (read by `route`).
    private var routingQueueFull = 0

    /// Sends `message` to every matching session.
    @discardableResult
    func route(_ message: Message, from publisher: SessionHandle?) -> RouteOutcome {
        var ops: [StoreOperation] = []
        let outcome = route(message, from: publisher, persist: &ops)
        persist(ops)
        return outcome
    }

    /// Routes and appends the store operations that make the message durable for every persistent
    /// session it reached (the caller acknowledges the publisher once they are committed).
    @discardableResult
    func route(_ message: Message, from publisher: SessionHandle?, persist: inout [StoreOperation]) -> RouteOutcome {
        let firstOp = persist.count
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
        routingQueueFull = 0
        for match in matches {
            if deliver(match.delivery, to: match.session, persist: &persist) { outcome.reached += 1 }
        }
        outcome.queueFull = routingQueueFull
        matches.removeAll(keepingCapacity: true)
        if persist.count > firstOp {
            persist.insert(.putMessage(StoreMapping.stored(message), isNew: true), at: firstOp)
        }
        return outcome
    }

    /// Gives a delivery back to its session without storing it again (it was stored when routed):
    /// the connection it reached had already let go of the session.
    func handBack(_ delivery: Delivery, to session: SessionHandle) {
        var ignored: [StoreOperation] = []
        _ = deliver(delivery, to: session, persist: &ignored)
    }

    /// Hands one delivery to a session wherever it is, storing it if the session is persistent.
    @discardableResult
    func deliver(_ delivery: Delivery, to session: SessionHandle) -> Bool {
        var ops: [StoreOperation] = []
        let delivered = deliver(delivery, to: session, persist: &ops)
        if !ops.isEmpty {
            ops.insert(.putMessage(StoreMapping.stored(delivery.message)), at: 0)
            persist(ops)
        }
        return delivered
    }

    /// Hands one delivery to a session wherever it is. Returns false if it was dropped.
    private func deliver(_ delivery: Delivery, to session: SessionHandle, persist: inout [StoreOperation]) -> Bool {
        let result = session.offer(delivery, limits: broker.limits)
        if delivery.qos != .atMostOnce, broker.store != nil, session.isPersistent {
            switch result {
            case .online:
                persist.append(.enqueue(clientID: session.clientID, delivery: StoreMapping.storedDelivery(delivery)))
            case .queued(let evicted, _):
                for old in evicted { persist.append(.dequeue(clientID: session.clientID, messageID: old.message.id)) }
                persist.append(.enqueue(clientID: session.clientID, delivery: StoreMapping.storedDelivery(delivery)))
            case .dropped, .gone:
                break
            }
        }
        switch result {
        case .online(let ref):
            // Only the connection handler implements ConnectionRef in the server.
            let handler = unsafeDowncast(ref as AnyObject, to: MQTTConnectionHandler.self)
            if handler.loopIndex == index {
                // Handed over at the end of the burst, after the caller has submitted the store
                // operations for this message (a packet id must not be stored before its message).
                localItems.append((handler, delivery))
            } else {
                if outboxes[handler.loopIndex].items.isEmpty {
                    outboxesInUse += 1
                    outboxes[handler.loopIndex].eventLoop = handler.eventLoop
                }
                outboxes[handler.loopIndex].items.append((handler, delivery))
            }
            return true
        case .queued(let evicted, let startedDropping):
            traffic.queuedOffline.add(1, ordering: .relaxed)
            if !evicted.isEmpty { traffic.drop(.queueFull, evicted.count) }
            if startedDropping { broker.protection?.sessionDropping(clientID: session.clientID) }
            return true
        case .dropped(let reason, let startedDropping):
            traffic.drop(reason)
            if reason == .queueFull { routingQueueFull += 1 }
            if startedDropping { broker.protection?.sessionDropping(clientID: session.clientID) }
            return false
        case .gone:
            return false
        }
    }

    /// Every subscription matching `topic`. Devices publish on the same topics over and over, so
    /// results without shared groups (whose member choice changes per message) are cached per
    /// topic until the index changes; a hit costs one hash of the topic instead of a trie walk.
    private func forEachMatchingEntry(_ topic: String, _ body: (SubscriptionTrie.Entry) -> Void) {
        if matchCacheVersion != trie.version {
            matchCache.removeAll(keepingCapacity: true)
            matchCacheVersion = trie.version
        }
        if let cached = matchCache[topic] {
            if let entries = cached {
                for entry in entries { body(entry) }
                return
            }
            trie.forEachMatch(topic, pickShared: Self.pickOnlineMember, body)
            return
        }
        var entries: [SubscriptionTrie.Entry] = []
        var shared = false
        trie.forEachMatch(topic, pickShared: Self.pickOnlineMember) { entry in
            if entry.subscription.isShared { shared = true }
            entries.append(entry)
            body(entry)
        }
        if matchCache.count >= Self.matchCacheLimit { matchCache.removeAll(keepingCapacity: true) }
        matchCache[topic] = shared ? .some(nil) : .some(entries)
    }

    private static let matchCacheLimit = 16_384

    /// Below this many matches a linear scan finds a session's earlier match faster than hashing.
    private static let linearScanLimit = 16

    private func indexOfPlainMatch(for session: SessionHandle) -> Int? {
        if !matchIndex.isEmpty { return matchIndex[ObjectIdentifier(session)] }
        return matches.firstIndex { $0.session === session && $0.delivery.sharedFilter == nil }
    }

    private func indexMatches() {
        for (i, match) in matches.enumerated() where match.delivery.sharedFilter == nil {
            matchIndex[ObjectIdentifier(match.session)] = i
        }
    }

    /// Round-robin over connected members; falls back to the next member in turn if none is
    /// connected (the message then waits in that member's session).
    private static func pickOnlineMember(_ members: [SubscriptionTrie.Entry], _ start: Int) -> Int? {
        guard !members.isEmpty else { return nil }
        for step in 0..<members.count {
            let i = (start + step) % members.count
            if members[i].subscriber.connection != nil { return i }
        }
        return start
    }

    func markDirty(_ handler: MQTTConnectionHandler) {
        if handler.needsFlush { return }
        handler.needsFlush = true
        dirty.append(handler)
    }

    /// End of a read burst or a batch: flush local connections and hand each other loop its batch.
    func flush() {
        while !localItems.isEmpty {
            let items = localItems
            localItems.removeAll(keepingCapacity: true)
            for (handler, delivery) in items { handler.deliver(delivery) }
        }
        // Before other loops get this burst's deliveries: their stores follow these enqueues.
        submitStoreWrites()
        if !dirty.isEmpty {
            let handlers = dirty
            dirty.removeAll(keepingCapacity: true)
            for handler in handlers { handler.flushIfNeeded() }
        }
        guard outboxesInUse > 0 else { return }
        outboxesInUse = 0
        for i in outboxes.indices where !outboxes[i].items.isEmpty {
            let items = outboxes[i].items
            outboxes[i].items = []
            guard let loop = outboxes[i].eventLoop else { continue }
            let broker = self.broker
            loop.execute {
                let worker = broker.worker(on: loop)
                for (handler, delivery) in items { handler.deliver(delivery) }
                worker.flush()
            }
        }
    }
}

/// A change to the subscription index, applied to every loop's replica in order.
enum SubscriptionChange: Sendable {
    case add(SessionHandle, Subscription)
    case remove(SessionHandle, filter: String)
}

import BastionCore
import MQTTCodec
import NIOCore

/// Per-event-loop routing state. Each loop owns a replica of the subscription index, fed with the
/// same changes in the same order, so matching a PUBLISH takes no lock. Deliveries to connections
/// on other loops are collected per target loop and handed over with one `execute` per burst.
final class LoopWorker {
    let eventLoop: any EventLoop
    let trie = SubscriptionTrie<SessionHandle>()
    private unowned let broker: Broker

    /// Deliveries for connections on other loops, sent at the end of the burst.
    private var outboxes: [ObjectIdentifier: Outbox] = [:]
    /// Connections on this loop that were written to and need a flush at the end of the burst.
    private var dirty: [MQTTConnectionHandler] = []
    /// Scratch space for one PUBLISH's matches, reused to avoid an allocation per message.
    private var matches: [Match] = []
    /// For large fan-outs: session → index of its non-shared match in `matches`.
    private var matchIndex: [ObjectIdentifier: Int] = [:]
    /// Every connection handler on this loop, for shutdown and policy reloads.
    var connections: [ObjectIdentifier: MQTTConnectionHandler] = [:]

    struct Outbox {
        let eventLoop: any EventLoop
        var items: [(ConnectionBox, Delivery)] = []
    }

    struct Match {
        var session: SessionHandle
        var delivery: Delivery
    }

    private let index: UInt64
    private let stride: UInt64
    private var issued: UInt64 = 0

    init(eventLoop: any EventLoop, broker: Broker, index: Int, stride: Int) {
        self.eventLoop = eventLoop
        self.broker = broker
        self.index = UInt64(index)
        self.stride = UInt64(stride)
    }

    /// A message id no other loop (and no earlier run) uses.
    func nextMessageID() -> MessageID {
        issued += 1
        return broker.messageIDBase.load(ordering: .relaxed) + issued * stride + index
    }

    func register(_ handler: MQTTConnectionHandler) { connections[ObjectIdentifier(handler)] = handler }
    func unregister(_ handler: MQTTConnectionHandler) { connections[ObjectIdentifier(handler)] = nil }

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

    /// Sends `message` to every matching session. Returns how many sessions it reached (online or
    /// queued), which 5.0 reports as 0x10 "no matching subscribers" when zero.
    @discardableResult
    func route(_ message: Message, from publisher: SessionHandle?) -> Int {
        var ops: [StoreOperation] = []
        let reached = route(message, from: publisher, persist: &ops)
        broker.persist(ops)
        return reached
    }

    /// Routes and appends the store operations that make the message durable for every persistent
    /// session it reached (the caller acknowledges the publisher once they are committed).
    @discardableResult
    func route(_ message: Message, from publisher: SessionHandle?, persist: inout [StoreOperation]) -> Int {
        let firstOp = persist.count
        matches.removeAll(keepingCapacity: true)
        trie.forEachMatch(message.topic, pickShared: Self.pickOnlineMember) { entry in
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
        var reached = 0
        for match in matches {
            if deliver(match.delivery, to: match.session, persist: &persist) { reached += 1 }
        }
        matches.removeAll(keepingCapacity: true)
        if persist.count > firstOp {
            persist.insert(.putMessage(StoreMapping.stored(message)), at: firstOp)
        }
        return reached
    }

    /// Hands one delivery to a session wherever it is, storing it if the session is persistent.
    @discardableResult
    func deliver(_ delivery: Delivery, to session: SessionHandle) -> Bool {
        var ops: [StoreOperation] = []
        let delivered = deliver(delivery, to: session, persist: &ops)
        if !ops.isEmpty {
            ops.insert(.putMessage(StoreMapping.stored(delivery.message)), at: 0)
            broker.persist(ops)
        }
        return delivered
    }

    /// Hands one delivery to a session wherever it is. Returns false if it was dropped.
    private func deliver(_ delivery: Delivery, to session: SessionHandle, persist: inout [StoreOperation]) -> Bool {
        let result = session.offer(delivery, limits: broker.limits)
        if delivery.qos != .atMostOnce, broker.store != nil, session.isPersistent {
            switch result {
            case .online, .queued:
                persist.append(.enqueue(clientID: session.clientID, delivery: StoreMapping.storedDelivery(delivery)))
            case .dropped, .gone:
                break
            }
        }
        switch result {
        case .online(let ref):
            let box = ref as! ConnectionBox
            if box.eventLoop === eventLoop {
                box.handler.value.deliver(delivery)
            } else {
                let key = ObjectIdentifier(box.eventLoop)
                if outboxes[key] == nil { outboxes[key] = Outbox(eventLoop: box.eventLoop) }
                outboxes[key]!.items.append((box, delivery))
            }
            return true
        case .queued:
            broker.stats.queuedOffline()
            return true
        case .dropped:
            broker.stats.dropped()
            return false
        case .gone:
            return false
        }
    }

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
    private static func pickOnlineMember(_ members: [SubscriptionTrie<SessionHandle>.Entry], _ start: Int) -> Int? {
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
        if !dirty.isEmpty {
            let handlers = dirty
            dirty.removeAll(keepingCapacity: true)
            for handler in handlers { handler.flushIfNeeded() }
        }
        if outboxes.isEmpty { return }
        for (_, outbox) in outboxes {
            let items = outbox.items
            let broker = self.broker
            let loop = outbox.eventLoop
            loop.execute {
                let worker = broker.worker(on: loop)
                for (box, delivery) in items { box.handler.value.deliver(delivery) }
                worker.flush()
            }
        }
        outboxes.removeAll(keepingCapacity: true)
    }
}

/// A change to the subscription index, applied to every loop's replica in order.
enum SubscriptionChange: Sendable {
    case add(SessionHandle, Subscription)
    case remove(SessionHandle, filter: String)
}

/// The `ConnectionRef` of a connected session: its loop and its handler, usable only on that loop.
final class ConnectionBox: ConnectionRef {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<MQTTConnectionHandler>

    init(handler: MQTTConnectionHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }
}

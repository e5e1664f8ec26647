import BastionCore
import MQTTCodec
import NIOCore

/// Per-event-loop IO around the loop's `Router`: the outboxes that carry deliveries to
/// connections (handed over at the end of the burst, with one `execute` per other loop per
/// burst), flushing the connections written to, the loop's counters, and store submission. Who
/// receives what is the router's decision.
final class LoopWorker: RouteSink {
    let eventLoop: any EventLoop
    let router: MessageRouter
    unowned let broker: Broker
    /// Store operations of the current burst (see `PendingStoreWrites`).
    var storeWrites = PendingStoreWrites()
    /// Completions of this loop's store submissions, waiting to run on it.
    let committed = CommittedSubmissions()

    /// Deliveries for connections on this loop, handed over at the end of the burst.
    private var localItems: [(any ConnectionRef, Delivery)] = []
    /// Indexed by the target loop's index; empty outboxes are skipped.
    private var outboxes: [Outbox]
    private var outboxesInUse = 0
    /// Connections on this loop that were written to and need a flush at the end of the burst.
    private var dirty: [MQTTConnectionHandler] = []
    /// Every connection handler on this loop, for shutdown and policy reloads.
    var connections: [ObjectIdentifier: MQTTConnectionHandler] = [:]

    struct Outbox {
        var eventLoop: (any EventLoop)?
        var items: [(any ConnectionRef, Delivery)] = []
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
        self.router = MessageRouter(limits: broker.limits, durable: broker.store != nil)
    }

    var trie: SubscriptionTrie { router.trie }

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

    func apply(_ changes: [SubscriptionChange]) { router.apply(changes) }

    // MARK: Routing

    /// Sends `message` to every matching session and submits its store operations.
    @discardableResult
    func route(_ message: Message, from publisher: SessionHandle?) -> RouteOutcome {
        var ops: [StoreOperation] = []
        let outcome = router.route(message, from: publisher, operations: &ops, sink: self)
        persist(ops)
        return outcome
    }

    /// Routes and appends the store operations that make the message durable for every persistent
    /// session it reached (the caller acknowledges the publisher once they are committed).
    @discardableResult
    func route(_ message: Message, from publisher: SessionHandle?, persist ops: inout [StoreOperation]) -> RouteOutcome {
        router.route(message, from: publisher, operations: &ops, sink: self)
    }

    /// Gives a delivery back to its session without storing it again (it was stored when routed):
    /// the connection it reached had already let go of the session.
    func handBack(_ delivery: Delivery, to session: SessionHandle) {
        var ignored: [StoreOperation] = []
        router.deliver(delivery, to: session, operations: &ignored, sink: self)
    }

    /// Hands one delivery to a session wherever it is, storing it if the session is persistent.
    @discardableResult
    func deliver(_ delivery: Delivery, to session: SessionHandle) -> Bool {
        var ops: [StoreOperation] = []
        let delivered = router.deliver(delivery, to: session, operations: &ops, sink: self)
        if !ops.isEmpty {
            ops.insert(.putMessage(stored(delivery.message)), at: 0)
            persist(ops)
        }
        return delivered
    }

    /// A departed member's shared-subscription delivery goes to another member (spec 4.8.2).
    func handOn(_ delivery: Delivery, from departed: SessionHandle) {
        var ops: [StoreOperation] = []
        router.handOn(delivery, from: departed, operations: &ops, sink: self)
        persist(ops)
    }

    // MARK: RouteSink

    func handOff(_ delivery: Delivery, to connection: any ConnectionRef) {
        let target = connection.loopIndex
        if target == index {
            // Handed over at the end of the burst, after the caller has submitted the store
            // operations for this message (a packet id must not be stored before its message).
            localItems.append((connection, delivery))
        } else {
            if outboxes[target].items.isEmpty {
                outboxesInUse += 1
                outboxes[target].eventLoop = connection.eventLoop
            }
            outboxes[target].items.append((connection, delivery))
        }
    }

    func stored(_ message: Message) -> StoredMessage { StoreMapping.stored(message) }

    func dropped(_ reason: DropReason, count: Int) { traffic.drop(reason, count) }

    func startedDropping(_ session: SessionHandle) { broker.protection?.sessionDropping(clientID: session.clientID) }

    func queuedOffline() { traffic.queuedOffline.add(1, ordering: .relaxed) }

    // MARK: Flushing

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
            for (connection, delivery) in items { connection.deliver(delivery) }
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
                for (connection, delivery) in items { connection.deliver(delivery) }
                worker.flush()
            }
        }
    }
}

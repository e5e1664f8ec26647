import DequeModule
import MQTTCodec
import NIOCore
import OrderedCollections

/// Server-to-client QoS 1/2 delivery for one session: packet identifiers, the in-flight window
/// (Receive Maximum), the queue behind it, and redelivery after reconnect (spec 4.3, 4.4, 4.9).
public struct OutboundFlow: Sendable {
    public enum Phase: Sendable, Hashable {
        /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
        case awaitingAcknowledgement
        /// PUBREL sent; waiting for PUBCOMP.
        case awaitingCompletion
    }

    public struct InflightEntry: Sendable {
        public var delivery: Delivery
        public var phase: Phase
    }

    /// A message ready to be written, with the packet identifier it was given.
    public struct Outgoing: Sendable {
        public var delivery: Delivery
        public var packetID: UInt16
        public var dup: Bool

        public init(delivery: Delivery, packetID: UInt16, dup: Bool) {
            self.delivery = delivery
            self.packetID = packetID
            self.dup = dup
        }
    }

    public enum SubmitResult: Sendable {
        case send(Outgoing)
        /// Queued behind the window; `evicted` older deliveries were dropped for it (`drop_oldest`).
        case queued(evicted: [Delivery], startedDropping: Bool)
        case dropped(DropReason, startedDropping: Bool)
    }

    /// What queueing did: the message may be in the queue and an older one dropped for it
    /// (`drop_oldest`), or the message itself dropped (`drop_newest`).
    public struct EnqueueResult: Sendable {
        public var queued: Bool
        /// Deliveries removed to make room (the store must forget them too).
        public var evicted: [Delivery] = []
        /// This drop is the session's first since it last had room: worth an alert.
        public var startedDropping = false

        public var dropped: Bool { !queued || !evicted.isEmpty }
    }

    /// In order of first transmission, so redelivery keeps the original order (spec 4.6).
    public private(set) var inflight: OrderedDictionary<UInt16, InflightEntry> = [:]
    public private(set) var queue: Deque<Delivery> = []
    public private(set) var queuedBytes = 0
    private var lastPacketID: UInt16 = 0
    /// Dropping since the queue was last empty (one alert per episode).
    public private(set) var isDropping = false

    public init() {}

    public var isIdle: Bool { inflight.isEmpty && queue.isEmpty }

    /// Offers a QoS 1/2 delivery: sent at once if the window has room, otherwise queued.
    public mutating func submit(_ delivery: Delivery, window: Int, limits: BrokerLimits, now: NIODeadline) -> SubmitResult {
        precondition(delivery.qos != .atMostOnce, "QoS 0 bypasses the flow")
        if delivery.message.isExpired(at: now) { return .dropped(.expired, startedDropping: false) }
        if queue.isEmpty, inflight.count < window, let id = nextPacketID() {
            inflight[id] = InflightEntry(delivery: delivery, phase: .awaitingAcknowledgement)
            return .send(Outgoing(delivery: delivery, packetID: id, dup: false))
        }
        let result = enqueue(delivery, limits: limits)
        return result.queued
            ? .queued(evicted: result.evicted, startedDropping: result.startedDropping)
            : .dropped(.queueFull, startedDropping: result.startedDropping)
    }

    /// Queues without sending (the session is offline), within the caps.
    public mutating func enqueue(_ delivery: Delivery, limits: BrokerLimits) -> EnqueueResult {
        let size = delivery.message.payload.readableBytes + delivery.message.topic.utf8.count
        var result = EnqueueResult(queued: true)
        while queue.count >= limits.maximumQueuedMessages || queuedBytes + size > limits.maximumQueuedBytes {
            guard limits.queueDropPolicy == .dropOldest, let oldest = queue.popFirst() else {
                result.queued = false
                break
            }
            queuedBytes -= oldest.message.payload.readableBytes + oldest.message.topic.utf8.count
            result.evicted.append(oldest)
        }
        if result.queued {
            queue.append(delivery)
            queuedBytes += size
        }
        if result.dropped {
            result.startedDropping = !isDropping
            isDropping = true
        }
        return result
    }

    /// PUBACK for a QoS 1 message, or PUBREC carrying a failure code (which ends a QoS 2 flow).
    /// Returns false when no such message was in flight.
    public mutating func acknowledged(_ packetID: UInt16) -> Bool {
        guard let entry = inflight[packetID], entry.phase == .awaitingAcknowledgement else { return false }
        inflight.removeValue(forKey: packetID)
        return true
    }

    /// PUBREC: the message moves to the PUBREL phase. Returns false for an unknown packet id.
    public mutating func received(_ packetID: UInt16) -> Bool {
        guard let entry = inflight[packetID] else { return false }
        guard entry.delivery.qos == .exactlyOnce else { return false }
        inflight[packetID]?.phase = .awaitingCompletion
        return true
    }

    /// PUBCOMP. Returns false for an unknown packet id.
    public mutating func completed(_ packetID: UInt16) -> Bool {
        guard let entry = inflight[packetID], entry.phase == .awaitingCompletion else { return false }
        inflight.removeValue(forKey: packetID)
        return true
    }

    /// Moves queued messages into the window while it has room; expired ones are dropped.
    public mutating func drain(window: Int, now: NIODeadline, expired: inout [Delivery]) -> [Outgoing] {
        var out: [Outgoing] = []
        while inflight.count < window, let next = queue.first {
            queue.removeFirst()
            queuedBytes -= next.message.payload.readableBytes + next.message.topic.utf8.count
            if queue.isEmpty { isDropping = false }
            if next.message.isExpired(at: now) {
                expired.append(next)
                continue
            }
            guard let id = nextPacketID() else {
                queue.prepend(next)
                break
            }
            inflight[id] = InflightEntry(delivery: next, phase: .awaitingAcknowledgement)
            out.append(Outgoing(delivery: next, packetID: id, dup: false))
        }
        return out
    }

    /// What to resend when a persistent session reconnects: unacknowledged PUBLISH with DUP set,
    /// and PUBREL for messages already received (spec 4.4).
    public func redelivery() -> [(packetID: UInt16, entry: InflightEntry)] {
        inflight.map { (packetID: $0.key, entry: $0.value) }
    }

    /// Removes and returns deliveries that came through `$share` subscriptions and have not reached
    /// PUBREC, so another member of the group can take them (spec 4.8.2).
    public mutating func takeSharedDeliveries() -> [Delivery] {
        var taken: [Delivery] = []
        for (id, entry) in inflight where entry.phase == .awaitingAcknowledgement && entry.delivery.sharedFilter != nil {
            taken.append(entry.delivery)
            inflight.removeValue(forKey: id)
        }
        var kept: Deque<Delivery> = []
        for d in queue {
            if d.sharedFilter != nil {
                taken.append(d)
                queuedBytes -= d.message.payload.readableBytes + d.message.topic.utf8.count
            } else {
                kept.append(d)
            }
        }
        queue = kept
        return taken
    }

    /// Puts back a message that was in flight when the broker stopped (from the durable store).
    public mutating func restoreInflight(_ delivery: Delivery, packetID: UInt16, released: Bool) {
        inflight[packetID] = InflightEntry(delivery: delivery, phase: released ? .awaitingCompletion : .awaitingAcknowledgement)
        lastPacketID = max(lastPacketID, packetID)
    }

    /// Next identifier not in use, wrapping after 65535 and skipping 0 (spec 2.2.1).
    private mutating func nextPacketID() -> UInt16? {
        guard inflight.count < 65535 else { return nil }
        repeat {
            lastPacketID = lastPacketID == 65535 ? 1 : lastPacketID + 1
        } while inflight[lastPacketID] != nil
        return lastPacketID
    }
}

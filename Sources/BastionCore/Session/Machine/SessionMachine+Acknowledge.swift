import MQTTCodec
import NIOCore

/// Deliveries towards the client and their acknowledgements (spec 4.3, 4.4, 4.9): the in-flight
/// window, the queue behind it, PUBACK / PUBREC / PUBCOMP, redelivery on resume.
extension SessionMachine {
    public enum DeliveryAction: Sendable {
        /// QoS 0: write it if the socket keeps up (else it is dropped as a slow consumer).
        case sendQoS0(Delivery)
        /// QoS 1/2 with a packet id in the window: check the receiver's grant, then write it.
        case transmit(OutboundFlow.Outgoing)
        /// Queued behind the window (or while CONNACK is pending); `evicted` were dropped for it.
        case queued(evicted: [Delivery], startedDropping: Bool)
        /// Not kept: count it; forget its stored copy (QoS 1/2).
        case dropped(Delivery, DropReason, startedDropping: Bool)
        /// The connection holds no session any more: the delivery follows the session.
        case handBack
    }

    /// A delivery for this connection's session, on its loop.
    public mutating func deliver(_ delivery: Delivery, now: NIODeadline) -> DeliveryAction {
        switch phase {
        case .connected:
            if delivery.qos == .atMostOnce {
                return delivery.message.isExpired(at: now) ? .dropped(delivery, .expired, startedDropping: false) : .sendQoS0(delivery)
            }
            let window = outboundWindow
            let limits = self.limits
            switch withState({ $0.outbound.submit(delivery, window: window, limits: limits, now: now) })! {
            case .send(let outgoing): return .transmit(outgoing)
            case .queued(let evicted, let started): return .queued(evicted: evicted, startedDropping: started)
            case .dropped(let reason, let started): return .dropped(delivery, reason, startedDropping: started)
            }
        case .connecting(let c) where c.state != nil:
            // Not yet acknowledged (CONNACK waits for the store): QoS 1/2 wait in the session.
            guard delivery.qos != .atMostOnce else { return .dropped(delivery, .offline, startedDropping: false) }
            return Self.queued(delivery, c.state!.outbound.enqueue(delivery, limits: limits))
        case .closing:
            // Closed but not yet detached: QoS 1/2 wait in the session, which goes offline.
            guard delivery.qos != .atMostOnce else { return .dropped(delivery, .offline, startedDropping: false) }
            let limits = self.limits
            return Self.queued(delivery, withState { $0.outbound.enqueue(delivery, limits: limits) }!)
        case .connecting, .awaitingConnect, .closed:
            return .handBack
        }
    }

    private static func queued(_ delivery: Delivery, _ result: OutboundFlow.EnqueueResult) -> DeliveryAction {
        result.queued
            ? .queued(evicted: result.evicted, startedDropping: result.startedDropping)
            : .dropped(delivery, .queueFull, startedDropping: result.startedDropping)
    }

    /// A QoS 1/2 delivery in the window that will not be written after all (the receiver's grant
    /// refused it, or it is too large for the client): its packet id is free again.
    public mutating func abandon(_ packetID: UInt16) {
        withState { state in _ = state.outbound.acknowledged(packetID) || state.outbound.completed(packetID) }
    }

    /// PUBACK: the delivery it finishes (forget its stored copy), if it was in flight.
    public mutating func pubackReceived(_ packetID: UInt16) -> Delivery? {
        withState { state in
            let entry = state.outbound.inflight[packetID]
            return state.outbound.acknowledged(packetID) ? entry?.delivery : nil
        } ?? nil
    }

    public enum PubrecOutcome: Sendable {
        /// A failure code ended the QoS 2 flow (spec 4.3.3); forget the delivery if there was one.
        case ended(Delivery?)
        /// Send PUBREL — after storing the release of `storedRelease` for a persistent session.
        case release(packetID: UInt16, storedRelease: MessageID?)
        /// Unknown packet id: PUBREL with this code (0x92 in 5.0).
        case unknown(packetID: UInt16, ReasonCode)
    }

    /// PUBREC. `persistent`: the session's state is stored, so the release is stored before PUBREL
    /// (or a restart would resend a PUBLISH the client already released).
    public mutating func pubrecReceived(_ ack: PublishAckPacket, persistent: Bool) -> PubrecOutcome? {
        let version = self.version
        return withState { state -> PubrecOutcome in
            let entry = state.outbound.inflight[ack.packetID]
            if ack.reasonCode.isFailure {
                return .ended(state.outbound.acknowledged(ack.packetID) ? entry?.delivery : nil)
            }
            let known = state.outbound.received(ack.packetID)
            if known, persistent, let entry { return .release(packetID: ack.packetID, storedRelease: entry.delivery.message.id) }
            if known || version != .v5 { return .release(packetID: ack.packetID, storedRelease: nil) }
            return .unknown(packetID: ack.packetID, .packetIdentifierNotFound)
        }
    }

    /// PUBCOMP: the delivery it finishes, if it was in flight.
    public mutating func pubcompReceived(_ packetID: UInt16) -> Delivery? {
        withState { state in
            let entry = state.outbound.inflight[packetID]
            return state.outbound.completed(packetID) ? entry?.delivery : nil
        } ?? nil
    }

    /// Queued deliveries that fit the window now, and the queued ones that expired meanwhile.
    public mutating func drainQueue(now: NIODeadline) -> (ready: [OutboundFlow.Outgoing], expired: [Delivery]) {
        let window = outboundWindow
        return withState { state in
            guard !state.outbound.queue.isEmpty else { return ([], []) }
            var expired: [Delivery] = []
            let ready = state.outbound.drain(window: window, now: now, expired: &expired)
            return (ready, expired)
        } ?? ([], [])
    }

    /// Whether the window has room (after discarded deliveries freed slots).
    public var windowHasRoom: Bool { (state?.outbound.inflight.count ?? 0) < outboundWindow }
    public var hasQueued: Bool { !(state?.outbound.queue.isEmpty ?? true) }

    /// A persistent session reconnected: unacknowledged PUBLISH (resent with DUP) and outstanding
    /// PUBREL, in their original order (spec 4.4).
    public var redelivery: [(packetID: UInt16, entry: OutboundFlow.InflightEntry)] { state?.outbound.redelivery() ?? [] }
}

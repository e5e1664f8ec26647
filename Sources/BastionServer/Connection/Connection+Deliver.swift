import BastionCore
import MQTTCodec
import NIOCore

/// Deliveries towards the client and their acknowledgements (spec 4.3, 4.4): the machine keeps
/// the window and the queue; here the receiver's grant, the writes, and the store operations that
/// keep a persistent session's copy in step.
extension MQTTConnectionHandler {
    /// A message for this connection's session, on this loop.
    func deliver(_ delivery: Delivery) {
        // The clock only matters for messages with an expiry; skip the system call otherwise.
        var now = delivery.message.expiresAt == nil ? Self.noExpiryClock : NIODeadline.now()
        if let peer = internalPeer, delivery.qos != .atMostOnce {
            now = .now()
            peer.ages.enter(delivery.message.id, at: now)
        }
        if machine.isConnected {
            refreshAuthorizerIfNeeded()
            guard authorizer.mayReceive(delivery.message.topic) else { return forget(delivery) }
        }
        switch machine.deliver(delivery, now: now) {
        case .sendQoS0(let delivery):
            // A subscriber that cannot keep up loses QoS 0 messages rather than growing memory.
            guard context?.channel.isWritable ?? false else { return worker.traffic.drop(.slowConsumer) }
            if !run(.publish(delivery, packetID: 0, dup: false, now: now)) { worker.traffic.drop(.tooLarge) }
        case .transmit(let outgoing):
            transmit(outgoing, now: now)
        case .queued(let evicted, let startedDropping):
            queueDropped(nil, evicted: evicted, startedDropping: startedDropping)
        case .dropped(let dropped, .queueFull, let startedDropping):
            queueDropped(dropped, evicted: [], startedDropping: startedDropping)
        case .dropped(let dropped, let reason, _):
            worker.traffic.drop(reason)
            if dropped.qos != .atMostOnce { forget(dropped) }
        case .handBack:
            // The session moved on (offline or to another connection): follow it.
            if let session, session.connection !== self { worker.handBack(delivery, to: session) }
        }
    }

    /// Messages the session's queue could not keep: counted, forgotten by the store, and the
    /// first drop of an episode raises an alert.
    private func queueDropped(_ dropped: Delivery?, evicted: [Delivery], startedDropping: Bool) {
        let count = evicted.count + (dropped == nil ? 0 : 1)
        guard count > 0 else { return }
        worker.traffic.drop(.queueFull, count)
        for delivery in evicted { forget(delivery) }
        if let dropped { forget(dropped) }
        if let peer = internalPeer {
            peer.dropped.add(count, ordering: .relaxed)
            guard startedDropping else { return }
            logger.warning("bridge queue full; dropping its oldest messages", metadata: ["bridge": "\(peer.bridgeName)"])
            broker.protection?.bridgeEvent(.init(kind: .queueFull, bridge: peer.bridgeName, dropped: count))
            return
        }
        if startedDropping {
            logger.warning("session queue full; dropping messages", metadata: ["client_id": "\(clientID)"])
            broker.protection?.sessionDropping(clientID: clientID)
        }
    }

    /// A QoS 1/2 PUBLISH with its packet id: checked against the policy in force now and this
    /// identity (the session may have been filled under another policy or user), then written —
    /// towards a persistent session after its packet id is stored for QoS 2.
    private func transmit(_ outgoing: OutboundFlow.Outgoing, now: NIODeadline) {
        if let peer = internalPeer, peer.ages.isTooOld(outgoing.delivery.message.id, at: now) {
            // Waited for the remote longer than store_and_forward.max_age.
            worker.traffic.drop(.expired)
            peer.expired.add(1, ordering: .relaxed)
            machine.abandon(outgoing.packetID)
            return forget(outgoing.delivery)
        }
        refreshAuthorizerIfNeeded()
        guard authorizer.mayReceive(outgoing.delivery.message.topic) else {
            machine.abandon(outgoing.packetID)
            return forget(outgoing.delivery)
        }
        guard !outgoing.dup, isPersistent else { return emit(outgoing, now: now) }
        let assignment = StoreOperation.assignPacketID(clientID: clientID, messageID: outgoing.delivery.message.id, packetID: outgoing.packetID)
        if outgoing.delivery.qos == .exactlyOnce {
            // Exactly once across a crash: the client must never see this message under a packet id
            // the store does not know, or a restart would send it again as a new message.
            sendAfterCommit(.publish(outgoing), after: [assignment])
        } else {
            worker.persist(assignment)
            emit(outgoing, now: now)
        }
    }

    /// Writes a QoS 1/2 PUBLISH; one too large for the client is discarded as if delivered.
    private func emit(_ outgoing: OutboundFlow.Outgoing, now: NIODeadline) {
        guard !run(.publish(outgoing.delivery, packetID: outgoing.packetID, dup: outgoing.dup, now: now)) else { return }
        worker.traffic.drop(.tooLarge)
        machine.abandon(outgoing.packetID)
        forget(outgoing.delivery)
    }

    /// Sends once `operations` are durable, in order with other such sends (QoS 2 PUBLISH and
    /// PUBREL towards persistent sessions). If the store is failing it sends anyway: delivery
    /// goes on, only the crash guarantee is weaker, and the store failure is already alerted.
    private func sendAfterCommit(_ item: AcknowledgementQueue.GatedSend, after operations: [StoreOperation]) {
        guard broker.store != nil else { return release(item) }
        let sequence = machine.acknowledgements.gate(item)
        worker.persist(operations, then: .gatedSend(self, sequence: sequence))
    }

    func gatedCommitted(_ sequence: Int) {
        for item in machine.acknowledgements.gatedCommitted(sequence) { release(item) }
    }

    private func release(_ item: AcknowledgementQueue.GatedSend) {
        // A closed connection sends nothing; the session keeps the message for redelivery.
        guard machine.isConnected else { return }
        switch item {
        case .publish(let outgoing): emit(outgoing, now: .now())
        case .pubrel(let packetID): run(.send(.pubrel(PublishAckPacket(packetID: packetID))))
        }
    }

    /// A QoS 1/2 delivery is finished or dropped: the store no longer owes it to the session.
    func forget(_ delivery: Delivery) {
        internalPeer?.ages.forget(delivery.message.id)
        guard delivery.qos != .atMostOnce, isPersistent else { return }
        worker.persist(.dequeue(clientID: clientID, messageID: delivery.message.id))
    }

    // MARK: Acknowledgements from the client

    func pubackReceived(_ ack: PublishAckPacket) {
        if let finished = machine.pubackReceived(ack.packetID) {
            forget(finished)
        } else {
            logger.debug("PUBACK for unknown packet id \(ack.packetID)")
        }
        sendQueued()
    }

    func pubrecReceived(_ ack: PublishAckPacket) {
        switch machine.pubrecReceived(ack, persistent: isPersistent) {
        case .ended(let finished)?:
            if let finished { forget(finished) }
            sendQueued()
        case .release(let packetID, let storedRelease?)?:
            // PUBREL only once the store knows, or a restart would resend the PUBLISH the client
            // has already released.
            sendAfterCommit(.pubrel(packetID), after: [.markReleased(clientID: clientID, messageID: storedRelease)])
        case .release(let packetID, nil)?:
            run(.send(.pubrel(PublishAckPacket(packetID: packetID))))
        case .unknown(let packetID, let code)?:
            run(.send(.pubrel(PublishAckPacket(packetID: packetID, reasonCode: code))))
        case nil:
            break
        }
    }

    func pubcompReceived(_ ack: PublishAckPacket) {
        if let finished = machine.pubcompReceived(ack.packetID) { forget(finished) }
        sendQueued()
    }

    /// Moves queued messages into the window after acknowledgements.
    func sendQueued() {
        guard machine.hasQueued else { return }
        let now = NIODeadline.now()
        let (ready, expired) = machine.drainQueue(now: now)
        if !expired.isEmpty { worker.traffic.drop(.expired, expired.count) }
        for delivery in expired { forget(delivery) }
        for outgoing in ready { transmit(outgoing, now: now) }
        // Discarded oversize messages free window slots; keep going until the window is full.
        if !ready.isEmpty, machine.windowHasRoom { sendQueued() }
    }

    /// A persistent session reconnected: resend unacknowledged PUBLISH with DUP and outstanding
    /// PUBREL in their original order, then the queue (spec 4.4).
    func resumeDelivery() {
        let now = NIODeadline.now()
        if let peer = internalPeer, let outbound = machine.state?.outbound {
            // Restored from the store (which keeps no arrival time): their age counts from now.
            for entry in outbound.inflight.values { peer.ages.enter(entry.delivery.message.id, at: now) }
            for delivery in outbound.queue { peer.ages.enter(delivery.message.id, at: now) }
        }
        for (packetID, entry) in machine.redelivery {
            switch entry.phase {
            case .awaitingAcknowledgement:
                transmit(OutboundFlow.Outgoing(delivery: entry.delivery, packetID: packetID, dup: true), now: now)
            case .awaitingCompletion:
                run(.send(.pubrel(PublishAckPacket(packetID: packetID))))
            }
        }
        sendQueued()
    }
}

import BastionCore
import MQTTCodec
import NIOCore

/// PUBLISH in both directions and the QoS 1/2 acknowledgement flows (spec 3.3–3.7, 4.3, 4.4).
extension MQTTConnectionHandler {
    // MARK: Client to server

    func publishReceived(_ publish: PublishPacket) {
        guard state != nil else { return }
        worker.traffic.received(qos: publish.qos.rawValue)
        guard chargePublishRate(bytes: publish.payload.readableBytes + publish.topic.utf8.count) else { return }
        let decision = inboundPublish.received(publish, version: version, inboundQoS2: &state!.inboundQoS2)
        let topic: String
        switch decision {
        case .disconnect(let reason, let why):
            return protocolViolation(reason, why)
        case .duplicateQoS2:
            return send(.pubrec(PublishAckPacket(packetID: publish.packetID)))
        case .route(let resolved):
            topic = resolved
        }
        refreshAuthorizerIfNeeded()
        guard authorizer.mayPublish(topic) else {
            auditDenied(.publish, topic)
            if broker.disconnectOnDeniedPublish {
                closeReason = "publish to \(topic) not authorized"
                return disconnect(.notAuthorized, reasonString: "not authorized to publish to \(topic)")
            }
            return acknowledge(publish, reason: .notAuthorized, reasonString: "not authorized to publish to \(topic)")
        }
        if version == .v5, publish.properties.payloadFormatIndicator == 1,
           String(validating: publish.payload.readableBytesView, as: UTF8.self) == nil {
            return acknowledge(publish, reason: .payloadFormatInvalid, reasonString: "payload is not valid UTF-8")
        }
        let now = publish.properties.messageExpiryInterval == nil ? Self.noExpiryClock : NIODeadline.now()
        let message = Message(id: worker.nextMessageID(), publish: publish, topic: topic, publisherClientID: clientID, now: now)
        var ops: [StoreOperation] = []
        var retainedRefused = false
        if message.retain {
            if broker.retained.apply(message) == .refused {
                // Over the retained quota: 5.0 publishers are told (0x97), the message still flows.
                logger.warning("retained store full; retained copy not kept", metadata: ["topic": "\(topic)"])
                auditLimit(.retainedMessages, .rejected, maximum: broker.limits.maximumRetainedMessages)
                retainedRefused = true
            } else if broker.store != nil {
                ops.append(message.payload.readableBytes == 0 ? .clearRetained(topic: topic) : .setRetained(StoreMapping.stored(message)))
            }
        }
        let routed = worker.route(message, from: session, persist: &ops)
        if publish.qos == .exactlyOnce, isPersistent {
            ops.append(.inboundQoS2(clientID: clientID, packetID: publish.packetID, pending: true))
        }
        // Matched, but no subscriber could keep it (their queues are full): say so (0x97) rather
        // than let the publisher believe it was delivered.
        let reason: ReasonCode = retainedRefused ? .quotaExceeded : routed.reasonCode
        let reasonString = retainedRefused ? "retained message quota exceeded"
            : reason == .quotaExceeded ? "no matching subscriber could queue the message" : nil
        acknowledge(publish, reason: reason, reasonString: reasonString, after: ops)
    }

    /// This connection's session outlives it and a durable store is configured.
    var isPersistent: Bool { broker.store != nil && (session?.isPersistent ?? false) }

    /// PUBACK / PUBREC for an inbound message, sent once `operations` are durable. Failure codes
    /// exist only in 5.0; a 3.1.1 client cannot be told, so it gets a normal acknowledgement and
    /// the message is dropped.
    private func acknowledge(_ publish: PublishPacket, reason: ReasonCode, reasonString: String?, after operations: [StoreOperation] = []) {
        let code = version == .v5 ? reason : .success
        let properties = code.isFailure ? problemProperties(reasonString) : AckProperties()
        switch publish.qos {
        case .atMostOnce:
            worker.persist(operations)
        case .atLeastOnce:
            queueAcknowledgement(.puback(PublishAckPacket(packetID: publish.packetID, reasonCode: code, properties: properties)), after: operations)
        case .exactlyOnce:
            if code.isFailure, state != nil {
                InboundPublishState.refusedQoS2(publish.packetID, inboundQoS2: &state!.inboundQoS2)
            }
            queueAcknowledgement(.pubrec(PublishAckPacket(packetID: publish.packetID, reasonCode: code, properties: properties)), after: operations)
        }
    }

    static let acknowledgementBacklog = 1024

    /// Acknowledgements leave in the order their packets arrived (spec 4.6), each once its store
    /// operations are committed. A failed commit (disk full, I/O error) turns a 5.0 acknowledgement
    /// into 0x97; a 3.1.1 client gets none and resends the message when it reconnects.
    func queueAcknowledgement(_ packet: MQTTPacket, after operations: [StoreOperation]) {
        guard broker.store != nil, !operations.isEmpty else {
            if pendingAcknowledgements.isEmpty { return sendAcknowledgement(packet) }
            pendingAcknowledgements.append(PendingAcknowledgement(packet: packet, state: .ready))
            return
        }
        let sequence = acknowledgementBase + pendingAcknowledgements.count
        pendingAcknowledgements.append(PendingAcknowledgement(packet: packet, state: .waiting))
        // Bounded: a client publishing faster than the store commits stops being read.
        if pendingAcknowledgements.count >= Self.acknowledgementBacklog, pauseReading() { pausedForAcknowledgements = true }
        worker.persist(operations, then: .acknowledgement(self, sequence: sequence))
    }

    func acknowledgementCommitted(_ sequence: Int, failure: StoreError?) {
        let index = sequence - acknowledgementBase
        guard index >= 0, index < pendingAcknowledgements.count else { return }
        if let failure {
            logger.error("message not stored; acknowledgement withheld", metadata: ["client_id": "\(clientID)", "error": "\(failure)"])
            pendingAcknowledgements[index].state = version == .v5 ? .failed : .withheld
        } else {
            pendingAcknowledgements[index].state = .ready
        }
        while let first = pendingAcknowledgements.first, first.state != .waiting {
            pendingAcknowledgements.removeFirst()
            acknowledgementBase += 1
            switch first.state {
            case .ready: sendAcknowledgement(first.packet)
            case .failed:
                if case .pubrec(let p) = first.packet, state != nil {
                    InboundPublishState.refusedQoS2(p.packetID, inboundQoS2: &state!.inboundQoS2)
                }
                sendAcknowledgement(first.packet.withReason(.quotaExceeded, reasonString: problemProperties("message could not be stored").reasonString))
            case .withheld: released(first.packet)
            case .waiting: break
            }
        }
        if pausedForAcknowledgements, pendingAcknowledgements.count < Self.acknowledgementBacklog / 2 {
            pausedForAcknowledgements = false
            resumeReading()
        }
    }

    private func sendAcknowledgement(_ packet: MQTTPacket) {
        released(packet)
        send(packet)
    }

    /// The broker is done with an inbound message's acknowledgement: it no longer counts towards
    /// Receive Maximum.
    private func released(_ packet: MQTTPacket) {
        if case .puback = packet { inboundPublish.acknowledgedQoS1() }
    }

    func pubrelReceived(_ ack: PublishAckPacket) {
        guard state != nil else { return }
        let known = InboundPublishState.released(ack.packetID, inboundQoS2: &state!.inboundQoS2)
        let code: ReasonCode = known || version != .v5 ? .success : .packetIdentifierNotFound
        // The release is stored before PUBCOMP, so a restart cannot treat a reused id as a duplicate.
        let ops: [StoreOperation] = known && isPersistent ? [.inboundQoS2(clientID: clientID, packetID: ack.packetID, pending: false)] : []
        queueAcknowledgement(.pubcomp(PublishAckPacket(packetID: ack.packetID, reasonCode: code)), after: ops)
    }

    // MARK: Server to client acknowledgements

    func pubackReceived(_ ack: PublishAckPacket) {
        guard state != nil else { return }
        let entry = state!.outbound.inflight[ack.packetID]
        if state!.outbound.acknowledged(ack.packetID), let entry {
            forget(entry.delivery)
        } else {
            logger.debug("PUBACK for unknown packet id \(ack.packetID)")
        }
        sendQueued()
    }

    func pubrecReceived(_ ack: PublishAckPacket) {
        guard state != nil else { return }
        let entry = state!.outbound.inflight[ack.packetID]
        if ack.reasonCode.isFailure {
            // A failure PUBREC ends the QoS 2 flow (spec 4.3.3).
            if state!.outbound.acknowledged(ack.packetID), let entry { forget(entry.delivery) }
            return sendQueued()
        }
        let known = state!.outbound.received(ack.packetID)
        if known, isPersistent, let entry {
            // PUBREL only once the store knows, or a restart would resend the PUBLISH the client
            // has already released.
            return sendAfterCommit(.pubrel(ack.packetID), after: [.markReleased(clientID: clientID, messageID: entry.delivery.message.id)])
        }
        let code: ReasonCode = known || version != .v5 ? .success : .packetIdentifierNotFound
        send(.pubrel(PublishAckPacket(packetID: ack.packetID, reasonCode: code)))
    }

    func pubcompReceived(_ ack: PublishAckPacket) {
        guard state != nil else { return }
        let entry = state!.outbound.inflight[ack.packetID]
        if state!.outbound.completed(ack.packetID), let entry { forget(entry.delivery) }
        sendQueued()
    }

    /// A QoS 1/2 delivery is finished or dropped: the store no longer owes it to the session.
    func forget(_ delivery: Delivery) {
        guard delivery.qos != .atMostOnce, isPersistent else { return }
        worker.persist(.dequeue(clientID: clientID, messageID: delivery.message.id))
    }

    // MARK: Delivery

    /// Stands in for "now" where only message expiry would read it and the message has none.
    static let noExpiryClock = NIODeadline.uptimeNanoseconds(0)

    var outboundWindow: Int {
        version == .v5 ? min(client.receiveMaximum, broker.limits.maximumInflight) : broker.limits.maximumInflight
    }

    /// A message for this connection's session, on this loop.
    func deliver(_ delivery: Delivery) {
        guard phase == .connected, state != nil else {
            if state != nil {
                // Not yet acknowledged (CONNACK waits for the store) or closing but not yet
                // detached: QoS 1/2 wait in the session.
                if delivery.qos != .atMostOnce {
                    let result = state!.outbound.enqueue(delivery, limits: broker.limits)
                    queueDropped(result.queued ? nil : delivery, evicted: result.evicted, startedDropping: result.startedDropping)
                }
            } else if let session, session.connection !== self {
                // The session moved on (offline or to another connection): follow it.
                worker.handBack(delivery, to: session)
            }
            return
        }
        refreshAuthorizerIfNeeded()
        guard authorizer.mayReceive(delivery.message.topic) else { return forget(delivery) }
        // The clock only matters for messages with an expiry; skip the system call otherwise.
        let now = delivery.message.expiresAt == nil ? Self.noExpiryClock : NIODeadline.now()
        if delivery.qos == .atMostOnce {
            // A subscriber that cannot keep up loses QoS 0 messages rather than growing memory.
            guard context?.channel.isWritable ?? false else { return worker.traffic.drop(.slowConsumer) }
            if delivery.message.isExpired(at: now) { return worker.traffic.drop(.expired) }
            if !sendPublish(delivery, packetID: 0, dup: false, now: now) { worker.traffic.drop(.tooLarge) }
            return
        }
        let result = state!.outbound.submit(delivery, window: outboundWindow, limits: broker.limits, now: now)
        switch result {
        case .send(let outgoing): transmit(outgoing, now: now)
        case .queued(let evicted, let startedDropping):
            queueDropped(nil, evicted: evicted, startedDropping: startedDropping)
        case .dropped(.queueFull, let startedDropping):
            queueDropped(delivery, evicted: [], startedDropping: startedDropping)
        case .dropped(let reason, _):
            worker.traffic.drop(reason)
            forget(delivery)
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
        if startedDropping {
            logger.warning("session queue full; dropping messages", metadata: ["client_id": "\(clientID)"])
            broker.protection?.sessionDropping(clientID: clientID)
        }
    }

    /// Writes a QoS 1/2 PUBLISH; one too large for the client is discarded as if delivered
    /// (spec 3.1.2.11.4).
    private func transmit(_ outgoing: OutboundFlow.Outgoing, now: NIODeadline) {
        // Queued and resumed messages are checked against the policy in force now, and against
        // this identity (the session may have been filled under another policy or user).
        refreshAuthorizerIfNeeded()
        guard authorizer.mayReceive(outgoing.delivery.message.topic) else {
            if state != nil {
                _ = state!.outbound.acknowledged(outgoing.packetID) || state!.outbound.completed(outgoing.packetID)
            }
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
    func emit(_ outgoing: OutboundFlow.Outgoing, now: NIODeadline) {
        guard !sendPublish(outgoing.delivery, packetID: outgoing.packetID, dup: outgoing.dup, now: now) else { return }
        worker.traffic.drop(.tooLarge)
        if state != nil {
            _ = state!.outbound.acknowledged(outgoing.packetID)
        }
        forget(outgoing.delivery)
    }

    /// Sends once `operations` are durable, in order with other such sends (QoS 2 PUBLISH and
    /// PUBREL towards persistent sessions). If the store is failing it sends anyway: delivery
    /// goes on, only the crash guarantee is weaker, and the store failure is already alerted.
    func sendAfterCommit(_ item: GatedSend, after operations: [StoreOperation]) {
        guard broker.store != nil else { return release(item) }
        let sequence = gatedBase + gatedSends.count
        gatedSends.append((item, false))
        worker.persist(operations, then: .gatedSend(self, sequence: sequence))
    }

    func gatedCommitted(_ sequence: Int) {
        let index = sequence - gatedBase
        guard index >= 0, index < gatedSends.count else { return }
        gatedSends[index].ready = true
        while let first = gatedSends.first, first.ready {
            gatedSends.removeFirst()
            gatedBase += 1
            release(first.item)
        }
    }

    private func release(_ item: GatedSend) {
        // A closed connection sends nothing; the session keeps the message for redelivery.
        guard phase == .connected else { return }
        switch item {
        case .publish(let outgoing): emit(outgoing, now: .now())
        case .pubrel(let packetID): send(.pubrel(PublishAckPacket(packetID: packetID)))
        }
    }

    /// Moves queued messages into the window after acknowledgements.
    func sendQueued() {
        guard state != nil, !state!.outbound.queue.isEmpty else { return }
        let now = NIODeadline.now()
        var expired: [Delivery] = []
        let ready = state!.outbound.drain(window: outboundWindow, now: now, expired: &expired)
        if !expired.isEmpty { worker.traffic.drop(.expired, expired.count) }
        for delivery in expired { forget(delivery) }
        for outgoing in ready { transmit(outgoing, now: now) }
        // Discarded oversize messages free window slots; keep going until the window is full.
        if !ready.isEmpty, self.state?.outbound.inflight.count ?? 0 < outboundWindow { sendQueued() }
    }

    /// A persistent session reconnected: resend unacknowledged PUBLISH with DUP and outstanding
    /// PUBREL in their original order, then the queue (spec 4.4).
    func resumeDelivery() {
        guard let redelivery = state?.outbound.redelivery() else { return }
        let now = NIODeadline.now()
        for (packetID, entry) in redelivery {
            switch entry.phase {
            case .awaitingAcknowledgement:
                transmit(OutboundFlow.Outgoing(delivery: entry.delivery, packetID: packetID, dup: true), now: now)
            case .awaitingCompletion:
                send(.pubrel(PublishAckPacket(packetID: packetID)))
            }
        }
        sendQueued()
    }

    /// The access policy was reloaded: use the new one from the next decision on.
    func refreshAuthorizerIfNeeded() {
        guard let identity, authorizerGeneration != broker.securityGeneration else { return }
        let (policy, generation) = broker.authorization()
        authorizer = policy.authorizer(for: identity)
        authorizerGeneration = generation
    }
}

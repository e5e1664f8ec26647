import BastionCore
import MQTTCodec
import NIOCore

/// PUBLISH in both directions and the QoS 1/2 acknowledgement flows (spec 3.3–3.7, 4.3, 4.4).
extension MQTTConnectionHandler {
    // MARK: Client to server

    func publishReceived(_ publish: PublishPacket) {
        guard var state else { return }
        broker.stats.messagesReceived.add(1, ordering: .relaxed)
        let decision = inboundPublish.received(publish, version: version, inboundQoS2: &state.inboundQoS2)
        self.state = state
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
            logger.info("publish denied", metadata: ["client_id": "\(clientID)", "topic": "\(topic)"])
            return acknowledge(publish, reason: .notAuthorized, reasonString: "not authorized to publish to \(topic)")
        }
        if version == .v5, publish.properties.payloadFormatIndicator == 1,
           String(validating: publish.payload.readableBytesView, as: UTF8.self) == nil {
            return acknowledge(publish, reason: .payloadFormatInvalid, reasonString: "payload is not valid UTF-8")
        }
        let message = Message(publish: publish, topic: topic, publisherClientID: clientID, now: .now())
        if message.retain, broker.retained.apply(message) == .refused {
            logger.warning("retained store full; retained copy not kept", metadata: ["topic": "\(topic)"])
        }
        let reached = worker.route(message, from: session)
        acknowledge(publish, reason: reached == 0 && version == .v5 ? .noMatchingSubscribers : .success, reasonString: nil)
    }

    /// PUBACK / PUBREC for an inbound message. Failure codes exist only in 5.0; a 3.1.1 client
    /// cannot be told, so it gets a normal acknowledgement and the message is dropped.
    private func acknowledge(_ publish: PublishPacket, reason: ReasonCode, reasonString: String?) {
        let code = version == .v5 ? reason : .success
        var properties = AckProperties()
        if code.isFailure && client.requestProblemInformation { properties.reasonString = reasonString }
        switch publish.qos {
        case .atMostOnce:
            break
        case .atLeastOnce:
            inboundPublish.acknowledgedQoS1()
            send(.puback(PublishAckPacket(packetID: publish.packetID, reasonCode: code, properties: properties)))
        case .exactlyOnce:
            if code.isFailure, var state {
                InboundPublishState.refusedQoS2(publish.packetID, inboundQoS2: &state.inboundQoS2)
                self.state = state
            }
            send(.pubrec(PublishAckPacket(packetID: publish.packetID, reasonCode: code, properties: properties)))
        }
    }

    func pubrelReceived(_ ack: PublishAckPacket) {
        guard var state else { return }
        let known = InboundPublishState.released(ack.packetID, inboundQoS2: &state.inboundQoS2)
        self.state = state
        let code: ReasonCode = known || version != .v5 ? .success : .packetIdentifierNotFound
        send(.pubcomp(PublishAckPacket(packetID: ack.packetID, reasonCode: code)))
    }

    // MARK: Server to client acknowledgements

    func pubackReceived(_ ack: PublishAckPacket) {
        guard var state else { return }
        if !state.outbound.acknowledged(ack.packetID) {
            logger.debug("PUBACK for unknown packet id \(ack.packetID)")
        }
        self.state = state
        sendQueued()
    }

    func pubrecReceived(_ ack: PublishAckPacket) {
        guard var state else { return }
        if ack.reasonCode.isFailure {
            // A failure PUBREC ends the QoS 2 flow (spec 4.3.3).
            _ = state.outbound.acknowledged(ack.packetID)
            self.state = state
            return sendQueued()
        }
        let known = state.outbound.received(ack.packetID)
        self.state = state
        let code: ReasonCode = known || version != .v5 ? .success : .packetIdentifierNotFound
        send(.pubrel(PublishAckPacket(packetID: ack.packetID, reasonCode: code)))
    }

    func pubcompReceived(_ ack: PublishAckPacket) {
        guard var state else { return }
        _ = state.outbound.completed(ack.packetID)
        self.state = state
        sendQueued()
    }

    // MARK: Delivery

    var outboundWindow: Int {
        version == .v5 ? min(client.receiveMaximum, broker.limits.maximumInflight) : broker.limits.maximumInflight
    }

    /// A message for this connection's session, on this loop.
    func deliver(_ delivery: Delivery) {
        guard phase == .connected, var state else {
            if var state {
                // Closing but not yet detached: keep QoS 1/2 in the session, which is saved on detach.
                if delivery.qos != .atMostOnce, !state.outbound.enqueue(delivery, limits: broker.limits) {
                    broker.stats.dropped()
                }
                self.state = state
            } else if let session, session.connection !== box {
                // The session moved on (offline or to another connection): follow it.
                worker.deliver(delivery, to: session)
            }
            return
        }
        refreshAuthorizerIfNeeded()
        guard authorizer.mayReceive(delivery.message.topic) else { return }
        let now = NIODeadline.now()
        if delivery.qos == .atMostOnce {
            // A subscriber that cannot keep up loses QoS 0 messages rather than growing memory.
            guard context?.channel.isWritable ?? false else { return broker.stats.dropped() }
            if delivery.message.isExpired(at: now) { return }
            if let packet = outboundPublish.packet(for: delivery, packetID: 0, dup: false, now: now) {
                sendPublish(packet)
            } else {
                broker.stats.dropped()
            }
            return
        }
        let result = state.outbound.submit(delivery, window: outboundWindow, limits: broker.limits, now: now)
        self.state = state
        switch result {
        case .send(let outgoing): transmit(outgoing, now: now)
        case .queued: break
        case .dropped: broker.stats.dropped()
        }
    }

    /// Writes a QoS 1/2 PUBLISH; one too large for the client is discarded as if delivered
    /// (spec 3.1.2.11.4).
    private func transmit(_ outgoing: OutboundFlow.Outgoing, now: NIODeadline) {
        if let packet = outboundPublish.packet(for: outgoing.delivery, packetID: outgoing.packetID, dup: outgoing.dup, now: now) {
            sendPublish(packet)
        } else {
            broker.stats.dropped()
            if var state {
                _ = state.outbound.acknowledged(outgoing.packetID)
                self.state = state
            }
        }
    }

    /// Moves queued messages into the window after acknowledgements.
    func sendQueued() {
        guard var state, !state.outbound.queue.isEmpty else { return }
        let now = NIODeadline.now()
        var expired = 0
        let ready = state.outbound.drain(window: outboundWindow, now: now, expired: &expired)
        self.state = state
        if expired > 0 { broker.stats.dropped(expired) }
        for outgoing in ready { transmit(outgoing, now: now) }
        // Discarded oversize messages free window slots; keep going until the window is full.
        if !ready.isEmpty, self.state?.outbound.inflight.count ?? 0 < outboundWindow { sendQueued() }
    }

    /// A persistent session reconnected: resend unacknowledged PUBLISH with DUP and outstanding
    /// PUBREL in their original order, then the queue (spec 4.4).
    func resumeDelivery() {
        guard let state else { return }
        let now = NIODeadline.now()
        for (packetID, entry) in state.outbound.redelivery() {
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

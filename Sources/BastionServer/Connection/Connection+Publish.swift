import BastionCore
import MQTTCodec
import NIOCore

/// PUBLISH from the client and its acknowledgement (spec 3.3–3.7, 4.3): the machine decides, the
/// router routes, and the acknowledgement leaves once the store has what it must keep.
extension MQTTConnectionHandler {
    func publishReceived(_ publish: PublishPacket) {
        worker.traffic.received(qos: publish.qos.rawValue)
        guard chargePublishRate(bytes: publish.payload.readableBytes + publish.topic.utf8.count) else { return }
        refreshAuthorizerIfNeeded()
        let authorizer = self.authorizer
        // The clock only matters for messages with an expiry; skip the system call otherwise.
        let now = publish.properties.messageExpiryInterval == nil ? Self.noExpiryClock : NIODeadline.now()
        // `$sparkplug/` is the server's own (Sparkplug 3.0): refused like an ACL denial, whatever the ACL says.
        let mayPublish = { (topic: String) in !SparkplugAwareness.isServerNamespace(topic) && authorizer.mayPublish(topic) }
        switch machine.publishReceived(publish, mayPublish: mayPublish, messageID: worker.nextMessageID(), now: now) {
        case .ignore:
            return
        case .violation(let reason, let why):
            protocolViolation(reason, why)
        case .acknowledge(let packet):
            run(.send(packet))
        case .denied(let topic, let acknowledgement, var disconnect):
            let serverNamespace = SparkplugAwareness.isServerNamespace(topic)
            auditDenied(.publish, topic, rule: serverNamespace ? Self.sparkplugNamespaceRule : nil)
            if SparkplugAwareness.isSparkplug(topic) { sparkplugDenied(topic) }
            // Sparkplug 3.0 has an aware server refuse `$sparkplug/` writes the way MQTT refuses an
            // unauthorised PUBLISH: where no reason code can say it (QoS 0, 3.1.1), the connection closes.
            if serverNamespace, publish.qos == .atMostOnce || machine.version != .v5 { disconnect = true }
            if disconnect {
                closeReason = "publish to \(topic) not authorized"
                run(.disconnect(.notAuthorized, reasonString: "not authorized to publish to \(topic)"))
                return
            }
            if let acknowledgement { queueAcknowledgement(acknowledgement, after: []) }
        case .refuse(let acknowledgement):
            if let acknowledgement { queueAcknowledgement(acknowledgement, after: []) }
        case .route(let message):
            route(message, publish: publish)
        }
    }

    static let sparkplugNamespaceRule = "sparkplug: $sparkplug/ is published only by the server"

    /// Routes an accepted message and acknowledges it with what routing found.
    private func route(_ message: Message, publish: PublishPacket) {
        let sparkplug = sparkplugTopic(message.topic)
        if let sparkplug, !sparkplugAdmits(sparkplug, message, publish: publish) { return }
        var ops: [StoreOperation] = []
        var retainedRefused = false
        let birth = SparkplugAwareness.birth(sparkplug)
        // A birth is kept under $sparkplug/certificates/, not retained on its own topic.
        if message.retain, birth == nil {
            if broker.retained.apply(message, owner: sessionOwner) == .refused {
                // Over the retained quota (the broker's or this identity's share): 5.0 publishers
                // are told (0x97), the message still flows.
                logger.warning("retained quota exceeded; retained copy not kept", metadata: ["topic": "\(message.topic)", "identity": "\(sessionOwner)"])
                auditLimit(.retainedMessages, .rejected, maximum: broker.limits.maximumRetainedMessages)
                retainedRefused = true
            } else if broker.store != nil {
                ops.append(RetainedMessages.storeOperation(for: message, stored: StoreMapping.stored))
            }
        }
        let routed = worker.route(message, from: session, persist: &ops)
        if let birth, let certificate = SparkplugAwareness.certificate(of: message, birth: birth, id: worker.nextMessageID()) {
            keepCertificate(certificate, ops: &ops)
        }
        if publish.qos == .exactlyOnce, isPersistent {
            ops.append(.inboundQoS2(clientID: clientID, packetID: publish.packetID, pending: true))
        }
        // Matched, but no subscriber could keep it (their queues are full): say so (0x97) rather
        // than let the publisher believe it was delivered.
        let reason: ReasonCode = retainedRefused ? .quotaExceeded : routed.reasonCode
        let reasonString = retainedRefused ? "retained message quota exceeded"
            : reason == .quotaExceeded ? "no matching subscriber could queue the message" : nil
        guard let acknowledgement = machine.acknowledgement(for: publish, reason: reason, reasonString: reasonString) else {
            return worker.persist(ops)
        }
        queueAcknowledgement(acknowledgement, after: ops)
    }

    /// A Sparkplug Aware server's retained copy of a birth, routed to whoever subscribes there now.
    private func keepCertificate(_ certificate: Message, ops: inout [StoreOperation]) {
        if broker.retained.apply(certificate, owner: sessionOwner) == .refused {
            logger.warning("retained store full; Sparkplug birth certificate not kept", metadata: ["topic": "\(certificate.topic)"])
            auditLimit(.retainedMessages, .rejected, maximum: broker.limits.maximumRetainedMessages)
        } else if broker.store != nil {
            ops.append(RetainedMessages.storeOperation(for: certificate, stored: StoreMapping.stored))
        }
        _ = worker.route(certificate, from: nil, persist: &ops)
    }

    /// This connection's session outlives it and a durable store is configured.
    var isPersistent: Bool { broker.store != nil && (session?.isPersistent ?? false) }

    /// Acknowledgements leave in the order their packets arrived (spec 4.6), each once its store
    /// operations are committed. A failed commit turns a 5.0 acknowledgement into 0x97; a 3.1.1
    /// client gets none and resends the message when it reconnects.
    func queueAcknowledgement(_ packet: MQTTPacket, after operations: [StoreOperation]) {
        let waits = broker.store != nil && !operations.isEmpty
        switch machine.acknowledgements.enqueue(packet, waitsForStore: waits) {
        case .sendNow:
            sendAcknowledgement(packet)
        case .behind:
            break
        case .waitsForCommit(let sequence):
            // Bounded: a client publishing faster than the store commits stops being read.
            if machine.acknowledgements.waiting >= AcknowledgementQueue.backlog, pauseReading() { pausedForAcknowledgements = true }
            worker.persist(operations, then: .acknowledgement(self, sequence: sequence))
        }
    }

    func acknowledgementCommitted(_ sequence: Int, failure: StoreError?) {
        if let failure {
            logger.error("message not stored; acknowledgement withheld", metadata: ["client_id": "\(clientID)", "error": "\(failure)"])
        }
        for release in machine.acknowledgements.committed(sequence, failed: failure != nil, version: version) {
            switch release {
            case .send(let packet): sendAcknowledgement(packet)
            case .sendFailed(let packet): sendAcknowledgement(machine.failedAcknowledgement(packet))
            case .withhold(let packet): machine.acknowledgementReleased(packet)
            }
        }
        if pausedForAcknowledgements, machine.acknowledgements.waiting < AcknowledgementQueue.backlog / 2 {
            pausedForAcknowledgements = false
            resumeReading()
        }
    }

    private func sendAcknowledgement(_ packet: MQTTPacket) {
        machine.acknowledgementReleased(packet)
        run(.send(packet))
    }

    func pubrelReceived(_ ack: PublishAckPacket) {
        guard let (pubcomp, known) = machine.pubrelReceived(ack) else { return }
        // The release is stored before PUBCOMP, so a restart cannot treat a reused id as a duplicate.
        let ops: [StoreOperation] = known && isPersistent ? [.inboundQoS2(clientID: clientID, packetID: ack.packetID, pending: false)] : []
        queueAcknowledgement(pubcomp, after: ops)
    }

    /// Stands in for "now" where only message expiry would read it and the message has none.
    static let noExpiryClock = NIODeadline.uptimeNanoseconds(0)

    /// The access policy was reloaded: use the new one from the next decision on.
    func refreshAuthorizerIfNeeded() {
        guard internalPeer == nil, let identity, authorizerGeneration != broker.securityGeneration else { return }
        let (policy, generation) = broker.authorization()
        authorizer = policy.authorizer(for: identity)
        authorizerGeneration = generation
    }
}

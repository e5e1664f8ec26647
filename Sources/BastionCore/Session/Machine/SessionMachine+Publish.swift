import MQTTCodec
import NIOCore

/// PUBLISH from the client (spec 3.3, 4.3): topic aliases, Receive Maximum, QoS 2 duplicates, the
/// publisher's grant, payload format; then the acknowledgement with the reason the routing gives.
extension SessionMachine {
    public enum PublishAction: Sendable {
        /// Route this message (the retained copy first when `message.retain`), then call
        /// `acknowledgement(for:reason:reasonString:)` with the outcome.
        case route(Message)
        /// Send this acknowledgement now (a repeated QoS 2 PUBLISH: PUBREC again, not routed twice).
        case acknowledge(MQTTPacket)
        /// The grant refused the topic (audit it); acknowledge with `acknowledgement` if any (QoS 0
        /// has none), or disconnect when configured so.
        case denied(topic: String, acknowledgement: MQTTPacket?, disconnect: Bool)
        /// Refused without routing (payload format invalid): send this acknowledgement, if any.
        case refuse(acknowledgement: MQTTPacket?)
        case violation(ReasonCode, String)
        case ignore
    }

    /// A PUBLISH arrived. `mayPublish` is the publisher's grant; `messageID` names the message.
    public mutating func publishReceived(_ publish: PublishPacket, mayPublish: (String) -> Bool, messageID: MessageID, now: NIODeadline) -> PublishAction {
        guard case .connected(var state) = phase else { return .ignore }
        // The phase lets go of the state while it is changed (no copy of its collections).
        phase = .closed
        let decision = inbound.received(publish, version: version, inboundQoS2: &state.inboundQoS2)
        phase = .connected(state)
        let topic: String
        switch decision {
        case .disconnect(let reason, let why): return .violation(reason, why)
        case .duplicateQoS2: return .acknowledge(.pubrec(PublishAckPacket(packetID: publish.packetID)))
        case .route(let resolved): topic = resolved
        }
        guard mayPublish(topic) else {
            let reason = "not authorized to publish to \(topic)"
            return .denied(topic: topic, acknowledgement: acknowledgement(for: publish, reason: .notAuthorized, reasonString: reason),
                           disconnect: configuration.disconnectOnDeniedPublish)
        }
        if version == .v5, publish.properties.payloadFormatIndicator == 1,
           String(validating: publish.payload.readableBytesView, as: UTF8.self) == nil {
            return .refuse(acknowledgement: acknowledgement(for: publish, reason: .payloadFormatInvalid, reasonString: "payload is not valid UTF-8"))
        }
        return .route(Message(id: messageID, publish: publish, topic: topic, publisherClientID: clientID, now: now))
    }

    /// PUBACK / PUBREC for an inbound message with `reason` (nil for QoS 0). Failure codes exist only
    /// in 5.0: a 3.1.1 client gets a normal acknowledgement (and the message is dropped).
    public mutating func acknowledgement(for publish: PublishPacket, reason: ReasonCode, reasonString: String?) -> MQTTPacket? {
        let code = version == .v5 ? reason : .success
        let properties = code.isFailure ? problemProperties(reasonString) : AckProperties()
        switch publish.qos {
        case .atMostOnce:
            return nil
        case .atLeastOnce:
            return .puback(PublishAckPacket(packetID: publish.packetID, reasonCode: code, properties: properties))
        case .exactlyOnce:
            if code.isFailure { _ = withState { InboundPublishState.refusedQoS2(publish.packetID, inboundQoS2: &$0.inboundQoS2) } }
            return .pubrec(PublishAckPacket(packetID: publish.packetID, reasonCode: code, properties: properties))
        }
    }

    /// An acknowledgement of an inbound message has left (or was withheld): a QoS 1 one no longer
    /// counts towards Receive Maximum.
    public mutating func acknowledgementReleased(_ packet: MQTTPacket) {
        if case .puback = packet { inbound.acknowledgedQoS1() }
    }

    /// The store failed the acknowledgement's message: the same acknowledgement with 0x97, and a
    /// refused QoS 2 ends that flow (spec 4.3.3).
    public mutating func failedAcknowledgement(_ packet: MQTTPacket) -> MQTTPacket {
        if case .pubrec(let p) = packet { _ = withState { InboundPublishState.refusedQoS2(p.packetID, inboundQoS2: &$0.inboundQoS2) } }
        return packet.withReason(.quotaExceeded, reasonString: problemProperties("message could not be stored").reasonString)
    }

    /// PUBREL from the client: the PUBCOMP to send (0x92 for an unknown id in 5.0) and whether the
    /// release must be stored first.
    public mutating func pubrelReceived(_ ack: PublishAckPacket) -> (pubcomp: MQTTPacket, known: Bool)? {
        guard case .connected = phase else { return nil }
        let known = withState { InboundPublishState.released(ack.packetID, inboundQoS2: &$0.inboundQoS2) } ?? false
        let code: ReasonCode = known || version != .v5 ? .success : .packetIdentifierNotFound
        return (.pubcomp(PublishAckPacket(packetID: ack.packetID, reasonCode: code)), known)
    }

    /// Reason string for a failure acknowledgement, unless the client asked for no problem
    /// information (spec 3.1.2.11.7) or it would push the packet past the client's maximum.
    public func problemProperties(_ reason: String?) -> AckProperties {
        guard version == .v5, client.requestProblemInformation, let reason else { return AckProperties() }
        return AckProperties(reasonString: String(reason.utf8.prefix(min(1024, max(0, client.maximumPacketSize - 64)))) ?? "")
    }
}

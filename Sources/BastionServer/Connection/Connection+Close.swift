import BastionCore
import MQTTCodec
import NIOCore

/// DISCONNECT, AUTH, keep alive, and what happens when a connection ends: the will (spec 3.1.2.5),
/// the session going offline or ending (4.1), and shared-subscription messages handed on (4.8.2).
extension MQTTConnectionHandler {
    func disconnectReceived(_ packet: DisconnectPacket) {
        if version == .v5, let requested = packet.properties.sessionExpiryInterval, state != nil {
            guard !(connectExpiryInterval == 0 && requested != 0) else {
                // Not a valid DISCONNECT, so the will is still sent (spec 3.14.2.2.2).
                return protocolViolation(.protocolError, "session expiry cannot be set on DISCONNECT when CONNECT had 0")
            }
            var expiry = requested
            if let cap = broker.limits.maximumSessionExpiry { expiry = min(expiry, cap) }
            state!.expiryInterval = expiry
        }
        // 0x04 asks for the will to be sent; any other reason discards it (spec 3.14.4).
        if packet.reasonCode != .disconnectWithWillMessage { willSuppressed = true }
        cleanDisconnect = true
        closeReason = version == .v5 ? "client disconnected (\(packet.reasonCode))" : "client disconnected"
        close()
    }

    /// AUTH (spec 3.15, 4.12): continues the CONNECT exchange, or starts (0x19) and continues a
    /// re-authentication. Without a method from CONNECT, AUTH is a protocol error.
    func authReceived(_ packet: AuthPacket) {
        guard let method = authMethod, packet.properties.authenticationMethod == method else {
            return protocolViolation(.protocolError, "AUTH without the authentication method of CONNECT")
        }
        switch packet.reasonCode {
        case .continueAuthentication:
            guard let exchange = authExchange else { return protocolViolation(.protocolError, "AUTH 0x18 with no exchange running") }
            runAuthenticationStep(exchange, packet.properties.authenticationData)
        case .reAuthenticate where phase == .connected && authExchange == nil:
            guard let enhanced = broker.enhancedAuthenticator else { return protocolViolation(.protocolError, "re-authentication unavailable") }
            let exchange = enhanced.begin(method: method, clientID: clientID, username: identity?.username, connection: info)
            authExchange = exchange
            runAuthenticationStep(exchange, packet.properties.authenticationData)
        default:
            protocolViolation(.protocolError, "unexpected AUTH \(packet.reasonCode)")
        }
    }

    /// The connection is gone (or was taken over): publish or schedule the will, and hand the
    /// session back to the table.
    func connectionLost(now: NIODeadline) {
        guard let session, var state else { return }
        self.state = nil
        broker.stats.clientsConnected.add(-1, ordering: .relaxed)
        broker.protection?.sessionEnded(
            clientID: clientID, duration: .nanoseconds((now - acceptedAt).nanoseconds), clean: cleanDisconnect)

        // Messages that came through shared subscriptions go to another member of the group.
        let shared = state.outbound.takeSharedDeliveries()

        var pendingWill: PendingWill?
        let decision = WillDecision.onConnectionEnd(
            hasWill: will != nil, willDelay: version == .v5 ? will?.properties.willDelayInterval ?? 0 : 0,
            sessionExpiry: state.expiryInterval, normalDisconnect: willSuppressed)
        if let will {
            switch decision {
            case .discard: break
            case .publishNow: publishWill(willMessage(will, now: now))
            case .publishAfter(let seconds):
                // Checked now, while the publisher's grant is known; it is sent later unchanged.
                refreshAuthorizerIfNeeded()
                if authorizer.mayPublish(will.topic) {
                    pendingWill = PendingWill(message: willMessage(will, now: now), publishAt: now + .seconds(Int64(seconds)))
                }
            }
        }
        self.will = nil

        let wasStored = isPersistent
        session.setPersistent(state.expiryInterval > 0)
        switch broker.registry.detach(session, connection: self, state: state, pendingWill: pendingWill, now: now) {
        case .ended(let ended):
            // DISCONNECT may have set the expiry to 0: the stored session goes with it.
            if wasStored { worker.persist([.deleteSession(clientID: clientID)]) }
            broker.end(ended, on: worker.eventLoop)
        case .offline:
            let wallNow = StoreMapping.wallClock()
            var ops: [StoreOperation] = [.saveSession(StoreMapping.record(state, owner: session.owner, disconnectedAt: wallNow))]
            if let pendingWill {
                ops.append(.setPendingWill(
                    clientID: clientID, will: StoreMapping.stored(pendingWill.message, now: now, wallNow: wallNow),
                    publishAt: StoreMapping.wall(pendingWill.publishAt, now: now, wallNow: wallNow)))
            }
            worker.persist(ops)
        case .notOwner:
            break
        }
        for delivery in shared { worker.handOn(delivery, from: session) }
        logger.info("client disconnected", metadata: [
            "client_id": "\(clientID)", "protocol": "\(version)", "reason": "\(closeReason)",
        ])
    }

    private func willMessage(_ will: ConnectPacket.Will, now: NIODeadline) -> Message {
        var properties = PublishProperties()
        properties.payloadFormatIndicator = will.properties.payloadFormatIndicator
        properties.messageExpiryInterval = will.properties.messageExpiryInterval
        properties.contentType = will.properties.contentType
        properties.responseTopic = will.properties.responseTopic
        properties.correlationData = will.properties.correlationData
        properties.userProperties = will.properties.userProperties
        return Message(
            id: worker.nextMessageID(), topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: properties,
            publisherClientID: clientID, expiresAt: properties.messageExpiryInterval.map { now + .seconds(Int64($0)) })
    }

    /// The will is checked against the publisher's grant like any other PUBLISH.
    private func publishWill(_ message: Message) {
        refreshAuthorizerIfNeeded()
        guard authorizer.mayPublish(message.topic) else {
            logger.info("will denied", metadata: ["client_id": "\(clientID)", "topic": "\(message.topic)"])
            return
        }
        broker.publish(message, on: worker.eventLoop)
    }

    /// The access policy changed: subscriptions it no longer permits are removed, and a 5.0 client
    /// that lost one is told with DISCONNECT 0x87 (documented in docs/access-control.md).
    func securityChanged() {
        guard phase == .connected, state != nil, let session, let context else { return }
        refreshAuthorizerIfNeeded()
        let revoked = state!.subscriptions.values.filter { !authorizer.maySubscribe($0.filter) }
        guard !revoked.isEmpty else { return }
        for subscription in revoked { state!.subscriptions[subscription.filter] = nil }
        _ = broker.broadcast(revoked.map { .remove(session, filter: $0.filter) }, from: context.eventLoop)
        logger.notice("subscriptions revoked by policy reload", metadata: [
            "client_id": "\(clientID)", "filters": "\(revoked.map(\.filter).joined(separator: ","))",
        ])
        if version == .v5 {
            closeReason = "subscriptions revoked by policy reload"
            disconnect(.notAuthorized, reasonString: "a subscription is no longer permitted")
        }
    }

    /// Graceful shutdown: 5.0 clients learn why (0x8B) before the connection closes. The session
    /// stays as it is (persistent sessions survive the restart).
    func shutdown() {
        guard phase != .closed else { return }
        closeReason = "server shutting down"
        willSuppressed = true
        if phase == .connected { disconnect(.serverShuttingDown) } else { close() }
        flushIfNeeded()
    }
}

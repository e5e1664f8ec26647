import BastionCore
import MQTTCodec
import NIOCore

/// DISCONNECT, AUTH, and what happens when a connection ends: the will (spec 3.1.2.5), the session
/// going offline or ending (4.1), and shared-subscription messages handed on (4.8.2).
extension MQTTConnectionHandler {
    func disconnectReceived(_ packet: DisconnectPacket) {
        switch machine.disconnectReceived(packet) {
        case .violation(let reason, let why):
            protocolViolation(reason, why)
        case .close(let reason):
            closeReason = reason
            run(.close)
        }
    }

    /// AUTH (spec 3.15, 4.12): continues the CONNECT exchange, or starts (0x19) and continues a
    /// re-authentication.
    func authReceived(_ packet: AuthPacket) {
        switch machine.authReceived(packet, exchangeRunning: authExchange != nil) {
        case .violation(let reason, let why):
            protocolViolation(reason, why)
        case .continueExchange(let data):
            if let exchange = authExchange { runAuthenticationStep(exchange, data) }
        case .reauthenticate(let method, let data):
            guard let enhanced = broker.enhancedAuthenticator else { return protocolViolation(.protocolError, "re-authentication unavailable") }
            let exchange = enhanced.begin(method: method, clientID: clientID, username: identity?.username, connection: info)
            authExchange = exchange
            runAuthenticationStep(exchange, data)
        }
    }

    /// The connection is gone (or was taken over): publish or schedule the will, and hand the
    /// session back to the table.
    func connectionLost(now: NIODeadline) {
        guard let session, let ending = machine.connectionEnded(willMessageID: { worker.nextMessageID() }, now: now) else { return }
        broker.stats.clientsConnected.add(-1, ordering: .relaxed)
        broker.protection?.sessionEnded(
            clientID: clientID, duration: .nanoseconds((now - acceptedAt).nanoseconds), clean: machine.cleanDisconnect)
        let state = ending.state
        sparkplugConnectionLost()

        var pendingWill: PendingWill?
        switch ending.will {
        case .none:
            break
        case .publishNow(let message):
            publishWill(message)
        case .publishAt(let message, let at):
            // Checked again when it fires: a reload in between may have revoked the topic.
            pendingWill = PendingWill(message: message, publishAt: at, publisher: identity)
        }

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
        for delivery in ending.shared { worker.handOn(delivery, from: session) }
        logger.info("client disconnected", metadata: [
            "client_id": "\(clientID)", "protocol": "\(version)", "reason": "\(closeReason)",
        ])
    }

    /// The will is checked against the publisher's grant like any other PUBLISH.
    private func publishWill(_ message: Message) {
        refreshAuthorizerIfNeeded()
        guard !SparkplugAwareness.isServerNamespace(message.topic), authorizer.mayPublish(message.topic) else {
            logger.info("will denied", metadata: ["client_id": "\(clientID)", "topic": "\(message.topic)"])
            return
        }
        broker.publish(message, on: worker.eventLoop)
    }

    /// The access policy changed: subscriptions it no longer permits are removed, and a 5.0 client
    /// that lost one is told with DISCONNECT 0x87 (documented in docs/access-control.md).
    func securityChanged() {
        guard machine.isConnected, let session else { return }
        refreshAuthorizerIfNeeded()
        let authorizer = self.authorizer
        let revoked = machine.revokeSubscriptions { authorizer.maySubscribe($0) }
        guard !revoked.isEmpty else { return }
        _ = broker.broadcast(revoked.map { .remove(session, filter: $0.filter) }, from: worker.eventLoop)
        broker.stats.subscriptions.subtract(revoked.count, ordering: .relaxed)
        logger.notice("subscriptions revoked by policy reload", metadata: [
            "client_id": "\(clientID)", "filters": "\(revoked.map(\.filter).joined(separator: ","))",
        ])
        if version == .v5 {
            closeReason = "subscriptions revoked by policy reload"
            run(.disconnect(.notAuthorized, reasonString: "a subscription is no longer permitted"))
        }
    }

    /// Graceful shutdown: 5.0 clients learn why (0x8B) before the connection closes. The session
    /// stays as it is (persistent sessions survive the restart).
    func shutdown() {
        guard !machine.isClosed else { return }
        closeReason = "server shutting down"
        machine.suppressWill()
        if machine.isConnected { run(.disconnect(.serverShuttingDown, reasonString: nil)) } else { run(.close) }
        flushIfNeeded()
    }
}

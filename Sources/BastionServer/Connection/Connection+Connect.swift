import BastionBridge
import BastionCore
import BastionSecurity
import MQTTCodec
import NIOCore

/// CONNECT: the machine validates it; here the checks that need the broker (bans, throttles),
/// authentication off the loop, the session table (ownership, takeover), the store, then CONNACK
/// and resuming delivery (spec 3.1, 3.2, 4.1).
extension MQTTConnectionHandler {
    func connectReceived(_ received: ConnectPacket) {
        // One canonical form for names from here on: the session table, allowlist, ACL, bans and
        // backends all see the same bytes for canonically equivalent spellings.
        let connect = { var c = received
            c.clientID = CanonicalName.nfc(c.clientID)
            c.username = c.username.map(CanonicalName.nfc)
            return c
        }()
        decoder.version = connect.protocolVersion
        // The small first-packet limit is over; packets after CONNECT may use the full size.
        decoder.limits = broker.limits.decoderLimits
        if let rare {
            rare.firstByteAt = nil
            rare.preConnectBytes = 0
        }
        let enhanced = broker.enhancedAuthenticator
        let action = machine.connectReceived(
            connect, supportsAuthenticationMethod: { enhanced?.supports(method: $0) ?? false }, makeClientID: Self.makeClientID)
        switch action {
        case .refuse(let reason, let why):
            refuseConnect(reason, why)
        case .beginEnhancedAuthentication(let method, let accepted):
            if accepted.clientID.hasPrefix(BridgeSettings.localClientIDPrefix) {
                return refuseConnect(.clientIdentifierNotValid, "client ids starting with \(BridgeSettings.localClientIDPrefix) are the broker's bridges'")
            }
            guard let enhanced else { return refuseConnect(.badAuthenticationMethod, "no enhanced authentication") }
            let exchange = enhanced.begin(method: method, clientID: accepted.clientID, username: connect.username, connection: info)
            authExchange = exchange
            runAuthenticationStep(exchange, connect.properties.authenticationData)
        case .authenticate(let accepted):
            if let peer = internalPeer { return authenticated(peer.identity) }
            if accepted.clientID.hasPrefix(BridgeSettings.localClientIDPrefix) {
                return refuseConnect(.clientIdentifierNotValid, "client ids starting with \(BridgeSettings.localClientIDPrefix) are the broker's bridges'")
            }
            if info.requireClientIDMatch, let identity = info.certificateIdentity, identity != accepted.clientID {
                auditAuthenticationFailure(.clientIDRefused, weight: .none, username: connect.username)
                return refuseConnect(.clientIdentifierNotValid, "client id must equal the certificate identity")
            }
            if let ban = broker.protection?.bannedIdentity(username: connect.username, clientID: accepted.clientID) {
                return refuseBanned(ban, username: connect.username)
            }
            if broker.protection?.isThrottled(remote: remoteAddress, username: connect.username) == true {
                auditAuthenticationFailure(.throttled, weight: .addressOnly, username: connect.username)
                return refuseConnect(.banned, "user name throttled for this source after repeated failures")
            }
            let credentials = ConnectCredentials(
                clientID: accepted.clientID, username: connect.username, password: connect.password, connection: info,
                remoteAddress: remoteAddress)
            let loopBound = NIOLoopBound(self, eventLoop: worker.eventLoop)
            broker.authenticator.authenticate(credentials, on: worker.eventLoop).whenComplete { result in
                let handler = loopBound.value
                switch result {
                case .success(.accepted(let identity)):
                    handler.authenticated(identity)
                case .success(.refused(let refusal)):
                    handler.auditAuthenticationFailure(refusal.audit, weight: refusal.weight, username: connect.username)
                    handler.refuseConnect(refusal.reason, refusal.detail)
                case .failure(let error):
                    handler.auditAuthenticationFailure(.backendError, weight: .none, username: connect.username)
                    handler.refuseConnect(.serverUnavailable, "authentication failed: \(error)")
                }
                handler.worker.flush()
            }
        }
    }

    /// A banned user name or client id. A client id backed off for flapping is told to slow down
    /// (5.0 0x9F, 3.1.1 0x03 server unavailable) rather than that it is banned.
    private func refuseBanned(_ ban: BanEntry, username: String?) {
        auditAuthenticationFailure(.banned, weight: .none, username: username)
        if ban.origin == .flapping {
            return refuseConnect(.connectionRateExceeded, "client id reconnecting too often; retry later")
        }
        refuseConnect(.banned, "banned (\(ban.subject))")
    }

    func refuseConnect(_ reason: ReasonCode, _ why: String) {
        guard machine.connecting != nil else { return }
        logger.info("connect refused", metadata: [
            "client_id": "\(clientID)", "protocol": "\(version)", "reason": "\(reason)", "detail": "\(why)",
        ])
        machine.refused()
        run(.send(.connack(machine.refusal(reason, why))))
        closeReason = "connect refused: \(reason.name)"
        run(.close)
    }

    /// Feeds the client's data to the exchange and acts on its answer when it comes (a step may
    /// wait for a lookup). The client must not send AUTH while a step is pending.
    func runAuthenticationStep(_ exchange: any AuthenticationExchange, _ data: ByteBuffer?) {
        guard rare?.authStepPending != true else {
            return protocolViolation(.protocolError, "AUTH before the previous AUTH was answered")
        }
        rareState().authStepPending = true
        let loopBound = NIOLoopBound(self, eventLoop: worker.eventLoop)
        exchange.step(clientData: data, on: worker.eventLoop).whenComplete { result in
            let handler = loopBound.value
            handler.rare?.authStepPending = false
            guard !handler.machine.isClosed else { return }
            switch result {
            case .success(let step): handler.authenticationStep(step)
            case .failure: handler.authenticationStep(.failure(.unspecifiedError))
            }
            handler.worker.flush()
        }
    }

    /// Acts on one step of an enhanced authentication exchange (spec 4.12).
    func authenticationStep(_ step: AuthenticationStep) {
        switch machine.authStep(step) {
        case .send(let packet):
            run(.send(.auth(packet)))
        case .authenticated(let identity, let data):
            authExchange = nil
            guard case .accepted(let admitted) = broker.authenticator.admit(identity) else {
                auditAuthenticationFailure(.clientIDRefused, weight: .none, username: identity.username)
                return refuseConnect(.notAuthorized, "client id not allowed for \(identity.username ?? "this identity")")
            }
            authenticated(admitted, finalAuthenticationData: data)
        case .reauthenticated(let packet):
            authExchange = nil
            run(.send(.auth(packet)))
        case .refuse(let reason):
            authExchange = nil
            auditAuthenticationFailure(reason == .badAuthenticationMethod ? .unsupportedMethod : .badPassword,
                                       weight: reason == .notAuthorized || reason == .badUserNameOrPassword ? .costly : .none, username: nil)
            refuseConnect(reason, "enhanced authentication failed")
        case .disconnect(let reason):
            authExchange = nil
            closeReason = "re-authentication failed"
            run(.disconnect(reason, reasonString: "re-authentication failed"))
        }
    }

    private func authenticated(_ identity: ClientIdentity, finalAuthenticationData: ByteBuffer? = nil) {
        guard let connecting = machine.connecting else { return }
        if let peer = internalPeer {
            self.identity = identity
            authorizer = peer.authorizer
            return attach(connecting.accepted, attempt: 0, finalAuthenticationData: finalAuthenticationData)
        }
        // Bans on the resolved identity (a certificate identity used as the user name, a backend's
        // user name) as well as on what the CONNECT claimed.
        for resolved in Set([identity.username, identity.certificateIdentity].compactMap { $0 }) {
            if let ban = broker.protection?.bannedIdentity(username: resolved, clientID: nil) {
                return refuseBanned(ban, username: resolved)
            }
        }
        broker.protection?.authenticationSucceeded(remote: remoteAddress, username: identity.username)
        self.identity = identity
        let (policy, generation) = broker.authorization()
        authorizer = policy.authorizer(for: identity)
        authorizerGeneration = generation
        attach(connecting.accepted, attempt: 0, finalAuthenticationData: finalAuthenticationData)
    }

    /// Attaches the session; if another connection of the same identity holds it, that one is
    /// closed first (0x8E); another identity's session is refused.
    private func attach(_ accepted: AcceptedConnect, attempt: Int, finalAuthenticationData: ByteBuffer?) {
        guard machine.connecting != nil else { return }
        let owner = sessionOwner
        switch broker.registry.connect(
            clientID: accepted.clientID, owner: owner, mayShare: { [broker] in broker.mayShareSessions(owner, $0) },
            cleanStart: accepted.cleanStart, expiryInterval: accepted.sessionExpiryInterval, connection: self)
        {
        case .ownedByOther(let existing):
            logger.warning("session belongs to another identity; CONNECT refused", metadata: [
                "client_id": "\(accepted.clientID)", "identity": "\(owner)", "owner": "\(existing)",
            ])
            broker.protection?.sessionHijackRefused(AuditEvent.SessionHijackRefused(
                peer: auditPeer, clientID: accepted.clientID, identity: owner, owner: existing))
            refuseConnect(.notAuthorized, "client id \(accepted.clientID) belongs to another identity")
        case .mustTakeOver(let other):
            guard case .displace(let next) = Takeover.next(after: attempt), let other = other as? MQTTConnectionHandler else {
                return refuseConnect(.serverBusy, "session \(accepted.clientID) is being taken over repeatedly")
            }
            let loopBound = NIOLoopBound(self, eventLoop: worker.eventLoop)
            other.eventLoop.flatSubmit {
                other.takenOver()
            }.hop(to: worker.eventLoop).whenComplete { _ in
                loopBound.value.attach(accepted, attempt: next, finalAuthenticationData: finalAuthenticationData)
                loopBound.value.worker.flush()
            }
        case .attached(let handle, let state, let sessionPresent, let ended):
            if let ended { broker.end(ended, on: worker.eventLoop) }
            // The session is ours from here: deliveries that arrive before CONNACK wait in it.
            session = handle
            machine.attached(state, sessionPresent: sessionPresent)
            guard accepted.sessionExpiryInterval > 0, broker.store != nil else {
                return connected(finalAuthenticationData: finalAuthenticationData)
            }
            // CONNACK for a persistent session only once the store has it, so a crash right after
            // cannot deny a session the client was told exists. A will the previous connection
            // left waiting is void now (spec 3.1.3.2.2): a restart must not publish it.
            worker.persist(
                [.saveSession(StoreMapping.record(state, owner: handle.owner, disconnectedAt: nil)),
                 .setPendingWill(clientID: accepted.clientID, will: nil, publishAt: nil)],
                then: .callback { [self] _ in
                    guard machine.connecting != nil else { return }
                    connected(finalAuthenticationData: finalAuthenticationData)
                })
        }
    }

    private func connected(finalAuthenticationData: ByteBuffer?) {
        guard let done = machine.connected(finalAuthenticationData: finalAuthenticationData) else { return }
        context?.channel.setOption(ChannelOptions.writeBufferWaterMark, value: Self.connectedWaterMark).whenComplete { _ in }
        let limits = broker.limits
        outboundPublish = OutboundPublishEncoder(version: version, client: client, serverAliasLimit: limits.maximumOutgoingTopicAliases)
        broker.stats.clientConnected()
        broker.stats.connectionsTotal.add(1, ordering: .relaxed)
        run(.send(.connack(done.connack)))
        auditConnectionAccepted(cleanStart: done.accepted.cleanStart)
        logger.info("client connected", metadata: [
            "client_id": "\(clientID)", "protocol": "\(version)", "username": "\(identity?.username ?? "")",
            "clean_start": "\(done.accepted.cleanStart)", "session_present": "\(done.connack.sessionPresent)",
            "keep_alive": "\(done.accepted.keepAlive)",
        ])
        if done.resume { resumeDelivery() }
        drainPendingPackets(done.pendingPackets)
        if authExchange == nil && rare?.closeReason == nil && rare?.unwritableSince == nil { rare = nil }
    }

    /// Another connection with this client id arrived: DISCONNECT 0x8E, close, and hand the session
    /// back to the table now so the newcomer can attach (spec 3.1.4).
    func takenOver() -> EventLoopFuture<Void> {
        let loop = worker.eventLoop
        guard session != nil, machine.isConnected || machine.connecting != nil else { return loop.makeSucceededVoidFuture() }
        closeReason = "session taken over"
        if machine.isConnected {
            run(.disconnect(.sessionTakenOver, reasonString: Takeover.reason(clientID: clientID)))
        } else {
            run(.close)
        }
        connectionLost(now: .now())
        worker.flush()
        return loop.makeSucceededVoidFuture()
    }

    /// The identity this connection's session belongs to (see `SessionOwner`).
    var sessionOwner: String {
        if let internalPeer { return internalPeer.owner }
        if let name = identity?.username { return SessionOwner.user(name) }
        return SessionOwner.anonymous(listener: info.listener)
    }

    static func makeClientID() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return "bastion-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

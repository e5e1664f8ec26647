import BastionCore
import BastionSecurity
import MQTTCodec
import NIOCore

/// CONNECT: validation, authentication off the loop, attaching (or taking over) the session,
/// CONNACK, and resuming delivery (spec 3.1, 3.2, 4.1).
extension MQTTConnectionHandler {
    func connectReceived(_ connect: ConnectPacket) {
        version = connect.protocolVersion
        decoder.version = version
        // The small first-packet limit is over; packets after CONNECT may use the full size.
        decoder.limits = broker.limits.decoderLimits
        if let rare {
            rare.firstByteAt = nil
            rare.preConnectBytes = 0
        }
        phase = .connecting
        let enhanced = broker.enhancedAuthenticator
        let validation = ConnectValidator.validate(
            connect, limits: broker.limits, supportsAuthenticationMethod: { enhanced?.supports(method: $0) ?? false }
        ) { Self.makeClientID() }
        switch validation {
        case .refuse(let reason, let why):
            refuseConnect(reason, why)
        case .accept(let accepted):
            clientID = accepted.clientID
            client = accepted.client
            will = connect.will
            acceptedConnect = accepted
            if let method = accepted.authenticationMethod, let enhanced {
                authMethod = method
                let exchange = enhanced.begin(method: method, clientID: accepted.clientID, username: connect.username, connection: info)
                authExchange = exchange
                return runAuthenticationStep(exchange, connect.properties.authenticationData)
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
                clientID: accepted.clientID, username: connect.username, password: connect.password, connection: info)
            let loopBound = NIOLoopBound(self, eventLoop: context!.eventLoop)
            broker.authenticator.authenticate(credentials, on: context!.eventLoop).whenComplete { result in
                let handler = loopBound.value
                switch result {
                case .success(.accepted(let identity)):
                    handler.authenticated(identity, accepted)
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
        guard phase == .connecting else { return }
        logger.info("connect refused", metadata: [
            "client_id": "\(clientID)", "protocol": "\(version)", "reason": "\(reason)", "detail": "\(why)",
        ])
        var properties = ConnackProperties()
        if version == .v5 && client.requestProblemInformation { properties.reasonString = why }
        send(.connack(ConnackPacket(sessionPresent: false, reasonCode: reason, properties: properties)))
        closeReason = "connect refused: \(reason.name)"
        willSuppressed = true
        close()
    }

    /// Feeds the client's data to the exchange and acts on its answer when it comes (a step may
    /// wait for a lookup). The client must not send AUTH while a step is pending.
    func runAuthenticationStep(_ exchange: any AuthenticationExchange, _ data: ByteBuffer?) {
        guard let context else { return }
        guard rare?.authStepPending != true else {
            return protocolViolation(.protocolError, "AUTH before the previous AUTH was answered")
        }
        rareState().authStepPending = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        exchange.step(clientData: data, on: context.eventLoop).whenComplete { result in
            let handler = loopBound.value
            handler.rare?.authStepPending = false
            guard handler.phase != .closed else { return }
            switch result {
            case .success(let step): handler.authenticationStep(step)
            case .failure: handler.authenticationStep(.failure(.unspecifiedError))
            }
            handler.worker.flush()
        }
    }

    /// Acts on one step of an enhanced authentication exchange (spec 4.12).
    func authenticationStep(_ step: AuthenticationStep) {
        switch (step, phase) {
        case (.continue(let data), _):
            var properties = AuthProperties()
            properties.authenticationMethod = authMethod
            properties.authenticationData = data
            send(.auth(AuthPacket(reasonCode: .continueAuthentication, properties: properties)))
        case (.success(let identity, let data), .connecting):
            authExchange = nil
            finalAuthenticationData = data
            guard case .accepted(let admitted) = broker.authenticator.admit(identity) else {
                auditAuthenticationFailure(.clientIDRefused, weight: .none, username: identity.username)
                return refuseConnect(.notAuthorized, "client id not allowed for \(identity.username ?? "this identity")")
            }
            if let accepted = acceptedConnect { authenticated(admitted, accepted) }
        case (.success(_, let data), _):
            // Re-authentication succeeded (spec 4.12.1).
            authExchange = nil
            var properties = AuthProperties()
            properties.authenticationMethod = authMethod
            properties.authenticationData = data
            send(.auth(AuthPacket(reasonCode: .success, properties: properties)))
        case (.failure(let reason), .connecting):
            authExchange = nil
            auditAuthenticationFailure(reason == .badAuthenticationMethod ? .unsupportedMethod : .badPassword,
                                       weight: reason == .notAuthorized || reason == .badUserNameOrPassword ? .costly : .none, username: nil)
            refuseConnect(reason, "enhanced authentication failed")
        case (.failure(let reason), _):
            authExchange = nil
            closeReason = "re-authentication failed"
            disconnect(reason, reasonString: "re-authentication failed")
        }
    }

    private func authenticated(_ identity: ClientIdentity, _ accepted: AcceptedConnect) {
        guard phase == .connecting else { return }
        // Bans on the resolved identity (a certificate identity used as the user name, a backend's
        // user name) as well as on what the CONNECT claimed.
        if let resolved = identity.username,
           let ban = broker.protection?.bannedIdentity(username: resolved, clientID: nil) {
            return refuseBanned(ban, username: resolved)
        }
        broker.protection?.authenticationSucceeded(remote: remoteAddress, username: identity.username)
        self.identity = identity
        let (policy, generation) = broker.authorization()
        authorizer = policy.authorizer(for: identity)
        authorizerGeneration = generation
        attach(accepted, attempt: 0)
    }

    /// Attaches the session; if another connection holds it, that one is closed first (0x8E).
    private func attach(_ accepted: AcceptedConnect, attempt: Int) {
        guard phase == .connecting, let context else { return }
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
            return refuseConnect(.notAuthorized, "client id \(accepted.clientID) belongs to another identity")
        case .mustTakeOver(let other):
            guard attempt < 3, let other = other as? MQTTConnectionHandler else {
                return refuseConnect(.serverBusy, "session \(accepted.clientID) is being taken over repeatedly")
            }
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            other.eventLoop.flatSubmit {
                other.takenOver()
            }.hop(to: context.eventLoop).whenComplete { _ in
                loopBound.value.attach(accepted, attempt: attempt + 1)
                loopBound.value.worker.flush()
            }
        case .attached(let handle, let state, let sessionPresent, let ended):
            if let ended { broker.end(ended, on: context.eventLoop) }
            // The session is ours from here: deliveries that arrive before CONNACK wait in it.
            session = handle
            self.state = state
            guard accepted.sessionExpiryInterval > 0, broker.store != nil else {
                return connected(sessionPresent: sessionPresent, accepted)
            }
            // CONNACK for a persistent session only once the store has it, so a crash right after
            // cannot deny a session the client was told exists. A will the previous connection
            // left waiting is void now (spec 3.1.3.2.2): a restart must not publish it.
            worker.persist(
                [.saveSession(StoreMapping.record(state, owner: handle.owner, disconnectedAt: nil)),
                 .setPendingWill(clientID: accepted.clientID, will: nil, publishAt: nil)],
                then: .callback { [self] _ in
                    guard phase == .connecting else { return }
                    connected(sessionPresent: sessionPresent, accepted)
                })
        }
    }

    private func connected(sessionPresent: Bool, _ accepted: AcceptedConnect) {
        connectExpiryInterval = accepted.sessionExpiryInterval
        phase = .connected
        context?.channel.setOption(ChannelOptions.writeBufferWaterMark, value: Self.connectedWaterMark).whenComplete { _ in }
        let limits = broker.limits
        // 3.1.1 has no Receive Maximum to enforce: a client that outruns the store is slowed down
        // instead (see `queueAcknowledgement`).
        inboundPublish = InboundPublishState(
            receiveMaximum: version == .v5 ? limits.maximumInflight : 65535,
            topicAliasMaximum: version == .v5 ? limits.maximumTopicAlias : 0)
        outboundPublish = OutboundPublishEncoder(version: version, client: client, serverAliasLimit: limits.maximumOutgoingTopicAliases)
        keepAlive = KeepAlive(seconds: accepted.keepAlive)
        broker.stats.clientConnected()
        broker.stats.connectionsTotal.add(1, ordering: .relaxed)

        var properties = ConnackProperties()
        if version == .v5 {
            let requested = accepted.client
            if accepted.assignedClientID { properties.assignedClientIdentifier = clientID }
            if accepted.serverKeepAliveOverride { properties.serverKeepAlive = accepted.keepAlive }
            if limits.maximumInflight < 65535 { properties.receiveMaximum = UInt16(limits.maximumInflight) }
            properties.maximumPacketSize = UInt32(limits.maximumPacketSize)
            if limits.maximumTopicAlias > 0 { properties.topicAliasMaximum = UInt16(limits.maximumTopicAlias) }
            if let cap = limits.maximumSessionExpiry, accepted.sessionExpiryInterval == cap {
                properties.sessionExpiryInterval = cap
            }
            if requested.requestResponseInformation { properties.responseInformation = "response/\(clientID)" }
            if let authMethod {
                properties.authenticationMethod = authMethod
                properties.authenticationData = finalAuthenticationData
            }
        }
        send(.connack(ConnackPacket(sessionPresent: sessionPresent, reasonCode: .success, properties: properties)))
        auditConnectionAccepted(cleanStart: accepted.cleanStart)
        logger.info("client connected", metadata: [
            "client_id": "\(clientID)", "protocol": "\(version)", "username": "\(identity?.username ?? "")",
            "clean_start": "\(accepted.cleanStart)", "session_present": "\(sessionPresent)", "keep_alive": "\(accepted.keepAlive)",
        ])
        if sessionPresent { resumeDelivery() }
        drainPendingPackets()
        acceptedConnect = nil
        if will == nil && authMethod == nil && rare?.closeReason == nil { rare = nil }
    }

    /// Another connection with this client id arrived: DISCONNECT 0x8E, close, and hand the session
    /// back to the table now so the newcomer can attach (spec 3.1.4).
    func takenOver() -> EventLoopFuture<Void> {
        let loop = context?.eventLoop ?? broker.group.next()
        guard session != nil, phase == .connected || phase == .connecting else { return loop.makeSucceededVoidFuture() }
        closeReason = "session taken over"
        if phase == .connected {
            disconnect(.sessionTakenOver, reasonString: "another connection uses client id \(clientID)")
        } else {
            close()
        }
        connectionLost(now: .now())
        worker.flush()
        return loop.makeSucceededVoidFuture()
    }

    /// The identity this connection's session belongs to (see `SessionOwner`).
    var sessionOwner: String {
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

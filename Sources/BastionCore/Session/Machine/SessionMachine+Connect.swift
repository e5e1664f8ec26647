import MQTTCodec
import NIOCore

/// CONNECT: validation, then (after authentication and the session table, which the connection
/// runs) CONNACK and what resumes (spec 3.1, 3.2, 4.1).
extension SessionMachine {
    public enum ConnectAction: Sendable, Equatable {
        /// CONNACK with this reason, then close; the will is not sent.
        case refuse(ReasonCode, String)
        /// Authenticate these credentials (the checks before it — bans, throttles — are the
        /// connection's), then call `authenticated(_:)`.
        case authenticate(AcceptedConnect)
        /// Start 5.0 enhanced authentication with this method; feed steps with `authStep`.
        case beginEnhancedAuthentication(method: String, AcceptedConnect)
    }

    /// A CONNECT arrived (the first packet). `makeClientID` supplies an assigned identifier.
    public mutating func connectReceived(
        _ connect: ConnectPacket, supportsAuthenticationMethod: (String) -> Bool, makeClientID: () -> String
    ) -> ConnectAction {
        version = connect.protocolVersion
        let validation = ConnectValidator.validate(
            connect, limits: limits, supportsAuthenticationMethod: supportsAuthenticationMethod, makeClientID: makeClientID)
        switch validation {
        case .refuse(let reason, let why):
            phase = .connecting(Connecting(AcceptedConnect.refused(clientID: connect.clientID)))
            return .refuse(reason, why)
        case .accept(let accepted):
            clientID = accepted.clientID
            client = accepted.client
            willBox = connect.will.map(WillBox.init)
            phase = .connecting(Connecting(accepted))
            if let method = accepted.authenticationMethod {
                authenticationMethod = method
                return .beginEnhancedAuthentication(method: method, accepted)
            }
            return .authenticate(accepted)
        }
    }

    /// CONNECT is refused after validation (bans, authentication, the session's owner): the will
    /// goes with the connection.
    public mutating func refused() {
        willSuppressed = true
    }

    /// The session table attached the session to this connection.
    public mutating func attached(_ state: SessionState, sessionPresent: Bool) {
        guard let c = connecting else { return }
        c.state = state
        c.sessionPresent = sessionPresent
    }

    /// What CONNACK success brings.
    public struct Connected: Sendable {
        public var connack: ConnackPacket
        /// Resend unacknowledged deliveries (DUP) and queued ones (spec 4.4).
        public var resume: Bool
        /// Packets that arrived before CONNACK, to handle now, in order.
        public var pendingPackets: [MQTTPacket]
        public var accepted: AcceptedConnect
    }

    /// The session is ready (stored, for a persistent one): the connection is connected.
    /// `finalAuthenticationData` is the last data of an enhanced authentication exchange.
    public mutating func connected(finalAuthenticationData: ByteBuffer? = nil) -> Connected? {
        guard let c = connecting, let state = c.state else { return nil }
        let accepted = c.accepted
        connectExpiryInterval = accepted.sessionExpiryInterval
        // 3.1.1 has no Receive Maximum to enforce: a client that outruns the store is slowed down
        // instead (the acknowledgement backlog).
        inbound = InboundPublishState(
            receiveMaximum: version == .v5 ? limits.maximumInflight : 65535,
            topicAliasMaximum: version == .v5 ? limits.maximumTopicAlias : 0)
        keepAlive = KeepAlive(seconds: accepted.keepAlive)
        let pending = c.pendingPackets
        let present = c.sessionPresent
        phase = .connected(state)

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
            if let authenticationMethod {
                properties.authenticationMethod = authenticationMethod
                properties.authenticationData = finalAuthenticationData
            }
        }
        return Connected(
            connack: ConnackPacket(sessionPresent: present, reasonCode: .success, properties: properties),
            resume: present, pendingPackets: pending, accepted: accepted)
    }

    /// The CONNACK refusing this CONNECT (reason string only when the client takes problem information).
    public func refusal(_ reason: ReasonCode, _ why: String) -> ConnackPacket {
        var properties = ConnackProperties()
        if version == .v5 && client.requestProblemInformation { properties.reasonString = why }
        return ConnackPacket(sessionPresent: false, reasonCode: reason, properties: properties)
    }
}

extension AcceptedConnect {
    /// Stands for a CONNECT that failed validation (only its client id is known).
    static func refused(clientID: String) -> AcceptedConnect {
        AcceptedConnect(clientID: clientID, assignedClientID: false, cleanStart: true, sessionExpiryInterval: 0, keepAlive: 0,
                        serverKeepAliveOverride: false, client: ClientCapabilities(), authenticationMethod: nil)
    }
}

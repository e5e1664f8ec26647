import MQTTCodec

/// The outcome of checking a CONNECT before authentication (spec 3.1.4).
public enum ConnectValidation: Sendable, Equatable {
    /// Go on to authentication with these settings.
    case accept(AcceptedConnect)
    /// Answer with a CONNACK carrying this reason, then close.
    case refuse(ReasonCode, reason: String)
}

/// What the server decided from a valid CONNECT.
public struct AcceptedConnect: Sendable, Equatable {
    public var clientID: String
    /// The client sent an empty id and the server made one up (5.0: returned in CONNACK).
    public var assignedClientID: Bool
    public var cleanStart: Bool
    /// Seconds; 3.1.1 clean session 0 maps to "never" and clean session 1 to 0.
    public var sessionExpiryInterval: UInt32
    /// The keep alive the server enforces, and whether it differs from the client's (5.0 Server Keep Alive).
    public var keepAlive: UInt16
    public var serverKeepAliveOverride: Bool
    public var client: ClientCapabilities
    /// 5.0 enhanced authentication method, when the CONNECT named one the server supports.
    public var authenticationMethod: String?
}

/// What the client told the server it can take (5.0 CONNECT properties; defaults for 3.1.1).
public struct ClientCapabilities: Sendable, Equatable {
    // Stored as narrow as the protocol's fields (every connection holds one).
    private var packetSizeLimit = UInt32.max
    private var receiveLimit: UInt16 = 65535
    private var aliasLimit: UInt16 = 0
    public var requestResponseInformation = false
    /// When false, reason strings and user properties are sent only in PUBLISH, CONNACK and DISCONNECT.
    public var requestProblemInformation = true

    /// How many QoS 1/2 PUBLISH the server may have unacknowledged towards the client.
    public var receiveMaximum: Int {
        get { Int(receiveLimit) }
        set { receiveLimit = UInt16(clamping: newValue) }
    }
    /// The largest packet the server may send it.
    public var maximumPacketSize: Int {
        get { Int(packetSizeLimit) }
        set { packetSizeLimit = UInt32(clamping: newValue) }
    }
    /// How many topic aliases the server may assign towards it.
    public var topicAliasMaximum: Int {
        get { Int(aliasLimit) }
        set { aliasLimit = UInt16(clamping: newValue) }
    }

    public init() {}
}

public enum ConnectValidator {
    /// Checks the parts of CONNECT the decoder cannot: client identifier rules per version,
    /// authentication method, will topic limits. `makeClientID` supplies assigned identifiers.
    public static func validate(
        _ connect: ConnectPacket, limits: BrokerLimits, supportsAuthenticationMethod: (String) -> Bool = { _ in false },
        makeClientID: () -> String
    ) -> ConnectValidation {
        let version = connect.protocolVersion
        var clientID = connect.clientID
        var assigned = false
        switch version {
        case .v3_1:
            // 3.1 section 3.1: 1 to 23 characters.
            guard !clientID.isEmpty, clientID.utf8.count <= 23 else {
                return .refuse(.clientIdentifierNotValid, reason: "MQTT 3.1 client identifiers must be 1 to 23 characters")
            }
        case .v3_1_1:
            if clientID.isEmpty {
                guard connect.cleanStart else {
                    return .refuse(.clientIdentifierNotValid, reason: "empty client identifier requires clean session (MQTT-3.1.3-8)")
                }
                clientID = makeClientID()
                assigned = true
            }
        case .v5:
            if clientID.isEmpty {
                clientID = makeClientID()
                assigned = true
            }
        }
        if version == .v5, let method = connect.properties.authenticationMethod, !supportsAuthenticationMethod(method) {
            // Spec 4.12: a method the server does not support is refused with 0x8C.
            return .refuse(.badAuthenticationMethod, reason: "authentication method \(method) not supported")
        }
        if let will = connect.will {
            do throws(MQTTDecodeError) {
                try TopicRules.validateName(will.topic, limits: limits.decoderLimits)
            } catch {
                return .refuse(.topicNameInvalid, reason: "will topic: \(error)")
            }
        }

        var expiry: UInt32
        if version == .v5 {
            expiry = connect.properties.sessionExpiryInterval ?? 0
        } else {
            expiry = connect.cleanStart ? 0 : SessionState.neverExpires
        }
        if let cap = limits.maximumSessionExpiry { expiry = min(expiry, cap) }

        var keepAlive = connect.keepAlive
        var override = false
        // A 5.0 client asking for more than the maximum, or for none, is told the maximum (3.2.2.3.14):
        // a connection the broker never hears from is not held forever.
        if version == .v5, keepAlive == 0 || Int(keepAlive) > limits.maximumKeepAlive {
            keepAlive = UInt16(limits.maximumKeepAlive)
            override = true
        }

        var client = ClientCapabilities()
        if version == .v5 {
            let p = connect.properties
            if let rm = p.receiveMaximum { client.receiveMaximum = Int(rm) }
            if let mps = p.maximumPacketSize { client.maximumPacketSize = Int(mps) }
            if let tam = p.topicAliasMaximum { client.topicAliasMaximum = Int(tam) }
            client.requestResponseInformation = p.requestResponseInformation ?? false
            client.requestProblemInformation = p.requestProblemInformation ?? true
        }
        return .accept(AcceptedConnect(
            clientID: clientID, assignedClientID: assigned, cleanStart: connect.cleanStart, sessionExpiryInterval: expiry,
            keepAlive: keepAlive, serverKeepAliveOverride: override, client: client,
            authenticationMethod: version == .v5 ? connect.properties.authenticationMethod : nil))
    }
}

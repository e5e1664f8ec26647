import NIOCore

public struct ConnackPacket: Sendable, Hashable {
    /// Not on the wire for 3.1 clients: that byte is reserved there.
    public var sessionPresent: Bool
    /// 5.0 reason code; for 3.1/3.1.1 it is written as the nearest `ConnectReturnCode`.
    public var reasonCode: ReasonCode
    public var properties: ConnackProperties

    public init(sessionPresent: Bool = false, reasonCode: ReasonCode = .success, properties: ConnackProperties = .init()) {
        self.sessionPresent = sessionPresent
        self.reasonCode = reasonCode
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> ConnackPacket {
        var flags = try buffer.readMQTTByte("connack flags")
        // MQTT 3.1 has no flags here: the byte is "reserved, not used". Session Present came in 3.1.1.
        if version == .v3_1 { flags = 0 }
        guard flags & 0xFE == 0 else { throw .malformedPacket("CONNACK reserved flags set") }
        let code = try buffer.readMQTTByte("connect reason code")
        let reason: ReasonCode
        var properties = ConnackProperties()
        if version == .v5 {
            reason = ReasonCode(rawValue: code)
            properties = try ConnackProperties.decode(from: &buffer)
        } else {
            guard let rc = ConnectReturnCode(rawValue: code) else { throw .malformedPacket("unknown CONNACK return code \(code)") }
            reason = rc.reasonCode
        }
        guard buffer.readableBytes == 0 else { throw .malformedPacket("unexpected bytes after CONNACK") }
        return ConnackPacket(sessionPresent: flags & 1 == 1, reasonCode: reason, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        version == .v5 ? 2 + properties.sectionSize : 2
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(sessionPresent && version != .v3_1 ? 1 as UInt8 : 0)
        if version == .v5 {
            out.writeInteger(reasonCode.rawValue)
            properties.writeSection(to: &out)
        } else {
            out.writeInteger(ConnectReturnCode(reasonCode).rawValue)
        }
    }
}

extension ConnectReturnCode {
    var reasonCode: ReasonCode {
        switch self {
        case .accepted: .success
        case .unacceptableProtocolVersion: .unsupportedProtocolVersion
        case .identifierRejected: .clientIdentifierNotValid
        case .serverUnavailable: .serverUnavailable
        case .badUserNameOrPassword: .badUserNameOrPassword
        case .notAuthorized: .notAuthorized
        }
    }
}

public struct ConnackProperties: MQTTProperties {
    public var sessionExpiryInterval: UInt32?
    public var receiveMaximum: UInt16?
    public var maximumQoS: QoS?
    public var retainAvailable: Bool?
    public var maximumPacketSize: UInt32?
    public var assignedClientIdentifier: String?
    public var topicAliasMaximum: UInt16?
    public var reasonString: String?
    public var userProperties: [UserProperty] = []
    public var wildcardSubscriptionAvailable: Bool?
    public var subscriptionIdentifiersAvailable: Bool?
    public var sharedSubscriptionAvailable: Bool?
    public var serverKeepAlive: UInt16?
    public var responseInformation: String?
    public var serverReference: String?
    public var authenticationMethod: String?
    public var authenticationData: ByteBuffer?

    public init() {}

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .sessionExpiryInterval: p.sessionExpiryInterval = try PropertyReader.uint32(&b)
            case .receiveMaximum: p.receiveMaximum = try PropertyReader.nonZeroUInt16(&b, "receive maximum")
            case .maximumQoS:
                let value = try PropertyReader.byte(&b)
                guard value <= 1 else { throw .protocolError("maximum QoS must be 0 or 1") }
                p.maximumQoS = QoS(rawValue: value)
            case .retainAvailable: p.retainAvailable = try PropertyReader.flag(&b, "retain available")
            case .maximumPacketSize: p.maximumPacketSize = try PropertyReader.nonZeroUInt32(&b, "maximum packet size")
            case .assignedClientIdentifier: p.assignedClientIdentifier = try PropertyReader.string(&b)
            case .topicAliasMaximum: p.topicAliasMaximum = try PropertyReader.uint16(&b)
            case .reasonString: p.reasonString = try PropertyReader.string(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            case .wildcardSubscriptionAvailable: p.wildcardSubscriptionAvailable = try PropertyReader.flag(&b, "wildcard subscription available")
            case .subscriptionIdentifierAvailable: p.subscriptionIdentifiersAvailable = try PropertyReader.flag(&b, "subscription identifier available")
            case .sharedSubscriptionAvailable: p.sharedSubscriptionAvailable = try PropertyReader.flag(&b, "shared subscription available")
            case .serverKeepAlive: p.serverKeepAlive = try PropertyReader.uint16(&b)
            case .responseInformation: p.responseInformation = try PropertyReader.string(&b)
            case .serverReference: p.serverReference = try PropertyReader.string(&b)
            case .authenticationMethod: p.authenticationMethod = try PropertyReader.string(&b)
            case .authenticationData: p.authenticationData = try PropertyReader.binary(&b)
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countUInt32(sessionExpiryInterval)
        w.countUInt16(receiveMaximum)
        w.countByte(maximumQoS?.rawValue)
        w.countFlag(retainAvailable)
        w.countUInt32(maximumPacketSize)
        w.countString(assignedClientIdentifier)
        w.countUInt16(topicAliasMaximum)
        w.countString(reasonString)
        w.countUser(userProperties)
        w.countFlag(wildcardSubscriptionAvailable)
        w.countFlag(subscriptionIdentifiersAvailable)
        w.countFlag(sharedSubscriptionAvailable)
        w.countUInt16(serverKeepAlive)
        w.countString(responseInformation)
        w.countString(serverReference)
        w.countString(authenticationMethod)
        w.countBinary(authenticationData)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.uint32(.sessionExpiryInterval, sessionExpiryInterval, &out)
        PropertyWriter.uint16(.receiveMaximum, receiveMaximum, &out)
        PropertyWriter.byte(.maximumQoS, maximumQoS?.rawValue, &out)
        PropertyWriter.flag(.retainAvailable, retainAvailable, &out)
        PropertyWriter.uint32(.maximumPacketSize, maximumPacketSize, &out)
        PropertyWriter.string(.assignedClientIdentifier, assignedClientIdentifier, &out)
        PropertyWriter.uint16(.topicAliasMaximum, topicAliasMaximum, &out)
        PropertyWriter.string(.reasonString, reasonString, &out)
        PropertyWriter.user(userProperties, &out)
        PropertyWriter.flag(.wildcardSubscriptionAvailable, wildcardSubscriptionAvailable, &out)
        PropertyWriter.flag(.subscriptionIdentifierAvailable, subscriptionIdentifiersAvailable, &out)
        PropertyWriter.flag(.sharedSubscriptionAvailable, sharedSubscriptionAvailable, &out)
        PropertyWriter.uint16(.serverKeepAlive, serverKeepAlive, &out)
        PropertyWriter.string(.responseInformation, responseInformation, &out)
        PropertyWriter.string(.serverReference, serverReference, &out)
        PropertyWriter.string(.authenticationMethod, authenticationMethod, &out)
        PropertyWriter.binary(.authenticationData, authenticationData, &out)
    }
}

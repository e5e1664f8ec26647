import NIOCore

// Per-packet property sets (spec 5.0 section 3). Each lists exactly the properties its packet may
// carry; any other identifier makes the packet malformed.

public struct ConnectProperties: MQTTProperties {
    public var sessionExpiryInterval: UInt32?
    public var receiveMaximum: UInt16?
    public var maximumPacketSize: UInt32?
    public var topicAliasMaximum: UInt16?
    public var requestResponseInformation: Bool?
    public var requestProblemInformation: Bool?
    public var userProperties: [UserProperty] = []
    public var authenticationMethod: String?
    public var authenticationData: ByteBuffer?

    public init() {}

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .sessionExpiryInterval: p.sessionExpiryInterval = try PropertyReader.uint32(&b)
            case .receiveMaximum:
                let value = try PropertyReader.uint16(&b)
                guard value > 0 else { throw .protocolError("receive maximum of 0") }
                p.receiveMaximum = value
            case .maximumPacketSize:
                let value = try PropertyReader.uint32(&b)
                guard value > 0 else { throw .protocolError("maximum packet size of 0") }
                p.maximumPacketSize = value
            case .topicAliasMaximum: p.topicAliasMaximum = try PropertyReader.uint16(&b)
            case .requestResponseInformation: p.requestResponseInformation = try PropertyReader.flag(&b, "request response information")
            case .requestProblemInformation: p.requestProblemInformation = try PropertyReader.flag(&b, "request problem information")
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            case .authenticationMethod: p.authenticationMethod = try PropertyReader.string(&b)
            case .authenticationData: p.authenticationData = try PropertyReader.binary(&b)
            default: return false
            }
            return true
        }
        if p.authenticationData != nil && p.authenticationMethod == nil {
            throw .protocolError("authentication data without authentication method")
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countUInt32(sessionExpiryInterval)
        w.countUInt16(receiveMaximum)
        w.countUInt32(maximumPacketSize)
        w.countUInt16(topicAliasMaximum)
        w.countFlag(requestResponseInformation)
        w.countFlag(requestProblemInformation)
        w.countUser(userProperties)
        w.countString(authenticationMethod)
        w.countBinary(authenticationData)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.uint32(.sessionExpiryInterval, sessionExpiryInterval, &out)
        PropertyWriter.uint16(.receiveMaximum, receiveMaximum, &out)
        PropertyWriter.uint32(.maximumPacketSize, maximumPacketSize, &out)
        PropertyWriter.uint16(.topicAliasMaximum, topicAliasMaximum, &out)
        PropertyWriter.flag(.requestResponseInformation, requestResponseInformation, &out)
        PropertyWriter.flag(.requestProblemInformation, requestProblemInformation, &out)
        PropertyWriter.user(userProperties, &out)
        PropertyWriter.string(.authenticationMethod, authenticationMethod, &out)
        PropertyWriter.binary(.authenticationData, authenticationData, &out)
    }
}

public struct WillProperties: MQTTProperties {
    public var willDelayInterval: UInt32?
    public var payloadFormatIndicator: UInt8?
    public var messageExpiryInterval: UInt32?
    public var contentType: String?
    public var responseTopic: String?
    public var correlationData: ByteBuffer?
    public var userProperties: [UserProperty] = []

    public init() {}

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .willDelayInterval: p.willDelayInterval = try PropertyReader.uint32(&b)
            case .payloadFormatIndicator:
                p.payloadFormatIndicator = try PropertyReader.flag(&b, "payload format indicator") ? 1 : 0
            case .messageExpiryInterval: p.messageExpiryInterval = try PropertyReader.uint32(&b)
            case .contentType: p.contentType = try PropertyReader.string(&b)
            case .responseTopic:
                let topic = try PropertyReader.string(&b)
                try TopicRules.validateName(topic, limits: nil)
                p.responseTopic = topic
            case .correlationData: p.correlationData = try PropertyReader.binary(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countUInt32(willDelayInterval)
        w.countByte(payloadFormatIndicator)
        w.countUInt32(messageExpiryInterval)
        w.countString(contentType)
        w.countString(responseTopic)
        w.countBinary(correlationData)
        w.countUser(userProperties)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.uint32(.willDelayInterval, willDelayInterval, &out)
        PropertyWriter.byte(.payloadFormatIndicator, payloadFormatIndicator, &out)
        PropertyWriter.uint32(.messageExpiryInterval, messageExpiryInterval, &out)
        PropertyWriter.string(.contentType, contentType, &out)
        PropertyWriter.string(.responseTopic, responseTopic, &out)
        PropertyWriter.binary(.correlationData, correlationData, &out)
        PropertyWriter.user(userProperties, &out)
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
            case .receiveMaximum:
                let value = try PropertyReader.uint16(&b)
                guard value > 0 else { throw .protocolError("receive maximum of 0") }
                p.receiveMaximum = value
            case .maximumQoS:
                let value = try PropertyReader.byte(&b)
                guard value <= 1 else { throw .protocolError("maximum QoS must be 0 or 1") }
                p.maximumQoS = QoS(rawValue: value)
            case .retainAvailable: p.retainAvailable = try PropertyReader.flag(&b, "retain available")
            case .maximumPacketSize:
                let value = try PropertyReader.uint32(&b)
                guard value > 0 else { throw .protocolError("maximum packet size of 0") }
                p.maximumPacketSize = value
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

public struct PublishProperties: MQTTProperties {
    public var payloadFormatIndicator: UInt8?
    public var messageExpiryInterval: UInt32?
    public var topicAlias: UInt16?
    public var responseTopic: String?
    public var correlationData: ByteBuffer?
    public var userProperties: [UserProperty] = []
    /// Only in server-to-client PUBLISH: one per matching subscription that carries an identifier.
    public var subscriptionIdentifiers: [UInt32] = []
    public var contentType: String?

    public init() {}

    /// Reads a property section as written by `writeSection` (used by the durable store).
    public init(decodingSectionFrom buffer: inout ByteBuffer) throws(MQTTDecodeError) {
        self = try Self.decode(from: &buffer)
    }

    public var isEmpty: Bool {
        payloadFormatIndicator == nil && messageExpiryInterval == nil && topicAlias == nil && responseTopic == nil
            && correlationData == nil && userProperties.isEmpty && subscriptionIdentifiers.isEmpty && contentType == nil
    }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        // The common case: no properties at all.
        if buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0 {
            buffer.moveReaderIndex(forwardBy: 1)
            return p
        }
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .payloadFormatIndicator:
                p.payloadFormatIndicator = try PropertyReader.flag(&b, "payload format indicator") ? 1 : 0
            case .messageExpiryInterval: p.messageExpiryInterval = try PropertyReader.uint32(&b)
            case .topicAlias:
                let alias = try PropertyReader.uint16(&b)
                guard alias > 0 else { throw .topicAliasInvalid("topic alias of 0") }
                p.topicAlias = alias
            case .responseTopic:
                let topic = try PropertyReader.string(&b)
                try TopicRules.validateName(topic, limits: nil)
                p.responseTopic = topic
            case .correlationData: p.correlationData = try PropertyReader.binary(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            case .subscriptionIdentifier:
                let value = try VariableByteInteger.read(from: &b)
                guard value > 0 else { throw .protocolError("subscription identifier of 0") }
                p.subscriptionIdentifiers.append(UInt32(value))
            case .contentType: p.contentType = try PropertyReader.string(&b)
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        if isEmpty { return 0 }
        var w = PropertyWriter()
        w.countByte(payloadFormatIndicator)
        w.countUInt32(messageExpiryInterval)
        w.countUInt16(topicAlias)
        w.countString(responseTopic)
        w.countBinary(correlationData)
        w.countUser(userProperties)
        for id in subscriptionIdentifiers { w.countVarInt(id) }
        w.countString(contentType)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        if isEmpty { return }
        PropertyWriter.byte(.payloadFormatIndicator, payloadFormatIndicator, &out)
        PropertyWriter.uint32(.messageExpiryInterval, messageExpiryInterval, &out)
        PropertyWriter.uint16(.topicAlias, topicAlias, &out)
        PropertyWriter.string(.responseTopic, responseTopic, &out)
        PropertyWriter.binary(.correlationData, correlationData, &out)
        PropertyWriter.user(userProperties, &out)
        for id in subscriptionIdentifiers { PropertyWriter.varInt(.subscriptionIdentifier, id, &out) }
        PropertyWriter.string(.contentType, contentType, &out)
    }
}

/// Reason string and user properties: everything PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and
/// UNSUBACK may carry.
public struct AckProperties: MQTTProperties {
    public var reasonString: String?
    public var userProperties: [UserProperty] = []

    public init(reasonString: String? = nil, userProperties: [UserProperty] = []) {
        self.reasonString = reasonString
        self.userProperties = userProperties
    }

    public var isEmpty: Bool { reasonString == nil && userProperties.isEmpty }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .reasonString: p.reasonString = try PropertyReader.string(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countString(reasonString)
        w.countUser(userProperties)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.string(.reasonString, reasonString, &out)
        PropertyWriter.user(userProperties, &out)
    }
}

public struct SubscribeProperties: MQTTProperties {
    public var subscriptionIdentifier: UInt32?
    public var userProperties: [UserProperty] = []

    public init(subscriptionIdentifier: UInt32? = nil, userProperties: [UserProperty] = []) {
        self.subscriptionIdentifier = subscriptionIdentifier
        self.userProperties = userProperties
    }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .subscriptionIdentifier:
                if p.subscriptionIdentifier != nil { throw .protocolError("more than one subscription identifier") }
                let value = try VariableByteInteger.read(from: &b)
                guard value > 0 else { throw .protocolError("subscription identifier of 0") }
                p.subscriptionIdentifier = UInt32(value)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countVarInt(subscriptionIdentifier)
        w.countUser(userProperties)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.varInt(.subscriptionIdentifier, subscriptionIdentifier, &out)
        PropertyWriter.user(userProperties, &out)
    }
}

public struct UnsubscribeProperties: MQTTProperties {
    public var userProperties: [UserProperty] = []

    public init(userProperties: [UserProperty] = []) { self.userProperties = userProperties }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            guard id == .userProperty else { return false }
            p.userProperties.append(try PropertyReader.userProperty(&b))
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countUser(userProperties)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.user(userProperties, &out)
    }
}

public struct DisconnectProperties: MQTTProperties {
    public var sessionExpiryInterval: UInt32?
    public var reasonString: String?
    public var userProperties: [UserProperty] = []
    public var serverReference: String?

    public init(sessionExpiryInterval: UInt32? = nil, reasonString: String? = nil) {
        self.sessionExpiryInterval = sessionExpiryInterval
        self.reasonString = reasonString
    }

    public var isEmpty: Bool {
        sessionExpiryInterval == nil && reasonString == nil && userProperties.isEmpty && serverReference == nil
    }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .sessionExpiryInterval: p.sessionExpiryInterval = try PropertyReader.uint32(&b)
            case .reasonString: p.reasonString = try PropertyReader.string(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            case .serverReference: p.serverReference = try PropertyReader.string(&b)
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countUInt32(sessionExpiryInterval)
        w.countString(reasonString)
        w.countUser(userProperties)
        w.countString(serverReference)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.uint32(.sessionExpiryInterval, sessionExpiryInterval, &out)
        PropertyWriter.string(.reasonString, reasonString, &out)
        PropertyWriter.user(userProperties, &out)
        PropertyWriter.string(.serverReference, serverReference, &out)
    }
}

public struct AuthProperties: MQTTProperties {
    public var authenticationMethod: String?
    public var authenticationData: ByteBuffer?
    public var reasonString: String?
    public var userProperties: [UserProperty] = []

    public init() {}

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Self {
        var p = Self()
        try PropertyReader.read(from: &buffer) { (id, b) throws(MQTTDecodeError) in
            switch id {
            case .authenticationMethod: p.authenticationMethod = try PropertyReader.string(&b)
            case .authenticationData: p.authenticationData = try PropertyReader.binary(&b)
            case .reasonString: p.reasonString = try PropertyReader.string(&b)
            case .userProperty: p.userProperties.append(try PropertyReader.userProperty(&b))
            default: return false
            }
            return true
        }
        return p
    }

    public var encodedSize: Int {
        var w = PropertyWriter()
        w.countString(authenticationMethod)
        w.countBinary(authenticationData)
        w.countString(reasonString)
        w.countUser(userProperties)
        return w.size
    }

    public func writeProperties(to out: inout ByteBuffer) {
        PropertyWriter.string(.authenticationMethod, authenticationMethod, &out)
        PropertyWriter.binary(.authenticationData, authenticationData, &out)
        PropertyWriter.string(.reasonString, reasonString, &out)
        PropertyWriter.user(userProperties, &out)
    }
}

import NIOCore

public struct ConnectPacket: Sendable, Hashable {
    public struct Will: Sendable, Hashable {
        public var topic: String
        public var payload: ByteBuffer
        public var qos: QoS
        public var retain: Bool
        public var properties: WillProperties

        public init(topic: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false, properties: WillProperties = .init()) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
            self.properties = properties
        }
    }

    public var protocolVersion: ProtocolVersion
    /// "Clean Session" in 3.1.1, "Clean Start" in 5.0.
    public var cleanStart: Bool
    public var keepAlive: UInt16
    public var clientID: String
    public var will: Will?
    public var username: String?
    public var password: ByteBuffer?
    public var properties: ConnectProperties

    public init(
        protocolVersion: ProtocolVersion, cleanStart: Bool = true, keepAlive: UInt16 = 60, clientID: String,
        will: Will? = nil, username: String? = nil, password: ByteBuffer? = nil, properties: ConnectProperties = .init()
    ) {
        self.protocolVersion = protocolVersion
        self.cleanStart = cleanStart
        self.keepAlive = keepAlive
        self.clientID = clientID
        self.will = will
        self.username = username
        self.password = password
        self.properties = properties
    }

    private enum Flag {
        static let reserved: UInt8 = 0x01
        static let cleanStart: UInt8 = 0x02
        static let will: UInt8 = 0x04
        static let willRetain: UInt8 = 0x20
        static let password: UInt8 = 0x40
        static let username: UInt8 = 0x80
    }

    static func decode(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> ConnectPacket {
        // The protocol name is read leniently so an unknown protocol can still be answered with CONNACK.
        let nameLength = Int(try buffer.readMQTTUInt16("protocol name"))
        guard let nameBytes = buffer.readBytes(length: nameLength) else { throw .malformedPacket("truncated protocol name") }
        let name = String(decoding: nameBytes, as: UTF8.self)
        let level = try buffer.readMQTTByte("protocol level")
        let version: ProtocolVersion
        switch (name, level) {
        case ("MQTT", 4): version = .v3_1_1
        case ("MQTT", 5): version = .v5
        case ("MQIsdp", 3): version = .v3_1
        default: throw .unsupportedProtocolVersion(name: name, level: level)
        }
        let flags = try buffer.readMQTTByte("connect flags")
        guard flags & Flag.reserved == 0 else { throw .malformedPacket("CONNECT reserved flag set") }
        let hasWill = flags & Flag.will != 0
        let willQoSBits = (flags >> 3) & 0x03
        let willRetain = flags & Flag.willRetain != 0
        guard let willQoS = QoS(rawValue: willQoSBits) else { throw .malformedPacket("will QoS 3") }
        if !hasWill && (willQoSBits != 0 || willRetain) {
            throw .malformedPacket("will QoS or will retain set without will flag")
        }
        let hasUsername = flags & Flag.username != 0
        let hasPassword = flags & Flag.password != 0
        if version != .v5 && hasPassword && !hasUsername {
            throw .malformedPacket("password flag set without user name flag")
        }
        let keepAlive = try buffer.readMQTTUInt16("keep alive")
        let properties = version == .v5 ? try ConnectProperties.decode(from: &buffer) : ConnectProperties()

        let clientID = try buffer.readMQTTString("client identifier")
        var will: Will?
        if hasWill {
            let willProperties = version == .v5 ? try WillProperties.decode(from: &buffer) : WillProperties()
            let topic = try buffer.readMQTTString("will topic")
            do throws(MQTTDecodeError) {
                try TopicRules.validateName(topic, limits: nil)
            } catch {
                throw .malformedPacket("invalid will topic: \(error)")
            }
            let payload = try buffer.readMQTTBinary("will payload")
            will = Will(topic: topic, payload: payload, qos: willQoS, retain: willRetain, properties: willProperties)
        }
        let username = hasUsername ? try buffer.readMQTTString("user name") : nil
        let password = hasPassword ? try buffer.readMQTTBinary("password") : nil
        guard buffer.readableBytes == 0 else { throw .malformedPacket("\(buffer.readableBytes) unexpected bytes after CONNECT payload") }
        return ConnectPacket(
            protocolVersion: version, cleanStart: flags & Flag.cleanStart != 0, keepAlive: keepAlive, clientID: clientID,
            will: will, username: username, password: password, properties: properties)
    }

    private var protocolName: String { protocolVersion == .v3_1 ? "MQIsdp" : "MQTT" }

    func remainingLength() -> Int {
        var size = MQTTString.encodedSize(protocolName) + 1 + 1 + 2
        if protocolVersion == .v5 { size += properties.sectionSize }
        size += MQTTString.encodedSize(clientID)
        if let will {
            if protocolVersion == .v5 { size += will.properties.sectionSize }
            size += MQTTString.encodedSize(will.topic) + MQTTString.encodedSize(will.payload)
        }
        if let username { size += MQTTString.encodedSize(username) }
        if let password { size += MQTTString.encodedSize(password) }
        return size
    }

    func writeBody(to out: inout ByteBuffer) {
        out.writeMQTTString(protocolName)
        out.writeInteger(protocolVersion.rawValue)
        var flags: UInt8 = 0
        if cleanStart { flags |= Flag.cleanStart }
        if let will {
            flags |= Flag.will | (will.qos.rawValue << 3)
            if will.retain { flags |= Flag.willRetain }
        }
        if username != nil { flags |= Flag.username }
        if password != nil { flags |= Flag.password }
        out.writeInteger(flags)
        out.writeInteger(keepAlive, endianness: .big)
        if protocolVersion == .v5 { properties.writeSection(to: &out) }
        out.writeMQTTString(clientID)
        if let will {
            if protocolVersion == .v5 { will.properties.writeSection(to: &out) }
            out.writeMQTTString(will.topic)
            out.writeMQTTBinary(will.payload)
        }
        if let username { out.writeMQTTString(username) }
        if let password { out.writeMQTTBinary(password) }
    }
}

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
            case .receiveMaximum: p.receiveMaximum = try PropertyReader.nonZeroUInt16(&b, "receive maximum")
            case .maximumPacketSize: p.maximumPacketSize = try PropertyReader.nonZeroUInt32(&b, "maximum packet size")
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

import NIOCore

public struct SubscribePacket: Sendable, Hashable {
    public enum RetainHandling: UInt8, Sendable, Hashable {
        /// Send retained messages at the time of the subscribe.
        case sendOnSubscribe = 0
        /// Send them only if the subscription did not already exist.
        case sendIfNew = 1
        /// Never send them.
        case doNotSend = 2
    }

    public struct Options: Sendable, Hashable {
        public var qos: QoS
        public var noLocal: Bool
        public var retainAsPublished: Bool
        public var retainHandling: RetainHandling

        public init(qos: QoS, noLocal: Bool = false, retainAsPublished: Bool = false, retainHandling: RetainHandling = .sendOnSubscribe) {
            self.qos = qos
            self.noLocal = noLocal
            self.retainAsPublished = retainAsPublished
            self.retainHandling = retainHandling
        }

        var byte: UInt8 {
            qos.rawValue | (noLocal ? 0x04 : 0) | (retainAsPublished ? 0x08 : 0) | (retainHandling.rawValue << 4)
        }
    }

    public struct Subscription: Sendable, Hashable {
        public var filter: String
        public var options: Options
        public init(filter: String, options: Options) {
            self.filter = filter
            self.options = options
        }
    }

    public var packetID: UInt16
    public var subscriptions: [Subscription]
    public var properties: SubscribeProperties

    public init(packetID: UInt16, subscriptions: [Subscription], properties: SubscribeProperties = .init()) {
        self.packetID = packetID
        self.subscriptions = subscriptions
        self.properties = properties
    }

    static func decode(from buffer: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError) -> SubscribePacket {
        let packetID = try buffer.readMQTTUInt16("packet identifier")
        guard packetID != 0 else { throw .protocolError("packet identifier 0") }
        let properties = version == .v5 ? try SubscribeProperties.decode(from: &buffer) : SubscribeProperties()
        var subscriptions: [Subscription] = []
        while buffer.readableBytes > 0 {
            let filter = try buffer.readMQTTString("topic filter")
            try validateFilterShape(filter)
            let byte = try buffer.readMQTTByte("subscription options")
            if version == .v5 {
                // [MQTT-3.8.3-5] reserved bits make the packet malformed; QoS 3 and Retain Handling 3
                // are protocol errors (spec 5.0 3.8.3.1).
                guard byte & 0xC0 == 0 else { throw .malformedPacket("reserved subscription option bits set") }
                guard let qos = QoS(rawValue: byte & 0x03) else { throw .protocolError("subscription QoS 3") }
                guard let handling = RetainHandling(rawValue: (byte >> 4) & 0x03) else { throw .protocolError("retain handling 3") }
                if byte & 0x04 != 0, SharedFilter(filter) != nil {
                    throw .protocolError("No Local on a shared subscription")
                }
                subscriptions.append(Subscription(filter: filter, options: Options(
                    qos: qos, noLocal: byte & 0x04 != 0, retainAsPublished: byte & 0x08 != 0, retainHandling: handling)))
            } else {
                // [MQTT-3.8.3-4] reserved bits or QoS 3: malformed.
                guard byte & 0xFC == 0, let qos = QoS(rawValue: byte) else {
                    throw .malformedPacket("subscription options 0x\(String(byte, radix: 16))")
                }
                subscriptions.append(Subscription(filter: filter, options: Options(qos: qos)))
            }
        }
        guard !subscriptions.isEmpty else { throw .protocolError("SUBSCRIBE without topic filters") }
        return SubscribePacket(packetID: packetID, subscriptions: subscriptions, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        var size = 2
        if version == .v5 { size += properties.sectionSize }
        for s in subscriptions { size += MQTTString.encodedSize(s.filter) + 1 }
        return size
    }

    func writeBody(version: ProtocolVersion, to out: inout ByteBuffer) {
        out.writeInteger(packetID, endianness: .big)
        if version == .v5 { properties.writeSection(to: &out) }
        for s in subscriptions {
            out.writeMQTTString(s.filter)
            out.writeInteger(version == .v5 ? s.options.byte : s.options.qos.rawValue)
        }
    }
}

/// Misplaced wildcards and bad share names make SUBSCRIBE and UNSUBSCRIBE malformed (spec 4.7.1,
/// 4.8.2); limits on length and depth are policy and answered per filter by the session.
func validateFilterShape(_ filter: String) throws(MQTTDecodeError) {
    do throws(TopicRules.FilterError) {
        try TopicRules.validateFilter(filter, limits: nil)
    } catch {
        throw .malformedPacket("topic filter '\(filter)': \(error)")
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

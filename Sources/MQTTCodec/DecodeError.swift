/// Every way a byte stream can fail to be a valid MQTT packet. The decoder only throws these;
/// `reasonCode` is the one place they map to the 5.0 DISCONNECT reason (3.1.1 just closes).
public enum MQTTDecodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Violates the wire format: bad lengths, bad flags, ill-formed UTF-8, unknown property.
    case malformedPacket(String)
    /// Well-formed but breaks a protocol rule (duplicate property, zero packet id, ...).
    case protocolError(String)
    /// Remaining length announces more than the configured maximum; detected from the fixed header.
    case packetTooLarge(announced: Int, maximum: Int)
    /// CONNECT with a protocol name or level this server does not speak.
    case unsupportedProtocolVersion(name: String, level: UInt8)
    /// A PUBLISH topic that is well formed UTF-8 but not a valid topic name (wildcards).
    case topicNameInvalid(String)
    /// A PUBLISH Topic Alias of 0 (spec 5.0 3.3.2.3.4); answered like an alias above the maximum.
    case topicAliasInvalid(String)

    public var reasonCode: ReasonCode {
        switch self {
        case .malformedPacket: .malformedPacket
        case .protocolError: .protocolError
        case .packetTooLarge: .packetTooLarge
        case .unsupportedProtocolVersion: .unsupportedProtocolVersion
        case .topicNameInvalid: .topicNameInvalid
        case .topicAliasInvalid: .topicAliasInvalid
        }
    }

    public var description: String {
        switch self {
        case .malformedPacket(let why): "malformed packet: \(why)"
        case .protocolError(let why): "protocol error: \(why)"
        case .packetTooLarge(let announced, let maximum): "packet too large: \(announced) bytes announced, maximum \(maximum)"
        case .unsupportedProtocolVersion(let name, let level): "unsupported protocol \(name) level \(level)"
        case .topicNameInvalid(let why): "topic name invalid: \(why)"
        case .topicAliasInvalid(let why): "topic alias invalid: \(why)"
        }
    }
}

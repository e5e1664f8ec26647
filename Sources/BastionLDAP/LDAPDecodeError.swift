/// Every way a byte stream can fail to be an LDAP message this client accepts. The decoder only
/// throws these; `LDAPConnection` reports them as `LDAPError.protocolError` and closes.
public enum LDAPDecodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not valid BER, or not the shape RFC 4511 gives the message.
    case malformedMessage(String)
    /// The outer length announces more than the configured maximum; detected from the header.
    case messageTooLarge(announced: Int, maximum: Int)
    /// An operation this client neither sends nor understands (APPLICATION tag number).
    case unsupportedOperation(tag: Int)

    public var description: String {
        switch self {
        case .malformedMessage(let why): "malformed LDAP message: \(why)"
        case .messageTooLarge(let announced, let maximum): "LDAP message too large: \(announced) bytes announced, maximum \(maximum)"
        case .unsupportedOperation(let tag): "unsupported LDAP operation [APPLICATION \(tag)]"
        }
    }
}

/// Why an LDAP operation did not produce a result. Every failure of `LDAPConnection` is one of these.
public enum LDAPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The URL could not be parsed.
    case invalidURL(String)
    /// The call itself was refused before anything was sent (bad argument, operation in progress).
    case invalidRequest(String)
    /// No TCP connection could be made (refused, unreachable, name not resolved).
    case connectFailed(String)
    /// The server did not answer within the operation's (or connect) timeout.
    case timedOut(operation: String, after: Duration)
    /// TLS could not be set up: bad configuration, handshake failure, certificate not trusted,
    /// host name mismatch.
    case tlsFailure(String)
    /// The server sent something that is not the LDAP this client expects.
    case protocolError(String)
    /// The server answered with a result other than success.
    case result(LDAPResult)
    /// A search returned more entries or bytes than the caller allowed.
    case limitExceeded(String)
    /// The connection closed, or was closed, before the operation finished.
    case connectionClosed(String)

    public var description: String {
        switch self {
        case .invalidURL(let why): "invalid LDAP URL: \(why)"
        case .invalidRequest(let why): "invalid LDAP request: \(why)"
        case .connectFailed(let why): "could not connect to the LDAP server: \(why)"
        case .timedOut(let operation, let after): "LDAP \(operation) timed out after \(after)"
        case .tlsFailure(let why): "LDAP TLS failure: \(why)"
        case .protocolError(let why): "LDAP protocol error: \(why)"
        case .result(let result): "LDAP server answered \(result)"
        case .limitExceeded(let why): "LDAP limit exceeded: \(why)"
        case .connectionClosed(let why): "LDAP connection closed: \(why)"
        }
    }
}

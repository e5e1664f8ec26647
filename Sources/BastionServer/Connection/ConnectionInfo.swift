/// What the transport knows about a connection before MQTT starts: the listener, the peer and,
/// for TLS, the negotiated parameters and the certificate identity.
public struct ConnectionInfo: Sendable, Hashable {
    public var listener: String
    public var remoteAddress: String
    public var allowAnonymous: Bool
    /// Two-factor listener: a client certificate and a matching user name and password.
    public var requirePassword = false
    /// The client id must equal the certificate identity.
    public var requireClientIDMatch = false
    public var tlsVersion: String?
    public var cipherSuite: String?
    public var certificateIdentity: String?
    public var certificateSerial: String?

    public init(listener: String, remoteAddress: String, allowAnonymous: Bool) {
        self.listener = listener
        self.remoteAddress = remoteAddress
        self.allowAnonymous = allowAnonymous
    }
}

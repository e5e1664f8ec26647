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
    /// TLS parameters, out of line: a plain connection does not carry their size.
    private var tls: TLSDetails?

    public init(listener: String, remoteAddress: String, allowAnonymous: Bool) {
        self.listener = listener
        self.remoteAddress = remoteAddress
        self.allowAnonymous = allowAnonymous
    }

    public var tlsVersion: String? {
        get { tls?.values.version }
        set { updateTLS { $0.version = newValue } }
    }
    public var cipherSuite: String? {
        get { tls?.values.cipherSuite }
        set { updateTLS { $0.cipherSuite = newValue } }
    }
    public var certificateIdentity: String? {
        get { tls?.values.certificateIdentity }
        set { updateTLS { $0.certificateIdentity = newValue } }
    }
    public var certificateSerial: String? {
        get { tls?.values.certificateSerial }
        set { updateTLS { $0.certificateSerial = newValue } }
    }
    /// SHA-256 of the client certificate's DER, lowercase hex.
    public var certificateFingerprint: String? {
        get { tls?.values.certificateFingerprint }
        set { updateTLS { $0.certificateFingerprint = newValue } }
    }

    /// Sets every TLS parameter at once (one allocation rather than one per field).
    public mutating func setTLS(version: String?, cipherSuite: String?, certificateIdentity: String?, certificateSerial: String?,
                                certificateFingerprint: String? = nil) {
        updateTLS {
            $0 = TLSDetails.Values(
                version: version, cipherSuite: cipherSuite, certificateIdentity: certificateIdentity, certificateSerial: certificateSerial,
                certificateFingerprint: certificateFingerprint)
        }
    }

    private mutating func updateTLS(_ change: (inout TLSDetails.Values) -> Void) {
        var values = tls?.values ?? TLSDetails.Values()
        change(&values)
        tls = values == TLSDetails.Values() ? nil : TLSDetails(values)
    }
}

/// Immutable, so copies of a `ConnectionInfo` can share it.
private final class TLSDetails: Sendable, Hashable {
    struct Values: Hashable {
        var version: String?
        var cipherSuite: String?
        var certificateIdentity: String?
        var certificateSerial: String?
        var certificateFingerprint: String?
    }

    let values: Values

    init(_ values: Values) { self.values = values }

    static func == (lhs: TLSDetails, rhs: TLSDetails) -> Bool { lhs.values == rhs.values }
    func hash(into hasher: inout Hasher) { hasher.combine(values) }
}

import BastionCore

/// What an identity backend is asked about one CONNECT. Built on the event loop from the
/// CONNECT and the transport; never logged whole (it carries the password).
public struct AuthenticationRequest: Sendable, Hashable {
    public var username: String?
    public var password: [UInt8]?
    public var clientID: String
    /// The listener's name (`mqtt://127.0.0.1:1883`).
    public var listener: String
    /// The client's address without the port (the PROXY header's when there is one).
    public var remoteHost: String?
    public var certificateIdentity: String?
    public var certificateSerial: String?
    public var certificateFingerprint: String?

    public init(username: String?, password: [UInt8]?, clientID: String, listener: String = "", remoteHost: String? = nil,
                certificateIdentity: String? = nil, certificateSerial: String? = nil, certificateFingerprint: String? = nil) {
        self.username = username
        self.password = password
        self.clientID = clientID
        self.listener = listener
        self.remoteHost = remoteHost
        self.certificateIdentity = certificateIdentity
        self.certificateSerial = certificateSerial
        self.certificateFingerprint = certificateFingerprint
    }

    /// The password as text, when it is UTF-8 without NUL (what directories, tokens and C-string
    /// hash functions can take).
    public var passwordText: String? {
        guard let password, !password.contains(0) else { return nil }
        return String(validating: password, as: UTF8.self)
    }

    /// A verified client certificate authenticates this client (no password asked for).
    public var isCertificateOnly: Bool { certificateIdentity != nil && username == nil && password == nil }
}

extension AuthenticationRequest: CustomStringConvertible {
    /// Never prints the password.
    public var description: String {
        "AuthenticationRequest(user: \(username ?? "-"), client id: \(clientID), listener: \(listener), password: \(password == nil ? "none" : "<redacted>"))"
    }
}

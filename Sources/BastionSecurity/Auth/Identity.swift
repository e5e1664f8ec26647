/// Who a connection is, as far as authorization cares. The broker builds one per connection after
/// authentication: the username comes from the password file (or another backend), the certificate
/// identity from the verified client certificate. Authorization sees this one value either way.
public struct Identity: Sendable, Hashable, CustomStringConvertible {
    /// The authenticated username; nil for clients that sent none.
    public var username: String?
    /// The MQTT client identifier (after the broker assigned one if the client sent none).
    public var clientID: String
    /// The identity taken from a verified client certificate (e.g. its subject CN); nil without one.
    public var certificateIdentity: String?
    /// Whether the client id is bound to this identity (an `allowed_clients` entry of the user,
    /// its certificate, `require_client_id_equals_username`): only then do client-id rules and
    /// `%c` patterns grant anything. Any client may choose any client id, so a client id alone
    /// proves nothing. Set by `AccessPolicy.bound(_:)`.
    public var clientIDBound: Bool
    /// Roles an identity backend gave this client (LDAP groups through `role_map`), on top of
    /// the roles that list its user name. Names that are not roles of the policy are ignored.
    public var backendRoles: [String]
    /// An identity backend checked the client id (a token naming the client ids it is for), so
    /// `bound(_:)` binds it.
    public var clientIDBoundByBackend: Bool

    public init(username: String?, clientID: String, certificateIdentity: String? = nil, clientIDBound: Bool = false,
                backendRoles: [String] = [], clientIDBoundByBackend: Bool = false) {
        self.username = username
        self.clientID = clientID
        self.certificateIdentity = certificateIdentity
        self.clientIDBound = clientIDBound
        self.backendRoles = backendRoles
        self.clientIDBoundByBackend = clientIDBoundByBackend
    }

    /// Neither a username nor a certificate: rules for `anonymous` apply.
    public var isAnonymous: Bool { username == nil && certificateIdentity == nil }

    public var description: String {
        var parts: [String] = []
        if let username { parts.append("user '\(username)'") }
        if let certificateIdentity { parts.append("certificate '\(certificateIdentity)'") }
        if parts.isEmpty { parts.append("anonymous") }
        parts.append("client id '\(clientID)'")
        return parts.joined(separator: ", ")
    }
}

import BastionCore
import MQTTCodec

/// One backend's answer. The chain stops at the first `allow` or `deny`; `noOpinion` asks the
/// next backend; `unavailable` refuses the login (fail closed) and raises an alert.
public enum BackendDecision: Sendable, Equatable {
    case allow(BackendGrant)
    case deny(BackendDenial)
    /// The backend does not know this user (or this kind of credential).
    case noOpinion
    /// The backend could not decide: down, slow, or it answered something that is not an
    /// answer. The text is for the log.
    case unavailable(String)
}

/// What an `allow` establishes about the client.
public struct BackendGrant: Sendable, Equatable {
    /// The identity's user name (a token's claim, or the CONNECT's user name).
    public var username: String?
    /// Topic rules for this identity; nil when the backend says nothing about topics (the ACL
    /// alone decides), `[]` when it grants nothing.
    public var rules: [BackendACLRule]?
    /// Roles of `auth.roles` the identity has (LDAP groups through `role_map`).
    public var roles: [String]
    /// The backend checked that the client may use its client id.
    public var clientIDBound: Bool
    /// Seconds since 1970 when the credential expires (a token's `exp`): cached decisions do
    /// not outlive it.
    public var expiresAt: Double?
    /// End the session at `expiresAt`.
    public var disconnectAtExpiry: Bool

    public init(username: String?, rules: [BackendACLRule]? = nil, roles: [String] = [], clientIDBound: Bool = false,
                expiresAt: Double? = nil, disconnectAtExpiry: Bool = false) {
        self.username = username
        self.rules = rules
        self.roles = roles
        self.clientIDBound = clientIDBound
        self.expiresAt = expiresAt
        self.disconnectAtExpiry = disconnectAtExpiry
    }
}

/// Why a backend said no.
public struct BackendDenial: Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// Wrong password, unknown user where the backend is authoritative, a forged token.
        case badCredentials
        /// A token past `exp` or before `nbf`.
        case tokenExpired
        /// Valid credentials that may not be used with this client id.
        case clientIDRefused
    }

    public var reason: Reason
    /// For the log; never contains the password or the token.
    public var detail: String

    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    /// The CONNACK refusal and how it counts towards bans.
    var refusal: AuthenticationRefusal {
        switch reason {
        case .badCredentials:
            AuthenticationRefusal(reason: .badUserNameOrPassword, detail: detail, audit: .badPassword, weight: .costly)
        case .tokenExpired:
            AuthenticationRefusal(reason: .badUserNameOrPassword, detail: detail, audit: .tokenExpired, weight: .addressOnly)
        case .clientIDRefused:
            AuthenticationRefusal(reason: .notAuthorized, detail: detail, audit: .clientIDRefused, weight: .none)
        }
    }
}

import MQTTCodec
import NIOCore

// The security fixed points the broker calls (connect, enhanced authentication, subscribe,
// publish-in, deliver-out); BastionSecurity and the identity backends implement them.

/// Who a connected client is, as authentication established it.
public struct ClientIdentity: Sendable, Hashable {
    public var clientID: String
    /// From the password file or a backend, or the certificate identity when the listener maps it.
    public var username: String?
    public var certificateIdentity: String?
    /// Topic rules an identity backend returned for this identity (in addition to the ACL).
    public var backendRules: [BackendACLRule]
    /// Whether a backend answered for this identity's topic access (possibly with no rule at all):
    /// its rules then apply even when no ACL is configured, and what nothing grants is denied.
    public var hasBackendACL: Bool
    /// Roles of the access policy (`auth.roles`) a backend gave this identity (LDAP groups
    /// through `role_map`), in addition to the roles listing the user name.
    public var backendRoles: [String]
    /// A backend checked that this identity may use this client id (a token naming the client
    /// ids it is for): client-id rules and `%c` patterns then grant, as for a bound client id.
    public var clientIDBoundByBackend: Bool
    /// When the credential stops being valid (a token's expiry), for backends configured to end
    /// the session then; nil: never.
    public var expiresAt: NIODeadline?

    public init(clientID: String, username: String?, certificateIdentity: String? = nil, backendRules: [BackendACLRule] = [],
                hasBackendACL: Bool = false, backendRoles: [String] = [], clientIDBoundByBackend: Bool = false,
                expiresAt: NIODeadline? = nil) {
        self.clientID = clientID
        self.username = username
        self.certificateIdentity = certificateIdentity
        self.backendRules = backendRules
        self.hasBackendACL = hasBackendACL || !backendRules.isEmpty
        self.backendRoles = backendRoles
        self.clientIDBoundByBackend = clientIDBoundByBackend
        self.expiresAt = expiresAt
    }
}

/// One ACL rule an identity backend returned, in Mosquitto's terms.
public struct BackendACLRule: Sendable, Hashable {
    public enum Access: String, Sendable, Hashable {
        case read, write, readwrite, deny
        /// Subscribe only (also receive), as `read` in Mosquitto.
        case subscribe
    }

    public var access: Access
    public var filter: String
    /// Which backend returned the rule (`auth.backends[2] postgres`), named by decisions.
    public var source: String

    public init(access: Access, filter: String, source: String = "backend") {
        self.access = access
        self.filter = filter
        self.source = source
    }
}

/// What the CONNECT carried for authentication.
public struct ConnectCredentials: Sendable {
    public var clientID: String
    public var username: String?
    public var password: ByteBuffer?
    public var connection: ConnectionInfo
    /// The client's address (the PROXY header's when there is one), for backends that key on it.
    public var remoteAddress: SocketAddress?

    public init(clientID: String, username: String?, password: ByteBuffer?, connection: ConnectionInfo, remoteAddress: SocketAddress? = nil) {
        self.clientID = clientID
        self.username = username
        self.password = password
        self.connection = connection
        self.remoteAddress = remoteAddress
    }
}

public enum AuthenticationResult: Sendable, Equatable {
    case accepted(ClientIdentity)
    case refused(AuthenticationRefusal)

    /// A refusal that is not evidence of an attack (see `AuthenticationRefusal.weight`).
    public static func refused(_ reason: ReasonCode, _ detail: String, audit: AuthenticationFailureReason) -> AuthenticationResult {
        .refused(AuthenticationRefusal(reason: reason, detail: detail, audit: audit, weight: .none))
    }
}

/// Why authentication failed, as the audit log records it.
public enum AuthenticationFailureReason: String, Sendable, Hashable, CaseIterable {
    /// CONNECT without user name (or certificate) where one is required.
    case noCredentials = "no_credentials"
    case unknownUser = "unknown_user"
    case badPassword = "bad_password"
    case anonymousRefused = "anonymous_refused"
    case certificateRequired = "certificate_required"
    case certificateRejected = "certificate_rejected"
    /// Client id not allowed for this identity (allowlist, id must equal user name, ...).
    case clientIDRefused = "client_id_refused"
    /// A banned user name or client id (address bans are refused earlier).
    case banned
    /// 5.0 enhanced authentication with a method the broker does not support.
    case unsupportedMethod = "unsupported_method"
    /// The authentication backend failed; the client was refused (fail closed).
    case backendError = "backend_error"
    /// The user name is throttled for this source after repeated failures.
    case throttled
    /// A user name longer than the broker accepts, refused before any lookup.
    case usernameTooLong = "username_too_long"
    /// A JWT (or other token) that expired, or is not yet valid.
    case tokenExpired = "token_expired"
}

/// How much a failed authentication tells about an attack.
public enum AuthFailureWeight: Sendable, Hashable {
    /// The broker did real work on a guess: a password was hashed (wrong password, or an unknown
    /// user checked against the dummy hash), a backend was asked, or a certificate was rejected.
    /// Counts per address and per user name.
    case costly
    /// Cheap to refuse but still a failed login attempt (a user name without a password, a
    /// throttled source): counts per address only.
    case addressOnly
    /// Not evidence of an attack (anonymous client refused, client id not allowed for a valid
    /// identity, a banned identity, a backend failure): counted in metrics only.
    case none
}

/// Why a CONNECT was refused by authentication.
public struct AuthenticationRefusal: Sendable, Equatable {
    /// CONNACK reason (3.1.1 gets the nearest return code).
    public var reason: ReasonCode
    /// Why, for the log (never the password).
    public var detail: String
    /// The audit record's reason.
    public var audit: AuthenticationFailureReason
    /// How much the failure counts towards bans and throttles.
    public var weight: AuthFailureWeight

    public init(reason: ReasonCode, detail: String, audit: AuthenticationFailureReason, weight: AuthFailureWeight) {
        self.reason = reason
        self.detail = detail
        self.audit = audit
        self.weight = weight
    }
}

/// Authentication runs off the event loops; the future completes on `eventLoop`.
public protocol Authenticator: Sendable {
    func authenticate(_ credentials: ConnectCredentials, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationResult>
    /// Connect-time rules for an identity established another way (enhanced authentication):
    /// the device allowlist.
    func admit(_ identity: ClientIdentity) -> AuthenticationResult
}

extension Authenticator {
    public func admit(_ identity: ClientIdentity) -> AuthenticationResult { .accepted(identity) }
}

/// Accepts anonymous clients on listeners that allow them; refuses everyone else. Replaced by the
/// password-file authenticator when one is configured.
public struct AnonymousAuthenticator: Authenticator {
    public init() {}

    public func authenticate(_ credentials: ConnectCredentials, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationResult> {
        guard credentials.connection.allowAnonymous else {
            return eventLoop.makeSucceededFuture(.refused(.notAuthorized, "anonymous access is not allowed on \(credentials.connection.listener)", audit: .anonymousRefused))
        }
        let identity = ClientIdentity(clientID: credentials.clientID, username: credentials.username,
                                      certificateIdentity: credentials.connection.certificateIdentity)
        return eventLoop.makeSucceededFuture(.accepted(identity))
    }
}

/// Where blocking work (key derivation, a blocking backend call) runs: never on an event loop.
/// The server implements it with a bounded thread pool.
public protocol BlockingWorkPool: Sendable {
    /// Runs `work` off the event loops; the future completes on `eventLoop`.
    func run<T: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T>
    /// The same on behalf of `source` (a client's address): sources take turns, so one source's
    /// backlog cannot delay another's. Nil when `source` already has its share waiting: the caller
    /// answers "server busy" at once instead of queueing.
    func run<T: Sendable>(on eventLoop: any EventLoop, source: String?, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T>?
}

extension BlockingWorkPool {
    public func run<T: Sendable>(on eventLoop: any EventLoop, source: String?, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T>? {
        run(on: eventLoop, work)
    }
}

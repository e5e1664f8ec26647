import BastionCore
import BastionSecurity
import MQTTCodec
import NIOCore

/// Who a connected client is, as authentication established it.
public struct ClientIdentity: Sendable, Hashable {
    public var clientID: String
    /// From the password file, or the certificate identity when the listener maps it.
    public var username: String?
    public var certificateIdentity: String?

    public init(clientID: String, username: String?, certificateIdentity: String? = nil) {
        self.clientID = clientID
        self.username = username
        self.certificateIdentity = certificateIdentity
    }
}

/// What the CONNECT carried for authentication.
public struct ConnectCredentials: Sendable {
    public var clientID: String
    public var username: String?
    public var password: ByteBuffer?
    public var connection: ConnectionInfo
}

public enum AuthenticationResult: Sendable, Equatable {
    case accepted(ClientIdentity)
    case refused(AuthenticationRefusal)

    /// A refusal that is not evidence of an attack (see `AuthenticationRefusal.weight`).
    public static func refused(_ reason: ReasonCode, _ detail: String, audit: AuditEvent.AuthFailure.Reason) -> AuthenticationResult {
        .refused(AuthenticationRefusal(reason: reason, detail: detail, audit: audit, weight: .none))
    }
}

/// Why a CONNECT was refused by authentication.
public struct AuthenticationRefusal: Sendable, Equatable {
    /// CONNACK reason (3.1.1 gets the nearest return code).
    public var reason: ReasonCode
    /// Why, for the log (never the password).
    public var detail: String
    /// The audit record's reason.
    public var audit: AuditEvent.AuthFailure.Reason
    /// How much the failure counts towards bans and throttles.
    public var weight: AuthFailureWeight

    public init(reason: ReasonCode, detail: String, audit: AuditEvent.AuthFailure.Reason, weight: AuthFailureWeight) {
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

/// Per-connection authorization, consulted on the connection's loop at the fixed points: SUBSCRIBE,
/// PUBLISH in, delivery out. Implementations cache per topic.
public protocol ClientAuthorizer: AnyObject {
    func mayPublish(_ topic: String) -> Bool
    func maySubscribe(_ filter: String) -> Bool
    func mayReceive(_ topic: String) -> Bool
    /// The rule behind the last denial, for the audit log.
    var lastDenialRule: String? { get }
}

extension ClientAuthorizer {
    var lastDenialRule: String? { nil }
}

public protocol AuthorizationPolicy: Sendable {
    func authorizer(for identity: ClientIdentity) -> any ClientAuthorizer
}

/// Used when no access control list is configured.
final class AllowAllAuthorizer: ClientAuthorizer {
    /// Stateless, so every connection shares one.
    nonisolated(unsafe) static let shared = AllowAllAuthorizer()

    func mayPublish(_ topic: String) -> Bool { true }
    func maySubscribe(_ filter: String) -> Bool { true }
    func mayReceive(_ topic: String) -> Bool { true }
}

struct AllowAllPolicy: AuthorizationPolicy {
    func authorizer(for identity: ClientIdentity) -> any ClientAuthorizer { AllowAllAuthorizer() }
}

/// Accepts anonymous clients on listeners that allow them; refuses everyone else. Replaced by the
/// password-file authenticator when one is configured.
struct AnonymousAuthenticator: Authenticator {
    func authenticate(_ credentials: ConnectCredentials, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationResult> {
        guard credentials.connection.allowAnonymous else {
            return eventLoop.makeSucceededFuture(.refused(.notAuthorized, "anonymous access is not allowed on \(credentials.connection.listener)", audit: .anonymousRefused))
        }
        let identity = ClientIdentity(clientID: credentials.clientID, username: credentials.username,
                                      certificateIdentity: credentials.connection.certificateIdentity)
        return eventLoop.makeSucceededFuture(.accepted(identity))
    }
}

import BastionCore
import MQTTCodec
import NIOCore
import Synchronization

/// Authenticates CONNECT: anonymous access where the listener allows it, a verified client
/// certificate, and/or a password checked against the password file. Password hashing runs on a
/// small bounded thread pool, never on an event loop; when the pool's queue is full, further
/// CONNECTs are answered "server busy" (0x89 / 0x03) instead of waiting.
///
/// Every refusal of a claimed user name costs one hash on the same pool, whether the user exists
/// or not and whether a password was sent or not: unknown user, wrong password and missing
/// password take the same time and get the same answer (5.0 0x86, 3.1.1 0x04), so timing does not
/// tell which user names exist. A refused anonymous client gets "not authorized" (0x87 / 0x05).
public final class PasswordAuthenticator: Authenticator {
    let passwordFile: PasswordFile?
    let policy: AccessPolicy?
    let pool: any BlockingWorkPool
    private let pending = Atomic<Int>(0)
    /// Password checks waiting in all. The pool serves addresses in turn (at most 8 waiting each),
    /// so this only bounds memory: a small global cap would let a few addresses fill it and shed
    /// everyone else's logins.
    let maximumPending: Int
    let maximumUsernameLength: Int
    /// Recent successful logins, checked before the pool: a reconnect costs one HMAC, not a KDF.
    let verified = VerifiedCredentialCache()

    public init(passwordFile: PasswordFile?, policy: AccessPolicy?, pool: any BlockingWorkPool, maximumPending: Int = 1024,
         maximumUsernameLength: Int = 256) {
        self.passwordFile = passwordFile
        self.policy = policy
        self.pool = pool
        self.maximumPending = maximumPending
        self.maximumUsernameLength = maximumUsernameLength
    }

    public func authenticate(_ credentials: ConnectCredentials, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationResult> {
        let info = credentials.connection
        let certificate = info.certificateIdentity
        let username = credentials.username.flatMap { $0.isEmpty ? nil : $0 }

        if let username, username.utf8.count > maximumUsernameLength {
            return eventLoop.makeSucceededFuture(.refused(AuthenticationRefusal(
                reason: .badUserNameOrPassword, detail: "user name longer than \(maximumUsernameLength) bytes",
                audit: .usernameTooLong, weight: .addressOnly)))
        }
        // A certificate identity is the username unless the listener also wants a password.
        if let certificate, !info.requirePassword {
            return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(clientID: credentials.clientID, username: certificate, certificateIdentity: certificate)))
        }
        if username == nil, credentials.password == nil, !info.requirePassword {
            guard info.allowAnonymous else {
                return eventLoop.makeSucceededFuture(.refused(.notAuthorized, "anonymous access is not allowed on \(info.listener)", audit: .anonymousRefused))
            }
            return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(clientID: credentials.clientID, username: nil)))
        }
        guard let passwordFile else {
            // Without a password file a claimed user name cannot be trusted: anonymous rules apply.
            guard info.allowAnonymous, !info.requirePassword else {
                return eventLoop.makeSucceededFuture(.refused(AuthenticationRefusal(
                    reason: .badUserNameOrPassword, detail: "no password file is configured", audit: .noCredentials, weight: .addressOnly)))
            }
            return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(clientID: credentials.clientID, username: nil)))
        }
        if info.requirePassword, let certificate, let username, certificate != username {
            return eventLoop.makeSucceededFuture(.refused(AuthenticationRefusal(
                reason: .notAuthorized, detail: "user name does not match the client certificate", audit: .clientIDRefused, weight: .addressOnly)))
        }
        let complete = username != nil && credentials.password != nil
        let bytes = credentials.password.map { Array($0.readableBytesView) }
        if complete, let username, let bytes, verified.contains(username: username, password: bytes) {
            return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(clientID: credentials.clientID, username: username, certificateIdentity: certificate)))
        }
        guard pending.add(1, ordering: .relaxed).newValue <= maximumPending else {
            pending.subtract(1, ordering: .relaxed)
            return eventLoop.makeSucceededFuture(.refused(.serverBusy, "too many authentications in progress", audit: .backendError))
        }
        // Half a credential pair is checked against the dummy hash like an unknown user, so it
        // answers in the same time as a wrong password; it is not a password guess for the user.
        let clientID = credentials.clientID
        let queued = pool.run(on: eventLoop, source: Self.host(of: info.remoteAddress)) { [self] () -> AuthenticationResult in
            defer { pending.subtract(1, ordering: .relaxed) }
            guard complete, let username, passwordFile.verify(username: username, password: bytes) else {
                if !complete { _ = passwordFile.verify(username: "", password: bytes) }
                return .refused(AuthenticationRefusal(
                    reason: .badUserNameOrPassword, detail: complete ? "bad user name or password" : "incomplete credentials",
                    audit: complete ? .badPassword : .noCredentials, weight: complete ? .costly : .addressOnly))
            }
            if let bytes { verified.insert(username: username, password: bytes) }
            return allowlisted(ClientIdentity(clientID: clientID, username: username, certificateIdentity: certificate))
        }
        guard let queued else {
            // This address already has its share of password checks waiting: shed it now rather
            // than let it queue in front of everyone else's.
            pending.subtract(1, ordering: .relaxed)
            return eventLoop.makeSucceededFuture(.refused(.serverBusy, "too many authentications in progress from this address",
                                                          audit: .backendError))
        }
        return queued
    }

    /// The address part of `host:port` or `[v6]:port`.
    static func host(of address: String) -> String? {
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            return String(address[address.index(after: address.startIndex)..<close])
        }
        guard let colon = address.lastIndex(of: ":") else { return address.isEmpty || address == "unknown" ? nil : address }
        return String(address[..<colon])
    }

    public func admit(_ identity: ClientIdentity) -> AuthenticationResult { allowlisted(identity) }

    /// The device allowlist (which client ids a user may connect with).
    private func allowlisted(_ identity: ClientIdentity) -> AuthenticationResult {
        if let policy {
            let decision = policy.mayConnect(identity.securityIdentity)
            guard decision.allowed else { return .refused(.notAuthorized, "client id not allowed: \(decision.rule)", audit: .clientIDRefused) }
        }
        return .accepted(identity)
    }
}

extension ClientIdentity {
    public var securityIdentity: Identity {
        Identity(username: username, clientID: clientID, certificateIdentity: certificateIdentity,
                 backendRoles: backendRoles, clientIDBoundByBackend: clientIDBoundByBackend)
    }
}

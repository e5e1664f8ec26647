import BastionSecurity
import MQTTCodec
import NIOCore
import NIOPosix
import Synchronization

/// Authenticates CONNECT: anonymous access where the listener allows it, a verified client
/// certificate, and/or a password checked against the password file. Password hashing (PBKDF2,
/// ~100 ms) runs on a small bounded thread pool, never on an event loop; when the pool's queue is
/// full, further CONNECTs are answered "server busy" instead of waiting.
///
/// Unknown user and wrong password take the same time and get the same answer (spec: 5.0 0x86,
/// 3.1.1 0x04); a refused anonymous client gets "not authorized" (0x87 / 0x05).
final class PasswordAuthenticator: Authenticator {
    let passwordFile: PasswordFile?
    let policy: AccessPolicy?
    let pool: NIOThreadPool
    private let pending = Atomic<Int>(0)
    let maximumPending: Int

    init(passwordFile: PasswordFile?, policy: AccessPolicy?, pool: NIOThreadPool, maximumPending: Int = 256) {
        self.passwordFile = passwordFile
        self.policy = policy
        self.pool = pool
        self.maximumPending = maximumPending
    }

    func authenticate(_ credentials: ConnectCredentials, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationResult> {
        let info = credentials.connection
        let certificate = info.certificateIdentity
        let username = credentials.username.flatMap { $0.isEmpty ? nil : $0 }

        // A certificate identity is the username unless the listener also wants a password.
        if let certificate, !info.requirePassword {
            return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(clientID: credentials.clientID, username: certificate, certificateIdentity: certificate)))
        }
        guard let username, let password = credentials.password else {
            if credentials.password != nil || username != nil || info.requirePassword {
                // Half of a credential pair, or a two-factor listener without a password.
                return eventLoop.makeSucceededFuture(.refused(.badUserNameOrPassword, "incomplete credentials"))
            }
            guard info.allowAnonymous else {
                return eventLoop.makeSucceededFuture(.refused(.notAuthorized, "anonymous access is not allowed on \(info.listener)"))
            }
            return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(clientID: credentials.clientID, username: nil)))
        }
        guard let passwordFile else {
            // Without a password file a claimed user name cannot be trusted: anonymous rules apply.
            guard info.allowAnonymous else {
                return eventLoop.makeSucceededFuture(.refused(.badUserNameOrPassword, "no password file is configured"))
            }
            return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(clientID: credentials.clientID, username: nil)))
        }
        if info.requirePassword, let certificate, certificate != username {
            return eventLoop.makeSucceededFuture(.refused(.notAuthorized, "user name does not match the client certificate"))
        }
        guard pending.add(1, ordering: .relaxed).newValue <= maximumPending else {
            pending.subtract(1, ordering: .relaxed)
            return eventLoop.makeSucceededFuture(.refused(.serverBusy, "too many authentications in progress"))
        }
        let bytes = Array(password.readableBytesView)
        let clientID = credentials.clientID
        return pool.runIfActive(eventLoop: eventLoop) { [self] in
            defer { pending.subtract(1, ordering: .relaxed) }
            guard passwordFile.verify(username: username, password: bytes) else {
                return .refused(.badUserNameOrPassword, "bad user name or password")
            }
            return allowlisted(ClientIdentity(clientID: clientID, username: username, certificateIdentity: certificate))
        }
    }

    func admit(_ identity: ClientIdentity) -> AuthenticationResult { allowlisted(identity) }

    /// The device allowlist (which client ids a user may connect with).
    private func allowlisted(_ identity: ClientIdentity) -> AuthenticationResult {
        if let policy {
            let decision = policy.mayConnect(identity.securityIdentity)
            guard decision.allowed else { return .refused(.notAuthorized, "client id not allowed: \(decision.rule)") }
        }
        return .accepted(identity)
    }
}

extension ClientIdentity {
    var securityIdentity: Identity {
        Identity(username: username, clientID: clientID, certificateIdentity: certificateIdentity)
    }
}

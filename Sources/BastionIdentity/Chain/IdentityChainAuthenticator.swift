import BastionCore
import BastionSecurity
import MQTTCodec
import NIOCore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Authenticates CONNECT through the identity chain. The listener rules stay those of the
/// password authenticator: anonymous clients where the listener allows them, a verified client
/// certificate as the identity (backends are asked about certificate-only clients only when one
/// opts in, e.g. a webhook with `certificates: true`), the two-factor listener's name check.
/// Credentials then go through the chain, with the decision cache in front; the device allowlist
/// applies to whatever identity comes out.
///
/// The chain runs as a task off the event loops; a cache hit answers on the loop at once.
public final class IdentityChainAuthenticator: Authenticator {
    public let chain: IdentityChain
    let policy: AccessPolicy?
    let cache: DecisionCache?
    let maximumUsernameLength: Int
    /// Seconds since 1970 (token expiry is wall-clock time).
    let wallClock: @Sendable () -> Double

    public init(chain: IdentityChain, policy: AccessPolicy?, cache: DecisionCache?, maximumUsernameLength: Int = 256,
                wallClock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.chain = chain
        self.policy = policy
        self.cache = cache
        self.maximumUsernameLength = maximumUsernameLength
        self.wallClock = wallClock
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
        var request = AuthenticationRequest(
            username: username, password: credentials.password.map { Array($0.readableBytesView) }, clientID: credentials.clientID,
            listener: info.listener, remoteHost: Self.host(of: info.remoteAddress), certificateIdentity: certificate,
            certificateSerial: info.certificateSerial, certificateFingerprint: info.certificateFingerprint)

        if let certificate, !info.requirePassword {
            // The certificate is the identity; a password sent beside it is not checked.
            request.username = nil
            request.password = nil
            guard chain.anyApplies(to: request) else {
                return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(
                    clientID: credentials.clientID, username: certificate, certificateIdentity: certificate)))
            }
            return decide(request, on: eventLoop)
        }
        if username == nil, credentials.password == nil, !info.requirePassword {
            guard info.allowAnonymous else {
                return eventLoop.makeSucceededFuture(.refused(.notAuthorized, "anonymous access is not allowed on \(info.listener)", audit: .anonymousRefused))
            }
            return eventLoop.makeSucceededFuture(allowlisted(ClientIdentity(clientID: credentials.clientID, username: nil)))
        }
        if info.requirePassword, let certificate, let username, certificate != username {
            return eventLoop.makeSucceededFuture(.refused(AuthenticationRefusal(
                reason: .notAuthorized, detail: "user name does not match the client certificate", audit: .clientIDRefused, weight: .addressOnly)))
        }
        // A user name without a password (or, on a two-factor listener, a password without a
        // user name) costs what a wrong password costs and gets the same answer.
        if request.password == nil || (info.requirePassword && username == nil) {
            let promise = eventLoop.makePromise(of: AuthenticationResult.self)
            let chain = self.chain
            let incomplete = request
            promise.completeWithTask {
                await chain.unknownUserCostOf(incomplete)
                return .refused(AuthenticationRefusal(
                    reason: .badUserNameOrPassword, detail: "incomplete credentials", audit: .noCredentials, weight: .addressOnly))
            }
            return promise.futureResult
        }
        return decide(request, on: eventLoop)
    }

    public func admit(_ identity: ClientIdentity) -> AuthenticationResult { allowlisted(identity) }

    private func decide(_ request: AuthenticationRequest, on eventLoop: any EventLoop) -> EventLoopFuture<AuthenticationResult> {
        if let cache, let hit = cache.lookup(request) {
            return eventLoop.makeSucceededFuture(result(of: hit, for: request))
        }
        let promise = eventLoop.makePromise(of: AuthenticationResult.self)
        promise.completeWithTask { [self] in
            let outcome = await chain.evaluate(request)
            let decided = cacheable(outcome, for: request)
            if let decided, let cache {
                var expiresAt: Double?
                if case .allowed(let grant, _) = decided { expiresAt = grant.expiresAt }
                cache.insert(decided, for: request, expiresAt: expiresAt, wallNow: wallClock())
            }
            return decided.map { result(of: $0, for: request) } ?? refusal(for: outcome, request)
        }
        return promise.futureResult
    }

    /// The outcomes worth remembering: decisions, not failures to decide.
    private func cacheable(_ outcome: IdentityChain.Outcome, for request: AuthenticationRequest) -> DecisionCache.Outcome? {
        switch outcome {
        case .allowed(let grant, let backend):
            return .allowed(grant, by: backend)
        case .denied(let denial, let backend):
            var refusal = denial.refusal
            refusal.detail = "\(backend): \(denial.detail)"
            return .refused(refusal)
        case .unknown:
            // A certificate no backend objects to stands as the transport verified it.
            if request.isCertificateOnly { return .allowed(BackendGrant(username: request.certificateIdentity), by: "certificate") }
            return .refused(AuthenticationRefusal(
                reason: .badUserNameOrPassword, detail: "no identity backend knows this user", audit: .unknownUser, weight: .costly))
        case .unavailable, .busy:
            return nil
        }
    }

    private func refusal(for outcome: IdentityChain.Outcome, _ request: AuthenticationRequest) -> AuthenticationResult {
        switch outcome {
        case .busy(let backend):
            return .refused(AuthenticationRefusal(
                reason: .serverBusy, detail: "identity backend \(backend) is busy", audit: .backendError, weight: .none))
        case .unavailable(let backend, _):
            return .refused(AuthenticationRefusal(
                reason: .serverUnavailable, detail: "identity backend \(backend) is unavailable", audit: .backendError, weight: .none))
        case .allowed, .denied, .unknown:
            return .refused(AuthenticationRefusal(reason: .unspecifiedError, detail: "no decision", audit: .backendError, weight: .none))
        }
    }

    private func result(of outcome: DecisionCache.Outcome, for request: AuthenticationRequest) -> AuthenticationResult {
        switch outcome {
        case .refused(let refusal):
            return .refused(refusal)
        case .allowed(let grant, _):
            var expiresAt: NIODeadline?
            if grant.disconnectAtExpiry, let wallExpiry = grant.expiresAt {
                let remaining = max(0, wallExpiry - wallClock())
                expiresAt = .now() + .milliseconds(Int64(min(remaining, 1e9) * 1000))
            }
            let identity = ClientIdentity(
                clientID: request.clientID, username: grant.username ?? request.username ?? request.certificateIdentity,
                certificateIdentity: request.certificateIdentity, backendRules: grant.rules ?? [], hasBackendACL: grant.rules != nil,
                backendRoles: grant.roles, clientIDBoundByBackend: grant.clientIDBound, expiresAt: expiresAt)
            return allowlisted(identity)
        }
    }

    /// The device allowlist (which client ids an identity may connect with).
    private func allowlisted(_ identity: ClientIdentity) -> AuthenticationResult {
        if let policy {
            let decision = policy.mayConnect(identity.securityIdentity)
            guard decision.allowed else { return .refused(.notAuthorized, "client id not allowed: \(decision.rule)", audit: .clientIDRefused) }
        }
        return .accepted(identity)
    }

    /// `127.0.0.1:5300` → `127.0.0.1`, `[::1]:5300` → `::1`.
    static func host(of address: String) -> String? {
        if address.hasPrefix("[") , let close = address.firstIndex(of: "]") {
            return String(address[address.index(after: address.startIndex)..<close])
        }
        guard let colon = address.lastIndex(of: ":") else { return address.isEmpty || address == "unknown" ? nil : address }
        return String(address[..<colon])
    }
}

extension IdentityChain {
    /// What answering "unknown user" costs (see `init(_:alerts:unknownUserCost:)`).
    func unknownUserCostOf(_ request: AuthenticationRequest) async {
        await unknownUserCost?(request)
    }
}

import BastionCore
@testable import BastionIdentity
import BastionSecurity
import MQTTCodec
import NIOCore
import Testing

@Suite struct ChainAuthenticatorTests {
    func authenticator(_ backends: [any IdentityBackend], policy: AccessPolicy? = nil, cache: DecisionCache? = nil,
                       wallClock: @escaping @Sendable () -> Double = { 1000 }) -> IdentityChainAuthenticator {
        IdentityChainAuthenticator(chain: IdentityChain(backends.map { .init($0) }), policy: policy, cache: cache, wallClock: wallClock)
    }

    func result(_ authenticator: IdentityChainAuthenticator, _ credentials: ConnectCredentials) async throws -> AuthenticationResult {
        try await authenticator.authenticate(credentials, on: testLoop).get()
    }

    @Test func anAllowCarriesTheGrantIntoTheIdentity() async throws {
        let rules = [BackendACLRule(access: .write, filter: "plant/1/#", source: "b")]
        let backend = ScriptedBackend("b", always: .allow(BackendGrant(
            username: "device-7", rules: rules, roles: ["operators"], clientIDBound: true, expiresAt: 1060, disconnectAtExpiry: true)))
        guard case .accepted(let identity) = try await result(authenticator([backend]), connectCredentials()) else {
            Issue.record("expected accepted")
            return
        }
        #expect(identity.username == "device-7")
        #expect(identity.backendRules == rules)
        #expect(identity.hasBackendACL)
        #expect(identity.backendRoles == ["operators"])
        #expect(identity.clientIDBoundByBackend)
        #expect(identity.expiresAt != nil)
    }

    @Test func aGrantWithoutRulesLeavesTopicsToTheACL() async throws {
        let backend = ScriptedBackend("b", always: .allow(BackendGrant(username: "alice")))
        guard case .accepted(let identity) = try await result(authenticator([backend]), connectCredentials()) else {
            Issue.record("expected accepted")
            return
        }
        #expect(!identity.hasBackendACL)
        #expect(identity.expiresAt == nil)
    }

    @Test func refusalsMapToReasonCodes() async throws {
        func code(_ decision: BackendDecision) async throws -> String {
            guard case .refused(let refusal) = try await result(authenticator([ScriptedBackend("b", always: decision)]), connectCredentials())
            else { return "accepted" }
            return "\(refusal.reason.rawValue) \(refusal.audit.rawValue)"
        }
        #expect(try await code(.deny(BackendDenial(.badCredentials, "x"))) == "134 bad_password")
        #expect(try await code(.deny(BackendDenial(.tokenExpired, "x"))) == "134 token_expired")
        #expect(try await code(.deny(BackendDenial(.clientIDRefused, "x"))) == "135 client_id_refused")
        #expect(try await code(.unavailable("down")) == "136 backend_error")
        #expect(try await code(.noOpinion) == "134 unknown_user")
    }

    @Test func anonymousAndIncompleteCredentialsFollowTheListener() async throws {
        let backend = ScriptedBackend("b", always: .allow(BackendGrant(username: "alice")))
        let auth = authenticator([backend])
        guard case .accepted(let anonymous) = try await result(auth, connectCredentials(nil, nil, allowAnonymous: true)) else {
            Issue.record("anonymous allowed on this listener")
            return
        }
        #expect(anonymous.username == nil)
        guard case .refused(let refused) = try await result(auth, connectCredentials(nil, nil)) else {
            Issue.record("anonymous refused on this listener")
            return
        }
        #expect(refused.reason == .notAuthorized)
        guard case .refused(let incomplete) = try await result(auth, connectCredentials("alice", nil)) else {
            Issue.record("a user name without a password is refused")
            return
        }
        #expect(incomplete.reason == .badUserNameOrPassword)
        #expect(backend.callCount == 0)
    }

    @Test func certificatesStandUnlessABackendAsksAboutThem() async throws {
        let plain = ScriptedBackend("b", applies: { !$0.isCertificateOnly }) { _ in .deny(BackendDenial(.badCredentials, "x")) }
        guard case .accepted(let identity) = try await result(authenticator([plain]), connectCredentials(nil, nil, certificate: "dev-9")) else {
            Issue.record("a verified certificate authenticates")
            return
        }
        #expect(identity.username == "dev-9" && plain.callCount == 0)

        let revoking = ScriptedBackend("hook", applies: { $0.isCertificateOnly }) { request in
            request.certificateIdentity == "dev-9" ? .deny(BackendDenial(.badCredentials, "revoked")) : .noOpinion
        }
        let auth = authenticator([revoking])
        guard case .refused = try await result(auth, connectCredentials(nil, nil, certificate: "dev-9")) else {
            Issue.record("the webhook may refuse a certificate")
            return
        }
        guard case .accepted(let other) = try await result(auth, connectCredentials(nil, nil, certificate: "dev-10")) else {
            Issue.record("no opinion leaves the certificate standing")
            return
        }
        #expect(other.username == "dev-10")
    }

    @Test func theCacheAnswersRepeatsWithoutTheBackend() async throws {
        let backend = ScriptedBackend("b") { request in
            request.passwordText == "secret" ? .allow(BackendGrant(username: "alice")) : .deny(BackendDenial(.badCredentials, "x"))
        }
        let auth = authenticator([backend], cache: DecisionCache(ttl: .seconds(30)))
        for _ in 0..<5 { _ = try await result(auth, connectCredentials()) }
        #expect(backend.callCount == 1)
        for _ in 0..<3 { _ = try await result(auth, connectCredentials("alice", "wrong")) }
        #expect(backend.callCount == 2)
    }

    @Test func failuresToDecideAreNotCached() async throws {
        let backend = ScriptedBackend("b", always: .unavailable("down"))
        let auth = authenticator([backend], cache: DecisionCache(ttl: .seconds(30)))
        for _ in 0..<3 { _ = try await result(auth, connectCredentials()) }
        #expect(backend.callCount == 3)
    }

    @Test func theAllowlistAppliesToTheBackendsIdentity() async throws {
        let policy = try AccessPolicy.make(aclText: nil, allowedClients: ["device-7": ["line1-*"]])
        let backend = ScriptedBackend("b", always: .allow(BackendGrant(username: "device-7")))
        let auth = authenticator([backend], policy: policy)
        guard case .refused(let refusal) = try await result(auth, connectCredentials(clientID: "other")) else {
            Issue.record("client id outside the allowlist")
            return
        }
        #expect(refusal.reason == .notAuthorized)
        guard case .accepted = try await result(auth, connectCredentials(clientID: "line1-gw")) else {
            Issue.record("client id inside the allowlist")
            return
        }
    }

    @Test func longUserNamesAreRefusedBeforeAnyBackend() async throws {
        let backend = ScriptedBackend("b", always: .allow(BackendGrant(username: "x")))
        let auth = authenticator([backend])
        guard case .refused(let refusal) = try await result(auth, connectCredentials(String(repeating: "a", count: 300))) else {
            Issue.record("expected refusal")
            return
        }
        #expect(refusal.audit == .usernameTooLong && backend.callCount == 0)
    }

    @Test func hostsAreTakenFromAddresses() {
        #expect(IdentityChainAuthenticator.host(of: "127.0.0.1:5000") == "127.0.0.1")
        #expect(IdentityChainAuthenticator.host(of: "[::1]:5000") == "::1")
        #expect(IdentityChainAuthenticator.host(of: "unknown") == nil)
    }
}

import BastionCore
@testable import BastionIdentity
import Crypto
import Foundation
import Testing

@Suite struct JWTBackendTests {
    static let secret = Array("an-hs256-secret-of-at-least-32-bytes!".utf8)
    static let now: Double = 1_700_000_000

    func hmacBackend(_ configure: (inout JWTSettings) -> Void = { _ in }) throws -> JWTBackend {
        var settings = JWTSettings(keys: .sharedSecretFile(Tokens.file(String(decoding: Self.secret, as: UTF8.self) + "\n")),
                                   issuer: "plant-idp", audiences: ["bastion"])
        configure(&settings)
        return try JWTBackend(name: "jwt", settings: settings, keyPrefix: "auth.backends[0]", wallClock: { Self.now })
    }

    func claims(_ extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var claims: [String: JSONValue] = ["sub": "device-7", "iss": "plant-idp", "aud": "bastion", "exp": .number(Self.now + 600)]
        for (key, value) in extra { claims[key] = value }
        return claims
    }

    func token(_ text: String, user: String? = nil, clientID: String = "dev-1") -> AuthenticationRequest {
        request(user, text, clientID: clientID)
    }

    @Test func aValidTokenAllowsItsSubject() async throws {
        let backend = try hmacBackend()
        let jwt = Tokens.hs256(claims(), secret: Self.secret)
        #expect(backend.applies(to: token(jwt)))
        guard case .allow(let grant) = await backend.decide(token(jwt)) else {
            Issue.record("expected allow")
            return
        }
        #expect(grant.username == "device-7")
        #expect(grant.rules == nil)
        #expect(grant.expiresAt == Self.now + 600)
        // The CONNECT may name the same user, not another.
        guard case .allow = await backend.decide(token(jwt, user: "device-7")) else { Issue.record("same user"); return }
        guard case .deny = await backend.decide(token(jwt, user: "mallory")) else { Issue.record("other user"); return }
    }

    @Test func passwordsThatAreNoTokensAreLeftToOthers() throws {
        let backend = try hmacBackend()
        #expect(!backend.applies(to: request("alice", "secret")))
        #expect(!backend.applies(to: request("alice", "a.b")))
        #expect(!backend.applies(to: request("alice", "a.b.c d")))
        #expect(!backend.applies(to: request("alice", nil)))
    }

    @Test func forgedAndDamagedTokensAreDenied() async throws {
        let backend = try hmacBackend()
        let wrongKey = Tokens.hs256(claims(), secret: Array("another-secret-that-is-long-enough-!!".utf8))
        guard case .deny = await backend.decide(token(wrongKey)) else { Issue.record("wrong key"); return }
        var parts = Tokens.hs256(claims(), secret: Self.secret).split(separator: ".").map(String.init)
        parts[1] = Tokens.base64URL(Tokens.json(claims(["sub": "admin"])))
        guard case .deny = await backend.decide(token(parts.joined(separator: "."))) else { Issue.record("edited payload"); return }
        let huge = Tokens.hs256(claims(["pad": .string(String(repeating: "x", count: 9000))]), secret: Self.secret)
        guard case .deny(let denial) = await backend.decide(token(huge)) else { Issue.record("oversized"); return }
        #expect(denial.detail.contains("longer"))
        let critical = Tokens.make(header: ["alg": "HS256", "crit": ["exp"]], claims: claims()) { input in
            Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: Self.secret)))
        }
        guard case .deny = await backend.decide(token(critical)) else { Issue.record("crit"); return }
    }

    @Test func unsignedTokensAreNeverAccepted() async throws {
        let backend = try hmacBackend()
        let unsigned = Tokens.base64URL(Tokens.json(["alg": "none"])) + "." + Tokens.base64URL(Tokens.json(claims())) + ".x"
        #expect(await backend.decide(token(unsigned)) == .noOpinion)
        #expect(JWTAlgorithmName(rawValue: "none") == nil)
    }

    @Test func claimsAreChecked() async throws {
        let backend = try hmacBackend()
        func decide(_ claims: [String: JSONValue]) async -> BackendDecision {
            await backend.decide(token(Tokens.hs256(claims, secret: Self.secret)))
        }
        guard case .deny(let expired) = await decide(claims(["exp": .number(Self.now - 1)])) else { Issue.record("expired"); return }
        #expect(expired.reason == .tokenExpired)
        guard case .deny(let early) = await decide(claims(["nbf": .number(Self.now + 60)])) else { Issue.record("nbf"); return }
        #expect(early.reason == .tokenExpired)
        var noExpiry = claims()
        noExpiry["exp"] = nil
        guard case .deny = await decide(noExpiry) else { Issue.record("exp required"); return }
        guard case .deny = await decide(claims(["aud": "other"])) else { Issue.record("aud"); return }
        guard case .allow = await decide(claims(["aud": ["other", "bastion"]])) else { Issue.record("aud list"); return }
        // Another issuer's token is not this backend's to judge.
        #expect(await decide(claims(["iss": "elsewhere"])) == .noOpinion)
        guard case .deny = await decide(claims(["sub": .number(7)])) else { Issue.record("sub type"); return }
    }

    @Test func leewayToleratesClockSkew() async throws {
        let backend = try hmacBackend { $0.leeway = 30 }
        guard case .allow = await backend.decide(token(Tokens.hs256(claims(["exp": .number(Self.now - 10)]), secret: Self.secret))) else {
            Issue.record("within leeway")
            return
        }
    }

    @Test func clientIDClaimsBindTheClientID() async throws {
        let backend = try hmacBackend { $0.clientIDClaim = "client_ids" }
        let jwt = Tokens.hs256(claims(["client_ids": ["dev-1", "dev-2"]]), secret: Self.secret)
        guard case .allow(let grant) = await backend.decide(token(jwt, clientID: "dev-2")) else { Issue.record("listed id"); return }
        #expect(grant.clientIDBound)
        guard case .deny(let denial) = await backend.decide(token(jwt, clientID: "dev-3")) else { Issue.record("other id"); return }
        #expect(denial.reason == .clientIDRefused)
        guard case .deny = await backend.decide(token(Tokens.hs256(claims(), secret: Self.secret))) else { Issue.record("missing claim"); return }
    }

    @Test func aclClaimsBecomeRules() async throws {
        let backend = try hmacBackend { $0.aclClaims = .init(publish: "mqtt_pub", subscribe: "mqtt_sub") }
        let jwt = Tokens.hs256(claims(["mqtt_pub": ["plant/line1/#"], "mqtt_sub": ["plant/+/status", "cmd/dev-1"]]), secret: Self.secret)
        guard case .allow(let grant) = await backend.decide(token(jwt)) else { Issue.record("allow"); return }
        #expect(grant.rules?.map(\.access) == [.write, .subscribe, .subscribe])
        #expect(grant.rules?.map(\.filter) == ["plant/line1/#", "plant/+/status", "cmd/dev-1"])
        // Configured ACL claims that are absent grant nothing (an empty ACL, not the open default).
        guard case .allow(let bare) = await backend.decide(token(Tokens.hs256(claims(), secret: Self.secret))) else { Issue.record("bare"); return }
        #expect(bare.rules == [])
        guard case .deny = await backend.decide(token(Tokens.hs256(claims(["mqtt_pub": "plant/#"]), secret: Self.secret))) else {
            Issue.record("a string is not an array")
            return
        }
    }

    @Test func secretsMustBeLongEnoughAndSymmetricOnly() {
        #expect(throws: JWTSettingsError.self) {
            _ = try JWTBackend(name: "jwt", settings: JWTSettings(keys: .sharedSecretFile(Tokens.file("short"))), keyPrefix: "k")
        }
        #expect(throws: JWTSettingsError.self) {
            _ = try JWTBackend(name: "jwt", settings: JWTSettings(keys: .sharedSecretFile(Tokens.file(String(repeating: "s", count: 40))),
                                                                    algorithms: [.hs512]), keyPrefix: "k")
        }
        #expect(throws: JWTSettingsError.self) {
            _ = try JWTBackend(name: "jwt", settings: JWTSettings(keys: .sharedSecretFile(Tokens.file(String(repeating: "s", count: 64))),
                                                                    algorithms: [.rs256]), keyPrefix: "k")
        }
    }
}

@Suite struct JWKSBackendTests {
    static let now: Double = 1_700_000_000
    let key = P256.Signing.PrivateKey()

    func backend(_ jwks: String? = nil, algorithms: [JWTAlgorithmName]? = nil) throws -> JWTBackend {
        try JWTBackend(name: "jwks", settings: JWTSettings(keys: .jwksFile(Tokens.file(jwks ?? Tokens.jwks(key.publicKey))), algorithms: algorithms),
                       keyPrefix: "auth.backends[1]", wallClock: { Self.now })
    }

    let claims: [String: JSONValue] = ["sub": "gw-3", "exp": .number(1_700_000_600)]

    @Test func aTokenSignedByAKeyOfTheSetIsAllowed() async throws {
        let backend = try backend()
        guard case .allow(let grant) = await backend.decide(request(nil, Tokens.es256(claims, key: key))) else {
            Issue.record("expected allow")
            return
        }
        #expect(grant.username == "gw-3")
        // Signed by another key with the same kid: a forgery.
        guard case .deny = await backend.decide(request(nil, Tokens.es256(claims, key: P256.Signing.PrivateKey()))) else {
            Issue.record("forged")
            return
        }
        // A key id the set does not have: not this backend's token.
        #expect(await backend.decide(request(nil, Tokens.es256(claims, key: key, kid: "k9"))) == .noOpinion)
    }

    @Test func aPublicKeyCannotBeUsedAsAnHMACSecret() async throws {
        let backend = try backend()
        // The classic confusion: HS256 "signed" with the public key's bytes.
        let confused = Tokens.hs256(claims, secret: Array(key.publicKey.rawRepresentation), kid: "k1")
        #expect(await backend.decide(request(nil, confused)) == .noOpinion)
        let pem = Tokens.hs256(claims, secret: Array(key.publicKey.pemRepresentation.utf8), kid: "k1")
        #expect(await backend.decide(request(nil, pem)) == .noOpinion)
        #expect(throws: JWTSettingsError.self) { _ = try self.backend(algorithms: [.es256, .hs256]) }
    }

    @Test func keySetsAreChecked() throws {
        #expect(throws: JWTSettingsError.self) { _ = try self.backend("{\"keys\": []}") }
        #expect(throws: JWTSettingsError.self) { _ = try self.backend("not json") }
        let weakRSA = "{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"r\", \"n\": \"\(Tokens.base64URL([UInt8](repeating: 0xC5, count: 128)))\", \"e\": \"AQAB\"}]}"
        #expect(throws: JWTSettingsError.self) { _ = try self.backend(weakRSA, algorithms: [.rs256]) }
        let raw = Array(key.publicKey.rawRepresentation)
        let withPrivate = "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"kid\": \"k\", \"x\": \"\(Tokens.base64URL(raw[0..<32]))\", \"y\": \"\(Tokens.base64URL(raw[32...]))\", \"d\": \"\(Tokens.base64URL(Array(key.rawRepresentation)))\"}]}"
        #expect(throws: JWTSettingsError.self) { _ = try self.backend(withPrivate) }
        // Only keys usable for the configured algorithms count.
        #expect(throws: JWTSettingsError.self) { _ = try self.backend(algorithms: [.rs256]) }
    }
}

import JWTKit
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `type: jwt` (shared secret) and `type: jwks` (public keys): the CONNECT password carries a
/// JWT. A token this backend is not meant for — another algorithm, another issuer, a key id it
/// does not have — gets no opinion, so several token backends can sit in one chain; a token it
/// is meant for is verified here and only here: a bad signature or claim is a deny.
public struct JWTBackend: IdentityBackend {
    public let name: String
    let settings: JWTSettings
    let ring: JWTKeyRing
    let rules: JWTClaimRules
    let wallClock: @Sendable () -> Double

    /// Most keys tried for a token without `kid`.
    static let maximumCandidates = 8

    /// Reads and checks the keys; errors name the setting (`keyPrefix.jwks_file`, …).
    public init(name: String, settings: JWTSettings, keyPrefix: String,
                wallClock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws(JWTSettingsError) {
        self.name = name
        self.settings = settings
        self.ring = try JWTKeyRing.load(settings, keyPrefix: keyPrefix)
        self.rules = JWTClaimRules(settings: settings, source: name)
        self.wallClock = wallClock
    }

    public func applies(to request: AuthenticationRequest) -> Bool {
        guard let password = request.password else { return false }
        return TokenShape.looksLikeToken(password)
    }

    public func decide(_ request: AuthenticationRequest) async -> BackendDecision {
        guard let password = request.password else { return .noOpinion }
        let shape: TokenShape
        do {
            shape = try TokenShape(password)
        } catch {
            switch error {
            case .tooLong: return .deny(BackendDenial(.badCredentials, "token longer than \(TokenShape.maximumLength) bytes"))
            case .malformed(let why): return .deny(BackendDenial(.badCredentials, "malformed token: \(why)"))
            }
        }
        guard let algorithm = JWTAlgorithmName(rawValue: shape.algorithm), settings.algorithms.contains(algorithm) else {
            return .noOpinion
        }
        if let issuer = settings.issuer, shape.unverifiedClaims["iss"]?.string != issuer { return .noOpinion }
        let candidates = ring.candidates(algorithm: algorithm, keyID: shape.keyID)
        guard !candidates.isEmpty else { return .noOpinion }
        for key in candidates.prefix(Self.maximumCandidates) {
            if let claims = await Self.verify(shape.text, with: key) {
                return rules.decide(claims.values, request: request, now: wallClock())
            }
        }
        return .deny(BackendDenial(.badCredentials, "the token's signature does not verify"))
    }

    /// The claims when `key` verifies the signature; nil otherwise. A collection per call keeps
    /// verifications of one key from queueing behind each other on one actor.
    static func verify(_ token: String, with key: JWTKeyRing.Key) async -> RawClaims? {
        let collection = JWTKeyCollection()
        do {
            switch key.material {
            case .secret(let secret):
                let digest: DigestAlgorithm = switch key.algorithm {
                case .hs384: .sha384
                case .hs512: .sha512
                default: .sha256
                }
                await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: digest)
            case .jwk(let jwk):
                try await collection.add(jwk: jwk, isDefault: true)
            }
            return try await collection.verify(token, as: RawClaims.self)
        } catch {
            return nil
        }
    }
}

/// Every claim of a token, as JSON; the checks are `JWTClaimRules`' (with the broker's clock),
/// so jwt-kit's own claim verification has nothing to do.
struct RawClaims: JWTPayload {
    let values: [String: JSONValue]

    init(from decoder: any Decoder) throws {
        values = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

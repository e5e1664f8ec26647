/// A `jwt` or `jwks` backend's configuration (docs/auth-backends.md).
public struct JWTSettings: Sendable, Hashable {
    public enum Keys: Sendable, Hashable {
        /// `type: jwt`: an HMAC secret (HS256/384/512) read from a file.
        case sharedSecretFile(String)
        /// `type: jwks`: public keys (RSA, EC, Ed25519) from a JWKS file, re-read on reload.
        case jwksFile(String)
    }

    /// The claims whose string arrays become ACL rules, by access.
    public struct ACLClaims: Sendable, Hashable {
        public var publish: String?
        public var subscribe: String?
        public var readwrite: String?
        public var deny: String?

        public init(publish: String? = nil, subscribe: String? = nil, readwrite: String? = nil, deny: String? = nil) {
            self.publish = publish
            self.subscribe = subscribe
            self.readwrite = readwrite
            self.deny = deny
        }

        var isEmpty: Bool { publish == nil && subscribe == nil && readwrite == nil && deny == nil }
    }

    public var keys: Keys
    public var algorithms: [JWTAlgorithmName]
    /// Required `iss`, when set.
    public var issuer: String?
    /// `aud` must name one of these, when any is set.
    public var audiences: [String]
    public var usernameClaim: String
    /// A claim naming the client id(s) the token may be used with (string or array).
    public var clientIDClaim: String?
    public var aclClaims: ACLClaims
    /// End the session when the token expires (5.0 DISCONNECT 0xA0 Maximum connect time).
    public var disconnectOnExpiry: Bool
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    public var leeway: Double

    public init(keys: Keys, algorithms: [JWTAlgorithmName]? = nil, issuer: String? = nil, audiences: [String] = [],
                usernameClaim: String = "sub", clientIDClaim: String? = nil, aclClaims: ACLClaims = ACLClaims(),
                disconnectOnExpiry: Bool = false, leeway: Double = 0) {
        self.keys = keys
        switch keys {
        case .sharedSecretFile: self.algorithms = algorithms ?? [.hs256]
        case .jwksFile: self.algorithms = algorithms ?? [.rs256, .es256]
        }
        self.issuer = issuer
        self.audiences = audiences
        self.usernameClaim = usernameClaim
        self.clientIDClaim = clientIDClaim
        self.aclClaims = aclClaims
        self.disconnectOnExpiry = disconnectOnExpiry
        self.leeway = leeway
    }
}

/// The JWS algorithms a backend may accept. `none` is not one of them, ever.
public enum JWTAlgorithmName: String, Sendable, Hashable, CaseIterable {
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case eddsa = "EdDSA"

    public var isHMAC: Bool { self == .hs256 || self == .hs384 || self == .hs512 }

    /// Shortest HMAC secret allowed (RFC 7518 §3.2: at least the hash's size).
    var minimumSecretLength: Int {
        switch self {
        case .hs384: 48
        case .hs512: 64
        default: 32
        }
    }
}

/// A configuration value a JWT backend cannot use; `key` is the setting's name.
public struct JWTSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var message: String

    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}

import Crypto
import _CryptoExtras
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The SCRAM mechanisms (RFC 5802, RFC 7677) MQTT 5.0 enhanced authentication offers.
public enum ScramAlgorithm: String, Sendable, Hashable, CaseIterable {
    case sha256 = "SCRAM-SHA-256"
    case sha512 = "SCRAM-SHA-512"

    /// The MQTT Authentication Method name.
    public var mechanism: String { rawValue }
    /// The password-file scheme name (`$scram-sha-256$…`).
    public var scheme: String { rawValue.lowercased() }
    /// Bytes of a key, a signature and a proof.
    public var keyLength: Int { self == .sha256 ? 32 : 64 }

    public init?(mechanism: String) { self.init(rawValue: mechanism) }

    init?(scheme: Substring) {
        guard let found = Self.allCases.first(where: { $0.scheme == scheme }) else { return nil }
        self = found
    }

    public func hash(_ data: some DataProtocol) -> [UInt8] {
        switch self {
        case .sha256: Array(SHA256.hash(data: data))
        case .sha512: Array(SHA512.hash(data: data))
        }
    }

    public func hmac(key: some ContiguousBytes, _ data: some DataProtocol) -> [UInt8] {
        let key = SymmetricKey(data: key)
        return switch self {
        case .sha256: Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
        case .sha512: Array(HMAC<SHA512>.authenticationCode(for: data, using: key))
        }
    }

    /// Hi(password, salt, i) of RFC 5802: PBKDF2 with this hash's HMAC. CPU-heavy by design.
    public func saltedPassword(_ password: some DataProtocol, salt: [UInt8], iterations: Int) -> [UInt8]? {
        let function: KDF.Insecure.PBKDF2.HashFunction = self == .sha256 ? .sha256 : .sha512
        // Existing deployments may use the RFC minimum (4096) or fewer; the unchecked variant
        // verifies them as written.
        guard let key = try? KDF.Insecure.PBKDF2.deriveKey(
            from: password, salt: salt, using: function, outputByteCount: keyLength, unsafeUncheckedRounds: iterations)
        else { return nil }
        return key.withUnsafeBytes { Array($0) }
    }
}

/// What the server keeps for a SCRAM user (RFC 5802 §3): never the password, only what checks
/// a proof (StoredKey) and proves the server to the client (ServerKey).
public struct ScramStoredKeys: Sendable, Hashable {
    public var algorithm: ScramAlgorithm
    public var iterations: Int
    public var salt: [UInt8]
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    /// Fewest iterations a new entry gets (RFC 7677 asks for at least 4096).
    public static let minimumIterations = 4096
    public static let recommendedIterations = 4096
    public static let saltLength = 16

    public init(algorithm: ScramAlgorithm, iterations: Int, salt: [UInt8], storedKey: [UInt8], serverKey: [UInt8]) {
        self.algorithm = algorithm
        self.iterations = iterations
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    /// Derives the keys from a password (for `bastion passwd --scram` and tests).
    public static func derive(password: some DataProtocol, algorithm: ScramAlgorithm, iterations: Int = recommendedIterations,
                              salt: [UInt8]? = nil) -> ScramStoredKeys? {
        let salt = salt ?? randomBytes(saltLength)
        guard let salted = algorithm.saltedPassword(password, salt: salt, iterations: iterations) else { return nil }
        let clientKey = algorithm.hmac(key: salted, Array("Client Key".utf8))
        let serverKey = algorithm.hmac(key: salted, Array("Server Key".utf8))
        return ScramStoredKeys(algorithm: algorithm, iterations: iterations, salt: salt,
                               storedKey: algorithm.hash(clientKey), serverKey: serverKey)
    }

    /// Whether `password` yields these keys: the full derivation, compared in constant time.
    public func matches(_ password: some DataProtocol) -> Bool {
        guard let salted = algorithm.saltedPassword(password, salt: salt, iterations: iterations) else { return false }
        let clientKey = algorithm.hmac(key: salted, Array("Client Key".utf8))
        return constantTimeEqual(algorithm.hash(clientKey), storedKey)
    }

    /// `$scram-sha-256$ITERATIONS$SALT$STOREDKEY$SERVERKEY`, base64 fields.
    public var encoded: String {
        "$\(algorithm.scheme)$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(storedKey).base64EncodedString())$\(Data(serverKey).base64EncodedString())"
    }

    /// Cryptographically secure random bytes (salts, nonces).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

/// Compares without an early exit, so the time taken does not tell where two values differ.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in 0..<a.count { difference |= a[i] ^ b[i] }
    return difference == 0
}

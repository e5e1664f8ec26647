import Crypto
import _CryptoExtras
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One password hash in Mosquitto's encoding:
/// - `$6$SALT$HASH`: HASH = SHA-512(password ‖ salt) (Mosquitto ≤ 1.6, `mosquitto_passwd -H sha512`);
/// - `$7$ITERATIONS$SALT$HASH`: HASH = PBKDF2-HMAC-SHA512(password, salt, ITERATIONS, 64 bytes)
///   (Mosquitto 2.x default).
/// - `$scram-sha-256$ITERATIONS$SALT$STOREDKEY$SERVERKEY` (and `$scram-sha-512$…`): SCRAM stored
///   keys (RFC 5802), which also check a plain password and serve MQTT 5.0 enhanced
///   authentication (Bastion only; Mosquitto does not read them).
/// SALT and HASH are standard padded base64. The plain text never leaves `matches`.
public struct PasswordHash: Sendable, Hashable {
    public enum Scheme: Sendable, Hashable {
        case sha512
        case pbkdf2SHA512(iterations: Int)
        case scram(ScramAlgorithm, iterations: Int)
    }

    public let scheme: Scheme
    let salt: [UInt8]
    /// The hash; for SCRAM the StoredKey.
    let digest: [UInt8]
    /// SCRAM only: the ServerKey.
    let serverKey: [UInt8]
    /// The text as read from the file, kept so that rewriting a file leaves other users' lines unchanged.
    public let encoded: String

    /// What `bastion passwd` and the generated admin entry use: about 50 ms per login on a
    /// 2-core server (BENCHMARKS.md, "Login cost"), so the bounded hashing pool answers a burst of
    /// logins within the connect timeout. Higher counts in a file are honoured as they are.
    public static let recommendedIterations = 50_000
    /// Mosquitto 2.x rejects salts of any other length when it reads a file.
    public static let saltLength = 12
    static let digestLength = 64
    /// A file can not make one login cost more than this (a typo like 2100000000 would stall the broker).
    public static let maximumIterations = 10_000_000

    enum ParseError: Error {
        case unknownScheme
        case malformed
        case badIterations
        case badSalt
        case badDigest
    }

    /// Parses a hash string as stored in a password file or a database column; nil when it is
    /// not one of the schemes above.
    public static func parse(_ text: String) -> PasswordHash? { try? PasswordHash(parsing: text) }

    /// Parses `$6$…`, `$7$…` or `$scram-sha-…$…`; anything else (e.g. a plain-text password) is an error.
    init(parsing text: String) throws(ParseError) {
        let fields = text.split(separator: "$", omittingEmptySubsequences: false)
        if fields.count >= 2, fields[0].isEmpty, let algorithm = ScramAlgorithm(scheme: fields[1]) {
            guard fields.count == 6 else { throw .malformed }
            guard let iterations = Int(fields[2]), iterations >= 1, iterations <= Self.maximumIterations else { throw .badIterations }
            guard let salt = Data(base64Encoded: String(fields[3])), !salt.isEmpty else { throw .badSalt }
            guard let stored = Data(base64Encoded: String(fields[4])), stored.count == algorithm.keyLength,
                  let server = Data(base64Encoded: String(fields[5])), server.count == algorithm.keyLength
            else { throw .badDigest }
            scheme = .scram(algorithm, iterations: iterations)
            self.salt = Array(salt)
            self.digest = Array(stored)
            self.serverKey = Array(server)
            self.encoded = text
            return
        }
        // "$7$i$s$h" splits into ["", "7", i, s, h]; "$6$s$h" into ["", "6", s, h].
        guard fields.count >= 4, fields[0].isEmpty else { throw .unknownScheme }
        let saltField: Substring
        let digestField: Substring
        switch fields[1] {
        case "6":
            guard fields.count == 4 else { throw .malformed }
            scheme = .sha512
            saltField = fields[2]
            digestField = fields[3]
        case "7":
            guard fields.count == 5 else { throw .malformed }
            guard let iterations = Int(fields[2]), iterations >= 1, iterations <= Self.maximumIterations else {
                throw .badIterations
            }
            scheme = .pbkdf2SHA512(iterations: iterations)
            saltField = fields[3]
            digestField = fields[4]
        default:
            throw .unknownScheme
        }
        guard let salt = Data(base64Encoded: String(saltField)), !salt.isEmpty else { throw .badSalt }
        guard let digest = Data(base64Encoded: String(digestField)), digest.count == Self.digestLength else {
            throw .badDigest
        }
        self.salt = Array(salt)
        self.digest = Array(digest)
        self.serverKey = []
        self.encoded = text
    }

    private init(scheme: Scheme, salt: [UInt8], digest: [UInt8], serverKey: [UInt8] = []) {
        self.scheme = scheme
        self.salt = salt
        self.digest = digest
        self.serverKey = serverKey
        let saltText = Data(salt).base64EncodedString()
        let digestText = Data(digest).base64EncodedString()
        switch scheme {
        case .sha512: encoded = "$6$\(saltText)$\(digestText)"
        case .pbkdf2SHA512(let iterations): encoded = "$7$\(iterations)$\(saltText)$\(digestText)"
        case .scram(let algorithm, let iterations):
            encoded = ScramStoredKeys(algorithm: algorithm, iterations: iterations, salt: salt, storedKey: digest, serverKey: serverKey).encoded
        }
    }

    /// A new SCRAM entry (stored keys) with a fresh random salt.
    public static func makeScram(password: some DataProtocol, algorithm: ScramAlgorithm,
                                 iterations: Int = ScramStoredKeys.recommendedIterations) throws -> PasswordHash {
        guard let keys = ScramStoredKeys.derive(password: password, algorithm: algorithm, iterations: iterations) else {
            throw PasswordFileError(source: "password hashing", message: "PBKDF2 failed")
        }
        return PasswordHash(scheme: .scram(algorithm, iterations: iterations), salt: keys.salt, digest: keys.storedKey, serverKey: keys.serverKey)
    }

    /// The SCRAM stored keys, for an entry of a SCRAM scheme.
    public var scramKeys: ScramStoredKeys? {
        guard case .scram(let algorithm, let iterations) = scheme else { return nil }
        return ScramStoredKeys(algorithm: algorithm, iterations: iterations, salt: salt, storedKey: digest, serverKey: serverKey)
    }

    /// A new `$7$` hash with a fresh random salt, readable by Mosquitto 2.x.
    public static func make(password: some DataProtocol, iterations: Int = recommendedIterations) throws -> PasswordHash {
        let salt = randomBytes(saltLength)
        let scheme = Scheme.pbkdf2SHA512(iterations: iterations)
        guard let digest = derive(scheme: scheme, password: password, salt: salt) else {
            throw PasswordFileError(source: "password hashing", message: "PBKDF2 failed")
        }
        return PasswordHash(scheme: scheme, salt: salt, digest: digest.withUnsafeBytes { Array($0) })
    }

    /// A hash no password matches, as costly to check as one `make` writes: checked for unknown
    /// user names so that they take as long to refuse as wrong passwords.
    public static func unmatchable() -> PasswordHash {
        dummy(.pbkdf2SHA512(iterations: recommendedIterations))
    }

    /// A hash no password matches, shaped like `scheme`, so that checking a password against it
    /// costs what checking a real entry costs.
    static func dummy(_ scheme: Scheme) -> PasswordHash {
        if case .scram(let algorithm, _) = scheme {
            return PasswordHash(scheme: scheme, salt: randomBytes(ScramStoredKeys.saltLength), digest: randomBytes(algorithm.keyLength),
                                serverKey: randomBytes(algorithm.keyLength))
        }
        return PasswordHash(scheme: scheme, salt: randomBytes(saltLength), digest: randomBytes(digestLength))
    }

    /// Whether `password` produces this hash. Always does the full derivation, and compares in
    /// constant time (swift-crypto's `SymmetricKey` equality).
    public func matches(_ password: some DataProtocol) -> Bool {
        if let keys = scramKeys { return keys.matches(password) }
        guard let derived = Self.derive(scheme: scheme, password: password, salt: salt) else { return false }
        return derived == SymmetricKey(data: digest)
    }

    /// True when the hash is weaker than what `bastion passwd` writes today.
    public var isWeak: Bool {
        switch scheme {
        case .sha512: true
        case .pbkdf2SHA512(let iterations): iterations < Self.recommendedIterations
        case .scram(_, let iterations): iterations < ScramStoredKeys.minimumIterations
        }
    }

    private static func derive(scheme: Scheme, password: some DataProtocol, salt: [UInt8]) -> SymmetricKey? {
        switch scheme {
        case .sha512:
            var hasher = SHA512()
            hasher.update(data: password)
            hasher.update(data: salt)
            return SymmetricKey(data: hasher.finalize())
        case .scram:
            return nil
        case .pbkdf2SHA512(let iterations):
            // Existing Mosquitto files use as few as 101 iterations; verifying them needs the
            // unchecked variant. New entries always use `recommendedIterations`.
            return try? KDF.Insecure.PBKDF2.deriveKey(
                from: password, salt: salt, using: .sha512,
                outputByteCount: digestLength, unsafeUncheckedRounds: iterations)
        }
    }

    private static func randomBytes(_ count: Int) -> [UInt8] {
        // SystemRandomNumberGenerator is cryptographically secure (getrandom / arc4random).
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

extension PasswordHash: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    /// Never prints salt or digest.
    public var description: String {
        switch scheme {
        case .sha512: "$6$ (salted SHA-512)"
        case .pbkdf2SHA512(let iterations): "$7$ (PBKDF2-SHA512, \(iterations) iterations)"
        case .scram(let algorithm, let iterations): "$\(algorithm.scheme)$ (\(algorithm.mechanism) stored keys, \(iterations) iterations)"
        }
    }
}

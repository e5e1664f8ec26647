import BastionSecurity
import HummingbirdBcrypt

/// A password hash read from a database column: Mosquitto's `$6$` / `$7$`, Bastion's SCRAM
/// stored keys (`$scram-sha-256$…`), or bcrypt (`$2a$`, `$2b$`, `$2y$`).
enum StoredPasswordHash: Sendable {
    case mosquitto(PasswordHash)
    case bcrypt(String)

    /// Most bcrypt rounds (2^cost) a stored hash may ask for: a typo must not make one login
    /// take minutes of the hashing pool.
    static let maximumBcryptCost = 16

    init?(_ text: String) {
        if let hash = PasswordHash.parse(text) {
            self = .mosquitto(hash)
            return
        }
        let bytes = Array(text.utf8)
        // $2b$12$ + 53 characters of salt and hash.
        guard bytes.count == 60, text.hasPrefix("$2a$") || text.hasPrefix("$2b$") || text.hasPrefix("$2y$"),
              bytes[6] == UInt8(ascii: "$"), let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)),
              cost >= 4, cost <= Self.maximumBcryptCost
        else { return nil }
        self = .bcrypt(text)
    }

    /// The full check, always (CPU-heavy: run it on the blocking pool). A password with a NUL
    /// byte never matches: bcrypt and the Mosquitto tools take C strings.
    func matches(_ password: [UInt8]) -> Bool {
        guard !password.contains(0) else { return false }
        switch self {
        case .mosquitto(let hash):
            return hash.matches(password)
        case .bcrypt(let hash):
            // bcrypt reads at most 72 bytes; a longer password is checked on its first 72.
            guard let text = String(validating: password, as: UTF8.self) else { return false }
            return Bcrypt.verify(text, hash: hash)
        }
    }

    var scramKeys: ScramStoredKeys? {
        if case .mosquitto(let hash) = self { return hash.scramKeys }
        return nil
    }
}

import Foundation
import HummingbirdOTP
import Synchronization

/// RFC 6238 time-based one-time passwords (SHA-1, 6 digits, 30 s steps: what authenticator apps
/// use), computed by HummingbirdOTP. A code is accepted for the current step and one step either
/// side (clock drift), and each step only once per user (a code seen by a shoulder-surfer or a
/// proxy log cannot be replayed).
final class TOTPVerifier: Sendable {
    static let step = 30
    private let lastUsedStep = Mutex<[String: Int64]>([:])

    /// A new secret: 32 characters of the base32 alphabet (160 bits). HummingbirdOTP keys the
    /// HMAC with the secret's UTF-8 bytes and base32-encodes those bytes for authenticator apps.
    static func newSecret() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var generator = SystemRandomNumberGenerator()
        return String((0..<32).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }

    static func code(secret: String, at time: Double) -> String {
        let value = TOTP(secret: secret).compute(date: Date(timeIntervalSince1970: time))
        let digits = String(value)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The otpauth:// URI authenticator apps read (from the QR code).
    static func provisioningURI(secret: String, user: String, issuer: String = "Bastion") -> String {
        TOTP(secret: secret).createAuthenticatorURL(label: "\(issuer):\(user)", issuer: issuer)
    }

    /// The secret in base32, for typing into an app by hand.
    static func base32(_ secret: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var out = ""
        var buffer = 0
        var bits = 0
        for byte in secret.utf8 {
            buffer = buffer << 8 | Int(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return out
    }

    /// Checks `code` for `user`; on success the step is used up.
    func verify(code: String, secret: String, user: String, now: Double) -> Bool {
        let trimmed = code.filter { !$0.isWhitespace }
        guard trimmed.count == 6, trimmed.allSatisfy(\.isASCII), trimmed.allSatisfy(\.isNumber) else { return false }
        let current = Int64(now) / Int64(Self.step)
        var matched: Int64?
        // Every candidate is computed and compared, so the time taken does not say which matched.
        for candidate in (current - 1)...(current + 1) {
            let expected = Self.code(secret: secret, at: Double(candidate * Int64(Self.step)))
            if constantTimeEqual(Array(expected.utf8), Array(trimmed.utf8)) { matched = candidate }
        }
        guard let matched else { return false }
        return lastUsedStep.withLock { table in
            if let last = table[user], matched <= last { return false }
            table[user] = matched
            return true
        }
    }
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) {
        difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return difference == 0
}

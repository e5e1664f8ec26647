import Crypto
import Foundation

/// A user nkey (Ed25519) from its seed, as the nkeys format defines it: base32 (RFC 4648, no
/// padding) of a two-byte prefix, the 32-byte seed and a CRC-16 (XMODEM, little endian).
/// A user seed starts with `SU`, its public key with `U`.
public struct NKeyPair: Sendable {
    public let publicKey: String
    private let signingKey: Curve25519.Signing.PrivateKey

    static let seedPrefix: UInt8 = 18 << 3  // 'S'
    static let userPrefix: UInt8 = 20 << 3  // 'U'

    public init(seed: String) throws(NATSError) {
        let trimmed = seed.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Base32.decode(trimmed), raw.count == 2 + 32 + 2 else {
            throw .nkeySeedInvalid("not a base32 seed of the expected length")
        }
        let body = raw[0..<34]
        let crc = UInt16(raw[34]) | UInt16(raw[35]) << 8
        guard CRC16.checksum(body) == crc else { throw .nkeySeedInvalid("checksum mismatch") }
        // The first 5 bits say "seed", the next 5 the key type.
        guard raw[0] & 0xF8 == Self.seedPrefix else { throw .nkeySeedInvalid("not a seed") }
        let type = (raw[0] & 0x07) << 5 | (raw[1] & 0xF8) >> 3
        guard type == Self.userPrefix else { throw .nkeySeedInvalid("not a user seed (SU…)") }
        do {
            signingKey = try Curve25519.Signing.PrivateKey(rawRepresentation: raw[2..<34])
        } catch {
            throw .nkeySeedInvalid("not an Ed25519 seed")
        }
        publicKey = Self.encode(prefix: Self.userPrefix, key: Array(signingKey.publicKey.rawRepresentation))
    }

    /// Reads a seed from a file holding it alone, or a creds file whose seed sits between
    /// `-----BEGIN USER NKEY SEED-----` lines.
    public init(seedFile path: String) throws(NATSError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .credentialsUnreadable(path: path)
        }
        guard let line = text.split(whereSeparator: \.isNewline)
            .map({ $0.trimmingCharacters(in: .whitespaces) })
            .first(where: { $0.hasPrefix("SU") })
        else { throw .nkeySeedInvalid("no SU… seed in \(path)") }
        try self.init(seed: line)
    }

    /// Signs the server's nonce; CONNECT carries the signature as unpadded base64url.
    public func sign(nonce: String) -> String {
        // Signing with a valid key does not fail.
        let signature = try! signingKey.signature(for: Data(nonce.utf8))
        return Self.base64URL(signature)
    }

    public func signature(for data: Data) -> Data {
        try! signingKey.signature(for: data)
    }

    static func encode(prefix: UInt8, key: [UInt8]) -> String {
        var raw = [prefix] + key
        let crc = CRC16.checksum(raw[...])
        raw.append(UInt8(crc & 0xFF))
        raw.append(UInt8(crc >> 8))
        return Base32.encode(raw)
    }

    static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int(buffer >> UInt32(bits - 5) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int(buffer << UInt32(5 - bits) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for char in text.utf8 {
            let value: UInt8
            switch char {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = char - UInt8(ascii: "A")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = char - UInt8(ascii: "2") + 26
            default: return nil
            }
            buffer = buffer << 5 | UInt32(value)
            bits += 5
            if bits >= 8 {
                out.append(UInt8(buffer >> UInt32(bits - 8) & 0xFF))
                bits -= 8
            }
        }
        return out
    }
}

/// CRC-16/XMODEM (polynomial 0x1021, initial value 0), as nkeys uses.
enum CRC16 {
    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? crc << 1 ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}

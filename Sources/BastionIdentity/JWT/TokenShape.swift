#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A compact JWS (`HEADER.PAYLOAD.SIGNATURE`, base64url) taken apart without trusting any of it:
/// enough to tell whether a password is a token, which algorithm and key it names, and which
/// issuer it claims — so the right backend verifies it.
struct TokenShape: Sendable {
    /// Tokens longer than this are refused before any parsing (a CONNECT may carry 64 KiB).
    static let maximumLength = 8192

    let text: String
    let algorithm: String
    let keyID: String?
    /// Unverified: only for routing a token to the backend it is meant for.
    let unverifiedClaims: [String: JSONValue]

    /// Whether `bytes` have the form of a compact JWS: three base64url parts. Cheap; no decoding.
    static func looksLikeToken(_ bytes: [UInt8]) -> Bool {
        var dots = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "."): dots += 1
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"):
                continue
            default: return false
            }
        }
        return dots == 2 && bytes.first != UInt8(ascii: ".")
    }

    enum Problem: Error, Equatable {
        case tooLong
        case malformed(String)
    }

    init(_ bytes: [UInt8]) throws(Problem) {
        guard bytes.count <= Self.maximumLength else { throw .tooLong }
        guard Self.looksLikeToken(bytes) else { throw .malformed("not a compact JWS") }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else { throw .malformed("empty part") }
        guard let headerBytes = Self.base64URLDecode(parts[0]), let header = JSONValue.object(from: headerBytes) else {
            throw .malformed("header is not base64url JSON")
        }
        guard let algorithm = header["alg"]?.string else { throw .malformed("header has no alg") }
        // RFC 7515 §4.1.11: extensions the recipient must understand; we understand none.
        guard header["crit"] == nil else { throw .malformed("critical header extensions are not supported") }
        if let kid = header["kid"], kid.string == nil { throw .malformed("kid is not a string") }
        guard let payloadBytes = Self.base64URLDecode(parts[1]), let claims = JSONValue.object(from: payloadBytes) else {
            throw .malformed("payload is not base64url JSON")
        }
        self.text = String(decoding: bytes, as: UTF8.self)
        self.algorithm = algorithm
        self.keyID = header["kid"]?.string
        self.unverifiedClaims = claims
    }

    static func base64URLDecode(_ part: some Collection<UInt8>) -> [UInt8]? {
        var text = String(decoding: part, as: UTF8.self)
        text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.utf8.count % 4 != 0 { text.append("=") }
        return Data(base64Encoded: text).map(Array.init)
    }
}

@testable import BastionIdentity
import Crypto
import Foundation

/// Builds compact JWS tokens by hand, so tests can also make the malformed and hostile ones.
enum Tokens {
    static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func json(_ object: [String: JSONValue]) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try! encoder.encode(object))
    }

    static func make(header: [String: JSONValue], claims: [String: JSONValue], sign: ([UInt8]) -> [UInt8]) -> String {
        let input = base64URL(json(header)) + "." + base64URL(json(claims))
        return input + "." + base64URL(sign(Array(input.utf8)))
    }

    static func hs256(_ claims: [String: JSONValue], secret: [UInt8], kid: String? = nil) -> String {
        var header: [String: JSONValue] = ["alg": "HS256", "typ": "JWT"]
        if let kid { header["kid"] = .string(kid) }
        return make(header: header, claims: claims) { input in
            Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: secret)))
        }
    }

    static func es256(_ claims: [String: JSONValue], key: P256.Signing.PrivateKey, kid: String? = "k1") -> String {
        var header: [String: JSONValue] = ["alg": "ES256"]
        if let kid { header["kid"] = .string(kid) }
        return make(header: header, claims: claims) { input in
            Array(try! key.signature(for: input).rawRepresentation)
        }
    }

    static func jwks(_ key: P256.Signing.PublicKey, kid: String? = "k1") -> String {
        let raw = Array(key.rawRepresentation)
        var object: [String: JSONValue] = ["kty": "EC", "crv": "P-256", "x": .string(base64URL(raw[0..<32])), "y": .string(base64URL(raw[32...]))]
        if let kid { object["kid"] = .string(kid) }
        return String(decoding: json(["keys": .array([.object(object)])]), as: UTF8.self)
    }

    static func file(_ text: String) -> String {
        let path = NSTemporaryDirectory() + "bastion-identity-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

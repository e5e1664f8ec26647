import JWTKit
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The verification keys of one JWT backend, read and checked when the configuration is loaded
/// (and again on every reload). Each key serves a fixed set of algorithms chosen here, never by
/// the token: an HMAC secret only HS*, an RSA key only RS*/PS*, an EC key only the ES* of its
/// curve — so a token cannot make a public key act as an HMAC secret (algorithm confusion).
struct JWTKeyRing: Sendable {
    enum Material: Sendable {
        case secret([UInt8])
        case jwk(JWK)
    }

    struct Key: Sendable {
        /// nil for a shared secret and for a JWKS key without `kid`.
        let keyID: String?
        let algorithm: JWTAlgorithmName
        let material: Material
    }

    let keys: [Key]

    static let maximumKeys = 100
    static let maximumFileSize = 1024 * 1024

    static func load(_ settings: JWTSettings, keyPrefix: String) throws(JWTSettingsError) -> JWTKeyRing {
        switch settings.keys {
        case .sharedSecretFile(let path):
            return try loadSecret(path: path, algorithms: settings.algorithms, key: "\(keyPrefix).secret_file")
        case .jwksFile(let path):
            return try loadJWKS(path: path, algorithms: settings.algorithms, key: "\(keyPrefix).jwks_file")
        }
    }

    /// The keys that may verify a token with this header: for a `kid`, the keys with that id;
    /// without one, every key for the algorithm.
    func candidates(algorithm: JWTAlgorithmName, keyID: String?) -> [Key] {
        keys.filter { key in
            guard key.algorithm == algorithm else { return false }
            guard let keyID, case .jwk = key.material else { return true }
            return key.keyID == keyID
        }
    }

    private static func read(_ path: String, key: String) throws(JWTSettingsError) -> Data {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw JWTSettingsError(key: key, "cannot read \(path): \(error.localizedDescription)")
        }
        guard data.count <= maximumFileSize else { throw JWTSettingsError(key: key, "\(path) is larger than 1 MiB") }
        return data
    }

    private static func loadSecret(path: String, algorithms: [JWTAlgorithmName], key: String) throws(JWTSettingsError) -> JWTKeyRing {
        if let asymmetric = algorithms.first(where: { !$0.isHMAC }) {
            throw JWTSettingsError(key: key, "a shared secret verifies only HS256, HS384 and HS512, not \(asymmetric.rawValue); use type: jwks for public keys")
        }
        var secret = Array(try read(path, key: key))
        // A trailing newline is an artefact of editors and `echo`, not part of the secret.
        while let last = secret.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { secret.removeLast() }
        let needed = algorithms.map(\.minimumSecretLength).max() ?? 32
        guard secret.count >= needed else {
            throw JWTSettingsError(key: key, "the secret in \(path) is \(secret.count) bytes; \(algorithms.map(\.rawValue).joined(separator: ", ")) needs at least \(needed)")
        }
        return JWTKeyRing(keys: algorithms.map { Key(keyID: nil, algorithm: $0, material: .secret(secret)) })
    }

    private static func loadJWKS(path: String, algorithms: [JWTAlgorithmName], key: String) throws(JWTSettingsError) -> JWTKeyRing {
        if let symmetric = algorithms.first(where: \.isHMAC) {
            throw JWTSettingsError(key: key, "a JWKS holds public keys; \(symmetric.rawValue) needs a shared secret (type: jwt, secret_file)")
        }
        let data = try read(path, key: key)
        guard let document = JSONValue.object(from: data), let entries = document["keys"]?.array else {
            throw JWTSettingsError(key: key, "\(path) is not a JWKS (a JSON object with a \"keys\" array)")
        }
        guard entries.count <= maximumKeys else { throw JWTSettingsError(key: key, "\(path) has more than \(maximumKeys) keys") }
        var keys: [Key] = []
        for (index, entry) in entries.enumerated() {
            guard let object = entry.object else { throw JWTSettingsError(key: key, "\(path) keys[\(index)] is not an object") }
            // Encryption keys and secrets have no place in a verification key set.
            if let use = object["use"]?.string, use != "sig" { continue }
            guard let type = object["kty"]?.string else { throw JWTSettingsError(key: key, "\(path) keys[\(index)] has no kty") }
            let served: [JWTAlgorithmName]
            switch (type, object["crv"]?.string) {
            case ("RSA", _):
                guard let modulus = object["n"]?.string, let bits = TokenShape.base64URLDecode(Array(modulus.utf8)).map({ $0.drop { $0 == 0 }.count * 8 }),
                      object["e"]?.string != nil
                else { throw JWTSettingsError(key: key, "\(path) keys[\(index)]: RSA key without n or e") }
                guard bits >= 2048 else { throw JWTSettingsError(key: key, "\(path) keys[\(index)]: RSA keys must have at least 2048 bits (this one has \(bits))") }
                served = [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512]
            case ("EC", "P-256"): served = [.es256]
            case ("EC", "P-384"): served = [.es384]
            case ("EC", "P-521"): served = [.es512]
            case ("OKP", "Ed25519"): served = [.eddsa]
            case ("oct", _):
                continue
            default:
                throw JWTSettingsError(key: key, "\(path) keys[\(index)]: unsupported key type \(type) \(object["crv"]?.string ?? "")")
            }
            if object["d"] != nil { throw JWTSettingsError(key: key, "\(path) keys[\(index)] contains a private key; publish only public keys") }
            var usable = served.filter(algorithms.contains)
            if let declared = object["alg"]?.string {
                usable = usable.filter { $0.rawValue == declared }
            }
            guard !usable.isEmpty else { continue }
            let keyID = object["kid"]?.string
            for algorithm in usable {
                var jwkObject = object
                jwkObject["alg"] = .string(algorithm.rawValue)
                jwkObject["kid"] = .string(keyID ?? "bastion-key-\(index)")
                let jwk: JWK
                do {
                    let json = String(decoding: try JSONEncoder().encode(jwkObject), as: UTF8.self)
                    jwk = try JWK(json: json)
                } catch {
                    throw JWTSettingsError(key: key, "\(path) keys[\(index)] cannot be used: \(error)")
                }
                keys.append(Key(keyID: keyID, algorithm: algorithm, material: .jwk(jwk)))
            }
        }
        guard !keys.isEmpty else {
            throw JWTSettingsError(key: key, "\(path) has no signing key for \(algorithms.map(\.rawValue).joined(separator: ", "))")
        }
        return JWTKeyRing(keys: keys)
    }
}

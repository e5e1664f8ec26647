import Crypto
import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One subjectAltName entry as an operator writes it: `DNS:host`, `IP:10.0.0.1`, `URI:urn:x`,
/// `email:a@b` — or a bare value, which is an IP address if it parses as one and a DNS name otherwise.
public struct SubjectAltName: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case dns = "DNS"
        case ip = "IP"
        case uri = "URI"
        case email = "email"
    }

    public var kind: Kind
    public var value: String
    /// Network-order address bytes for `.ip`.
    fileprivate var addressBytes: [UInt8]

    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let colon = trimmed.firstIndex(of: ":") {
            let prefix = trimmed[..<colon].lowercased()
            let rest = String(trimmed[trimmed.index(after: colon)...])
            switch prefix {
            case "dns": try self.init(kind: .dns, value: rest); return
            case "ip": try self.init(kind: .ip, value: rest); return
            case "uri": try self.init(kind: .uri, value: rest); return
            case "email": try self.init(kind: .email, value: rest); return
            default: break  // bare IPv6 address, or a typo caught below
            }
        }
        if Self.parseIP(trimmed) != nil {
            try self.init(kind: .ip, value: trimmed)
        } else {
            try self.init(kind: .dns, value: trimmed)
        }
    }

    public init(kind: Kind, value: String) throws {
        self.kind = kind
        self.value = value
        self.addressBytes = []
        guard !value.isEmpty else {
            throw PKIError(.invalidArgument, "empty \(kind.rawValue) subject alternative name")
        }
        switch kind {
        case .ip:
            var address = value
            if address.hasPrefix("["), address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
            guard let bytes = Self.parseIP(address) else {
                throw PKIError(.invalidArgument, "\"\(value)\" is not an IPv4 or IPv6 address")
            }
            self.value = address
            self.addressBytes = bytes
        case .dns:
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.*")
            guard value.allSatisfy({ allowed.contains($0) }), !value.hasPrefix("."), !value.contains("..") else {
                throw PKIError(
                    .invalidArgument,
                    "\"\(value)\" is not a DNS name (use DNS:, IP:, URI: or email: to say what it is)"
                )
            }
        case .uri:
            guard value.contains(":"), value.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                throw PKIError(.invalidArgument, "\"\(value)\" is not a URI (expected scheme:rest)")
            }
        case .email:
            guard value.contains("@"), value.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                throw PKIError(.invalidArgument, "\"\(value)\" is not an e-mail address")
            }
        }
    }

    public var description: String { "\(kind.rawValue):\(value)" }

    var generalName: GeneralName {
        switch kind {
        case .dns: return .dnsName(value)
        case .ip: return .ipAddress(ASN1OctetString(contentBytes: addressBytes[...]))
        case .uri: return .uniformResourceIdentifier(value)
        case .email: return .rfc822Name(value)
        }
    }

    static func parseIP(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

/// Pure certificate issuance: keys, names and times go in, a signed certificate comes out. The profiles
/// follow what TLS stacks expect today: P-256 keys, SHA-256 signatures, SKI/AKI, critical basic
/// constraints and key usage, and an explicit extended key usage on every leaf.
public enum CertificateIssuer {
    public static let caLifetimeDays = 3650
    /// Browsers and most TLS clients refuse server certificates valid for more than 398 days.
    public static let serverLifetimeDays = 397
    public static let clientLifetimeDays = 365
    /// Certificates start a few minutes in the past so that peers with a slightly slow clock accept them.
    public static let backdate: TimeInterval = 300

    /// 159 random bits, positive and 20 octets at most once DER-encoded (RFC 5280 4.1.2.2); a
    /// random 20-byte value with its top bit set would need a 21st, sign, octet.
    public static func randomSerialNumber() -> Certificate.SerialNumber {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = bytes[0] & 0x7F | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    public static func newKey() -> Certificate.PrivateKey {
        Certificate.PrivateKey(P256.Signing.PrivateKey())
    }

    public static func keyPEM(_ key: Certificate.PrivateKey) throws -> String {
        try key.serializeAsPEM().pemString + "\n"
    }

    public static func certificatePEM(_ certificate: Certificate) throws -> String {
        try certificate.serializeAsPEM().pemString + "\n"
    }

    /// A self-signed root CA. The default path length 0 lets it issue only leaf certificates.
    public static func makeCA(
        commonName: String,
        key: Certificate.PrivateKey,
        now: Date,
        days: Int = caLifetimeDays,
        maxPathLength: Int? = 0,
        serialNumber: Certificate.SerialNumber = randomSerialNumber()
    ) throws -> Certificate {
        let name = try DistinguishedName {
            OrganizationName("Bastion")
            CommonName(commonName)
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: maxPathLength))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: key.publicKey)
        }
        return try Certificate(
            version: .v3,
            serialNumber: serialNumber,
            publicKey: key.publicKey,
            notValidBefore: now - backdate,
            notValidAfter: now + TimeInterval(days) * 86_400,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: key
        )
    }

    /// A TLS server certificate for `names` (at least one). The subject CN is the first name.
    public static func issueServer(
        names: [SubjectAltName],
        publicKey: Certificate.PublicKey,
        issuer: Certificate,
        issuerKey: Certificate.PrivateKey,
        now: Date,
        days: Int = serverLifetimeDays,
        crlDistributionPoint: String? = nil,
        serialNumber: Certificate.SerialNumber = randomSerialNumber()
    ) throws -> Certificate {
        guard let first = names.first else {
            throw PKIError(.invalidArgument, "a server certificate needs at least one --san")
        }
        return try issue(
            subject: DistinguishedName { CommonName(first.value) },
            publicKey: publicKey,
            issuer: issuer,
            issuerKey: issuerKey,
            notBefore: now - backdate,
            notAfter: now + TimeInterval(days) * 86_400,
            extendedKeyUsage: [.serverAuth],
            names: names,
            crlDistributionPoint: crlDistributionPoint,
            serialNumber: serialNumber
        )
    }

    /// A TLS client certificate whose subject CN is `commonName`.
    public static func issueClient(
        commonName: String,
        names: [SubjectAltName] = [],
        publicKey: Certificate.PublicKey,
        issuer: Certificate,
        issuerKey: Certificate.PrivateKey,
        now: Date,
        days: Int = clientLifetimeDays,
        crlDistributionPoint: String? = nil,
        serialNumber: Certificate.SerialNumber = randomSerialNumber()
    ) throws -> Certificate {
        guard !commonName.isEmpty else {
            throw PKIError(.invalidArgument, "a client certificate needs a name")
        }
        return try issue(
            subject: DistinguishedName { CommonName(commonName) },
            publicKey: publicKey,
            issuer: issuer,
            issuerKey: issuerKey,
            notBefore: now - backdate,
            notAfter: now + TimeInterval(days) * 86_400,
            extendedKeyUsage: [.clientAuth],
            names: names,
            crlDistributionPoint: crlDistributionPoint,
            serialNumber: serialNumber
        )
    }

    /// The general leaf profile (also used by tests to make deliberately odd certificates).
    /// `extendedKeyUsage == nil` omits the extension.
    public static func issue(
        subject: DistinguishedName,
        publicKey: Certificate.PublicKey,
        issuer: Certificate,
        issuerKey: Certificate.PrivateKey,
        notBefore: Date,
        notAfter: Date,
        isCertificateAuthority: Bool = false,
        extendedKeyUsage: [ExtendedKeyUsage.Usage]?,
        names: [SubjectAltName],
        crlDistributionPoint: String? = nil,
        serialNumber: Certificate.SerialNumber = randomSerialNumber()
    ) throws -> Certificate {
        guard issuerKey.publicKey == issuer.publicKey else {
            throw PKIError(.keyMismatch, "the CA key does not belong to the CA certificate")
        }
        var extensions = Certificate.Extensions()
        if isCertificateAuthority {
            try extensions.append(
                Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: 0), critical: true)
            )
            try extensions.append(
                Certificate.Extension(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true), critical: true)
            )
        } else {
            try extensions.append(Certificate.Extension(BasicConstraints.notCertificateAuthority, critical: true))
            try extensions.append(Certificate.Extension(KeyUsage(digitalSignature: true), critical: true))
        }
        if let extendedKeyUsage {
            try extensions.append(Certificate.Extension(ExtendedKeyUsage(extendedKeyUsage), critical: false))
        }
        if !names.isEmpty {
            try extensions.append(
                Certificate.Extension(SubjectAlternativeNames(names.map(\.generalName)), critical: false)
            )
        }
        try extensions.append(Certificate.Extension(SubjectKeyIdentifier(hash: publicKey), critical: false))
        if let ski = try issuer.extensions.subjectKeyIdentifier {
            try extensions.append(
                Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: ski.keyIdentifier), critical: false)
            )
        }
        if let crlDistributionPoint {
            try extensions.append(crlDistributionPointsExtension(uri: crlDistributionPoint))
        }
        guard let algorithm = CertificateRevocationList.signatureAlgorithm(for: issuer.publicKey) else {
            throw PKIError(.unsupported, "cannot sign with a \(issuer.publicKey) CA key")
        }
        return try Certificate(
            version: .v3,
            serialNumber: serialNumber,
            publicKey: publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: issuer.subject,
            subject: subject,
            signatureAlgorithm: algorithm,
            extensions: extensions,
            issuerPrivateKey: issuerKey
        )
    }
}

extension CertificateIssuer {
    /// RFC 5280 §4.2.1.13 with one distribution point naming `uri`. Tells relying parties where the
    /// CA publishes its CRL (swift-certificates has no type for this extension).
    public static func crlDistributionPointsExtension(uri: String) throws -> Certificate.Extension {
        try validateCRLURL(uri)
        let context0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        var coder = DER.Serializer()
        try coder.appendConstructedNode(identifier: .sequence) { coder in  // CRLDistributionPoints
            try coder.appendConstructedNode(identifier: .sequence) { coder in  // DistributionPoint
                try coder.appendConstructedNode(identifier: context0) { coder in  // distributionPoint
                    try coder.appendConstructedNode(identifier: context0) { coder in  // fullName
                        try coder.serialize(GeneralName.uniformResourceIdentifier(uri))
                    }
                }
            }
        }
        return Certificate.Extension(oid: [2, 5, 29, 31], critical: false, value: coder.serializedBytes[...])
    }

    public static func validateCRLURL(_ uri: String) throws {
        let lower = uri.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") || lower.hasPrefix("ldap://"),
            uri.count > 8, uri.allSatisfy({ $0.isASCII && !$0.isWhitespace })
        else {
            throw PKIError(.invalidArgument, "\"\(uri)\" is not a CRL URL (expected http://, https:// or ldap://)")
        }
    }
}

extension Certificate.SerialNumber {
    /// Upper-case hex without separators or leading zero bytes, as `openssl x509 -serial` prints it.
    public var hexString: String {
        let significant = bytes.drop { $0 == 0 }
        if significant.isEmpty { return "00" }
        return significant.map { byte in
            let s = String(byte, radix: 16, uppercase: true)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    /// Parses hex with optional `0x` prefix and `:` separators, any case.
    public init?(hexString: String) {
        var text = hexString.replacingOccurrences(of: ":", with: "")
        if text.lowercased().hasPrefix("0x") { text = String(text.dropFirst(2)) }
        guard !text.isEmpty, text.count <= 42, text.allSatisfy(\.isHexDigit) else { return nil }
        if text.count % 2 == 1 { text = "0" + text }
        var result: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        self.init(bytes: result)
    }
}

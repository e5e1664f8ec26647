import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// An X.509 v2 CRL (RFC 5280 §5): parsed from PEM or DER, or built and signed by `bastion certs`.
///
/// swift-certificates has no CRL type, so this file holds the small part of RFC 5280 we need: full
/// CRLs from one issuer. Delta CRLs, indirect CRLs and issuing-distribution-point scoping are refused
/// when parsing (they are critical extensions we do not implement), so a CRL is never half-understood.
public struct CertificateRevocationList: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        public var serialNumber: Certificate.SerialNumber
        public var revocationDate: Date

        public init(serialNumber: Certificate.SerialNumber, revocationDate: Date) {
            self.serialNumber = serialNumber
            self.revocationDate = revocationDate
        }
    }

    public private(set) var issuer: DistinguishedName
    public private(set) var thisUpdate: Date
    public private(set) var nextUpdate: Date?
    public private(set) var entries: [Entry]
    /// The cRLNumber extension, big-endian, if present.
    public private(set) var crlNumber: ArraySlice<UInt8>?
    public private(set) var signatureAlgorithm: Certificate.SignatureAlgorithm
    /// The complete DER encoding.
    public private(set) var derBytes: [UInt8]
    private var tbsBytes: ArraySlice<UInt8>
    private var signatureBytes: ArraySlice<UInt8>
    private var revokedSerials: Set<Certificate.SerialNumber>

    public func isRevoked(_ serialNumber: Certificate.SerialNumber) -> Bool {
        revokedSerials.contains(serialNumber)
    }

    /// Whether `issuerCertificate` is the CRL's issuer: same name, and its key made the signature.
    public func isSigned(by issuerCertificate: Certificate) -> Bool {
        guard issuerCertificate.subject == issuer else { return false }
        return issuerCertificate.publicKey.isValidSignature(
            signatureBytes,
            for: tbsBytes,
            signatureAlgorithm: signatureAlgorithm
        )
    }

    public var pemString: String {
        PEMDocument(type: "X509 CRL", derBytes: derBytes).pemString
    }
}

// MARK: - Parsing

extension CertificateRevocationList {
    /// Parses every CRL in a file's contents: one DER CRL, or one or more PEM `X509 CRL` blocks.
    public static func parseFile(_ bytes: [UInt8], path: String) throws -> [CertificateRevocationList] {
        let firstNonSpace = bytes.first { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }
        if firstNonSpace == UInt8(ascii: "-") {
            let text = String(decoding: bytes, as: UTF8.self)
            let documents: [PEMDocument]
            do {
                documents = try PEMDocument.parseMultiple(pemString: text)
            } catch {
                throw PKIError(.malformed, "CRL file \(path) is not valid PEM: \(error)")
            }
            let crls = documents.filter { $0.discriminator == "X509 CRL" }
            guard !crls.isEmpty else {
                throw PKIError(.malformed, "CRL file \(path) contains no \"X509 CRL\" PEM block")
            }
            return try crls.enumerated().map { index, document in
                do {
                    return try CertificateRevocationList(derEncoded: document.derBytes)
                } catch let error as PKIError {
                    throw PKIError(error.kind, "CRL file \(path), CRL \(index + 1): \(error.message)")
                } catch {
                    throw PKIError(.malformed, "CRL file \(path), CRL \(index + 1) cannot be parsed: \(error)")
                }
            }
        }
        do {
            return [try CertificateRevocationList(derEncoded: bytes)]
        } catch let error as PKIError {
            throw PKIError(error.kind, "CRL file \(path): \(error.message)")
        } catch {
            throw PKIError(.malformed, "CRL file \(path) is neither PEM nor a DER CRL: \(error)")
        }
    }

    public init(derEncoded bytes: [UInt8]) throws {
        let root = try DER.parse(bytes)
        var tbsNode: ASN1Node?
        var algorithm: Certificate.SignatureAlgorithm?
        var signature: ASN1BitString?
        try DER.sequence(root, identifier: .sequence) { nodes in
            guard let tbs = nodes.next(), let algorithmNode = nodes.next(), let signatureNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "CertificateList needs three elements")
            }
            tbsNode = tbs
            algorithm = try Self.parseAlgorithmIdentifier(algorithmNode)
            signature = try ASN1BitString(derEncoded: signatureNode)
        }
        guard let tbsNode, let algorithm, let signature else {
            throw ASN1Error.invalidASN1Object(reason: "CertificateList is incomplete")
        }

        var issuer: DistinguishedName?
        var thisUpdate: Date?
        var nextUpdate: Date?
        var entries: [Entry] = []
        var crlNumber: ArraySlice<UInt8>?
        try DER.sequence(tbsNode, identifier: .sequence) { nodes in
            var node = nodes.next()
            if let n = node, n.identifier == .integer {
                let version = try Int(derEncoded: n)
                guard version == 1 else {
                    throw PKIError(.unsupported, "unsupported CRL version \(version + 1)")
                }
                node = nodes.next()
            }
            guard let innerAlgorithmNode = node else {
                throw ASN1Error.invalidASN1Object(reason: "TBSCertList has no signature algorithm")
            }
            let innerAlgorithm = try Self.parseAlgorithmIdentifier(innerAlgorithmNode)
            guard innerAlgorithm == algorithm else {
                throw PKIError(.malformed, "CRL signature algorithms disagree (\(innerAlgorithm) vs \(algorithm))")
            }
            guard let issuerNode = nodes.next(), let thisUpdateNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "TBSCertList has no issuer or thisUpdate")
            }
            issuer = try DistinguishedName(derEncoded: issuerNode)
            thisUpdate = try ASN1Time.parse(thisUpdateNode)
            node = nodes.next()
            if let n = node, ASN1Time.isTime(n) {
                nextUpdate = try ASN1Time.parse(n)
                node = nodes.next()
            }
            if let n = node, n.identifier == .sequence {
                entries = try Self.parseEntries(n)
                node = nodes.next()
            }
            if let n = node, n.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                crlNumber = try Self.parseCRLExtensions(n)
                node = nodes.next()
            }
            if node != nil {
                throw ASN1Error.invalidASN1Object(reason: "unexpected trailing fields in TBSCertList")
            }
        }
        guard let issuer, let thisUpdate else {
            throw ASN1Error.invalidASN1Object(reason: "TBSCertList is incomplete")
        }
        self.issuer = issuer
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.entries = entries
        self.crlNumber = crlNumber
        self.signatureAlgorithm = algorithm
        self.derBytes = bytes
        self.tbsBytes = tbsNode.encodedBytes
        self.signatureBytes = signature.bytes
        self.revokedSerials = Set(entries.map(\.serialNumber))
    }

    private static func parseEntries(_ node: ASN1Node) throws -> [Entry] {
        var entryNodes: [ASN1Node] = []
        try DER.sequence(node, identifier: .sequence) { nodes in
            while let entryNode = nodes.next() { entryNodes.append(entryNode) }
        }
        return try entryNodes.map { entryNode in
            try DER.sequence(entryNode, identifier: .sequence) { nodes in
                guard let serialNode = nodes.next(), let dateNode = nodes.next() else {
                    throw ASN1Error.invalidASN1Object(reason: "revoked certificate entry is incomplete")
                }
                guard serialNode.identifier == .integer, case .primitive(let serialBytes) = serialNode.content else {
                    throw ASN1Error.invalidASN1Object(reason: "revoked certificate serial is not an INTEGER")
                }
                let date = try ASN1Time.parse(dateNode)
                if let extensionsNode = nodes.next() {
                    let extensions = try DER.sequence(
                        of: Certificate.Extension.self,
                        identifier: .sequence,
                        rootNode: extensionsNode
                    )
                    // reasonCode (21) and invalidityDate (24) are informational; anything critical, such as
                    // certificateIssuer (29) of an indirect CRL, changes the meaning of the entry.
                    if let critical = extensions.first(where: { $0.critical }) {
                        throw PKIError(.unsupported, "CRL entry has an unsupported critical extension \(critical.oid)")
                    }
                }
                return Entry(serialNumber: Certificate.SerialNumber(bytes: serialBytes), revocationDate: date)
            }
        }
    }

    private static func parseCRLExtensions(_ node: ASN1Node) throws -> ArraySlice<UInt8>? {
        var crlNumber: ArraySlice<UInt8>?
        try DER.explicitlyTagged(node, tagNumber: 0, tagClass: .contextSpecific) { inner in
            let extensions = try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: inner)
            for ext in extensions {
                switch ext.oid {
                case OIDs.crlNumber:
                    let integer = try DER.parse(ext.value)
                    guard integer.identifier == .integer, case .primitive(let bytes) = integer.content else {
                        throw ASN1Error.invalidASN1Object(reason: "cRLNumber is not an INTEGER")
                    }
                    crlNumber = bytes
                case .X509ExtensionID.authorityKeyIdentifier:
                    break
                default:
                    if ext.critical {
                        throw PKIError(
                            .unsupported,
                            "CRL has an unsupported critical extension \(ext.oid) (delta CRLs and distribution-point scoped CRLs are not supported)"
                        )
                    }
                }
            }
        }
        return crlNumber
    }

    static func parseAlgorithmIdentifier(_ node: ASN1Node) throws -> Certificate.SignatureAlgorithm {
        try DER.sequence(node, identifier: .sequence) { nodes in
            guard let oidNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "AlgorithmIdentifier has no OID")
            }
            let oid = try ASN1ObjectIdentifier(derEncoded: oidNode)
            _ = nodes.next()  // parameters: NULL for RSA, absent for ECDSA/Ed25519
            guard let algorithm = OIDs.signatureAlgorithms.first(where: { $0.oid == oid })?.algorithm else {
                throw PKIError(.unsupported, "unsupported CRL signature algorithm \(oid)")
            }
            return algorithm
        }
    }
}

// MARK: - Building

extension CertificateRevocationList {
    /// Builds and signs a CRL issued by `issuer`.
    public static func make(
        issuer: Certificate,
        issuerKey: Certificate.PrivateKey,
        entries: [Entry],
        thisUpdate: Date,
        nextUpdate: Date,
        crlNumber: UInt64
    ) throws -> CertificateRevocationList {
        guard issuerKey.publicKey == issuer.publicKey else {
            throw PKIError(.keyMismatch, "the CA key does not belong to the CA certificate")
        }
        guard let entry = OIDs.signatureAlgorithms.first(where: { $0.algorithm == Self.signatureAlgorithm(for: issuer.publicKey) }) else {
            throw PKIError(.unsupported, "cannot sign a CRL with a \(issuer.publicKey) key")
        }
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1)  // v2
            try Self.serializeAlgorithmIdentifier(entry, into: &coder)
            try coder.serialize(issuer.subject)
            try ASN1Time.serialize(thisUpdate, into: &coder)
            try ASN1Time.serialize(nextUpdate, into: &coder)
            if !entries.isEmpty {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    for entry in entries {
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            coder.appendPrimitiveNode(identifier: .integer) {
                                $0.append(contentsOf: Self.unsignedIntegerContent(entry.serialNumber.bytes))
                            }
                            try ASN1Time.serialize(entry.revocationDate, into: &coder)
                        }
                    }
                }
            }
            var extensions: [Certificate.Extension] = []
            var number = DER.Serializer()
            try number.serialize(crlNumber)
            extensions.append(Certificate.Extension(oid: OIDs.crlNumber, critical: false, value: number.serializedBytes[...]))
            if let ski = try? issuer.extensions.subjectKeyIdentifier {
                extensions.append(try Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: ski.keyIdentifier), critical: false))
            }
            try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                try coder.serializeSequenceOf(extensions)
            }
        }
        let tbsBytes = tbs.serializedBytes
        let signature = try issuerKey.sign(bytes: tbsBytes, signatureAlgorithm: entry.algorithm)
        var whole = DER.Serializer()
        try whole.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(tbsBytes)
            try Self.serializeAlgorithmIdentifier(entry, into: &coder)
            try coder.serialize(ASN1BitString(bytes: signature.rawRepresentation[...]))
        }
        return try CertificateRevocationList(derEncoded: whole.serializedBytes)
    }

    /// `SerialNumber.bytes` is the magnitude without leading zeros; a DER INTEGER is two's complement,
    /// so a set high bit needs a 0x00 in front or the serial reads as negative.
    static func unsignedIntegerContent(_ magnitude: ArraySlice<UInt8>) -> [UInt8] {
        let trimmed = magnitude.drop { $0 == 0 }
        guard let first = trimmed.first else { return [0] }
        return first & 0x80 != 0 ? [0] + trimmed : Array(trimmed)
    }

    static func signatureAlgorithm(for key: Certificate.PublicKey) -> Certificate.SignatureAlgorithm? {
        if P256.Signing.PublicKey(key) != nil { return .ecdsaWithSHA256 }
        if P384.Signing.PublicKey(key) != nil { return .ecdsaWithSHA384 }
        if P521.Signing.PublicKey(key) != nil { return .ecdsaWithSHA512 }
        if _RSA.Signing.PublicKey(key) != nil { return .sha256WithRSAEncryption }
        if Curve25519.Signing.PublicKey(key) != nil { return .ed25519 }
        return nil
    }

    private static func serializeAlgorithmIdentifier(
        _ entry: OIDs.SignatureAlgorithmEntry,
        into coder: inout DER.Serializer
    ) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(entry.oid)
            if entry.nullParameters {
                try coder.serialize(ASN1Null())
            }
        }
    }
}

enum OIDs {
    static let crlNumber: ASN1ObjectIdentifier = [2, 5, 29, 20]

    struct SignatureAlgorithmEntry {
        var oid: ASN1ObjectIdentifier
        var algorithm: Certificate.SignatureAlgorithm
        var nullParameters: Bool
    }

    static let signatureAlgorithms: [SignatureAlgorithmEntry] = [
        .init(oid: [1, 2, 840, 10045, 4, 3, 2], algorithm: .ecdsaWithSHA256, nullParameters: false),
        .init(oid: [1, 2, 840, 10045, 4, 3, 3], algorithm: .ecdsaWithSHA384, nullParameters: false),
        .init(oid: [1, 2, 840, 10045, 4, 3, 4], algorithm: .ecdsaWithSHA512, nullParameters: false),
        .init(oid: [1, 2, 840, 113549, 1, 1, 11], algorithm: .sha256WithRSAEncryption, nullParameters: true),
        .init(oid: [1, 2, 840, 113549, 1, 1, 12], algorithm: .sha384WithRSAEncryption, nullParameters: true),
        .init(oid: [1, 2, 840, 113549, 1, 1, 13], algorithm: .sha512WithRSAEncryption, nullParameters: true),
        .init(oid: [1, 3, 101, 112], algorithm: .ed25519, nullParameters: false),
    ]
}

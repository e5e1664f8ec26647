import Foundation
import X509

/// The record of everything a PKI directory's CA issued and revoked (`index.json`).
public struct PKIIndex: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case ca, server, client }
        /// Upper-case hex.
        public var serial: String
        public var kind: Kind
        public var subject: String
        public var names: [String]
        public var notBefore: Date
        public var notAfter: Date
        /// Relative to the directory.
        public var certificateFile: String?
        public var revokedAt: Date?
    }

    public var version: Int = 1
    /// Written into every certificate issued (CRL distribution point), when set at `init`.
    public var crlURL: String?
    /// The number of the last CRL written.
    public var crlNumber: UInt64 = 0
    public var certificates: [Entry] = []

    public init() {}
}

/// A small file-based CA for development and small fleets (`bastion certs --dir DIR`):
///
///     DIR/ca.pem  DIR/ca.key (0600)  DIR/index.json  DIR/crl.pem
///     DIR/server.pem  DIR/server.key          (bastion certs server)
///     DIR/clients/NAME.pem  DIR/clients/NAME.key   (bastion certs client NAME)
public struct PKIDirectory: Sendable {
    public let path: String
    public static let crlLifetimeDays = 90

    public init(path: String) { self.path = path }

    public var caCertificateFile: String { join("ca.pem") }
    public var caKeyFile: String { join("ca.key") }
    public var indexFile: String { join("index.json") }
    public var crlFile: String { join("crl.pem") }

    public struct Issued: Sendable, Equatable {
        public var certificateFile: String
        public var keyFile: String
        public var serial: String
        public var notAfter: Date
    }

    func join(_ component: String) -> String {
        path.hasSuffix("/") ? path + component : path + "/" + component
    }

    // MARK: CA

    /// Creates the CA, an empty index and an empty CRL. Refuses to replace an existing CA unless `force`.
    @discardableResult
    public func initialize(
        commonName: String = "Bastion CA",
        days: Int = CertificateIssuer.caLifetimeDays,
        crlURL: String? = nil,
        now: Date,
        force: Bool = false
    ) throws -> Certificate {
        if let crlURL { try CertificateIssuer.validateCRLURL(crlURL) }
        if !force, PKIFiles.exists(caCertificateFile) || PKIFiles.exists(caKeyFile) {
            throw PKIError(
                .alreadyExists,
                "\(path) already holds a CA (\(caCertificateFile)); use another --dir, or --force to replace it (every certificate it issued stops working)"
            )
        }
        try PKIFiles.makeDirectory(path, mode: 0o700)
        let key = CertificateIssuer.newKey()
        let ca = try CertificateIssuer.makeCA(commonName: commonName, key: key, now: now, days: days)
        try PKIFiles.write(CertificateIssuer.keyPEM(key), to: caKeyFile, mode: PKIFiles.keyMode, overwrite: true)
        try PKIFiles.write(
            CertificateIssuer.certificatePEM(ca),
            to: caCertificateFile,
            mode: PKIFiles.publicMode,
            overwrite: true
        )
        var index = PKIIndex()
        index.crlURL = crlURL
        index.certificates.append(
            PKIIndex.Entry(
                serial: ca.serialNumber.hexString,
                kind: .ca,
                subject: String(describing: ca.subject),
                names: [],
                notBefore: ca.notValidBefore,
                notAfter: ca.notValidAfter,
                certificateFile: "ca.pem",
                revokedAt: nil
            )
        )
        try writeIndex(index)
        try writeCRL(now: now)
        return ca
    }

    public func loadCA() throws -> (certificate: Certificate, key: Certificate.PrivateKey) {
        guard PKIFiles.exists(caCertificateFile) else {
            throw PKIError(.notFound, "no CA in \(path); create one with: bastion certs init --dir \(path)")
        }
        try PKIFiles.checkKeyPermissions(caKeyFile, what: "CA key")
        guard let certificate = try PKIFiles.readCertificates(caCertificateFile, what: "CA certificate").first else {
            throw PKIError(.malformed, "\(caCertificateFile) holds no certificate")
        }
        let key = try PKIFiles.readPrivateKey(caKeyFile, what: "CA key")
        guard key.publicKey == certificate.publicKey else {
            throw PKIError(.keyMismatch, "\(caKeyFile) does not belong to \(caCertificateFile)")
        }
        return (certificate, key)
    }

    // MARK: Leaves

    public func issueServer(
        names: [SubjectAltName],
        fileName: String = "server",
        days: Int = CertificateIssuer.serverLifetimeDays,
        now: Date,
        force: Bool = false
    ) throws -> Issued {
        let (ca, caKey) = try loadCA()
        let key = CertificateIssuer.newKey()
        let certificate = try CertificateIssuer.issueServer(
            names: names,
            publicKey: key.publicKey,
            issuer: ca,
            issuerKey: caKey,
            now: now,
            days: days,
            crlDistributionPoint: try readIndex().crlURL
        )
        let base = try Self.safeFileName(fileName)
        return try store(
            certificate,
            key: key,
            kind: .server,
            names: names,
            relativeBase: base,
            force: force
        )
    }

    public func issueClient(
        commonName: String,
        names: [SubjectAltName] = [],
        days: Int = CertificateIssuer.clientLifetimeDays,
        now: Date,
        force: Bool = false
    ) throws -> Issued {
        let (ca, caKey) = try loadCA()
        let key = CertificateIssuer.newKey()
        let certificate = try CertificateIssuer.issueClient(
            commonName: commonName,
            names: names,
            publicKey: key.publicKey,
            issuer: ca,
            issuerKey: caKey,
            now: now,
            days: days,
            crlDistributionPoint: try readIndex().crlURL
        )
        try PKIFiles.makeDirectory(join("clients"), mode: 0o700)
        let base = "clients/" + (try Self.safeFileName(commonName))
        return try store(certificate, key: key, kind: .client, names: names, relativeBase: base, force: force)
    }

    private func store(
        _ certificate: Certificate,
        key: Certificate.PrivateKey,
        kind: PKIIndex.Entry.Kind,
        names: [SubjectAltName],
        relativeBase: String,
        force: Bool
    ) throws -> Issued {
        let certificateFile = join(relativeBase + ".pem")
        let keyFile = join(relativeBase + ".key")
        if !force, PKIFiles.exists(certificateFile) || PKIFiles.exists(keyFile) {
            throw PKIError(
                .alreadyExists,
                "\(certificateFile) already exists; revoke the old certificate if needed and pass --force to replace the files"
            )
        }
        var index = try readIndex()
        try PKIFiles.write(CertificateIssuer.keyPEM(key), to: keyFile, mode: PKIFiles.keyMode, overwrite: true)
        try PKIFiles.write(
            CertificateIssuer.certificatePEM(certificate),
            to: certificateFile,
            mode: PKIFiles.publicMode,
            overwrite: true
        )
        index.certificates.append(
            PKIIndex.Entry(
                serial: certificate.serialNumber.hexString,
                kind: kind,
                subject: String(describing: certificate.subject),
                names: names.map(\.description),
                notBefore: certificate.notValidBefore,
                notAfter: certificate.notValidAfter,
                certificateFile: relativeBase + ".pem",
                revokedAt: nil
            )
        )
        try writeIndex(index)
        return Issued(
            certificateFile: certificateFile,
            keyFile: keyFile,
            serial: certificate.serialNumber.hexString,
            notAfter: certificate.notValidAfter
        )
    }

    // MARK: Revocation

    public enum RevocationOutcome: Sendable, Equatable {
        case revoked(PKIIndex.Entry)
        case alreadyRevoked(PKIIndex.Entry)
    }

    /// `revoke(serial:now:)` with the serial as hex (`1A2B…`, `1a:2b:…` or `0x1A2B…`).
    public func revoke(serialHex: String, now: Date) throws -> RevocationOutcome {
        guard let serial = Certificate.SerialNumber(hexString: serialHex) else {
            throw PKIError(.invalidArgument, "\"\(serialHex)\" is not a hexadecimal serial number (see bastion certs list)")
        }
        return try revoke(serial: serial, now: now)
    }

    /// Marks `serial` revoked in the index and rewrites the CRL.
    public func revoke(serial: Certificate.SerialNumber, now: Date) throws -> RevocationOutcome {
        _ = try loadCA()
        var index = try readIndex()
        let hex = serial.hexString
        guard let position = index.certificates.firstIndex(where: { $0.serial == hex }) else {
            throw PKIError(.notFound, "serial \(hex) was not issued by the CA in \(path) (see bastion certs list)")
        }
        guard index.certificates[position].kind != .ca else {
            throw PKIError(.invalidArgument, "serial \(hex) is the CA itself; to retire it create a new CA")
        }
        if index.certificates[position].revokedAt != nil {
            return .alreadyRevoked(index.certificates[position])
        }
        index.certificates[position].revokedAt = now
        try writeIndex(index)
        try writeCRL(now: now)
        return .revoked(index.certificates[position])
    }

    /// Writes a fresh CRL listing every revoked serial, valid for `days`; returns its path.
    @discardableResult
    public func writeCRL(now: Date, days: Int = crlLifetimeDays) throws -> String {
        let (ca, caKey) = try loadCA()
        var index = try readIndex()
        index.crlNumber += 1
        let entries: [CertificateRevocationList.Entry] = index.certificates.compactMap { entry in
            guard let revokedAt = entry.revokedAt, let serial = Certificate.SerialNumber(hexString: entry.serial) else {
                return nil
            }
            return CertificateRevocationList.Entry(serialNumber: serial, revocationDate: revokedAt)
        }
        let crl = try CertificateRevocationList.make(
            issuer: ca,
            issuerKey: caKey,
            entries: entries,
            thisUpdate: now - CertificateIssuer.backdate,
            nextUpdate: now + TimeInterval(days) * 86_400,
            crlNumber: index.crlNumber
        )
        try PKIFiles.write(crl.pemString + "\n", to: crlFile, mode: PKIFiles.publicMode, overwrite: true)
        try writeIndex(index)
        return crlFile
    }

    // MARK: Index

    public func readIndex() throws -> PKIIndex {
        guard PKIFiles.exists(indexFile) else { return PKIIndex() }
        let bytes = try PKIFiles.read(indexFile, what: "PKI index")
        do {
            return try Self.decoder.decode(PKIIndex.self, from: Data(bytes))
        } catch {
            throw PKIError(.malformed, "PKI index \(indexFile) cannot be read: \(error)")
        }
    }

    func writeIndex(_ index: PKIIndex) throws {
        let data = try Self.encoder.encode(index)
        try PKIFiles.write(Array(data) + [0x0A], to: indexFile, mode: PKIFiles.publicMode, overwrite: true)
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// File names derived from certificate names: letters, digits and `._@-` survive, anything else
    /// becomes `_`, so a CN can never escape the directory.
    static func safeFileName(_ name: String) throws -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-")
        var result = String(name.map { allowed.contains($0) ? $0 : "_" })
        while result.hasPrefix(".") { result = "_" + result.dropFirst() }
        guard !result.isEmpty, result.count <= 200 else {
            throw PKIError(.invalidArgument, "\"\(name)\" cannot be used as a file name")
        }
        return result
    }
}

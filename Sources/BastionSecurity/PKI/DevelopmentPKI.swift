import Foundation
import X509

/// The certificates a broker started with no TLS configuration uses: a private CA and a server
/// certificate for localhost, 127.0.0.1 and ::1, kept in `DATA_DIR/tls` (a normal PKI directory, so
/// `bastion certs client NAME --dir DATA_DIR/tls` issues client certificates for it). Created on first
/// start, reused afterwards, renewed when missing, broken or within 30 days of expiry.
public enum DevelopmentPKI {
    public struct Files: Sendable, Equatable {
        public var caFile: String
        public var certFile: String
        public var keyFile: String
        /// True when this call created or renewed something (worth a log line).
        public var created: Bool

        public init(caFile: String, certFile: String, keyFile: String, created: Bool) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
            self.created = created
        }
    }

    public static let serverNames = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    static let renewBefore: TimeInterval = 30 * 86_400

    public static func directory(dataDir: String) -> PKIDirectory {
        PKIDirectory(path: (dataDir.hasSuffix("/") ? dataDir : dataDir + "/") + "tls")
    }

    public static func ensure(dataDir: String, now: Date = Date()) throws -> Files {
        try PKIFiles.makeDirectory(dataDir, mode: 0o700)
        let pki = directory(dataDir: dataDir)
        var created = false

        let ca: Certificate
        if let existing = try? pki.loadCA(), existing.certificate.notValidAfter.timeIntervalSince(now) > renewBefore {
            ca = existing.certificate
        } else {
            ca = try pki.initialize(commonName: "Bastion Development CA", now: now, force: true)
            created = true
        }

        let certFile = pki.join("server.pem")
        let keyFile = pki.join("server.key")
        if created || !serverCertificateIsUsable(certFile: certFile, keyFile: keyFile, ca: ca, now: now) {
            let names = try serverNames.map { try SubjectAltName($0) }
            _ = try pki.issueServer(names: names, fileName: "server", now: now, force: true)
            created = true
        }
        return Files(caFile: pki.caCertificateFile, certFile: certFile, keyFile: keyFile, created: created)
    }

    static func serverCertificateIsUsable(certFile: String, keyFile: String, ca: Certificate, now: Date) -> Bool {
        guard let credentials = try? ServerCredentials.load(certificateFile: certFile, keyFile: keyFile, now: now),
            let leaf = credentials.chain.first
        else { return false }
        guard leaf.notValidAfter.timeIntervalSince(now) > renewBefore,
            leaf.issuer == ca.subject,
            ca.publicKey.isValidSignature(leaf.signature, for: leaf)
        else { return false }
        return true
    }
}
